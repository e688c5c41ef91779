"""Issuing a ticket and printing it: one path for the kiosk page, GPIO buttons and cards.

The number is durable before the printer is asked (A3, A4). If printing fails, the
ticket stays valid: the failure is journaled (``ticket_print_failed``), the caller gets
the number and the reason to show on screen, and a reprint can be asked for. No ghost
numbers: every number issued is held by somebody, on paper or on the screen.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .engine import commands as c
from .errors import JournalError, Refused

if TYPE_CHECKING:
    from .box import Box

__all__ = ["PrintOutcome", "TicketPrinter", "issue_and_print", "issued_view", "reprint",
           "ticket_info"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PrintOutcome:
    ok: bool
    reason: str = ""  # a stable code, e.g. "paper_out", "offline", "timeout"
    message: str = ""  # for the screen, Chinese
    message_en: str = ""


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


async def issue_and_print(box: Box, cmd: c.IssueTicket, timeout: float = 10.0
                          ) -> tuple[dict[str, Any], PrintOutcome | None]:
    """Issue (durably), then print. Returns the ticket info and the print outcome
    (None when the box has no printer). Refusals propagate as :class:`Refused`."""
    events = await box.execute(cmd)
    issued = next(e for e in events if e["type"] == "ticket_issued")
    info = ticket_info(box, issued)
    return info, await _print(box, info, timeout)


async def reprint(box: Box, number: str, timeout: float = 10.0
                  ) -> tuple[dict[str, Any], PrintOutcome | None]:
    """Print one of today's tickets again (e.g. after the paper was refilled)."""
    t = box.engine.state.by_num(number)
    if t is None:
        raise Refused("unknown_ticket", number=number)
    ahead = box.engine.ahead(t.number, box.clock.now())
    event = {"ticket": t.id, "number": t.number, "queue": t.queue, "at": t.issued_at,
             "ahead": ahead or 0, "customer_type": t.customer_type, "stars": t.stars,
             "vip_name": t.vip_name}
    info = ticket_info(box, event, reprint=True)
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
