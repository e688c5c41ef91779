"""Pre-filled forms (预填单, SPEC I2) at the box: filling one for a ticket, showing it to
the teller who calls that ticket, printing it.

A form is filled for one of today's open tickets, from the kiosk that issued it, by staff,
or from the customer's phone through the centre (``cmd/form``). The engine checks it
against the form of the ticket's business (:class:`~controller.engine.commands.FillForm`,
protocols/forms.py) and journals ``form_filled`` before anybody is answered: it goes to
the centre like every event. What leaves the box's counter (answers to the kiosk or the
centre, logs) carries the values masked (:func:`protocols.forms.masked`); only the teller
serving the ticket sees and prints them whole::

    kiosk / phone ──FillForm──▶ engine ──form_filled──▶ journal ──▶ uplink ──▶ centre
                                              │
                                              └──▶ State.forms ──▶ teller's caller, printer
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from protocols.forms import masked

from .engine import Ticket
from .engine import commands as c
from .errors import Refused
from .ports import FormPrinter, PrintOutcome
from .views import iso

if TYPE_CHECKING:
    from .box import Box

__all__ = ["fill", "form_of", "print_form", "print_view"]

log = logging.getLogger(__name__)


async def fill(box: Box, number: str, values: Any, channel: str, form: str | None = None
               ) -> dict[str, Any]:
    """Fill (or replace) ticket ``number``'s form ``form`` (None: its business's only one);
    durable before this returns. The answer shows the values masked (it goes to a kiosk
    screen or the centre)."""
    events = await box.execute(c.FillForm(number, values, channel, form))
    e = events[-1]
    log.info("form of %s filled (%s): %d fields", e["number"], channel, len(e["fields"]))
    return {"number": e["number"], "queue": e["queue"], "form": e["form"], "title": e["title"],
            "title_en": e["title_en"], "fields": masked(e["fields"]),
            "filled_at": iso(e["at"], box.config)}


def form_of(box: Box, t: Ticket) -> dict[str, Any] | None:
    """Ticket ``t``'s form with its values whole (for the teller serving it), or None."""
    form = box.engine.state.forms.get(t.id)
    if form is None:
        return None
    return {"number": t.number, "queue": t.queue, "form": form["form"], "title": form["title"],
            "title_en": form["title_en"], "channel": form["channel"],
            "fields": [dict(f) for f in form["fields"]],
            "filled_at": iso(form["at"], box.config)}


def print_view(box: Box, t: Ticket) -> dict[str, Any]:
    """What :meth:`FormPrinter.print_form` prints for ticket ``t``."""
    form = box.engine.state.forms.get(t.id)
    if form is None:
        raise Refused("form_missing", number=t.number)
    cfg = box.config
    return {"number": t.number, "branch_name": cfg.branch.name, "title": form["title"],
            "title_en": form["title_en"], "fields": form["fields"], "filled_at": form["at"],
            "timezone": cfg.branch.timezone}


async def print_form(box: Box, t: Ticket, timeout: float = 10.0) -> PrintOutcome:
    """Print ticket ``t``'s form on the box's printer, for the teller."""
    view = print_view(box, t)
    printer = getattr(box, "printer", None)
    if not isinstance(printer, FormPrinter):
        return PrintOutcome(False, "no_printer", "本机没有可打印预填单的打印机",
                            "This box has no printer for forms")
    try:
        async with asyncio.timeout(timeout):
            return await printer.print_form(view)
    except TimeoutError:
        return PrintOutcome(False, "timeout", "打印机无响应", "The printer does not answer")
    except Exception as exc:  # a printer bug must not take the teller's page down
        log.exception("printing the form of %s failed", t.number)
        return PrintOutcome(False, "error", "打印机故障", f"Printer error: {exc}")

