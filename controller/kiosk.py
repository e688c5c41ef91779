"""Issuing a ticket and printing it: one path for the kiosk page, GPIO buttons and cards.

The number is durable before the printer is asked (A3, A4). If printing fails, the
ticket stays valid: the failure is journaled (``ticket_print_failed``), the caller gets
the number and the reason to show on screen, and a reprint can be asked for. No ghost
numbers: every number issued is held by somebody, on paper or on the screen — the
ticket is journaled ``ticket_delivered`` before the answer goes out, and a box that died
before that voids it at start-up, so no window calls it (docs/journal.md).

What the box's own devices (a card reader, a GPIO ticket button) did reaches the kiosk
page the same way: each device's listeners hear a :class:`KioskOutcome`; while the
:class:`KioskRelay` component runs it posts them to the box's :func:`kiosk_screens` board,
whose listener, the screens' event hub, shows them on the kiosk pages
(controller/web/events.py, docs/screens.md)::

    card reader / ticket button ──listeners──▶ KioskRelay ──▶ kiosk_screens(box)
        ──▶ EventHub.on_outcome ──▶ `event: outcome` to /kiosk?id=… (ticket or refusal)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from .engine import Request, Ticket
from .engine import commands as c
from .errors import JournalError, Refused
from .notices import board_of

if TYPE_CHECKING:
    from .box import Box

__all__ = ["BUSY", "KioskOutcome", "KioskRelay", "KioskScreens", "PrintOutcome",
           "TicketPrinter", "issue_and_print", "issued_view", "kiosk_screens", "reprint",
           "ticket_info"]

log = logging.getLogger(__name__)

BUSY = ("系统忙,请稍后再试。", "The system is busy, please try again.")  # the journal failed


@dataclass(frozen=True, slots=True)
class PrintOutcome:
    ok: bool
    reason: str = ""  # a stable code, e.g. "paper_out", "offline", "timeout"
    message: str = ""  # for the screen, Chinese
    message_en: str = ""


class KioskOutcome(Protocol):
    """What became of a customer's card or button press at one of the box's devices
    (:class:`~drivers.card_reader.SwipeOutcome`, :class:`~drivers.gpio.ButtonPress`).

    ``kiosk`` is the kiosk page it is shown on (``/kiosk?id=…``); ``None``: every kiosk
    page (a box with one kiosk). ``ticket`` is the :func:`ticket_info` of the ticket that
    came out (``ok``), else ``code``/``message``/``message_en`` say why not.
    """

    @property
    def kiosk(self) -> str | None: ...
    @property
    def ok(self) -> bool: ...
    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def message_en(self) -> str: ...
    @property
    def ticket(self) -> dict[str, Any] | None: ...
    @property
    def printed(self) -> PrintOutcome | None: ...


class KioskScreens:
    """A box's kiosk pages as its devices see them: ``listeners`` (the screens' event hub)
    hear every :class:`KioskOutcome`. Nothing is journaled here: the ticket already is."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[KioskOutcome], None]] = []

    def show(self, outcome: KioskOutcome) -> None:
        """Tell every listener (never blocking)."""
        for listener in list(self.listeners):
            try:
                listener(outcome)
            except Exception:  # a screen bug must not undo the customer's ticket
                log.exception("kiosk outcome listener %r failed", listener)


def kiosk_screens(box: Any) -> KioskScreens:
    """The kiosk-screen board of ``box`` (one per box, made on first use)."""
    return board_of(box, KioskScreens)


class KioskRelay:
    """A supervisor component: while it runs, what the box's card readers and ticket
    buttons do is shown on the kiosk pages (:func:`kiosk_screens`).

    Args:
        sources: the devices' listener lists (``CardReader.listeners``,
            ``GpioPanel.listeners``); each hears :class:`KioskOutcome` objects.
    """

    name = "kiosk_relay"

    def __init__(self, sources: list[list[Callable[[Any], None]]]) -> None:
        self.sources = sources
        self.attached = asyncio.Event()

    async def run(self, box: Box) -> None:
        show = kiosk_screens(box).show
        for listeners in self.sources:
            listeners.append(show)
        self.attached.set()
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            self.attached.clear()
            for listeners in self.sources:
                with contextlib.suppress(ValueError):
                    listeners.remove(show)


class TicketPrinter(Protocol):
    """What the box needs of a ticket printer driver."""

    async def print_ticket(self, ticket: dict[str, Any]) -> PrintOutcome: ...


def ticket_info(box: Box, event: dict[str, Any], *, reprint: bool = False) -> dict[str, Any]:
    """Everything printed on the ticket (SPEC A4), from its ``ticket_issued`` event."""
    cfg = box.config
    q = cfg.queue(event["queue"])
    assert q is not None
    return {
        "id": event["ticket"],
        "number": event["number"],
        "queue": q.id,
        "queue_name": q.name,
        "queue_name_en": q.name_en,
        "branch_code": cfg.branch.code,
        "branch_name": cfg.branch.name,
        "branch_name_en": cfg.branch.name_en,
        "issued_at": event["at"],
        "timezone": cfg.branch.timezone,
        "ahead": event.get("ahead", 0),
        "notice": q.notice,
        "notice_en": q.notice_en,
        "customer_type": event.get("customer_type", "normal"),
        "stars": event.get("stars", 0),
        "vip_name": event.get("vip_name"),
        "reprint": reprint,
    }


def issued_view(box: Box, info: dict[str, Any], outcome: PrintOutcome | None
                ) -> dict[str, Any]:
    """The answer of ``POST /api/tickets`` (and of an appointment redemption): the ticket,
    whether it printed, and the printer's words when it did not."""
    from .web.views import iso

    view = {k: v for k, v in info.items() if k not in ("timezone", "branch_code")}
    view["issued_at"] = iso(info["issued_at"], box.config)
    view["printed"] = outcome.ok if outcome else None
    if outcome is not None and not outcome.ok:
        view["print_error"] = {"code": outcome.reason, "message": outcome.message,
                               "message_en": outcome.message_en}
    return view


async def issue_and_print(box: Box, cmd: c.IssueTicket, timeout: float = 10.0, *,
                          request: Request | None = None
                          ) -> tuple[dict[str, Any], PrintOutcome | None]:
    """Issue (durably), print, record that the customer has the number, answer.

    Returns the ticket info and the print outcome (None when the box has no printer).
    Refusals propagate as :class:`Refused`. The ticket is issued with ``confirm``: until
    ``ticket_delivered`` is journaled (after printing, before answering), a restart voids
    it, so no window calls a number nobody holds (docs/journal.md, "Numbers nobody holds").

    ``request`` (asker, key): a repeat of the asker's latest request (a kiosk retrying after
    a lost answer, even across a restart) gets the ticket it issued, not printed again.
    """
    box.disk.admit_ticket()  # disk_full (503) before the journal has no room (disk.py)
    events = await box.execute(replace(cmd, confirm=True), request)
    issued = next((e for e in events if e["type"] == "ticket_issued"), None)
    if issued is None:  # a repeat: the engine did nothing
        assert request is not None
        return await _again(box, request[0])
    info = ticket_info(box, issued)
    outcome = await _print(box, info, timeout)
    await box.execute(c.Delivered(info["number"], "printed" if outcome and outcome.ok
                                  else "answered"))
    return info, outcome


async def _again(box: Box, asker: str) -> tuple[dict[str, Any], PrintOutcome | None]:
    """The ticket ``asker``'s latest request issued, as its first answer gave it."""
    t = box.engine.state.requested(asker)
    if t is None:
        raise Refused("unknown_ticket", number="")
    if t.delivery == "pending":  # issued, but the first answer never went out
        await box.execute(c.Delivered(t.number, "answered"))
    outcome = None
    if getattr(box, "printer", None) is not None:
        outcome = (PrintOutcome(True) if t.print_error is None
                   else PrintOutcome(False, t.print_error, "打印失败", "Printing failed"))
    return ticket_info_of(box, t, reprint=False), outcome


def ticket_info_of(box: Box, t: Ticket, *, reprint: bool = False) -> dict[str, Any]:
    """:func:`ticket_info` of a ticket already in the state (a repeat's answer)."""
    ahead = box.engine.ahead(t.number, box.clock.now())
    event = {"ticket": t.id, "number": t.number, "queue": t.queue, "at": t.issued_at,
             "ahead": ahead or 0, "customer_type": t.customer_type, "stars": t.stars,
             "vip_name": t.vip_name}
    return ticket_info(box, event, reprint=reprint)


async def reprint(box: Box, number: str, timeout: float = 10.0
                  ) -> tuple[dict[str, Any], PrintOutcome | None]:
    """Print one of today's tickets again (e.g. after the paper was refilled)."""
    t = box.engine.state.by_num(number)
    if t is None:
        raise Refused("unknown_ticket", number=number)
    info = ticket_info_of(box, t, reprint=True)
    return info, await _print(box, info, timeout)


async def _print(box: Box, info: dict[str, Any], timeout: float) -> PrintOutcome | None:
    printer: TicketPrinter | None = getattr(box, "printer", None)
    if printer is None:
        return None
    try:
        outcome = await asyncio.wait_for(printer.print_ticket(info), timeout)
    except TimeoutError:
        outcome = PrintOutcome(False, "timeout", "打印机无响应", "The printer does not answer")
    except Exception as exc:  # a printer bug must not lose the customer's number
        log.exception("printing %s failed", info["number"])
        outcome = PrintOutcome(False, "error", "打印机故障", f"Printer error: {exc}")
    if not outcome.ok:
        try:
            await box.execute(c.PrintFailed(info["number"], outcome.reason or "error"))
        except (Refused, JournalError) as exc:
            log.error("could not record the print failure of %s: %s", info["number"], exc)
    return outcome
