"""Pre-filled forms (预填单, I2) on the box's screens: the kiosk fills one for the ticket it
just issued; the teller serving a ticket sees its form and prints it.

Who may do what (deny by default; docs/integrations.md, "Pre-filled forms"):

* ``GET /api/forms``: anyone (the kiosk draws the forms; they hold no personal data).
* ``POST /api/tickets/{n}/form``: the kiosk that issued ticket n (its ``reprint_token``,
  as for a reprint) or staff; anybody else is refused (``403 form_refused``). The answer
  shows the values masked: it is on a screen in the hall.
* ``GET /api/windows/{n}/form``, ``POST /api/windows/{n}/print-form``: the teller logged
  in at window n, for the ticket being served there (:data:`TellerWindow`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ..errors import Refused
from ..forms import fill, form_of, print_form
from .auth import TellerWindow, is_staff, may_reprint
from .deps import BoxDep
from .tickets import TicketNo

__all__ = ["FormRequest", "router"]


class FormRequest(BaseModel):
    # field name -> text; the engine checks them against the business's form
    fields: Annotated[dict[str, Annotated[str, Field(max_length=200)]],
                      Field(max_length=20)]
    form: str | None = Field(None, max_length=32, description="which form (id); "
                             "none: the business's only one")
    token: str | None = Field(None, max_length=64, description="the issuing kiosk's token")


router = APIRouter(tags=["forms"])


@router.get("/api/forms")
async def forms(box: BoxDep) -> dict[str, Any]:
    """The pre-filled forms of this branch's businesses, to draw on the kiosk."""
    cfg = box.config  # a form of a business the configuration no longer has is not offered
    return {"forms": [spec.to_json() for spec in cfg.form_settings.forms.values()
                      if cfg.queue(spec.queue) is not None]}


@router.post("/api/tickets/{number}/form")
async def fill_form(number: TicketNo, req: FormRequest, request: Request, box: BoxDep
                    ) -> dict[str, Any]:
    """Fill in (or again, replacing it) the form of one of today's open tickets: durable
    before the answer; the values come back masked."""
    t = box.engine.state.by_num(number.upper())
    if t is None:
        raise Refused("unknown_ticket", number=number)
    staff = is_staff(request)  # a lobby manager helping a customer, say
    if not (staff or may_reprint(request, t.id, req.token)):
        raise Refused("form_refused", number=t.number)
    return await fill(box, t.number, req.fields, "staff" if staff else "kiosk", req.form)


def _served(box: BoxDep, n: int) -> Any:
    state = box.engine.state
    current = state.window(n).current
    return state.tickets.get(current) if current else None


@router.get("/api/windows/{n}/form")
async def window_form(n: TellerWindow, box: BoxDep) -> dict[str, Any]:
    """The form of the customer being served at window n, values whole (``form`` is null
    when there is none, or nobody is being served)."""
    await box.settled()
    t = _served(box, n)
    return {"window": n, "number": t.number if t else None,
            "form": form_of(box, t) if t else None}


@router.post("/api/windows/{n}/print-form")
async def print_window_form(n: TellerWindow, box: BoxDep) -> dict[str, Any]:
    """Print the form of the customer being served at window n on the box's printer."""
    t = _served(box, n)
    if t is None:
        raise Refused("no_current", window=n)
    outcome = await print_form(box, t)
    answer: dict[str, Any] = {"window": n, "number": t.number, "printed": outcome.ok}
    if not outcome.ok:
        answer["print_error"] = {"code": outcome.reason, "message": outcome.message,
                                 "message_en": outcome.message_en}
    return answer
