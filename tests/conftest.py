"""Shared fixtures: the example branch, a manual clock, a running box.

The example branch (examples/branch.toml) is what every test talks to unless it needs
something special; 2026-11-25 is a Wednesday (a working day), 10:00 is inside hours.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from common.clock import ManualClock
from controller.box import Box
from controller.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "branch.toml"
CST = dt.timezone(dt.timedelta(hours=8))
WEDNESDAY_10AM = dt.datetime(2026, 11, 25, 10, 0, tzinfo=CST)


def at(hour: int, minute: int = 0, day: int = 25, month: int = 11) -> float:
    """Epoch seconds of a local (Beijing) time in 2026."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=CST).timestamp()


def example_config(*overrides: str) -> Config:
    return load_config(EXAMPLE, overrides)


@pytest.fixture
def config() -> Config:
    return example_config()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY_10AM)


@pytest.fixture
async def box(config: Config, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Box]:
    async with Box(config, tmp_path / "data", clock) as b:
        yield b


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """A test must not leave threads behind (journal writers, serial readers, ...)."""
    before = set(threading.enumerate())
    yield

    def leaked() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in before and t.is_alive()
                and (not t.daemon or t.name == "journal-writer")]

    for t in leaked():  # a pool's worker told to stop as its loop closed may take a moment
        t.join(timeout=2.0)
    left = leaked()
    assert not left, f"threads left running: {[t.name for t in left]}"


