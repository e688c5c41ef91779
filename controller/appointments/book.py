"""The branch's appointment book: the bookings of each branch-day, on disk and in memory.

The centre sends each branch the bookings of today and the next days ahead of time
(``cmd/appointments``, one full list per branch-day with a revision; a cancellation is a
new revision, or a delta on top of one). The box keeps them in
``{data_dir}/appointments.sqlite3`` (WAL, ``synchronous=FULL``) and answers only once they
are on disk, so a booking redeems even when the link is down at that moment. The book is
bounded: a week of past days, the catalogue's 14 days ahead, at most businesses × 9 slots ×
:data:`MAX_PER_SLOT` bookings a day (:func:`check_bounds`), :data:`KEEP_CANCELLED`
cancelled bookings a day.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocols import appointment as ap

from ..uplink.commands import CommandRefused

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["AHEAD_DAYS", "KEEP_CANCELLED", "KEEP_DAYS", "MAX_PER_SLOT", "AppointmentBook",
           "Booking", "Day", "check_bounds", "live_count", "most_bookings", "new_day",
           "parse_day", "retained_from"]

KEEP_DAYS = 7  # past days kept (to tell "used"/"other day" apart from "unknown")
AHEAD_DAYS = 14  # days the catalogue describes (today first): no list beyond them is kept
MAX_PER_SLOT = 100  # bookings per business per slot a day's list may hold
KEEP_CANCELLED = 1000  # cancelled bookings a day keeps to say 已取消 (beyond: "unknown")


@dataclass(frozen=True, slots=True)
class Booking:
    """One booking as the branch knows it: no name, no readable ID or card number."""

    id: str
    day: str
    code: str
    queue: str
    slot: int
    state: str  # booked | cancelled
    id_digest: str | None = None
    card_digest: str | None = None
    customer_type: str | None = None  # as the centre's CIF said at booking (None: unknown)
    stars: int = 0


@dataclass
class Day:
    """The bookings of one branch-day, indexed for the three ways of redeeming."""

    day: str
    revision: int
    key: bytes
    early_s: float
    late_s: float
    bookings: dict[str, Booking] = field(default_factory=dict)
    by_code: dict[str, Booking] = field(default_factory=dict)
    by_digest: dict[str, list[Booking]] = field(default_factory=dict)

    def index(self) -> Day:
        ordered = sorted(self.bookings.values(), key=lambda b: b.state == "booked")
        self.by_code = {b.code: b for b in ordered}  # a live booking's code wins
        self.by_digest = {}
        for b in self.bookings.values():
            for d in (b.id_digest, b.card_digest):
                if d:
                    self.by_digest.setdefault(d, []).append(b)
        return self

    def holding(self, number: str) -> list[Booking]:
        """The bookings whose ID or bank card number is ``number``."""
        return self.by_digest.get(ap.digest(self.key, number), [])


def parse_day(msg: dict[str, Any]) -> ap.DayList:
    """A ``cmd/appointments`` message (schema-checked by the uplink) → a day list, full or a
    delta (:func:`protocols.appointment.parse_day_list`).

    Raises :class:`CommandRefused` ``bad_bookings`` naming the first bad field.
    """
    try:
        return ap.parse_day_list(msg)
    except ap.DayListError as exc:
        index = exc.where.split(".")[1] if exc.where.startswith("bookings.") else ""
        words = f"(第{int(index) + 1}条)" if index.isdigit() else f"({exc.where})"
        raise CommandRefused("bad_bookings", f"预约数据有误{words}", str(exc)) from None


def new_day(lst: ap.DayList, held: Day | None, cancelled_kept: int) -> Day:
    """The day the box keeps once ``lst`` is applied on top of ``held``.

    A full list is every live booking: one held that it no longer lists was cancelled and
    is kept so (a *tombstone*: the kiosk then says 已取消, not "unknown", and the attempt
    is not counted as guessing), at most ``cancelled_kept`` of them, the latest first. A
    delta updates ``held`` (the caller checks that ``held`` is from ``lst.base`` up).
    """
    day = Day(lst.day, lst.revision, lst.key, lst.early_s, lst.late_s)
    listed = {b.id: _booking(lst.day, b) for b in lst.bookings}
    before = dict(held.bookings) if held is not None else {}
    if lst.delta:
        live = {k: b for k, b in before.items() if b.state == "booked"}
        gone = [k for k in lst.removed if k in before]
        for k in gone:
            live.pop(k, None)
        live.update(listed)
    else:
        live, gone = listed, [k for k, b in before.items() if k not in listed]
    gone_now = [replace(before[k], state="cancelled") for k in gone if k in before]
    tombs = [b for k, b in before.items() if b.state == "cancelled" and k not in live]
    cancelled = {b.id: b for b in [*tombs, *gone_now] if b.id not in live}
    kept = list(cancelled.values())[-cancelled_kept:] if cancelled_kept > 0 else []
    codes = {b.code for b in live.values() if b.state == "booked"}
    if len(codes) != sum(1 for b in live.values() if b.state == "booked"):
        raise CommandRefused("bad_bookings", "预约码重复", "two bookings share a code")
    day.bookings = {b.id: b for b in kept if b.code not in codes}  # a live code wins
    day.bookings.update(live)
    return day.index()


def _booking(day: str, b: ap.ListedBooking) -> Booking:
    return Booking(b.id, day, b.code, b.queue, b.slot, b.state, b.id_digest, b.card_digest,
                   b.customer_type, b.stars)


class AppointmentBook:
    """The branch-days received, on disk and in memory (bounded: docs/appointments.md).

    The file has one owner: a thread of the book's own runs every statement in the order
    asked, :meth:`close` included. A write still in flight when the box stops (its command
    cancelled) ends before the file is closed, and nothing ever reaches a closed
    connection (which would crash the process). ``days`` is replaced whole, never changed
    in place, so the event loop reads it while the book's thread writes.
    """

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS days (
        day TEXT PRIMARY KEY, revision INTEGER NOT NULL, key TEXT NOT NULL,
        early_s REAL NOT NULL, late_s REAL NOT NULL, received_at REAL NOT NULL);
    CREATE TABLE IF NOT EXISTS bookings (
        day TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL, queue TEXT NOT NULL,
        slot INTEGER NOT NULL, state TEXT NOT NULL, id_digest TEXT, card_digest TEXT,
        PRIMARY KEY (day, id));
    """
    # columns added since (a book written by an older box gets them at open)
    ADDED = (("customer_type", "TEXT"), ("stars", "INTEGER NOT NULL DEFAULT 0"))

    def __init__(self, path: Path) -> None:
        self.path = path
        self.days: dict[str, Day] = {}
        self._db: sqlite3.Connection | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None

    async def open(self, today: str) -> None:
        """Open (creating) the file, drop the days past retention, load the others."""
        if self._thread is None:
            self._thread = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="appointment-book")
        await self._run(self._open, today)

    async def close(self) -> None:
        """Close the file after everything asked before (even if this wait is cancelled).
        Safe to call twice; the book may be opened again."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.submit(self._close)
            await asyncio.to_thread(thread.shutdown, True)

    async def replace(self, new: Day, now: float, today: str) -> bool:
        """Keep ``new`` unless a newer revision of its day is kept; True if kept. Days
        before ``today``'s retention go in the same transaction."""
        return bool(await self._run(self._replace, new, now, today))

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._thread is None:
            raise sqlite3.ProgrammingError("the appointment book is closed")
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    # --- on the book's thread ------------------------------------------------------------

    def _open(self, today: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(self.SCHEMA)
        have = {r[1] for r in db.execute("PRAGMA table_info(bookings)")}
        for name, kind in self.ADDED:
            if name not in have:
                db.execute(f"ALTER TABLE bookings ADD COLUMN {name} {kind}")
        first = retained_from(today)
        with contextlib.suppress(sqlite3.Error):  # a full disk: forgotten next time
            _forget_before(db, first)
        days = {}
        for day, rev, key, early, late in db.execute(
                "SELECT day, revision, key, early_s, late_s FROM days"):
            days[day] = Day(day, rev, bytes.fromhex(key), early, late)
        for row in db.execute("SELECT id, day, code, queue, slot, state, id_digest, "
                              "card_digest, customer_type, stars FROM bookings"):
            if row[1] in days:
                days[row[1]].bookings[row[0]] = Booking(*row)
        self.days = {d: day.index() for d, day in days.items() if d >= first}

    def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def _replace(self, new: Day, now: float, today: str) -> bool:
        old = self.days.get(new.day)
        if old is not None and old.revision >= new.revision:
            return False
        db = self._conn()
        first = retained_from(today)
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO days VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (day) DO UPDATE "
                       "SET revision = excluded.revision, key = excluded.key, early_s = "
                       "excluded.early_s, late_s = excluded.late_s, received_at = "
                       "excluded.received_at",
                       (new.day, new.revision, new.key.hex(), new.early_s, new.late_s, now))
            db.execute("DELETE FROM bookings WHERE day = ?", (new.day,))
            db.executemany("INSERT INTO bookings (day, id, code, queue, slot, state, id_digest, "
                           "card_digest, customer_type, stars) VALUES "
                           "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(b.day, b.id, b.code, b.queue, b.slot, b.state, b.id_digest,
                             b.card_digest, b.customer_type, b.stars)
                            for b in new.bookings.values()])
            _forget_before(db, first)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        # only once it is on disk; a new dict, never the one a reader is going through
        self.days = {d: v for d, v in {**self.days, new.day: new}.items() if d >= first}
        return True

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the appointment book is not open")
        return self._db


def _forget_before(db: sqlite3.Connection, first: str) -> None:
    db.execute("DELETE FROM bookings WHERE day < ?", (first,))
    db.execute("DELETE FROM days WHERE day < ?", (first,))


def retained_from(today: str) -> str:
    """The first day the book keeps: :data:`KEEP_DAYS` before ``today``."""
    return (dt.date.fromisoformat(today) - dt.timedelta(days=KEEP_DAYS)).isoformat()


def live_count(day: Day) -> int:
    """The bookings of ``day`` not cancelled."""
    return sum(1 for b in day.bookings.values() if b.state == "booked")


def most_bookings(cfg: Config) -> int:
    """The most bookings one day may hold: every business of the catalogue, in every slot,
    :data:`MAX_PER_SLOT` each (far above what its windows can serve in an hour)."""
    return max(1, len(cfg.queues)) * len(ap.SLOTS) * MAX_PER_SLOT


def check_bounds(new: Day, today: str, cfg: Config) -> None:
    """Refuse a list the book would not keep: a day past retention or beyond the
    catalogue's :data:`AHEAD_DAYS`, or more bookings than :func:`most_bookings`."""
    last = (dt.date.fromisoformat(today) + dt.timedelta(days=AHEAD_DAYS - 1)).isoformat()
    if not retained_from(today) <= new.day <= last:
        raise CommandRefused("day_out_of_range", f"预约日期{new.day}超出范围",
                             f"day {new.day}: the box keeps {retained_from(today)}..{last}")
    most = most_bookings(cfg)
    if live_count(new) > most:
        raise CommandRefused("too_many_bookings", f"预约数量超出本网点上限({most}个)",
                             f"{live_count(new)} bookings for {new.day}: at most {most} "
                             f"({max(1, len(cfg.queues))} businesses × {len(ap.SLOTS)} "
                             f"slots × {MAX_PER_SLOT})")
