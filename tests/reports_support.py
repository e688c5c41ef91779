"""Hand-built branch days for the report and alert tests.

:class:`DayLog` writes the events a box would journal, with the fields the engine gives
them (docs/engine.md: ``wait_s`` since issue, ``call`` number, ``handle_s`` since the last
call), so a test states a day in a few lines and its expected figures by hand.

:func:`hand_day` is the day docs/reports.md works through; its figures are in
:data:`HAND`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from central.store import EventBatch, Inbound, Store

TZ = ZoneInfo("Asia/Shanghai")
B1, B2, B3, B4 = "1001010001", "1001010002", "1002010001", "1001020001"


def at(day: str, minute: float) -> float:
    """Epoch seconds of ``minute`` minutes after 09:00 local on ``day``."""
    start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(9), TZ)
    return start.timestamp() + minute * 60.0


class DayLog:
    """One branch journal's events, in seq order, written the way the engine writes them."""

    def __init__(self, branch: str, day: str = "2026-11-25", epoch: str = "e1",
                 seq: int = 0) -> None:
        self.branch, self.day, self.epoch = branch, day, epoch
        self.events: list[dict[str, Any]] = []
        self.seq = seq
        self.tickets: dict[str, dict[str, Any]] = {}
        self.emit(0, "day_opened")

    def emit(self, minute: float, etype: str, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        e = {"seq": self.seq, "type": etype, "at": round(at(self.day, minute), 3),
             "day": self.day, **fields}
        self.events.append(e)
        return e

    def _t(self, number: str) -> dict[str, Any]:
        return self.tickets[number]

    def issue(self, minute: float, number: str, ctype: str = "normal",
              appointment: str | None = None) -> None:
        queue = number.rstrip("0123456789")
        tid = f"{self.day.replace('-', '')}-{number}"
        self.tickets[number] = {"id": tid, "queue": queue, "ctype": ctype,
                                "issued": at(self.day, minute), "calls": 0, "called": None,
                                "teller": None, "window": None}
        self.emit(minute, "ticket_issued", ticket=tid, number=number, queue=queue, n=1,
                  customer_type=ctype, type_priority=0, stars=0, vip=None, vip_name=None,
                  card=None, channel="appointment" if appointment else "kiosk", kiosk="k1",
                  appointment=appointment,
                  high_return=False, ahead=0, waiting=1)

    def call(self, minute: float, number: str, window: int, teller: str,
             callback: bool = False) -> None:
        t = self._t(number)
        now = at(self.day, minute)
        t["calls"] += 1
        t.update(called=now, teller=teller, window=window)
        self.emit(minute, "ticket_called", ticket=t["id"], number=number, queue=t["queue"],
                  window=window, teller=teller, customer_type=t["ctype"], stars=0, vip=None,
                  wait_s=round(now - t["issued"], 3), call=t["calls"], callback=callback)

    def recall(self, minute: float, number: str, recalls: int = 1) -> None:
        t = self._t(number)
        self.emit(minute, "ticket_recalled", ticket=t["id"], number=number,
                  window=t["window"], teller=t["teller"], recalls=recalls)

    def no_show(self, minute: float, number: str) -> None:
        t = self._t(number)
        self.emit(minute, "ticket_no_show", ticket=t["id"], number=number, queue=t["queue"],
                  window=t["window"], teller=t["teller"], reason="teller")

    def finish(self, minute: float, number: str) -> None:
        t = self._t(number)
        now = at(self.day, minute)
        self.emit(minute, "ticket_finished", ticket=t["id"], number=number, queue=t["queue"],
                  window=t["window"], teller=t["teller"], customer_type=t["ctype"],
                  handle_s=round(now - t["called"], 3), ask_rating=True)

    def transfer(self, minute: float, number: str, to_queue: str) -> None:
        t = self._t(number)
        now = at(self.day, minute)
        self.emit(minute, "ticket_transferred", ticket=t["id"], number=number,
                  from_queue=t["queue"], window=t["window"], teller=t["teller"],
                  customer_type=t["ctype"], handle_s=round(now - t["called"], 3),
                  was="called", to_queue=to_queue, high_return=False)
        t["queue"] = to_queue

    def rate(self, minute: float, number: str, score: int) -> None:
        t = self._t(number)
        self.emit(minute, "ticket_rated", ticket=t["id"], number=number, queue=t["queue"],
                  window=t["window"], teller=t["teller"], score=score, bad=score <= 2)

    def close(self, minute: float, number: str) -> None:
        t = self._t(number)
        self.emit(minute, "ticket_closed", ticket=t["id"], number=number, queue=t["queue"],
                  state="not_served", was="waiting")

    def void(self, minute: float, number: str) -> None:
        """Nobody holds the number (never delivered): the engine's ``ticket_voided``."""
        t = self._t(number)
        self.emit(minute, "ticket_voided", ticket=t["id"], number=number, queue=t["queue"],
                  reason="not_delivered", was="waiting")

    def batch(self, events: list[dict[str, Any]] | None = None) -> EventBatch:
        return EventBatch(self.branch, self.epoch, list(events or self.events),
                          f"qms/v1/{self.branch}/events", b"{}")


def hand_day() -> DayLog:
    """Branch B1's 2026-11-25 (docs/reports.md, "A worked day"), minutes after 09:00."""
    d = DayLog(B1)
    d.issue(0, "A001")
    d.call(1, "A001", 1, "t1")
    d.issue(2, "A002")
    d.issue(3, "V001", "vip")
    d.finish(5, "A001")
    d.issue(5, "A003")
    d.rate(5.5, "A001", 5)
    d.call(6, "A002", 1, "t1")
    d.recall(7, "A002")
    d.no_show(8, "A002")
    d.issue(8, "B001", "corporate")
    d.call(10, "V001", 2, "t2")
    d.transfer(12, "V001", "A")
    d.call(20, "A002", 2, "t2", callback=True)
    d.finish(23, "A002")
    d.rate(23.5, "A002", 2)
    d.call(25, "V001", 1, "t1")
    d.call(30, "A003", 2, "t2")
    d.finish(31, "A003")
    d.finish(35, "V001")
    d.issue(100, "A004")
    d.call(101, "A004", 1, "t1")
    d.no_show(102, "A004")
    d.close(1380, "B001")  # the next morning's first command closes the day
    d.emit(1380, "day_closed")
    return d


HAND = {
    "issued": 6, "served": 4, "no_show": 1, "not_served": 1, "transferred": 1,
    "calls": 8, "avg_wait": 7.6, "max_wait": 25.0, "avg_handle": 4.5,
}


def ingest_all(store: Store, *days: DayLog, now: float | None = None) -> None:
    """Ingest each day whole, in one transaction per day."""
    for d in days:
        store.ingest(Inbound(batches=[d.batch()]), now)


T0_ALERTS = at("2026-11-25", 30)  # 09:30 local: before the alert desk's daily check (10:00)


def other_days() -> list[DayLog]:
    b2 = DayLog(B2)
    b2.issue(0, "A001")
    b2.call(20, "A001", 1, "t1")
    b2.finish(25, "A001")
    b2.rate(26, "A001", 4)
    b3 = DayLog(B3)
    b3.issue(0, "A001")
    b3.call(1, "A001", 1, "t1")
    b3.finish(2, "A001")
    return [b2, b3]


# --- SPEC I5: appointments and the staff search by 工号 -----------------------------------------

NOW_I5 = at("2026-11-25", 3 * 60)  # 12:00 local on the 25th: the 24th is over, the 26th to come


def booking_day() -> DayLog:
    """Branch B1's 2026-11-24 (journal epoch e0): three customers with a booking.

    A001 (booking bk1) is served by t1 and rated 4; A002 (bk2) is called by t1 and still
    open when the day closes (not served); A003's (bk5) number is voided, so bk5 was not
    redeemed after all."""
    d = DayLog(B1, day="2026-11-24", epoch="e0")
    d.issue(0, "A001", appointment="bk1")
    d.call(1, "A001", 1, "t1")
    d.issue(2, "A002", appointment="bk2")
    d.issue(3, "A003", appointment="bk5")
    d.void(3.5, "A003")
    d.finish(6, "A001")
    d.rate(6.5, "A001", 4)
    d.call(7, "A002", 1, "t1")
    d.close(1380, "A002")
    d.emit(1380, "day_closed")
    return d


# id, branch, business, day, channel, state; bk2's ticket is already known to the bookings
# table (someone looked at it), the others' only from the events.
BOOKINGS = [
    ("bk1", B1, "A", "2026-11-24", "web", "booked"),
    ("bk2", B1, "A", "2026-11-24", "sms", "booked"),
    ("bk3", B1, "A", "2026-11-24", "web", "booked"),
    ("bk4", B1, "V", "2026-11-24", "web", "cancelled"),
    ("bk5", B1, "A", "2026-11-24", "wechat", "booked"),
    ("bk6", B1, "A", "2026-11-26", "web", "booked"),
    ("bk7", B2, "A", "2026-11-24", "sms", "booked"),
    ("bk8", B3, "A", "2026-11-24", "web", "booked"),
    ("bk9", B4, "A", "2026-11-24", "web", "booked"),
]


def add_bookings(store: Store, bookings: list[tuple[str, ...]] = BOOKINGS) -> None:
    """The bookings as the appointments service stores them, one customer each (their
    numbers are placeholders: the statistics read no personal data)."""
    made = at("2026-11-20", 0)
    with store.transaction():
        for i, (bid, branch, queue, day, channel, state) in enumerate(bookings):
            cid = f"c-{bid}"
            store.execute(
                "INSERT INTO customers (id, name, gender, phone_digest, phone_sealed, "
                "phone_masked, id_digest, id_sealed, id_masked, id_region, id_tail, "
                "created_at) VALUES (?, ?, 'F', ?, 'x', '138****0000', ?, 'x', "
                "'4101**********0000', '410105', '0000', ?)",
                (cid, f"客户{i}", f"p-{bid}", f"i-{bid}", made))
            ticket = "20261124-A002" if bid == "bk2" else None
            store.execute(
                "INSERT INTO bookings (id, customer, branch, queue, day, slot, code, state, "
                "channel, created_at, cancelled_at, ticket, redeemed_at) "
                "VALUES (?, ?, ?, ?, ?, 2, ?, ?, ?, ?, ?, ?, ?)",
                (bid, cid, branch, queue, day, f"2{i:05d}", state, channel, made,
                 made + 60 if state == "cancelled" else None, ticket,
                 at(day, 2) if ticket else None))
