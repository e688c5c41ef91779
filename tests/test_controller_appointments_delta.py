"""The box's side of day lists that leave cancelled bookings out and of deltas (issue 15):
what a list no longer holds is cancelled (and refused as such at the kiosk), a delta
applies only on top of a revision from its base up, the cancelled ones kept are bounded.

The box runs on the example branch at Wed 2026-11-25 10:00 (slot 3 = 10:00–11:00).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import controller.appointments.component as box_appointments
from common.clock import ManualClock
from controller.appointments import Appointments, CommandRefused
from controller.box import Box
from controller.config import Config
from controller.errors import Refused
from protocols import appointment as ap
from tests.appointments_support import TODAY, booking, day_message, desk
from tests.card_reader_support import PaperPrinter

LIVE = [booking("bk-1", "312345"), booking("bk-2", "312346", queue="B"),
        booking("bk-3", "512345")]


def delta(revision: int, base: int, added: list[dict[str, Any]] | None = None,
          removed: list[str] | None = None) -> dict[str, Any]:
    msg = day_message(added or [], revision=revision, base=base, removed=removed or [])
    msg["id"] = f"appt-{TODAY}-{revision}-d{base}"
    return msg


@pytest.fixture
async def appts(box: Box) -> AsyncIterator[Appointments]:
    box.printer = PaperPrinter()
    async with desk(box) as comp:
        got = await comp.on_appointments(box, day_message(LIVE, revision=2))
        assert got["deltas"] == ap.DELTAS and got["revision"] == 2
        yield comp


async def code_refusal(box: Box, comp: Appointments, code: str) -> str:
    with pytest.raises(Refused) as err:
        await comp.redeem_by(box, kiosk="k", source="t", code=code)
    return err.value.code


async def test_a_booking_a_full_list_no_longer_holds_was_cancelled(
        box: Box, appts: Appointments) -> None:
    got = await appts.on_appointments(box, day_message(LIVE[1:], revision=3))
    assert got["live"] == 2 and not got["stale"]
    assert await code_refusal(box, appts, "312345") == "appointment_cancelled"
    assert appts.throttle._sources == {}  # not counted as guessing a code
    info, _ = await appts.redeem_by(box, kiosk="k", source="t", code="312346")
    assert info["queue"] == "B"


async def test_a_delta_adds_and_removes_on_top_of_the_revision_held(
        box: Box, appts: Appointments) -> None:
    got = await appts.on_appointments(box, delta(4, 2, [booking("bk-4", "398765")], ["bk-2"]))
    assert got["revision"] == 4 and got["live"] == 3 and not got.get("need_full")
    day = appts.book.days[TODAY]
    assert {b.id for b in day.bookings.values() if b.state == "booked"} == {
        "bk-1", "bk-3", "bk-4"}
    assert await code_refusal(box, appts, "312346") == "appointment_cancelled"
    info, _ = await appts.redeem_by(box, kiosk="k", source="t", code="398765")
    assert info["queue"] == "A"


async def test_a_delta_on_a_later_revision_than_its_base_still_applies(
        box: Box, appts: Appointments) -> None:
    """The changes since R include those since any later revision: a re-sent delta, or one
    built before the box's answer to the last list reached the centre, applies as well."""
    await appts.on_appointments(box, delta(3, 2, [booking("bk-4", "398765")]))
    got = await appts.on_appointments(box, delta(5, 2, [booking("bk-4", "398765"),
                                                       booking("bk-5", "398766")], ["bk-1"]))
    assert got["revision"] == 5 and got["live"] == 4


async def test_a_delta_the_box_cannot_apply_asks_for_the_full_list(
        box: Box, appts: Appointments) -> None:
    got = await appts.on_appointments(box, delta(9, 5, [booking("bk-4", "398765")]))
    assert got["need_full"] and got["revision"] == 2  # what it holds
    assert appts.book.days[TODAY].revision == 2
    got = await appts.on_appointments(box, {**delta(2, 1), "day": "2026-11-26",
                                            "key": day_message([], day="2026-11-26")["key"]})
    assert got["need_full"] and got["revision"] == 0  # nothing held for that day
    stale = await appts.on_appointments(box, delta(2, 1))
    assert stale["stale"] and stale["revision"] == 2


async def test_a_delta_is_checked_like_a_list(box: Box, appts: Appointments) -> None:
    with pytest.raises(CommandRefused) as err:  # its code is another live booking's
        await appts.on_appointments(box, delta(3, 2, [booking("bk-9", "312345")]))
    assert err.value.code == "bad_bookings"
    with pytest.raises(CommandRefused) as err:
        await appts.on_appointments(box, delta(3, 2, removed=["not an id"]))
    assert err.value.code == "bad_bookings" and "removed" in err.value.message


async def test_the_cancelled_bookings_a_day_keeps_are_bounded(
        box: Box, appts: Appointments, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(box_appointments, "KEEP_CANCELLED", 2)
    await appts.on_appointments(box, day_message([], revision=3))  # all three cancelled
    day = appts.book.days[TODAY]
    assert sorted(b.id for b in day.bookings.values()) == ["bk-2", "bk-3"]  # the latest two
    assert all(b.state == "cancelled" for b in day.bookings.values())
    assert await code_refusal(box, appts, "312345") == "appointment_unknown"


async def test_the_cancelled_ones_survive_a_restart(
        config: Config, clock: ManualClock, tmp_path: Path) -> None:
    async with Box(config, tmp_path / "data", clock) as box, desk(box) as comp:
        await comp.on_appointments(box, day_message(LIVE, revision=2))
        await comp.on_appointments(box, delta(3, 2, removed=["bk-1"]))
    async with Box(config, tmp_path / "data", clock) as box, desk(box) as comp:
        assert comp.book.days[TODAY].revision == 3
        assert await code_refusal(box, comp, "312345") == "appointment_cancelled"
