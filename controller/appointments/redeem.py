"""Redemption at the kiosk (预约兑号, A6): a booking of today becomes a ticket, once.

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
whole box; past :attr:`~common.throttle.Throttle.per_source` failures in ``window_s`` (or
:attr:`~common.throttle.Throttle.per_box`) the box answers ``too_many_attempts`` until
the oldest failure ages out: 10^5 codes per slot are not to be walked through.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from common.throttle import Throttle, TooManyAttempts
from protocols import appointment as ap
from protocols.cards import CardRead
from protocols.metrics import Metric

from ..engine import commands as c
from ..errors import Refused
from ..kiosk import issue_and_print
from ..ports import PrintOutcome, SwipeOutcome
from .book import AppointmentBook, Booking

if TYPE_CHECKING:
    from ..box import Box

__all__ = ["RedemptionDesk"]

log = logging.getLogger("controller.appointments")  # one logger for the package's parts


class RedemptionDesk:
    """Redeems the book's bookings at the kiosk and the card readers, counting attempts
    (by outcome) and throttling guesses."""

    def __init__(self, book: AppointmentBook, throttle: Throttle | None = None) -> None:
        self.book = book
        self.throttle = throttle or Throttle()
        self.counts: Counter[str] = Counter()
        self._redeeming: set[str] = set()

    async def redeem_card(self, box: Box, card: CardRead, kiosk: str) -> SwipeOutcome | None:
        """A card holding a booking of today redeems it (A6); ``None`` (an ordinary ticket
        by card) when the card holds no booking today."""
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
                                channel="appointment", kiosk=kiosk,
                                customer=await _customer(box, booking, number))
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


async def _customer(box: Box, b: Booking, number: str | None) -> c.CardCustomer | None:
    """Who the booking's customer is, for the ticket's rank (docs/integrations.md, "The
    centre"): redeemed by card or ID number, the box's own lookup (its CIF within its
    budget, else its VIP table) is the authority when it knows the holder; otherwise what
    the centre's CIF said at booking (``customer_source`` ``centre``); None: nobody."""
    told = (c.CardCustomer("centre", "", None, b.customer_type, b.stars)
            if b.customer_type is not None else None)
    if number is None or box.customers is None:
        return told
    found = await box.customers.find(number)
    return found if found.id is not None else told


def _used(box: Box, booking_id: str) -> bool:
    return any(t.appointment == booking_id for t in box.engine.state.tickets.values())

