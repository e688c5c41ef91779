"""The scenarios of test_sqlite_threads.py, each run in a child process of its own
(``python -c "from tests.sqlite_threads_support import <scenario>"``), and the thread
watching they use."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import linecache
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

EVENT = {"type": "ticket_issued", "day": "2026-11-25", "at": 0.0, "number": "A001"}


# --- watching the threads ------------------------------------------------------------------


def frames() -> Iterator[FrameType]:
    """Every frame of every thread's stack, right now."""
    for top in sys._current_frames().values():
        f: FrameType | None = top
        while f is not None:
            yield f
            f = f.f_back


def at_begin(module: str) -> bool:
    """Some thread is at a ``BEGIN IMMEDIATE`` of ``module`` (waiting for the write lock)."""
    return any(f.f_code.co_filename.endswith(module)
               and "BEGIN IMMEDIATE" in linecache.getline(f.f_code.co_filename, f.f_lineno)
               for f in frames())


def calling(name: str, module: str) -> bool:
    """Some thread is inside function ``name`` of ``module``."""
    return any(f.f_code.co_name == name and f.f_code.co_filename.endswith(module)
               for f in frames())


def until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll a thread's state (it has no other signal) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)  # polling another thread's stack


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[Callable[[], None]]:
    """Another connection holding ``path``'s write lock until the yielded call."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield lambda: other.execute("ROLLBACK")
    finally:
        other.close()


def close_during_a_write(path: Path, write: Callable[[], Any], close: Callable[[], Any],
                         writes_in: str, closes_in: str) -> None:
    """``write()`` on one thread, held at its ``BEGIN IMMEDIATE``; ``close()`` on another
    once it has begun; then the write goes on. Both must end without an error."""
    with concurrent.futures.ThreadPoolExecutor(2) as threads, write_lock(path) as release:
        wrote = threads.submit(write)
        until(lambda: at_begin(writes_in), "the write to wait for its lock")
        closed = threads.submit(close)
        until(lambda: calling("close", closes_in), "the close to begin")
        release()
        wrote.result(60)  # the write in flight committed: no error, no crash
        closed.result(60)


# --- the scenarios (each in its own process) ---------------------------------------------


def journal_closed_during_a_write(tmp: str) -> None:
    from controller.errors import JournalError
    from controller.journal import Journal, Record

    path = Path(tmp) / "journal.sqlite3"
    journal = Journal(path)
    close_during_a_write(path, lambda: journal.write([Record(1, dict(EVENT, seq=1))]),
                         journal.close, "controller/journal.py", "controller/journal.py")
    assert sqlite3.connect(path).execute("SELECT seq FROM events").fetchall() == [(1,)]
    with pytest.raises(JournalError, match="closed"):
        journal.read()  # a late reader gets the journal's own error


def release_store_closed_during_a_write(tmp: str) -> None:
    from central.errors import StoreError
    from central.releases import ReleaseStore

    path = Path(tmp) / "centre.sqlite3"
    store = ReleaseStore.open(f"sqlite:///{path}", Path(tmp) / "files")
    close_during_a_write(path, lambda: store.record_running("1001010001", "0.2.0", 1.0),
                         store.close, "central/store/__init__.py", "central/releases.py")
    rows = sqlite3.connect(path).execute(
        "SELECT branch, running_version FROM release_branches").fetchall()
    assert rows == [("1001010001", "0.2.0")], rows
    with pytest.raises(StoreError, match="closed"):
        store.known_branches()


def appointments_stopped_during_a_booking_push(tmp: str) -> None:
    asyncio.run(_appointments_stopped(Path(tmp)))


async def _appointments_stopped(tmp: Path) -> None:
    """The box stops (its uplink's command cancelled, then the component) while a day's
    bookings are being written: the list is on disk after the stop, and nothing crashed."""
    from common.clock import ManualClock
    from controller.appointments import Appointments
    from controller.box import Box
    from tests.appointments_support import TODAY, TODAYS, day_message
    from tests.conftest import WEDNESDAY_10AM, example_config
    from tests.uplink_support import wait_for

    async with Box(example_config(), tmp / "data", ManualClock(WEDNESDAY_10AM)) as box:
        comp = Appointments(box.data_dir)
        run = asyncio.create_task(comp.run(box))
        await wait_for(comp.ready.is_set, 20, "the book to open")
        path = box.data_dir / "appointments.sqlite3"
        with write_lock(path) as release:
            push = asyncio.create_task(comp.on_appointments(box, day_message(TODAYS)))
            await wait_for(lambda: at_begin("controller/appointments/book.py"), 20,
                           "the list's write to wait for its lock", poll=0.002)
            push.cancel()  # the uplink stops: its command is cancelled mid-write
            run.cancel()  # then the component
            await wait_for(lambda: calling("close", "controller/appointments/book.py")
                           or _awaiting(run, "close"), 20, "the book's close", poll=0.002)
            release()
            await asyncio.wait([push, run], timeout=60)
        assert run.done() and push.done()
    rows = sqlite3.connect(path).execute("SELECT day, revision FROM days").fetchall()
    assert rows == [(TODAY, 1)], rows  # the write in flight committed before the close


def _awaiting(task: asyncio.Task[Any], name: str) -> bool:
    """``task`` is suspended somewhere inside a coroutine function called ``name``."""
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None)
        if frame is not None and frame.f_code.co_name == name:
            return True
        coro = getattr(coro, "cr_await", None)
    return False
