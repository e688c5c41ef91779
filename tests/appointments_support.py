"""Bookings, day lists and a running appointments desk shared by the appointment tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from controller.appointments import Appointments
from controller.box import Box
from protocols import appointment as ap
from protocols.cards import id_check_char, luhn_check_digit
from tests.uplink_support import running

BRANCH = "1001010001"
TODAY, TOMORROW = "2026-11-25", "2026-11-26"
MASTER = b"k" * 32
ID_NUMBER = "41010519900307" + "123"
ID_NUMBER += id_check_char(ID_NUMBER)
BANK_CARD = "621700000000001" + luhn_check_digit("621700000000001")


def booking(bid: str, code: str, queue: str = "A", state: str = "booked",
            day: str = TODAY, id_number: str | None = None, card: str | None = None
            ) -> dict[str, Any]:
    key = ap.branch_day_key(MASTER, BRANCH, day)
    return {"id": bid, "code": code, "queue": queue, "slot": int(code[0]), "state": state,
            "id_digest": ap.digest(key, id_number) if id_number else None,
            "card_digest": ap.digest(key, card) if card else None}


def day_message(bookings: list[dict[str, Any]], day: str = TODAY, revision: int = 1,
                **extra: Any) -> dict[str, Any]:
    return {"v": 1, "id": f"appt-{day}-{revision}", "day": day, "revision": revision,
            "key": ap.branch_day_key(MASTER, BRANCH, day).hex(), "bookings": bookings,
            "early_s": 1800.0, "late_s": 900.0, **extra}


TODAYS = [
    booking("bk-now", "312345", id_number=ID_NUMBER, card=BANK_CARD),  # 10:00-11:00
    booking("bk-vip", "354321", queue="V"),
    booking("bk-early", "512345"),  # 12:00-13:00: from 11:30
    booking("bk-late", "112345"),  # 08:00-09:00: until 09:15
    booking("bk-cancel", "398765", state="cancelled"),
]


@contextlib.asynccontextmanager
async def desk(box: Box, **kw: Any) -> AsyncIterator[Appointments]:
    comp = Appointments(box.data_dir, **kw)
    async with running(comp.run(box)):
        await asyncio.wait_for(comp.ready.wait(), 5)
        yield comp
