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


def quick_fleet(broker: LocalBroker, tmp_path: Path, branches: int, **extra: Any
                ) -> tuple[list[str], str, FleetSettings]:
    """``branches`` busy branches (their broker users made) and the centre's store URL."""
    codes = [str(9_000_000_001 + i) for i in range(branches)]
    for code in codes:
        broker.add_user(code, "fleet-pw")
    settings = FleetSettings(branches=branches, broker=broker.url, password="fleet-pw",
                             rate=7200, service_minutes=0.01, data_dir=tmp_path / "fleet",
                             uplink=TEST_LINK, **extra)
    return codes, f"sqlite:///{tmp_path / 'centre.sqlite3'}", settings


async def test_a_fleet_reaches_the_centre_exactly_once(broker: LocalBroker,
                                                       tmp_path: Path) -> None:
    codes, store_url, settings = quick_fleet(broker, tmp_path, 3)
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


DEMO_ORGS = ROOT / "examples" / "centre.toml"


def test_fleet_branches_have_their_own_names_sizes_and_seeds() -> None:
    """The demo's two fleets (1001010002… and 1001020001…) are named as the organisation
    names them, and no two branches share a name, a size and a random stream."""
    from sim.fleet import branch_plan, org_names

    names = org_names(DEMO_ORGS)
    codes = [str(int(first) + i) for first in ("1001010002", "1001020001") for i in range(3)]
    plans = [branch_plan(code, 1, names) for code in codes]
    assert [p.name for p in plans] == ["郑州花园路支行", "郑州二七支行", "郑州高新区支行",
                                       "洛阳中州路支行", "洛阳西工支行", "洛阳涧西支行"]
    assert branch_config(codes[0], plan=plans[0]).branch.name_en == \
        "Zhengzhou Huayuan Road Sub-branch"
    # beyond the organisation file: a street of its own, the code keeping the name unique
    more = [branch_plan(str(9_000_000_001 + i)) for i in range(40)]
    assert len({p.name for p in more}) == 40 and not any("模拟网点" in p.name for p in more)
    assert len({p.seed for p in plans + more}) == len(plans + more)
    assert len({p.tellers for p in more}) > 1 and len({p.busy for p in more}) > 10
    assert all(1 <= p.tellers <= 3 and 0.4 <= p.busy <= 1.6 for p in more)
    assert branch_plan("9000000001", 1) == more[0]  # the same code and seed: the same branch
    assert branch_plan("9000000001", 2).seed != more[0].seed


async def test_a_fleet_branch_works_its_own_windows_on_the_clock_it_is_given(
        tmp_path: Path) -> None:
    import datetime as dt

    from common.clock import ManualClock

    ten = dt.datetime.fromisoformat("2026-11-25T10:00:00+08:00")
    settings = FleetSettings(branches=4, broker="mqtt://127.0.0.1:9", rate=36000,
                             data_dir=tmp_path, names={"9000000001": ("一号", "One")})
    async with Fleet(settings, ManualClock(ten)) as fleet:
        for box in fleet.boxes:
            await fleet._login(box)  # the tellers the plan puts at work
        plans = [fleet.plans[b.config.branch.code] for b in fleet.boxes]
        working = [sorted(b.engine.state.tellers.values()) for b in fleet.boxes]
        assert working == [[n for n, _ in p.windows] for p in plans]
        assert fleet.boxes[0].config.branch.name == "一号"
        assert fleet.boxes[0].clock.now() == ten.timestamp()


def test_a_figure_from_journals_on_tmpfs_says_it_pays_no_fsync(tmp_path: Path) -> None:
    from sim.fleet import fs_type, journal_label

    if fs_type("/dev/shm") == "tmpfs":  # where the fleet puts its journals by default
        assert journal_label("/dev/shm") == "tmpfs journals, no fsync"
    kind = fs_type(tmp_path)
    assert journal_label(tmp_path) == (f"{kind} journals, no fsync" if kind in ("tmpfs", "ramfs")
                                       else f"{kind} journals, fsync to disk")


async def test_a_disk_sample_of_branches_journals_on_a_real_disk(broker: LocalBroker,
                                                                tmp_path: Path) -> None:
    """Two of four branches journal under ``disk_dir``; the result names both places."""
    codes, store_url, settings = quick_fleet(broker, tmp_path, 4, disk_sample=2,
                                             disk_dir=tmp_path / "disk")
    async with centre_running(broker, store_url), Fleet(settings) as fleet:
        await fleet.connected(30)
        await fleet.run(1.0)
        assert await fleet.drained(30)
        stats = fleet.stats()
        for code in codes:  # each journal where it was put, and in the centre exactly once
            where = tmp_path / ("disk" if code in stats["disk_branches"] else "fleet") / code
            assert (where / "journal.sqlite3").exists()
            await assert_exactly_the_journal(store_url, where, code)
    assert stats["disk_branches"] == [codes[0], codes[2]]  # spread over the codes
    assert stats["journals"].startswith(f"{fs_type_of(tmp_path)} journals")
    assert stats["disk_journals"] is not None and stats["backlog"] == 0


def fs_type_of(path: Path) -> str:
    from sim.fleet import fs_type

    return fs_type(path)
