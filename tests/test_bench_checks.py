"""A benchmark's figures count only when nothing failed, nothing came twice and every piece
of work it sent is accounted for (bench/checks.py; docs/performance.md).

The benchmark checked here is bench/bench_journal.py's, against a real box and the journal
file it leaves on disk: a refused issue, a number given twice and a ticket missing from the
journal each make the run fail (exit 1) with a line that says which.
"""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
from pathlib import Path

from bench import bench_engine
from bench.bench_journal import T0, Issued, config, staff
from bench.checks import Checks, journal_numbers, machine
from common.clock import ManualClock
from controller.box import Box

ROOT = Path(__file__).resolve().parent.parent


def verdict(checks: Checks) -> tuple[int, str]:
    out = io.StringIO()
    return checks.verdict(out), out.getvalue()


async def three_tickets(data: Path) -> Issued:
    issued = Issued()
    async with Box(config(), data, ManualClock(T0)) as box:  # type: ignore[arg-type]
        await staff(box)
        for _ in range(3):
            await issued.issue(box)
    return issued


async def test_a_clean_journal_run_passes_its_checks(tmp_path: Path) -> None:
    issued = await three_tickets(tmp_path / "box")
    checks = Checks("bench_journal")
    issued.check(checks, tmp_path / "box", "one-client")
    code, text = verdict(checks)
    assert code == 0 and "FAIL" not in text
    assert "drained: 3/3 one-client tickets in the journal" in text
    assert len(set(journal_numbers(tmp_path / "box"))) == 3


async def test_a_failed_request_fails_the_benchmark(tmp_path: Path) -> None:
    """bench_journal counts a refused issue (here: the branch closed for the night) and the
    run fails, instead of timing the refusal as if it were a ticket."""
    issued = Issued()
    async with Box(config(), tmp_path / "box", ManualClock(T0 + 14 * 3600)) as box:  # type: ignore[arg-type]
        await issued.issue(box)  # midnight: outside the example branch's hours
    checks = Checks("bench_journal")
    issued.check(checks, tmp_path / "box", "closed")
    code, text = verdict(checks)
    assert issued.failed == 1 and code == 1 and "1 closed issues failed" in text


async def test_a_duplicated_number_fails_the_benchmark(tmp_path: Path) -> None:
    issued = await three_tickets(tmp_path / "box")
    issued.numbers.append(issued.numbers[0])  # as if the box had given one number twice
    checks = Checks("bench_journal")
    checks.unique(issued.numbers, "ticket numbers")
    code, text = verdict(checks)
    assert code == 1 and "1 ticket numbers duplicated" in text
    assert issued.numbers[0] in text


async def test_an_undrained_run_fails_the_benchmark(tmp_path: Path) -> None:
    """A ticket the bench was given that is not in the journal on disk: not drained."""
    issued = await three_tickets(tmp_path / "box")
    db = sqlite3.connect(tmp_path / "box" / "journal.sqlite3")
    db.execute("DELETE FROM events WHERE seq = (SELECT max(seq) FROM events "
               "WHERE type = 'ticket_issued')")
    db.commit()
    db.close()
    checks = Checks("bench_journal")
    issued.check(checks, tmp_path / "box", "one-client")
    code, text = verdict(checks)
    assert code == 1 and "not drained: 2 one-client tickets in the journal of 3 sent" in text


def test_a_fleet_that_did_not_drain_fails() -> None:
    stats = {"events": 120, "acked": 117, "refused": 0, "connection_failures": 0,
             "drained": False}
    checks = Checks("bench_uplink")
    checks.fleet(stats)
    code, text = verdict(checks)
    assert code == 1 and "not drained: 117 fleet events acknowledged of 120 sent" in text
    assert "fleet: the run did not drain" in text


def test_the_machine_line_names_the_cpu_model_and_cores(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU E5-2680\n\n"
                    "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) CPU E5-2680\n")
    assert machine(info) == "Intel(R) Xeon(R) CPU E5-2680, 2 cores"
    assert machine(tmp_path / "absent").endswith(" cores")


def test_a_benchmark_run_exits_1_when_its_checks_fail(tmp_path: Path) -> None:
    """The whole script: a run in which no customer took a ticket measured nothing."""
    script = ("import sys; sys.path.insert(0, {root!r}); from bench.checks import Checks; "
              "c = Checks('demo'); c.drained(5, 4, 'tickets'); sys.exit(c.verdict())")
    r = subprocess.run([sys.executable, "-c", script.format(root=str(ROOT))],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "FAIL: demo: not drained: 4 tickets of 5 sent" in r.stderr


def test_the_engine_benchmark_fails_when_its_customers_are_turned_away() -> None:
    """bench_engine's default run counts its commands per second only for a day that adds
    up: here the branch is closed (midnight), every ticket is refused, and the run fails
    instead of printing the refusals' rate."""
    checks = Checks("bench_engine")
    bench_engine.run(50, checks)
    assert checks.ok  # the same day at 10:00 adds up
    night = Checks("bench_engine")
    bench_engine.run(50, night, at=bench_engine.T0 + 14 * 3600)
    code, text = verdict(night)
    assert code == 1 and "62 ticket issues failed" in text
