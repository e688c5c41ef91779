"""``python -m controller``: bad configs refused with the key named, and a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.broker import LocalBroker
from common.clock import ManualClock
from controller.__main__ import settle_removed
from controller.box import Box
from controller.config import parse_config
from controller.engine import commands as c
from tests.conftest import EXAMPLE, ROOT, WEDNESDAY_10AM, example_config
from tests.crash_support import free_port, start_box, wait_ready
from tests.uplink_support import BRANCH, broker_fixture, listen, next_on, without_a

__all__ = ["broker_fixture"]


def run_box(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "--config", str(EXAMPLE), *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(("args", "key"), [
    (["--set", "thresholds.balance_waiting=0"], "thresholds.balance_waiting"),
    (["--set", "windows.0.queues.Q=1"], "windows.0.queues"),
    (["--set", "branch.timezone=\"Mars/Olympus\""], "branch.timezone"),
    (["--set", "queues.9.digits=2"], "queues.9.digits"),
    (["--set", "nonsense"], "nonsense"),
    (["--set", "printer.encoding=\"latin1\""], "printer.encoding"),
    (["--set", "rs485.profile=\"morse\""], "rs485.profile"),
    (["--set", 'vip_customers.0.cards=["6225880137001238"]'], "vip_customers.0.cards"),
    (["--set", 'vip_customers.0.id_numbers=["410105198001012312"]'],
     "vip_customers.0.id_numbers"),
    (["--http", "localhost"], "--http"),
])
def test_a_bad_config_is_one_clear_message_and_exit_code_2(args: list[str], key: str) -> None:
    done = run_box(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error:"), done.stderr
    assert key in lines[0]


def test_a_missing_config_file_is_exit_code_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "controller", "--config", str(tmp_path / "none.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and "does not exist" in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_the_box_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    proc = start_box(tmp_path, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            await wait_ready(c, proc)
            assert (await c.post("/api/tickets", json={"queue": "A"})).status_code == 201
        proc.send_signal(sig)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The journal was closed: SQLite removes the write-ahead log with its last connection.
    assert not (tmp_path / "journal.sqlite3-wal").exists()


# --- a configuration the centre pushed (docs/config.md "What the centre pushes") -----------


def push_without_a() -> dict[str, Any]:
    """What an older box kept after the centre removed business A: its ticket button
    (gpio.buttons.0, a local section) still issues A, so it cannot start on it."""
    return without_a(example_config())


@pytest.mark.network
async def test_a_kept_push_that_cannot_start_is_set_aside_and_the_centre_told(
        tmp_path: Path, broker: LocalBroker) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "pushed-config.json").write_text(json.dumps(push_without_a()), encoding="utf-8")
    password = broker.add_user(BRANCH)
    port = free_port()
    log = (tmp_path / "box.log").open("wb")  # a file, not a pipe nobody reads: never full
    async with listen(broker, f"qms/v1/{BRANCH}/health") as q:
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller", "--config", str(EXAMPLE), "--data-dir",
             str(data), "--http", f"127.0.0.1:{port}", "--log-level", "WARNING",
             "--set", "clock.start=2026-11-25T10:00:00+08:00",
             # no voice: this test is about the configuration, and making the clip pack
             # with espeak-ng would only add seconds
             "--set", "audio.enabled=false",
             "--set", f'uplink.broker="{broker.url}"', "--set", f'uplink.password="{password}"'],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=log)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
                await wait_ready(c, proc)  # it serves: no exit, no restart loop
                ticket = await c.post("/api/tickets", json={"queue": "A"})
                assert ticket.status_code == 201  # on the local file's businesses
            health = await next_on(q, "health", lambda m: any(
                d["name"] == "config" for d in m["devices"]), timeout=30)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
            log.close()
    assert "centre configuration set aside" in (tmp_path / "box.log").read_text("utf-8")
    alarm = next(d for d in health["devices"] if d["name"] == "config")
    assert alarm["state"] == "fault" and "gpio.buttons.0.queue" in alarm["detail"]
    assert not (data / "pushed-config.json").exists()
    aside = [p.name for p in data.glob("pushed-config.rejected-*.json")]
    assert len(aside) == 1 and aside[0] in alarm["detail"]
    assert json.loads((data / aside[0]).read_text(encoding="utf-8")) == push_without_a()


def test_no_window_is_refused_at_start() -> None:
    done = run_box("--set", "windows=[]")
    assert done.returncode == 2 and "windows: a branch needs at least one window" in done.stderr


@pytest.mark.parametrize(("said", "health"), [(True, None), (False, "warning")])
async def test_a_start_without_a_business_that_has_customers_waiting(
        tmp_path: Path, said: bool, health: str | None) -> None:
    """The box starts on a configuration without business A while A's customers wait
    (it fell back from a set-aside push that had added A): they are moved as its
    removed_queues says, or, unsaid, stay listed with a health warning."""
    clock = ManualClock(WEDNESDAY_10AM)
    async with Box(example_config(), tmp_path, clock) as box:
        for queue in "AB":
            await box.execute(c.IssueTicket(queue=queue))
    local = without_a(example_config())
    local["gpio"]["buttons"] = []
    if said:
        local["removed_queues"] = {"A": {"transfer_to": "B"}}
    async with Box(parse_config(local), tmp_path, clock) as box:
        await settle_removed(box)
        queues = {t.number: t.queue for t in box.engine.state.waiting.values()}
        alarm = box.health.devices.get("config.removed_queues")
    assert queues == ({"A001": "B", "B001": "B"} if said else {"A001": "A", "B001": "B"})
    assert (alarm.state if alarm else None) == health
    if alarm:
        assert "removed_queues.A" in alarm.detail
