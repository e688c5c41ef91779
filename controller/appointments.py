"""Appointments at the branch (预约兑号, A6) and the centre's customer commands (H3, C3).

The centre sends each branch the bookings of today and tomorrow ahead of time
(``cmd/appointments``, one full list per branch-day with a revision; a cancellation is a
new revision). The box keeps them in ``{data_dir}/appointments.sqlite3`` (WAL,
``synchronous=FULL``) and answers only once they are on disk, so a booking redeems even
when the link is down at that moment. The book is bounded: a week of past days, the
catalogue's 14 days ahead, at most businesses × 9 slots × :data:`MAX_PER_SLOT` bookings a
day (:func:`check_bounds`).

Redemption goes through the engine like any ticket: ``IssueTicket(queue, appointment=<booking
id>, channel="appointment")``, which ranks ahead of walk-ins by the ``appointment`` rule. A
booking is *used* when today's journal holds a ticket issued for it: once only, and durable
across a restart without a second record to keep in step. Refusals are the engine's codes::

    code / QR / ID card / bank card
        │  unknown code .................... appointment_unknown   (counted; throttled)
        │  QR of another branch ............ appointment_other_branch
        │  booked for another day .......... appointment_other_day
        │  cancelled ....................... appointment_cancelled
        │  a ticket already issued for it .. appointment_used
        │  before slot start − early_s ..... appointment_early
        │  after slot end + late_s ......... appointment_late
        ▼
    IssueTicket(queue, appointment=id, channel="appointment")  →  issue_and_print

Failed attempts are counted per source (the client's address: a kiosk id is the client's
own say, so not part of it; the box's own card readers are one source each) and for the
whole box;
past :attr:`Throttle.per_source` failures in ``window_s`` (or :attr:`Throttle.per_box`)
the box answers ``too_many_attempts`` until the oldest failure ages out: 10^5 codes per
slot are not to be walked through.

The same component answers the centre's ``ticket`` (a remote ticket, channel ``remote``),
``rate`` (:class:`~controller.engine.commands.RateTicket`) and ``track`` (where some of
today's tickets stand) commands. See docs/appointments.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import re
import sqlite3
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from protocols import appointment as ap
from protocols.cards import CardRead
from protocols.metrics import Metric

from .engine import commands as c
from .engine.select import ahead_of, serving_windows
from .errors import PaiduiError, Refused
from .kiosk import PrintOutcome, issue_and_print, issued_view, ticket_info, ticket_info_of
from .uplink.commands import CommandRefused

if TYPE_CHECKING:
    from drivers.card_reader import SwipeOutcome

    from .box import Box
    from .config import Config
    from .supervisor import Component

__all__ = [
    "AppointmentBook",
    "Appointments",
    "Booking",
    "Throttle",
    "TooManyAttempts",
    "appointments_router",
    "build_appointments",
    "check_bounds",
    "most_bookings",
    "retained_from",
]

log = logging.getLogger(__name__)

KEEP_DAYS = 7  # past days kept (to tell "used"/"other day" apart from "unknown")
AHEAD_DAYS = 14  # days the catalogue describes (today first): no list beyond them is kept
MAX_PER_SLOT = 100  # bookings per business per slot a day's list may hold
MAX_TRACKED = 200  # ticket numbers one track command may ask about
DEFAULT_EARLY_S = 30 * 60.0
DEFAULT_LATE_S = 15 * 60.0
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_BOOKING_ID = re.compile(r"^[0-9A-Za-z_-]{1,40}$")


class TooManyAttempts(PaiduiError):
    """Too many failed redemptions from one place (or the box): try again in ``wait`` s."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, wait: int) -> None:
        self.wait = wait
        self.message = f"尝试次数过多,请{wait}秒后再试或咨询大堂经理。"
        self.message_en = f"Too many attempts. Please try again in {wait} s or ask the staff."
        super().__init__(self.message_en)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "message_en": self.message_en}


# --- the day's bookings --------------------------------------------------------------------


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
        self.by_code = {b.code: b for b in self.bookings.values()}
        self.by_digest = {}
        for b in self.bookings.values():
            for d in (b.id_digest, b.card_digest):
                if d:
                    self.by_digest.setdefault(d, []).append(b)
        return self

    def holding(self, number: str) -> list[Booking]:
        """The bookings whose ID or bank card number is ``number``."""
        return self.by_digest.get(ap.digest(self.key, number), [])


def parse_day(msg: dict[str, Any]) -> Day:
    """A ``cmd/appointments`` message (schema-checked by the uplink) → a :class:`Day`.

    Raises :class:`CommandRefused` ``bad_bookings`` naming the first bad booking.
    """
    day = Day(msg["day"], msg["revision"], bytes.fromhex(msg["key"]),
              float(msg.get("early_s", DEFAULT_EARLY_S)), float(msg.get("late_s", DEFAULT_LATE_S)))
    for i, raw in enumerate(msg["bookings"]):
        try:
            b = _booking(day.day, raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise CommandRefused("bad_bookings", f"预约数据有误(第{i + 1}条)",
                                 f"bookings.{i}: {exc}") from None
        day.bookings[b.id] = b
    if len({b.code for b in day.bookings.values()}) != len(day.bookings):
        raise CommandRefused("bad_bookings", "预约码重复", "two bookings share a code")
    return day.index()


def _booking(day: str, raw: Any) -> Booking:
    if not isinstance(raw, dict):
        raise TypeError("expected an object")
    b = Booking(str(raw["id"]), day, ap.parse_code(str(raw["code"])), str(raw["queue"]),
                int(raw["slot"]), str(raw.get("state", "booked")), raw.get("id_digest"),
                raw.get("card_digest"))
    if not _BOOKING_ID.match(b.id):
        raise ValueError(f"id {b.id[:40]!r} is not well formed")
    if b.slot != int(b.code[0]):
        raise ValueError(f"code {b.code} is not of slot {b.slot}")
    if b.state not in ("booked", "cancelled"):
        raise ValueError(f"state {b.state!r}")
    for d in (b.id_digest, b.card_digest):
        if d is not None and not (isinstance(d, str) and _HEX32.match(d)):
            raise ValueError("a digest is 32 hex characters")
    return b


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
        first = retained_from(today)
        with contextlib.suppress(sqlite3.Error):  # a full disk: forgotten next time
            _forget_before(db, first)
        days = {}
        for day, rev, key, early, late in db.execute(
                "SELECT day, revision, key, early_s, late_s FROM days"):
            days[day] = Day(day, rev, bytes.fromhex(key), early, late)
        for row in db.execute("SELECT id, day, code, queue, slot, state, id_digest, "
                              "card_digest FROM bookings"):
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
            db.executemany("INSERT INTO bookings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [(b.day, b.id, b.code, b.queue, b.slot, b.state, b.id_digest,
                             b.card_digest) for b in new.bookings.values()])
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
    if len(new.bookings) > most:
        raise CommandRefused("too_many_bookings", f"预约数量超出本网点上限({most}个)",
                             f"{len(new.bookings)} bookings for {new.day}: at most {most} "
                             f"({max(1, len(cfg.queues))} businesses × {len(ap.SLOTS)} "
                             f"slots × {MAX_PER_SLOT})")


# --- throttling ------------------------------------------------------------------------


@dataclass
class Throttle:
    """Failed redemptions per source and per box in a sliding window (guessing codes)."""

    per_source: int = 5
    per_box: int = 30
    window_s: float = 300.0
    _sources: dict[str, deque[float]] = field(default_factory=dict)
    _box: deque[float] = field(default_factory=deque)

    def check(self, source: str, now: float) -> None:
        """Raise :class:`TooManyAttempts` while ``source`` (or the box) is over its limit."""
        for times, limit in ((self._sources.get(source), self.per_source),
                             (self._box, self.per_box)):
            if times is None:
                continue
            while times and now - times[0] >= self.window_s:
                times.popleft()
            if len(times) >= limit:
                raise TooManyAttempts(max(1, int(times[0] + self.window_s - now + 0.999)))

    def failed(self, source: str, now: float) -> None:
        self._sources.setdefault(source, deque()).append(now)
        self._box.append(now)
        if len(self._sources) > 1000:  # forget the quiet ones
            self._sources = {k: v for k, v in self._sources.items()
                             if v and now - v[-1] < self.window_s}


CENTRE = "centre"  # the asker of the centre's commands, for the engine's repeat check


# --- the component ---------------------------------------------------------------------


class Appointments:
    """The branch's appointment book and the centre's customer commands (a component).

    Sets ``box.appointment_redeemer`` while running: the card readers offer it every
    good read first (drivers/card_reader.py), the kiosk's route calls :meth:`redeem`.
    """

    name = "appointments"

    def __init__(self, data_dir: Path, *, throttle: Throttle | None = None) -> None:
        self.book = AppointmentBook(Path(data_dir) / "appointments.sqlite3")
        self.throttle = throttle or Throttle()
        self.counts: Counter[str] = Counter()
        self.ready = asyncio.Event()
        self.box: Box | None = None
        self._redeeming: set[str] = set()

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self, box: Box) -> None:
        """Open the book, serve redemptions and commands until cancelled."""
        from .metrics import register, unregister

        try:  # stopped even when cancelled while opening: the book closes after the open
            await self.start(box)
            register(box, self.metrics)
            await asyncio.Event().wait()  # everything happens in callers' tasks
        finally:
            unregister(box, self.metrics)
            await self.stop(box)

    async def start(self, box: Box) -> None:
        self.box = box
        await self.book.open(box.engine.day_of(box.clock.now()))
        box.appointment_redeemer = self  # type: ignore[attr-defined]
        box.health.report(self.name, "ok", f"{len(self.book.days)} day(s) of bookings")
        self.ready.set()

    async def stop(self, box: Box) -> None:
        self.ready.clear()
        if getattr(box, "appointment_redeemer", None) is self:
            box.appointment_redeemer = None  # type: ignore[attr-defined]
        await self.book.close()

    # --- the centre's commands -------------------------------------------------------------

    async def on_appointments(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        """``cmd/appointments``: keep a branch-day's bookings (durably) before answering."""
        await self._ready()
        new = parse_day(msg)
        now = box.clock.now()
        today = box.engine.day_of(now)
        check_bounds(new, today, box.config)
        kept = await self.book.replace(new, now, today)
        current = self.book.days[new.day]
        log.info("appointments for %s: revision %d %s (%d bookings)", new.day, new.revision,
                 "kept" if kept else "already newer", len(current.bookings))
        return {"day": new.day, "revision": current.revision, "bookings": len(current.bookings),
                "stale": not kept, "catalogue": catalogue(box.config, box.clock.now())}

    async def on_ticket(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        """``cmd/ticket``: a remote ticket (H3) in this box's own journal, same rules."""
        _not_expired(box, msg)
        if not box.engine.state.kiosk_open:
            raise Refused("kiosk_signed_out")  # the branch stopped issuing: phones too
        # The command's id goes into the engine with it: the command desk remembers answers
        # only after acting, so a box killed in between would otherwise issue a second
        # ticket when the centre sends the command again (commands run one at a time, so
        # the centre's latest id is the one a re-send repeats).
        cmd = c.IssueTicket(queue=msg["queue"], channel="remote", kiosk="remote")
        events = await box.execute(cmd, (CENTRE, str(msg["id"])))
        issued = next((e for e in events if e["type"] == "ticket_issued"), None)
        if issued is None:  # a repeat: the ticket that command issued
            t = box.engine.state.requested(CENTRE)
            if t is None:
                raise Refused("unknown_ticket", number="")
            info = ticket_info_of(box, t)
            day, at = box.engine.state.day, t.issued_at
        else:
            info = ticket_info(box, issued)
            day, at = issued["day"], issued["at"]
        return {"ticket": info["id"], "number": info["number"], "queue": info["queue"],
                "queue_name": info["queue_name"], "ahead": info["ahead"],
                "day": day, "issued_at": at, **queue_load(box, info["queue"])}

    async def on_rate(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        """``cmd/rate``: a remote rating (C3), one per service like the evaluator's."""
        _not_expired(box, msg)
        events = await box.execute(c.RateTicket(msg["number"], msg["score"]))
        e = events[-1]
        level = box.config.rating_level(msg["score"])
        return {"number": e["number"], "score": e["score"], "bad": e["bad"],
                "level": level.name if level else ""}

    async def on_track(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        """``cmd/track``: where the asked-about tickets of today stand, and the queues' load."""
        await box.settled()
        state, now = box.engine.state, box.clock.now()
        wanted = [str(n).upper() for n in (msg.get("numbers") or [])][:MAX_TRACKED]
        tickets = {}
        for number in wanted:
            t = state.by_num(number)
            if t is None:
                continue
            ahead = ahead_of(state, box.config, t, now) if t.state == "waiting" else None
            tickets[number] = {"state": t.state, "ahead": ahead, "window": t.window,
                               "queue": t.queue, "rated": t.rated is not None,
                               "windows_open": _open_for(box, t) if ahead is not None else None}
        return {"day": state.day, "at": now, "tickets": tickets,
                "queues": {q.id: queue_load(box, q.id) for q in box.config.queues}}

    async def _ready(self) -> None:
        async with asyncio.timeout(30):
            await self.ready.wait()

    # --- redemption ------------------------------------------------------------------------

    async def redeem(self, box: Box, card: CardRead, kiosk: str) -> SwipeOutcome | None:
        """The card readers' hook (A6): a card holding a booking of today redeems it.

        ``None`` (an ordinary ticket by card) when the card holds no booking today.
        """
        from drivers.card_reader import SwipeOutcome

        today = self.book.days.get(box.engine.day_of(box.clock.now()))
        if today is None or not today.holding(card.number):
            return None
        try:
            info, printed = await self.redeem_by(box, kiosk=kiosk, source=f"card|{kiosk}",
                                                 number=card.number)
        except (Refused, TooManyAttempts) as exc:
            log.info("card %s: appointment refused: %s", card.masked, exc.code)
            return SwipeOutcome(False, exc.code, exc.message, exc.message_en, card)
        return SwipeOutcome(True, "redeemed", "", "", card, info, printed)

    async def redeem_by(self, box: Box, *, kiosk: str, source: str, code: str | None = None,
                        qr: str | None = None, number: str | None = None
                        ) -> tuple[dict[str, Any], PrintOutcome | None]:
        """Redeem by a typed ``code``, a scanned ``qr`` or an ID/bank card ``number``.

        Raises :class:`Refused` (the A6 refusals and the engine's own), or
        :class:`TooManyAttempts`, or :class:`~protocols.appointment.AppointmentFormatError`.
        """
        now = box.clock.now()
        self.throttle.check(source, now)
        self.counts["attempts"] += 1
        try:
            booking = self._find(box, now, code=code, qr=qr, number=number)
            self._check(box, booking, now)
        except (Refused, ap.AppointmentFormatError) as exc:
            self.counts[f"refused_{exc.code}"] += 1
            if _guessing(exc.code, number):
                self.throttle.failed(source, now)
            raise
        # No await between the checks above and the engine taking the ticket (execute
        # applies it before its first await); the in-flight set keeps that true regardless.
        self._redeeming.add(booking.id)
        try:
            cmd = c.IssueTicket(queue=booking.queue, appointment=booking.id,
                                channel="appointment", kiosk=kiosk)
            info, printed = await issue_and_print(box, cmd)
        finally:
            self._redeeming.discard(booking.id)
        self.counts["redeemed"] += 1
        log.info("appointment %s (code %s…) redeemed: %s", booking.id, booking.code[:1],
                 info["number"])
        return info, printed

    def _find(self, box: Box, now: float, *, code: str | None, qr: str | None,
              number: str | None) -> Booking:
        today = box.engine.day_of(now)
        if qr is not None:
            q = ap.parse_qr(qr)
            if q.branch != box.config.branch.code:
                raise Refused("appointment_other_branch", branch_name=f"网点{q.branch}")
            if q.day != today:
                raise Refused("appointment_other_day", day=q.day)
            code = q.code
        if code is not None:
            return self._by_code(ap.parse_code(code), today)
        if number is not None:
            return self._by_number(box, number.strip().upper(), today, now)
        raise Refused("appointment_unknown")

    def _by_code(self, code: str, today: str) -> Booking:
        day = self.book.days.get(today)
        found = day.by_code.get(code) if day else None
        if found is not None:
            return found
        for other in sorted(self.book.days.values(), key=lambda d: d.day, reverse=True):
            b = other.by_code.get(code)
            if b is not None and other.day != today:
                raise Refused("appointment_other_day", day=other.day)
        raise Refused("appointment_unknown")

    def _by_number(self, box: Box, number: str, today: str, now: float) -> Booking:
        day = self.book.days.get(today)
        held = day.holding(number) if day else []
        if not held:
            for other in self.book.days.values():
                if other.day != today and other.holding(number):
                    raise Refused("appointment_other_day", day=other.day)
            raise Refused("appointment_unknown")
        return min(held, key=lambda b: self._preference(box, b, now))

    def _preference(self, box: Box, b: Booking, now: float) -> tuple[int, int]:
        """Several bookings on one card today: the one redeemable now, else the one whose
        refusal says most (coming up, then missed, then used, then cancelled)."""
        try:
            self._check(box, b, now)
            return (0, b.slot)
        except Refused as exc:
            order = ("appointment_early", "appointment_late", "appointment_used")
            return (1 + (order.index(exc.code) if exc.code in order else 3), b.slot)

    def _check(self, box: Box, b: Booking, now: float) -> None:
        if b.state == "cancelled":
            raise Refused("appointment_cancelled")
        if b.id in self._redeeming or _used(box, b.id):
            raise Refused("appointment_used")
        day = self.book.days[b.day]
        first, last = ap.redeem_window(b.day, b.slot, box.config.tz, day.early_s, day.late_s)
        label = ap.slot(b.slot).label
        if now < first:
            raise Refused("appointment_early", slot=label)
        if now > last:
            raise Refused("appointment_late", slot=label)

    # --- figures -------------------------------------------------------------------------

    def summary(self, box: Box) -> dict[str, Any]:
        """Counts only (no codes): today's bookings received, redeemed, the revision."""
        today = box.engine.day_of(box.clock.now())
        day = self.book.days.get(today)
        used = {t.appointment for t in box.engine.state.tickets.values() if t.appointment}
        booked = [b for b in day.bookings.values() if b.state == "booked"] if day else []
        return {"day": today, "revision": day.revision if day else None,
                "booked": len(booked), "redeemed": sum(1 for b in booked if b.id in used),
                "days_kept": sorted(self.book.days)}

    async def metrics(self) -> list[Metric]:
        m = Metric("paidui_appointment_redemptions_total", "counter",
                   "appointment redemption attempts by outcome")
        for key, n in sorted(self.counts.items()):
            m.add(n, outcome=key)
        return [m]


def _guessing(code: str, number: str | None) -> bool:
    """A failure that counts against the source: an unknown or malformed code or QR. A card
    or ID number holding no booking does not: it is most cards at a kiosk, which then take
    an ordinary ticket (the box's own readers do not even ask)."""
    return code in ("bad_code", "bad_qr") or (code == "appointment_unknown" and number is None)


def _used(box: Box, booking_id: str) -> bool:
    return any(t.appointment == booking_id for t in box.engine.state.tickets.values())


def _not_expired(box: Box, msg: dict[str, Any]) -> None:
    if box.clock.now() > float(msg["expires_at"]):
        raise CommandRefused("request_expired", "请求已过期,请重新操作。",
                             "the request reached the branch too late; try again")


def _open_for(box: Box, t: Any) -> int:
    state = box.engine.state
    return sum(1 for w in serving_windows(state, box.config, t) if state.window(w.number).open)


def queue_load(box: Box, queue: str) -> dict[str, Any]:
    """What a waiting estimate needs of a business: typical minutes and windows open."""
    q = box.config.queue(queue)
    state = box.engine.state
    open_ = sum(1 for w in box.config.windows
                if queue in w.queues and state.window(w.number).open)
    return {"service_minutes": q.service_minutes if q else 5.0, "windows_open": open_,
            "waiting": state.waiting_count.get(queue, 0)}


def catalogue(cfg: Config, now: float, days: int = 14) -> dict[str, Any]:
    """What the centre offers for booking at this branch: businesses, hours, coordinates,
    and the kind of each of the next ``days`` days (工作日/周末/节假日)."""
    start = dt.datetime.fromtimestamp(now, cfg.tz).date()
    kinds = {(start + dt.timedelta(days=i)).isoformat():
             cfg.calendar.kind(start + dt.timedelta(days=i)) for i in range(days)}
    return {
        "branch": {"name": cfg.branch.name, "name_en": cfg.branch.name_en,
                   "timezone": cfg.branch.timezone, "latitude": cfg.branch.latitude,
                   "longitude": cfg.branch.longitude},
        "hours": cfg.hours.model_dump(),
        "days": kinds,
        "ratings": [{"score": r.score, "name": r.name, "name_en": r.name_en}
                    for r in cfg.rating_levels],
        "queues": [{"id": q.id, "name": q.name, "name_en": q.name_en, "days": q.days,
                    "hours": q.hours.model_dump() if q.hours else None,
                    "service_minutes": q.service_minutes} for q in cfg.queues],
    }


# --- wiring ------------------------------------------------------------------------------


def build_appointments(config: Config, data_dir: Path, components: list[Component]
                       ) -> list[Component]:
    """The appointments component, when the box has an uplink to get bookings from; its
    commands are registered on that uplink. No uplink: nothing (no bookings to redeem)."""
    from .uplink import Uplink

    uplink = next((x for x in components if isinstance(x, Uplink)), None)
    if uplink is None:
        return []
    comp = Appointments(data_dir)
    uplink.register_command("appointments", comp.on_appointments)
    uplink.register_command("ticket", comp.on_ticket)
    uplink.register_command("rate", comp.on_rate)
    uplink.register_command("track", comp.on_track)
    return [comp]


class RedeemRequest(BaseModel):
    code: str | None = Field(None, max_length=12, description="the 6-digit code")
    qr: str | None = Field(None, max_length=300, description="a scanned booking QR")
    id_number: str | None = Field(None, max_length=24, description="ID card number")
    card: str | None = Field(None, max_length=40, description="bank card number")
    kiosk: str = Field("kiosk", max_length=32)

    @model_validator(mode="after")
    def _one_of(self) -> RedeemRequest:
        given = [x for x in (self.code, self.qr, self.id_number, self.card) if x]
        if len(given) != 1:
            raise ValueError("give exactly one of 'code', 'qr', 'id_number' or 'card'")
        return self


def appointments_router(box: Box) -> APIRouter:
    """``POST /api/appointments/redeem`` (public: the kiosk) and a count-only summary."""
    router = APIRouter(tags=["appointments"])

    def desk() -> Appointments | None:
        found = getattr(box, "appointment_redeemer", None)
        return found if isinstance(found, Appointments) else None

    def refuse(status: int, code: str, message: str, message_en: str,
               headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message,
                                       "message_en": message_en}}, status, headers=headers)

    @router.post("/api/appointments/redeem", status_code=201)
    async def redeem(req: RedeemRequest, request: Request) -> Any:
        """Redeem a booking (预约兑号, A6): answered exactly like ``POST /api/tickets``."""
        found = desk()
        if found is None:
            return refuse(404, "not_found", "预约兑号暂未开通,请选择业务取号或咨询大堂经理。",
                          "Appointments are not available at this branch.")
        host = request.client.host if request.client else "?"
        try:
            info, outcome = await found.redeem_by(
                box, kiosk=req.kiosk, source=host, code=req.code,
                qr=req.qr, number=req.id_number or req.card)
        except TooManyAttempts as exc:
            return refuse(429, exc.code, exc.message, exc.message_en,
                          {"Retry-After": str(exc.wait)})
        except ap.AppointmentFormatError as exc:
            return refuse(422, exc.code, exc.message, exc.message_en)
        from .web.auth import kiosk_answer

        return kiosk_answer(request, issued_view(box, info, outcome))

    @router.get("/api/appointments/summary")
    async def summary() -> dict[str, Any]:
        """Today's bookings received and redeemed (counts only)."""
        found = desk()
        if found is None:
            return {"enabled": False}
        return {"enabled": True, **found.summary(box)}

    return router

