"""No crash, ever (issue 14): a SQLite connection is never closed under a statement another
thread is still running on it.

Closing a ``sqlite3`` connection while another thread is inside a statement frees what
that thread is using: the process dies of a segfault (a fresh-clone run died so in
``test_central_appointments.py``: the box's appointment book closed while a booking list
was being written). Each scenario (tests/sqlite_threads_support.py) stops a write at its
``BEGIN IMMEDIATE`` (another connection holds the write lock, as a slow disk or a busy
neighbour would), closes the connection from another thread, then lets the write go on. It
runs in a child process under faulthandler, so a crash fails the test instead of ending the
run: on the old code every one died with exit -11 (SIGSEGV). Now the close waits for the
write, the write is on disk, and a use after the close raises the owner's error.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def in_child(scenario: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = f"from tests.sqlite_threads_support import {scenario} as s; s({str(tmp_path)!r})"
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("scenario", [
    "journal_closed_during_a_write",
    "release_store_closed_during_a_write",
    "appointments_stopped_during_a_booking_push",
])
def test_closing_waits_for_the_statement_in_flight_and_nothing_crashes(
        scenario: str, tmp_path: Path) -> None:
    child = in_child(scenario, tmp_path)
    assert child.returncode == 0, (f"{scenario}: exit {child.returncode}\n"
                                   f"{child.stdout[-3000:]}\n{child.stderr[-3000:]}")
