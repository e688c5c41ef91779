"""``python -m sim branch`` against a real box subprocess (``hardware = "sim"``).

Customers take tickets at the kiosk and by card, tellers press keys on the simulated
RS485 keypads, customers rate on the evaluators; everything is checked through the box's
own API and its simulated devices' output (printed tickets, announcements, hall display,
window displays), and the simulator's counts must be the box's.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.live.branch import LiveBranch, Options, run_branch
from sim.live.cli import main
from sim.rs485_control import shown
from tests.browser import ROOT, BoxProcess, free_port
from tests.conftest import example_config
from tests.uplink_support import wait_for

pytestmark = pytest.mark.slow

BOX = ("audio.sim_pace=0",)  # the voice keeps up with the accelerated branch
# Busy enough that in 25 s at speed 60 every kind of thing happens with near certainty
# (a VIP's card, a paused business's customer, a no-show: each fails to show up with
# probability < 0.5 %), whatever second of the box's clock the run starts at.
SCENARIO = """
[[arrivals]]
queue = "A"
per_hour = { "0-24" = 40 }
[[arrivals]]
queue = "V"
per_hour = { "0-24" = 20 }
[[arrivals]]
queue = "B"
per_hour = { "0-24" = 30 }
[service.A]
dist = "lognormal"
mean_minutes = 2
cv = 0.5
[service.V]
dist = "exponential"
mean_minutes = 2
[behaviour]
no_show = 0.6
answer_recall = 0.2
rating = 0.9
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "busy.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


@pytest.fixture
def calm(tmp_path: Path) -> Path:
    """Personal banking only, at half the three tellers' pace: the queue stays short."""
    path = tmp_path / "calm.toml"
    path.write_text('[[arrivals]]\nqueue = "A"\nper_hour = { "0-24" = 30 }\n'
                    '[service.A]\ndist = "exponential"\nmean_minutes = 2\n', encoding="utf-8")
    return path


@pytest.fixture
def box(tmp_path: Path) -> Iterator[BoxProcess]:
    b = BoxProcess(tmp_path / "data", *BOX).start()
    try:
        yield b
    finally:
        b.stop()


def _options(box: BoxProcess, scenario: Path, **kw: Any) -> Options:
    return Options(example_config(*BOX), url=box.url, data_dir=box.data_dir, speed=60,
                   seed=5, scenario=scenario, card_share=0.3, every=2, out=io.StringIO(),
                   **kw)


def _tickets(box: BoxProcess) -> list[dict[str, Any]]:
    status, data = box.call("GET", "/api/tickets", token=box.lobby())  # with who they are
    assert status == 200
    return list(data["tickets"])


async def test_a_simulated_branch_day_runs_through_a_real_box(box: BoxProcess,
                                                             scenario: Path) -> None:
    status, _ = box.call("POST", "/api/queues/B/pause", {"reason": "系统升级"},
                         token=box.lobby())
    assert status == 200
    started = time.time()
    report = await run_branch(_options(box, scenario, duration=25))
    tickets = _tickets(box)
    states = Counter(t["state"] for t in tickets)
    rated = [t for t in tickets if t["rating"] is not None]

    assert len(tickets) >= 8, report
    assert states["finished"] >= 3 and states["no_show"] >= 1, states
    assert rated and all(1 <= t["rating"] <= 5 for t in rated)
    assert any(t["channel"] == "card" and t["customer_type"] == "vip" and t["stars"]
               for t in tickets)
    assert any(t["recalls"] for t in tickets)
    # the paused business sends its customers home; nobody got a B ticket
    assert report["turned_away"].get("queue_paused", 0) >= 1
    assert not [t for t in tickets if t["queue"] == "B"]
    # what the simulator counted is what the box recorded
    assert report["tickets"]["kiosk"] + report["tickets"]["card"] == len(tickets)
    assert report["box_events"]["ticket_finished"] == states["finished"]
    assert report["box_events"]["ticket_no_show"] == states["no_show"]
    assert report["box_events"]["ticket_rated"] == len(rated)
    assert report["strangers"] == 0
    # the devices: every ticket printed, every call announced at its window
    sim = box.data_dir / "sim"
    for t in tickets:
        assert t["number"] in (sim / "printer" / f"{t['number']}.txt").read_text("utf-8")
        if t["state"] in ("finished", "no_show"):
            assert list((sim / "audio").glob(f"*-{t['number']}-w{t['window']}.wav")), t
    assert (sim / "hall" / "latest.png").stat().st_mtime >= started
    # stopped: the tellers finished and logged out; their displays say so (------)
    windows = [v["window"] for v in report["tellers"].values()]
    assert windows == [1, 3, 5]
    for w in windows:  # the bus master writes the display a moment after the logout
        await wait_for(lambda w=w: _shows(box, w, "------"), 5, f"display {w} at ------")
    assert not [t for t in tickets if t["state"] == "called"]


async def test_the_branch_carries_on_when_the_box_restarts(box: BoxProcess,
                                                           calm: Path) -> None:
    branch = LiveBranch(_options(box, calm))
    served: list[str] = []
    branch.mirror.listeners.append(
        lambda e: served.append(str(e["number"])) if e["type"] == "ticket_finished" else None)
    run = asyncio.create_task(branch.run())
    try:
        await wait_for(lambda: len(served) >= 2, 60, "two customers served")
        before = {t["number"] for t in _tickets(box)}
        await asyncio.to_thread(box.stop)
        await wait_for(lambda: not branch.mirror.up, 60, "the simulator seeing the box go")
        await asyncio.to_thread(box.start)
        await wait_for(lambda: branch.mirror.up, 60, "the simulator seeing the box back")
        # a customer who came after the restart is called and served
        await wait_for(lambda: any(n not in before for n in served), 60,
                       "a customer served after the restart")
    finally:
        branch.request_stop()
        report = await asyncio.wait_for(run, 30)
    new = [t for t in _tickets(box) if t["number"] not in before]
    assert [t for t in new if t["state"] == "finished"], new
    assert report["connects"] >= 2
    assert report["box_events"]["ticket_finished"] == len(
        [t for t in _tickets(box) if t["state"] == "finished"])


async def _shows(box: BoxProcess, window: int, text: str) -> bool:
    """Whether window ``window``'s simulated display shows ``text`` (asked of the box's
    simulator, another process)."""
    return await asyncio.to_thread(shown, box.data_dir, "display", window) == text


def test_outside_opening_hours_every_customer_is_turned_away(tmp_path: Path,
                                                              scenario: Path) -> None:
    b = BoxProcess(tmp_path / "data", *BOX, "clock.start=2026-11-25T07:00:00+08:00").start()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "sim", "branch", "--config", "examples/branch.toml",
             "--set", BOX[0], "--url", b.url, "--data-dir", str(b.data_dir), "--speed", "60",
             "--scenario", str(scenario), "--duration", "6", "--every", "2", "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    finally:
        b.stop()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    report = json.loads(lines[-1])
    assert report["arrived"] >= 2
    assert report["tickets"] == {"kiosk": 0, "card": 0}
    assert report["turned_away"]["outside_hours"] >= 1
    assert any(line.startswith("[") and "box up 07:00" in line for line in lines), lines


def test_without_a_box_it_waits_and_says_so(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", "examples/branch.toml", "--url", f"http://127.0.0.1:{free_port()}",
                 "--data-dir", str(tmp_path), "--duration", "2", "--every", "0.5", "--json"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("box DOWN --:--:--" in line for line in lines), lines
    assert json.loads(lines[-1])["arrived"] == 0


@pytest.mark.parametrize(("args", "says"), [
    (["--tellers", "4"], "--tellers"),
    (["--windows", "1,9"], "--windows"),
    (["--windows", "1,2", "--tellers", "3"], "--windows"),
    (["--password", "0000"], "--password"),
    (["--scenario", "/nonexistent.toml"], "cannot read"),
    (["--set", "rs485.baudrate=7"], "rs485.baudrate"),
])
def test_bad_options_exit_2_naming_the_problem(args: list[str], says: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "examples/branch.toml", *args]) == 2
    assert says in capsys.readouterr().err


def test_a_bad_number_is_refused_by_the_argument_parser() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--config", "examples/branch.toml", "--speed", "0"])
    assert exc.value.code == 2
