"""``python -m sim demo``: a box with simulated customers flowing, started and stopped as
one, leaving no process behind."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.config import Calendar
from controller.journal import Journal, Record
from sim.demo import BEIJING, demo_start
from tests.browser import ROOT, free_port


def _launch(tmp_path: Path, port: int, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sim", "demo", "--data-dir", str(tmp_path / "data"),
             "--http", f"127.0.0.1:{port}", "--speed", "60",
             "--set", "clock.start=2026-11-25T10:00:00+08:00", *extra],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


@contextlib.contextmanager
def _demo(tmp_path: Path, port: int, *extra: str
          ) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The demo running; killed at the end if the test did not stop it."""
    proc, log = _launch(tmp_path, port, *extra)
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _tickets(port: int) -> list[dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tickets", timeout=2) as r:
            return list(json.loads(r.read())["tickets"])
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return []


def _pids(log: Path) -> dict[str, int]:
    found = re.findall(r"demo: ([\w-]+) started \(pid (\d+)\)", log.read_text())
    return {name: int(pid) for name, pid in found}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


FRIDAY = dt.date(2026, 11, 27)


def _journal(data_dir: Path, at: dt.datetime) -> None:
    j = Journal(data_dir / "journal.sqlite3")
    try:
        j.write([Record(1, {"type": "day_opened", "day": f"{at:%Y-%m-%d}",
                            "at": at.timestamp()})])
    finally:
        j.close()


def test_the_demo_clock_starts_at_ten_today(tmp_path: Path) -> None:
    ten = dt.datetime(2026, 11, 27, 10, tzinfo=BEIJING)
    assert demo_start(tmp_path, Calendar(), FRIDAY) == ten
    _journal(tmp_path, dt.datetime(2026, 11, 26, 16, tzinfo=BEIJING))  # yesterday's demo
    assert demo_start(tmp_path, Calendar(), FRIDAY) == ten


def test_after_an_earlier_demo_today_the_clock_starts_on_the_next_working_day(
        tmp_path: Path) -> None:
    """The engine never goes back in time: starting at 10:00 again would freeze the box's
    time at the journal's last event until the clock caught up."""
    _journal(tmp_path, dt.datetime(2026, 11, 27, 10, 42, tzinfo=BEIJING))
    monday = dt.datetime(2026, 11, 30, 10, tzinfo=BEIJING)
    assert demo_start(tmp_path, Calendar(), FRIDAY) == monday
    tuesday = dt.datetime(2026, 12, 1, 10, tzinfo=BEIJING)
    assert demo_start(tmp_path, Calendar(holidays=[monday.date()]), FRIDAY) == tuesday


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_demo_runs_a_branch_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    port = free_port()
    with _demo(tmp_path, port) as (proc, log):
        deadline = time.monotonic() + 90
        while not any(t["state"] in ("called", "finished") for t in _tickets(port)):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        pids = _pids(log)
        assert set(pids) == {"box", "customers"}
        assert all(_alive(p) for p in pids.values())
        proc.send_signal(sig)
        assert proc.wait(60) == 0, log.read_text()
    text = log.read_text()
    assert not [name for name, pid in pids.items() if _alive(pid)], text
    assert "demo: customers stopped" in text and "demo: box stopped" in text
    assert text.index("demo: customers stopped") < text.index("demo: box stopped")
    assert f"demo: box stopped (pid {pids['box']}, code 0)" in text
    assert "tellers 0/3" in text  # the simulated tellers logged out before the end
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


@pytest.mark.slow
def test_a_box_that_cannot_start_stops_the_demo(tmp_path: Path) -> None:
    port = free_port()
    proc, log = _launch(tmp_path, port, "--set", "rs485.baudrate=7")
    assert proc.wait(60) == 1
    text = log.read_text()
    assert "box exited with code 2 before it was ready" in text, text
    assert "customers started" not in text
    assert not [pid for pid in _pids(log).values() if _alive(pid)]


@pytest.mark.slow
def test_with_the_centre_the_demo_runs_broker_centre_and_fleet_and_stops_them_all(
        tmp_path: Path) -> None:
    """What ``./flash.sh sim`` runs: the example box and six simulated branches report over
    a password-protected broker to the centre, whose public page lists all seven online."""
    port, centre, broker = free_port(), free_port(), free_port()
    with _demo(tmp_path, port, "--centre", str(tmp_path / "centre"), "--centre-http",
               f"127.0.0.1:{centre}", "--broker-port", str(broker)) as (proc, log):
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            online = {b["branch"] for b in _centre_branches(centre) if b["online"]}
            if len(online) == 7 and any(t["state"] != "waiting" for t in _tickets(port)):
                break
            time.sleep(0.5)
        assert "1001010001" in online  # the example box, with the customers flowing
        pids = _pids(log)
        assert set(pids) == {"broker", "centre", "fleet-1001010002", "fleet-1001020001",
                             "box", "customers"}
        text = log.read_text()
        assert f"http://127.0.0.1:{centre}/" in text and "paidui-demo-2026" in text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0, log.read_text()
    text = log.read_text()
    assert not [name for name, pid in pids.items() if _alive(pid)], text
    for name, pid in pids.items():  # each one stopped cleanly, the box before the centre
        assert f"demo: {name} stopped (pid {pid}, code 0)" in text, text
    assert text.index("demo: box stopped") < text.index("demo: centre stopped")
    assert "Traceback" not in text and "never retrieved" not in text, text
    assert "refused the bookings" not in text  # the simulated branches keep appointment books


def _centre_branches(port: int) -> list[dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/public/branches",
                                    timeout=2) as r:
            return list(json.loads(r.read())["branches"])
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return []
