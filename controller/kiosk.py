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

Several kiosks (``[[kiosks]]``, SPEC I4): a ticket prints on the printer of the kiosk it
was taken at (``IssueTicket.kiosk``: the page's id, or the device's kiosk), numbered by
the box's one engine (A2). A kiosk whose printer is down while another kiosk's prints
is out of service: it refuses (``kiosk_out_of_service``, naming the other kiosk) before
a number is taken, so no number goes unprinted while paper is a few steps away. Without
``[[kiosks]]`` the box has one kiosk and its one printer, whatever id a page gives::

    /kiosk?id=1 ─┐                         ┌─▶ printers["1"]  (health printer.1)
    reader at 1 ─┼─▶ issue_and_print ─▶ engine (one numbering)
    /kiosk?id=2 ─┘        │                └─▶ printers["2"]  (health printer.2)
                          └─ printer of the kiosk down, another up: refused, no number
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from .engine import Request, Ticket
from .engine import commands as c
from .errors import JournalError, Refused
from .notices import KioskScreens
from .ports import Issued, KioskOutcome, PrintOutcome, TicketPrinter
from .views import expected_wait, iso

if TYPE_CHECKING:
    from .box import Box
    from .config import Config

__all__ = ["BUSY", "Desk", "KioskOutcome", "KioskRelay", "KioskScreens", "PrintOutcome",
           "TicketPrinter", "issue_and_print", "issued_view", "kiosk_of", "kiosk_screens",
           "kiosks_view", "printer_at", "reprint", "ticket_info"]

log = logging.getLogger(__name__)

BUSY = ("系统忙,请稍后再试。", "The system is busy, please try again.")  # the journal failed


def kiosk_screens(box: Box) -> KioskScreens:
    """The kiosk-screen board of ``box``."""
    return box.boards.kiosk


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


class Desk:
    """The box's :class:`~controller.ports.TicketDesk`: what a device's request becomes
    (an ``IssueTicket`` through :func:`issue_and_print`) and what it is told back."""

    def __init__(self, box: Box) -> None:
        self.box = box

    async def issue(self, *, channel: str, kiosk: str, queue: str | None = None,
                    card: str | None = None) -> Issued:
        cmd = c.IssueTicket(queue=queue, card=card, channel=channel, kiosk=kiosk)
        try:
            info, printed = await issue_and_print(self.box, cmd)
        except Refused as exc:
            return Issued(False, exc.code, exc.message, exc.message_en)
        except JournalError as exc:
            log.error("%s ticket at %s not issued: %s", channel, kiosk, exc)
            return Issued(False, "journal", *BUSY)
        return Issued(True, "issued", ticket=info, printed=printed)


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
        # about how many minutes: the public status's estimate (controller/views.py)
        "wait_minutes": expected_wait(box.engine.state, cfg, q.id, event.get("ahead", 0),
                                      box.services),
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
    cmd = replace(cmd, kiosk=kiosk_of(box.config, cmd.kiosk))
    printer = printer_at(box, cmd.kiosk)  # refused here: no number taken (several kiosks)
    box.disk.admit_ticket()  # disk_full (503) before the journal has no room (disk.py)
    if cmd.card is not None and cmd.customer is None and box.customers is not None:
        # who holds the card: the CIF within its budget, else the VIP table (SPEC I1)
        cmd = replace(cmd, customer=await box.customers.find(cmd.card))
    events = await box.execute(replace(cmd, confirm=True), request)
    issued = next((e for e in events if e["type"] == "ticket_issued"), None)
    if issued is None:  # a repeat: the engine did nothing
        assert request is not None
        return await _again(box, request[0], printer)
    info = ticket_info(box, issued)
    outcome = await _print(box, printer, info, timeout)
    await box.execute(c.Delivered(info["number"], "printed" if outcome and outcome.ok
                                  else "answered"))
    return info, outcome


async def _again(box: Box, asker: str, printer: TicketPrinter | None
                 ) -> tuple[dict[str, Any], PrintOutcome | None]:
    """The ticket ``asker``'s latest request issued, as its first answer gave it."""
    t = box.engine.state.requested(asker)
    if t is None:
        raise Refused("unknown_ticket", number="")
    if t.delivery == "pending":  # issued, but the first answer never went out
        await box.execute(c.Delivered(t.number, "answered"))
    outcome = None
    if printer is not None:
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


async def reprint(box: Box, number: str, timeout: float = 10.0, *, kiosk: str | None = None
                  ) -> tuple[dict[str, Any], PrintOutcome | None]:
    """Print one of today's tickets again (e.g. after the paper was refilled), on the
    printer of ``kiosk`` (None: the box's one kiosk, or the first of ``[[kiosks]]``)."""
    t = box.engine.state.by_num(number)
    if t is None:
        raise Refused("unknown_ticket", number=number)
    printer = printer_at(box, kiosk_of(box.config, kiosk), check=False)
    info = ticket_info_of(box, t, reprint=True)
    return info, await _print(box, printer, info, timeout)


DOWN = ("fault", "offline")  # a printer's health when it cannot print (docs/printer.md)
DEFAULT_KIOSK = "kiosk"  # the id of a request or page that names no kiosk (IssueTicket's)


def kiosk_of(config: Config, kiosk: str | None) -> str:
    """The kiosk a request is for: as named; one that names none (``None`` or the default
    id ``kiosk``) is, with ``[[kiosks]]``, the first of them."""
    if kiosk in (None, DEFAULT_KIOSK) and config.kiosks and config.stand(DEFAULT_KIOSK) is None:
        return config.kiosks[0].id
    return kiosk or DEFAULT_KIOSK


def printer_at(box: Box, kiosk: str, *, check: bool = True) -> TicketPrinter | None:
    """The printer a ticket taken at ``kiosk`` (see :func:`kiosk_of`) prints on (None: the
    kiosk has none).

    Without ``[[kiosks]]``: the box's one printer, whatever the kiosk's id. With them,
    raises :class:`Refused` ``unknown_kiosk`` for an id not configured, and (``check``)
    ``kiosk_out_of_service`` when its printer is down while another kiosk's is not.
    """
    if not box.config.kiosks:
        return getattr(box, "printer", None)
    stand = box.config.stand(kiosk)
    if stand is None:
        raise Refused("unknown_kiosk", kiosk=kiosk)
    if check and _printer_down(box, kiosk):
        other = next((k for k in box.config.kiosks
                      if k.id != kiosk and not _printer_down(box, k.id)), None)
        if other is not None:
            raise Refused("kiosk_out_of_service", other=other.name,
                          other_en=other.name_en or other.name)
    return box.printers.get(kiosk)


def _printer_down(box: Box, kiosk: str) -> bool:
    status = box.health.devices.get(f"printer.{kiosk}")
    return status is not None and status.state in DOWN


def kiosks_view(box: Box) -> list[dict[str, Any]]:
    """Each ``[[kiosks]]`` entry: whether it issues tickets now, and its devices' health
    (``/api/health``; the kiosk page shows "out of service" from it)."""
    devices = box.health.devices
    out = []
    for k in box.config.kiosks:
        try:
            printer_at(box, k.id)
            in_service, why = True, None
        except Refused as exc:
            in_service, why = False, exc.to_json()
        mine = [f"printer.{k.id}"] + [f"card_reader.{r}" for r in _readers(box, k.id)]
        out.append({"id": k.id, "name": k.name, "name_en": k.name_en,
                    "in_service": in_service, "refusal": why,
                    "devices": [asdict(devices[n]) for n in mine if n in devices]})
    return out


def _readers(box: Box, kiosk: str) -> list[str]:
    """The names of the card readers standing at ``kiosk``: its own (by default, with the
    simulator, one named after it: controller/compose.py) and the top-level ones that
    name it."""
    cfg = box.config
    stand = cfg.stand(kiosk)
    own = stand.card_reader.get("readers") if stand is not None else None
    named = [r.get("name", "reader") for r in own or [{"name": kiosk}] if isinstance(r, dict)]
    top = cfg.card_reader.get("readers") or []
    return named + [r.get("name", "reader") for r in top
                    if isinstance(r, dict) and r.get("kiosk") == kiosk]


async def _print(box: Box, printer: TicketPrinter | None, info: dict[str, Any],
                 timeout: float) -> PrintOutcome | None:
    if printer is None:
        return None
    try:
        async with asyncio.timeout(timeout):
            outcome = await printer.print_ticket(info)
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
