"""Pre-filled forms (预填单, SPEC I2) at the centre: the phone page fills one for a remote
ticket and sends it to the branch; forms from the branches are kept masked and blanked
after their retention.

* ``GET /api/public/forms?queue=A``: the forms of the centre's ``[forms]`` (anyone: they
  hold no personal data), to draw on ``/m/``.
* ``POST /api/public/tickets/{token}/form``: the holder of a remote ticket's link (its
  token, as for rating) fills in a form for that ticket, today; ``POST
  /api/public/bookings/{id}/form`` (central/customers.py): the signed-in owner of a
  booking, any time after booking (kept until the ticket exists, then sent:
  central/booking_forms.py), or at once for the ticket it became. The centre checks it with
  the same validator as the box (protocols/forms.py), sends it as ``cmd/form`` and answers
  with the branch's answer, values masked. The branch checks it again against its own form
  and journals ``form_filled``, which comes back with the branch's events like any other.
* What the centre keeps: the ``form_filled`` events, with every value masked by its field's
  rule at ingest (central/store, :func:`protocols.forms.masked_event`); the whole values
  exist at the centre only in the ``cmd/form`` on its way. :func:`blank_old_forms` takes the
  masked values out too once a form is ``forms.keep_days`` old (the row stays, as
  ``form_blanked``: that a ticket had a form is not personal), and so for the forms kept
  with bookings (:func:`~central.booking_forms.blank_booking_forms`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from common.tasks import still_cancelling
from protocols.forms import FormError, FormSettings, blanked, masked, validate

from .appointments import CustomerRefused
from .booking_forms import blank_booking_forms
from .deps import ChannelsDep
from .store import Store

if TYPE_CHECKING:
    from .context import CentreContext
    from .remote import RemoteTickets

__all__ = ["FormRequest", "RemoteForms", "blank_old_forms", "keep_forms", "router"]

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 6 * 3600  # how often the centre looks for forms past their retention
BLANK_BATCH = 5000  # forms blanked per transaction (a backlog goes in several)
TOKEN = r"^[A-Za-z0-9_-]{16,64}$"  # a remote ticket's link (central/customers.py)


class FormRequest(BaseModel):
    form: str | None = Field(None, max_length=32, description="which form; none: the "
                             "business's only one")
    fields: Annotated[dict[str, Annotated[str, Field(max_length=200)]], Field(max_length=20)]


class RemoteForms:
    """Forms filled on the phone for remote tickets, sent to their branch."""

    def __init__(self, remote: RemoteTickets, settings: FormSettings) -> None:
        self.remote, self.settings = remote, settings

    def forms(self, queue: str | None) -> list[dict[str, Any]]:
        specs = (self.settings.for_queue(queue.upper()) if queue
                 else list(self.settings.forms.values()))
        return [s.to_json() for s in specs]

    async def fill(self, token: str, form: str | None, fields: dict[str, str]
                   ) -> dict[str, Any]:
        """Check the form against the centre's definition, send it to the ticket's branch,
        answer with what the branch kept (values masked)."""
        row = await self.remote.ticket_of(token)
        if (row is None or row["state"] != "issued"
                or row["day"] != self.remote.appointments.today()):
            raise _refused("remote_unknown")
        return await self.fill_ticket(row["branch"], row["number"], row["queue"], form, fields)

    async def fill_ticket(self, branch: str, number: str, queue: str, form: str | None,
                          fields: dict[str, str]) -> dict[str, Any]:
        """Fill in a form for today's ticket ``number`` of business ``queue`` at ``branch``
        (a remote ticket's, or the one a booking was redeemed for)."""
        spec = self.settings.pick(queue, form)
        if spec is None:
            raise _refused("no_form")
        try:
            values = validate(spec, fields)
        except FormError as exc:
            raise CustomerRefused("form_invalid", 422, f"预填单填写有误:{exc.message}",
                                  f"The form is not filled in right: {exc.message_en}"
                                  ) from None
        result = await self.remote.ask_branch(branch, "form", {
            "number": number, "form": spec.id, "fields": values})
        log.info("form %s of %s at %s filled on the phone", spec.id, number, branch)
        return {**result, "fields": masked(result.get("fields"))}  # masked twice: never whole


_MESSAGES = {
    "remote_unknown": (404, "没有该号票。", "No such ticket."),
    "no_form": (404, "该业务没有此预填单。", "This business has no such form."),
}


def _refused(code: str) -> CustomerRefused:
    status, zh, en = _MESSAGES[code]
    return CustomerRefused(code, status, zh, en)


# --- retention -------------------------------------------------------------------------------


def blank_old_forms(st: Store, before_day: str, limit: int = BLANK_BATCH) -> int:
    """Blank up to ``limit`` forms of days before ``before_day``; returns how many."""
    rows = st.execute("SELECT branch, epoch, seq, body FROM events WHERE type = 'form_filled' "
                      "AND day < ? ORDER BY day LIMIT ?", (before_day, limit)).fetchall()
    st.execute_many(
        "UPDATE events SET type = 'form_blanked', body = ? WHERE branch = ? AND epoch = ? "
        "AND seq = ?",
        [(json.dumps(blanked(body if isinstance(body, dict) else json.loads(body)),
                     ensure_ascii=False), b, e, s) for b, e, s, body in rows])
    return len(rows)


async def keep_forms(centre: CentreContext, keep_days: int, today: Callable[[], str],
                     every_s: float = RETENTION_EVERY_S) -> None:
    """Until cancelled: every ``every_s``, blank the forms older than ``keep_days`` days
    before ``today()`` (the customer channels' day). A failure is logged and tried again
    next time."""
    while True:
        try:
            day = dt.date.fromisoformat(today())
            cutoff = (day - dt.timedelta(days=keep_days)).isoformat()
            blank = functools.partial(_blank_in_transaction, cutoff=cutoff)
            while done := await centre.read(blank):
                log.info("form retention: %d pre-filled forms older than %d days blanked",
                         done, keep_days)
                if done < BLANK_BATCH:
                    break
        except Exception as exc:  # the store is away: next time
            still_cancelling()
            log.warning("form retention: %s", exc)
        await asyncio.sleep(every_s)  # a timer: nothing to wait on


def _blank_in_transaction(st: Store, *, cutoff: str) -> int:
    with st.transaction():
        done = blank_old_forms(st, cutoff)
        return done + blank_booking_forms(st, cutoff, max(0, BLANK_BATCH - done))


# --- routes --------------------------------------------------------------------------------

router = APIRouter(prefix="/api/public", tags=["public"])


@router.get("/forms")
async def forms(ch: ChannelsDep,
                queue: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_]{1,16}$")] = None
                ) -> dict[str, Any]:
    """The pre-filled forms the phone page offers (of one business, or all)."""
    return {"forms": ch.forms.forms(queue)}


@router.post("/tickets/{token}/form")
async def fill_form(ch: ChannelsDep, token: Annotated[str, PathParam(pattern=TOKEN)],
                    req: FormRequest) -> dict[str, Any]:
    """Fill in a form for the remote ticket of this link (today, at its branch)."""
    return await ch.forms.fill(token, req.form, req.fields)
