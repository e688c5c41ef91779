"""The box's appointment book is bounded (issue 14, "bounded storage"; docs/appointments.md):
past days go after a week, on every push and at start, not only at a restart; a list for a
day outside what the book keeps, or with more bookings than the catalogue can hold, is
refused and the book stays as it was."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from common.clock import ManualClock
from controller.appointments import (
    AHEAD_DAYS,
    KEEP_DAYS,
    MAX_PER_SLOT,
    CommandRefused,
    most_bookings,
)
from controller.box import Box
from tests.appointments_support import TODAY, booking, day_message, desk

DAY_S = 86_400.0


def rows(path: Path) -> tuple[int, int]:
    """(days, bookings) in the book's file, as another process would count them."""
    db = sqlite3.connect(path)
    try:
        return (db.execute("SELECT count(*) FROM days").fetchone()[0],
                db.execute("SELECT count(*) FROM bookings").fetchone()[0])
    finally:
        db.close()


def after(day: str, n: int) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=n)).isoformat()


def a_day(day: str, n: int = 20, revision: int = 1) -> dict[str, Any]:
    return day_message([booking(f"bk-{i}", f"{1 + i % 9}{i:05d}", day=day) for i in range(n)],
                       day, revision)


async def test_six_weeks_of_daily_pushes_keep_at_most_a_week_past_today_and_tomorrow(
        box: Box, clock: ManualClock) -> None:
    path = box.data_dir / "appointments.sqlite3"
    seen = []
    async with desk(box) as comp:
        for _ in range(42):  # six weeks, the link up, the box never restarted
            today = box.engine.day_of(clock.now())
            for day in (today, after(today, 1)):  # push_days = 2, as the centre sends
                await comp.on_appointments(box, a_day(day))
            seen.append((rows(path), len(comp.book.days)))
            clock.advance(DAY_S)
    most = KEEP_DAYS + 2  # a week past, today, tomorrow
    assert max(days for (days, _), _ in seen) == most
    assert max(bookings for (_, bookings), _ in seen) == most * 20
    assert max(kept for _, kept in seen) == most  # and as many in memory
    assert seen[-1] == ((most, most * 20), most)


async def test_a_restart_after_weeks_offline_drops_the_days_past_retention(
        box: Box, clock: ManualClock) -> None:
    async with desk(box) as comp:
        await comp.on_appointments(box, a_day(TODAY))
    clock.advance((KEEP_DAYS + 1) * DAY_S)
    async with desk(box) as comp:
        assert comp.book.days == {}
    assert rows(box.data_dir / "appointments.sqlite3") == (0, 0)


@pytest.mark.parametrize("offset", [-KEEP_DAYS - 1, AHEAD_DAYS, 400])
async def test_a_list_for_a_day_the_book_does_not_keep_is_refused(
        box: Box, offset: int) -> None:
    async with desk(box) as comp:
        with pytest.raises(CommandRefused) as err:
            await comp.on_appointments(box, a_day(after(TODAY, offset)))
        assert err.value.code == "day_out_of_range"
        assert comp.book.days == {}
        last = await comp.on_appointments(box, a_day(after(TODAY, AHEAD_DAYS - 1)))
        assert not last["stale"]  # the catalogue's last day is kept
    assert rows(box.data_dir / "appointments.sqlite3") == (1, 20)


async def test_more_bookings_than_the_catalogue_holds_are_refused_and_the_old_list_stays(
        box: Box) -> None:
    most = most_bookings(box.config)
    assert most == len(box.config.queues) * 9 * MAX_PER_SLOT
    async with desk(box) as comp:
        await comp.on_appointments(box, a_day(TODAY))
        with pytest.raises(CommandRefused) as err:
            await comp.on_appointments(box, a_day(TODAY, most + 1, revision=2))
        assert err.value.code == "too_many_bookings" and str(most) in err.value.message
        assert comp.book.days[TODAY].revision == 1
        full = await comp.on_appointments(box, a_day(TODAY, most, revision=3))
        assert full["bookings"] == most
    assert rows(box.data_dir / "appointments.sqlite3") == (1, most)

