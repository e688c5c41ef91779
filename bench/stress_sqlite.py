"""Stress job: run the suites that use SQLite from several threads, many times, and count
the crashes (not part of default CI; docs/performance.md, "SQLite under threads").

    python bench/stress_sqlite.py [--runs 20] [--timeout 900] [SUITE ...]
    python bench/stress_sqlite.py --hammer 200 [--runs 20]

Each run is a fresh ``python -X faulthandler -m pytest`` process over the suites (default:
:data:`SUITES`). With ``--hammer N`` each run is instead a fresh process that starts the
box's appointments component, sends it a day of 4,000 bookings and stops it (the command
cancelled, then the component, as when the box stops) at a random moment of the write,
N times: the reported crash, without waiting for a test run's timing to land on it.
A run *crashed* when the process died of a signal (a segfault is exit
code -11, or 139 through a shell), aborted (-6/134), or faulthandler printed a
``Fatal Python error``; its dump is kept in ``--out``. Failed tests that did not crash
are counted apart (they are the suites' own business). The last line is the figure the
docs quote: ``crashes: N in M runs``. Exit status 1 if any run crashed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.checks import Checks, machine_line  # noqa: E402

# The suites where a SQLite connection meets a worker thread: the box's journal (writer
# thread, readers in to_thread), its appointment book, the uplink's journal view, the
# updater, and the centre's store threads (ingest, readers, booking pool, releases).
SUITES = [
    "tests/test_central_appointments.py",
    "tests/test_central_appointments_capacity.py",
    "tests/test_central_appointments_staff.py",
    "tests/test_controller_appointments.py",
    "tests/test_journal.py",
    "tests/test_box.py",
    "tests/test_controller_slots.py",
    "tests/test_controller_update.py",
    "tests/test_controller_update_restart.py",
    "tests/test_central_store.py",
    "tests/test_central_releases.py",
    "tests/test_sqlite_threads.py",
]
CRASH_CODES = {-11, 139, -6, 134, -7, 135}  # SIGSEGV, SIGABRT, SIGBUS (raw and via a shell)
FATAL = "Fatal Python error"


def one_run(n: int, cmd: list[str], timeout: float, out: Path) -> tuple[str, float]:
    """``crash``, ``failed``, ``timeout`` or ``ok``, and the seconds it took."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    start = time.monotonic()
    # A session of its own: a run that hangs (or this script stopped) takes the brokers
    # and boxes its tests started down with it.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace",
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        if not isinstance(exc, subprocess.TimeoutExpired):
            raise
        _keep(out, n, "timeout", f"{stdout}\n{stderr}")
        return "timeout", time.monotonic() - start
    took = time.monotonic() - start
    text = f"{stdout}\n{stderr}"
    if proc.returncode in CRASH_CODES or FATAL in text:
        _keep(out, n, f"crash (exit {proc.returncode})", text)
        return "crash", took
    if proc.returncode != 0:
        _keep(out, n, f"failed (exit {proc.returncode})", text)
        return "failed", took
    return "ok", took


def _keep(out: Path, n: int, what: str, text: str) -> None:
    path = out / f"run-{n:03d}.log"
    path.write_text(f"{what}\n{text}", encoding="utf-8")
    print(f"  run {n}: {what}; output in {path}", flush=True)


# --- the hammer (in a child process) ------------------------------------------------------


def hammer(rounds: int, data: Path) -> None:
    """Start the appointments component, push a big day, stop it mid-write; ``rounds`` times."""
    import asyncio

    sys.path.insert(0, str(ROOT))
    asyncio.run(_hammer(rounds, data))


async def _hammer(rounds: int, data: Path) -> None:
    import asyncio
    import contextlib
    import random

    from common.clock import ManualClock
    from controller.appointments import Appointments
    from controller.box import Box
    from tests.conftest import WEDNESDAY_10AM, example_config
    from tests.test_controller_appointments import TODAY, booking, day_message

    day = [booking(f"bk-{i}", f"{1 + i % 9}{i:05d}") for i in range(4000)]
    written = 0
    async with Box(example_config(), data, ManualClock(WEDNESDAY_10AM)) as box:
        for r in range(rounds):
            comp = Appointments(box.data_dir)
            run = asyncio.create_task(comp.run(box))
            async with asyncio.timeout(30):
                await comp.ready.wait()
            push = asyncio.create_task(comp.on_appointments(box, day_message(day, TODAY, r + 1)))
            await asyncio.sleep(random.uniform(0.0, 0.2))  # the stop lands anywhere in it
            written += push.done()
            push.cancel()
            run.cancel()
            for task in (push, run):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    print(f"hammer: {rounds} stops, {written} of them after the write was answered")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("suites", nargs="*", default=SUITES)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--hammer", type=int, default=0, metavar="N",
                   help="instead of the suites: N stops of the appointments mid-write a run")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    p.add_argument("--out", type=Path, default=None, help="where the dumps go")
    p.add_argument("--hammer-child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.hammer_child:
        hammer(int(args.hammer_child[0]), Path(args.hammer_child[1]))
        return 0
    suites = [s for s in args.suites if (ROOT / s.split("::")[0]).exists()]
    out = args.out or Path(tempfile.mkdtemp(prefix="sqlite-stress-"))
    out.mkdir(parents=True, exist_ok=True)
    counts = {"ok": 0, "failed": 0, "crash": 0, "timeout": 0}
    for n in range(1, args.runs + 1):
        if args.hammer:
            cmd = [sys.executable, "-X", "faulthandler", str(Path(__file__).resolve()),
                   "--hammer-child", str(args.hammer), str(out / f"data-{n:03d}")]
        else:
            cmd = [sys.executable, "-X", "faulthandler", "-m", "pytest", "-q",
                   "-p", "no:cacheprovider", *suites]
        outcome, took = one_run(n, cmd, args.timeout, out)
        counts[outcome] += 1
        print(f"run {n}/{args.runs}: {outcome} in {took:.0f} s", flush=True)
    print(f"hammer: {args.hammer} stops a run" if args.hammer else f"suites: {' '.join(suites)}")
    print(f"failed (no crash): {counts['failed']}, timed out: {counts['timeout']}, "
          f"logs in {out}")
    print(f"crashes: {counts['crash']} in {args.runs} runs")
    print(machine_line())
    checks = Checks("stress_sqlite")
    checks.failed(counts["crash"], "runs (crashed)")
    checks.failed(counts["failed"], "runs (a test failed)")
    checks.failed(counts["timeout"], "runs (timed out: did not finish)")
    checks.drained(args.runs, sum(counts.values()), "runs ended")
    return checks.verdict()


if __name__ == "__main__":
    sys.exit(main())
