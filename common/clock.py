"""Clocks. Logic never calls ``time.time()``; it is handed one of these.

* :class:`SystemClock` — the real time.
* :class:`StartedClock` — starts at a given instant and runs on in real time
  (``--set clock.start=2026-11-25T10:00:00+08:00``), so demos and tests work at any hour.
* :class:`ManualClock` — moves only when told; for tests and virtual-time simulation.

:data:`TimeZoneName` is a configuration field's type: an IANA time zone name, checked.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Annotated, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

__all__ = ["Clock", "ClockStart", "FunctionClock", "ManualClock", "StartedClock", "SystemClock",
           "TimeZoneName", "clock_for"]


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class StartedClock:
    def __init__(self, start: dt.datetime) -> None:
        self._offset = start.timestamp() - time.monotonic()

    def now(self) -> float:
        return time.monotonic() + self._offset


class FunctionClock:
    """A clock of a ``now()`` function (a part handed its centre's ``clock.now``)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class ManualClock:
    def __init__(self, start: float | dt.datetime = 0.0) -> None:
        self.t = start.timestamp() if isinstance(start, dt.datetime) else float(start)

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def set(self, when: float | dt.datetime) -> None:
        self.t = when.timestamp() if isinstance(when, dt.datetime) else float(when)


def clock_for(start: dt.datetime | None) -> Clock:
    return StartedClock(start) if start is not None else SystemClock()


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]  # an IANA name: Asia/Shanghai


def _with_zone(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone, e.g. 2026-11-25T10:00:00+08:00")
    return value


# a ``clock.start`` setting's type: an instant with its zone (a demo's "today" starts there)
ClockStart = Annotated[dt.datetime, AfterValidator(_with_zone)]
