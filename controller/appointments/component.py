"""The appointments component: the book's lifecycle, the centre's customer commands (H3,
C3) and the redemption desk offered to the kiosk and the card readers (A6).

``cmd/appointments`` keeps a branch-day's bookings in the book (:mod:`.book`) before
answering, with the branch's catalogue (:mod:`.catalogue`); the same component answers the
centre's ``ticket`` (a remote ticket, channel ``remote``), ``rate``
(:class:`~controller.engine.commands.RateTicket`) and ``track`` (where some of today's
tickets stand) commands. Redemption is :mod:`.redeem`'s. See docs/appointments.md.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.throttle import Throttle
from protocols import appointment as ap
from protocols.cards import CardRead
from protocols.metrics import Metric

from ..engine import commands as c
from ..engine.select import ahead_of, serving_windows
from ..errors import Refused
from ..kiosk import ticket_info, ticket_info_of
from ..ports import PrintOutcome, SwipeOutcome
from ..uplink.commands import CommandRefused
from .book import KEEP_CANCELLED, AppointmentBook, Day, check_bounds, live_count, new_day, parse_day
from .catalogue import catalogue
from .redeem import RedemptionDesk

if TYPE_CHECKING:
    from collections import Counter

    from ..box import Box
    from ..config import Config
    from ..supervisor import Component

__all__ = ["CENTRE", "MAX_TRACKED", "Appointments", "build_appointments", "queue_load"]

log = logging.getLogger("controller.appointments")  # one logger for the package's parts

MAX_TRACKED = 200  # ticket numbers one track command may ask about
CENTRE = "centre"  # the asker of the centre's commands, for the engine's repeat check


class Appointments:
    """The branch's appointment book and the centre's customer commands (a component).

    Sets ``box.appointment_redeemer`` while running: the card readers offer it every
    good read first (drivers/card_reader.py), the kiosk's route calls :meth:`redeem_by`.
    """

    name = "appointments"

    def __init__(self, data_dir: Path, *, throttle: Throttle | None = None) -> None:
        self.book = AppointmentBook(Path(data_dir) / "appointments.sqlite3")
        self.desk = RedemptionDesk(self.book, throttle)
        self.ready = asyncio.Event()
        self.box: Box | None = None

    @property
    def throttle(self) -> Throttle:
        """The desk's throttle of failed attempts."""
        return self.desk.throttle

    @property
    def counts(self) -> Counter[str]:
        """Redemption attempts by outcome."""
        return self.desk.counts

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self, box: Box) -> None:
        """Open the book, serve redemptions and commands until cancelled."""
        from ..metrics import register, unregister

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
        box.appointment_redeemer = self
        box.health.report(self.name, "ok", f"{len(self.book.days)} day(s) of bookings")
        self.ready.set()

    async def stop(self, box: Box) -> None:
        self.ready.clear()
        if box.appointment_redeemer is self:
            box.appointment_redeemer = None
        await self.book.close()

    # --- the centre's commands -------------------------------------------------------------

    async def on_appointments(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        """``cmd/appointments``: keep a branch-day's bookings (durably) before answering.

        A full list replaces the day (what it no longer lists was cancelled); a delta applies
        only on top of a revision from its ``base`` up, else the answer is ``need_full``
        with the revision kept (0: none) and the centre sends the full list."""
        await self._ready()
        lst = parse_day(msg)
        now = box.clock.now()
        today = box.engine.day_of(now)
        held = self.book.days.get(lst.day)
        if lst.delta and (held is None or held.revision < (lst.base or 0)):
            log.info("appointments for %s: a delta since %d on revision %s: asking for the "
                     "full list", lst.day, lst.base, held.revision if held else "none")
            return self._answer(box, held, lst.day, need_full=True)
        if held is not None and held.revision >= lst.revision:
            kept = False  # an older list (a re-send, a late process): the newer stays
        else:
            new = new_day(lst, held, KEEP_CANCELLED)
            check_bounds(new, today, box.config)
            kept = await self.book.replace(new, now, today)
        current = self.book.days[lst.day]
        log.info("appointments for %s: revision %d %s %s (%d bookings)", lst.day,
                 lst.revision, "delta" if lst.delta else "list",
                 "kept" if kept else "already newer", live_count(current))
        return {**self._answer(box, current, lst.day), "stale": not kept}

    def _answer(self, box: Box, day: Day | None, name: str, need_full: bool = False
                ) -> dict[str, Any]:
        answer = {"day": name, "revision": day.revision if day else 0,
                  "bookings": len(day.bookings) if day else 0,  # cancelled ones kept included
                  "live": live_count(day) if day else 0, "deltas": ap.DELTAS,
                  "catalogue": catalogue(box.config, box.clock.now())}
        if need_full:
            answer["need_full"] = True
        return answer

    async def on_ticket(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        """``cmd/ticket``: a remote ticket (H3) in this box's own journal, same rules."""
        _not_expired(box, msg)
        if not box.engine.state.kiosk_open:
            raise Refused("kiosk_signed_out")  # the branch stopped issuing: phones too
        # The command's id goes into the engine with it: the command desk remembers answers
        # only after acting, so a box killed in between would otherwise issue a second
        # ticket when the centre sends the command again (commands run one at a time, so
        # the centre's latest id is the one a re-send repeats).
        told = msg.get("customer")  # the centre's CIF (checked by the uplink's schema)
        who = (c.CardCustomer(str(told.get("source") or "centre"), "", None, told["type"],
                              int(told.get("stars", 0))) if told else None)
        cmd = c.IssueTicket(queue=msg["queue"], channel="remote", kiosk="remote", customer=who)
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

    # --- redemption (the desk's) ---------------------------------------------------------

    async def redeem(self, card: CardRead, kiosk: str) -> SwipeOutcome | None:
        """The card readers' hook (A6): a card holding a booking of today redeems it.

        ``None`` (an ordinary ticket by card) when the card holds no booking today, or
        when the book is not open (not running).
        """
        box = self.box
        if box is None:
            return None
        return await self.desk.redeem_card(box, card, kiosk)

    async def redeem_by(self, box: Box, *, kiosk: str, source: str, code: str | None = None,
                        qr: str | None = None, number: str | None = None
                        ) -> tuple[dict[str, Any], PrintOutcome | None]:
        """Redeem by a typed ``code``, a scanned ``qr`` or an ID/bank card ``number``
        (:meth:`.redeem.RedemptionDesk.redeem_by`, which says what it raises)."""
        return await self.desk.redeem_by(box, kiosk=kiosk, source=source, code=code, qr=qr,
                                         number=number)

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
        return await self.desk.metrics()


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


# --- wiring ------------------------------------------------------------------------------


def build_appointments(config: Config, data_dir: Path, components: list[Component]
                       ) -> list[Component]:
    """The appointments component, when the box has an uplink to get bookings from; its
    commands are registered on that uplink. No uplink: nothing (no bookings to redeem)."""
    from ..uplink import Uplink

    uplink = next((x for x in components if isinstance(x, Uplink)), None)
    if uplink is None:
        return []
    comp = Appointments(data_dir)
    uplink.register_command("appointments", comp.on_appointments)
    uplink.register_command("ticket", comp.on_ticket)
    uplink.register_command("rate", comp.on_rate)
    uplink.register_command("track", comp.on_track)
    return [comp]
