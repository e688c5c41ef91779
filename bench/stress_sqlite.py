"""Stress job: run the suites that use SQLite from several threads, many times, and count
the crashes (not part of default CI; docs/performance.md, "SQLite under threads").

    python bench/stress_sqlite.py [--runs 20] [--timeout 900] [SUITE ...]

Each run is a fresh ``python -X faulthandler -m pytest`` process over the suites (default:
:data:`SUITES`). A run *crashed* when the process died of a signal (a segfault is exit
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


def one_run(n: int, suites: list[str], timeout: float, out: Path) -> tuple[str, float]:
    """``crash``, ``failed``, ``timeout`` or ``ok``, and the seconds it took."""
    cmd = [sys.executable, "-X", "faulthandler", "-m", "pytest", "-q",
           "-p", "no:cacheprovider", *suites]
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("suites", nargs="*", default=SUITES)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    p.add_argument("--out", type=Path, default=None, help="where the dumps go")
    args = p.parse_args(argv)
    suites = [s for s in args.suites if (ROOT / s.split("::")[0]).exists()]
    out = args.out or Path(tempfile.mkdtemp(prefix="sqlite-stress-"))
    out.mkdir(parents=True, exist_ok=True)
    counts = {"ok": 0, "failed": 0, "crash": 0, "timeout": 0}
    for n in range(1, args.runs + 1):
        outcome, took = one_run(n, suites, args.timeout, out)
        counts[outcome] += 1
        print(f"run {n}/{args.runs}: {outcome} in {took:.0f} s", flush=True)
    print(f"suites: {' '.join(suites)}")
    print(f"failed (no crash): {counts['failed']}, timed out: {counts['timeout']}, "
          f"logs in {out}")
    print(f"crashes: {counts['crash']} in {args.runs} runs")
    return 1 if counts["crash"] else 0


if __name__ == "__main__":
    sys.exit(main())
