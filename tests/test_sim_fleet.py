"""The fleet simulator: several branch boxes against a real broker and centre."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from central.broker import LocalBroker
from sim.fleet import Fleet, FleetSettings, branch_config
from tests.uplink_support import (  # noqa: F401
    TEST_LINK,
    assert_exactly_the_journal,
    broker_fixture,
    centre_running,
    wait_for,
)

ROOT = Path(__file__).resolve().parent.parent


def test_a_fleet_branch_is_open_all_day_with_its_own_code() -> None:
    cfg = branch_config("9000000042")
    assert cfg.branch.code == "9000000042" and cfg.hardware == "none"
    assert cfg.hours.weekend == ["00:00-24:00"] and cfg.calendar.holidays == []


async def test_a_fleet_reaches_the_centre_exactly_once(broker: LocalBroker,
                                                       tmp_path: Path) -> None:
    codes = [str(9_000_000_001 + i) for i in range(3)]
    for code in codes:
        broker.add_user(code, "fleet-pw")
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    settings = FleetSettings(branches=3, broker=broker.url, password="fleet-pw", rate=7200,
                             service_minutes=0.01, data_dir=tmp_path / "fleet",
                             uplink=TEST_LINK)
    async with centre_running(broker, store_url), Fleet(settings) as fleet:
        await fleet.connected(30)
        await fleet.run(2.0)
        assert await fleet.drained(30)
        stats = fleet.stats()
        for code in codes:
            await assert_exactly_the_journal(store_url, tmp_path / "fleet" / code, code)
    assert stats["tickets"] > 3 and stats["backlog"] == 0 and stats["connected"] == 3


def test_sim_dispatches_fleet() -> None:
    r = subprocess.run([sys.executable, "-m", "sim", "fleet", "--help"], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0 and "--branches" in r.stdout


async def test_a_fleet_split_over_processes_adds_up(broker: LocalBroker, tmp_path: Path) -> None:
    for code in ("9000000001", "9000000002"):
        broker.add_user(code, "fleet-pw")
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with centre_running(broker, store_url):
        r = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "sim", "fleet", "--branches", "2", "--procs", "2",
            "--broker", broker.url, "--password", "fleet-pw", "--rate", "3600",
            "--duration", "1", "--drain", "30", "--data-dir", str(tmp_path / "fleet")],
            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    total = json.loads(r.stdout.strip().splitlines()[-1])
    assert total["branches"] == 2 and total["procs"] == 2 and total["drained"] is True
    assert total["backlog"] == 0 and total["events"] >= 8  # logins and day opening at least


async def test_fleet_branches_with_appointment_books_take_the_centres_booking_lists(
        broker: LocalBroker, tmp_path: Path) -> None:
    """What ./flash.sh sim's fleets run with: each branch acknowledges the centre's day
    lists as a real box does, instead of refusing them."""
    from central.store import open_store

    codes = [str(9_000_000_001 + i) for i in range(2)]
    for code in codes:
        broker.add_user(code, "fleet-pw")
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    settings = FleetSettings(branches=2, broker=broker.url, password="fleet-pw", rate=720,
                             data_dir=tmp_path / "fleet", uplink=TEST_LINK, appointments=True)
    async with centre_running(broker, store_url), Fleet(settings) as fleet:
        await fleet.connected(30)

        async def acked() -> bool:
            def read() -> list[tuple[str, int, Any]]:
                st = open_store(store_url)
                try:
                    return list(st.execute("SELECT branch, acked_revision, refused FROM "
                                           "appointment_days").fetchall())
                finally:
                    st.close()
            rows = await asyncio.to_thread(read)
            return bool(rows) and {r[0] for r in rows} >= set(codes) and all(
                r[1] >= 1 and r[2] is None for r in rows)

        await wait_for(acked, 40, "every fleet branch acknowledging its booking lists")
