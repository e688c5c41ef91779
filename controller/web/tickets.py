"""``/api/tickets``: taking a ticket (取号), reprinting it, reading today's tickets.

Taking and reprinting are public (the kiosk); who a customer is (VIP name, stars) and
which teller served them is shown only with a staff login (controller/web/auth.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, Field, model_validator

from ..engine import commands as c
from ..errors import Refused
from ..kiosk import issue_and_print, issued_view, reprint
from ..views import ticket_view
from .auth import is_staff, kiosk_answer, may_reprint
from .deps import BoxDep, run
from .idempotency import asked, kiosk_asker, once

__all__ = ["IssueRequest", "ReprintRequest", "TicketNo", "router"]

TicketNo = Annotated[str, Path(pattern=r"^[A-Za-z]{0,3}[0-9]{1,6}$", description="e.g. A023")]


class ReprintRequest(BaseModel):
    token: str | None = Field(None, max_length=64, description="the issuing kiosk's token")
    kiosk: str | None = Field(None, max_length=32,
                              description="the kiosk whose printer prints it ([[kiosks]])")


class IssueRequest(BaseModel):
    queue: str | None = Field(None, max_length=16, description="Business id, e.g. A")
    card: str | None = Field(None, max_length=40, description="Card or ID number")
    kiosk: str = Field("kiosk", max_length=32)

    @model_validator(mode="after")
    def _one_of(self) -> IssueRequest:
        if (self.queue is None) == (self.card is None):
            raise ValueError("give exactly one of 'queue' or 'card'")
        return self


router = APIRouter(tags=["tickets"])


@router.post("/api/tickets", status_code=201)
@once(kiosk_asker)
async def issue_ticket(req: IssueRequest, request: Request, box: BoxDep) -> dict[str, Any]:
    """Take a ticket (取号) for a business or by card. Durable before it is answered.
    The answer's ``reprint_token`` lets this kiosk print it again after a failure."""
    channel = "card" if req.card is not None else "kiosk"
    cmd = c.IssueTicket(queue=req.queue, card=req.card, kiosk=req.kiosk, channel=channel)
    info, outcome = await issue_and_print(box, cmd, request=asked())
    return kiosk_answer(request, issued_view(box, info, outcome))


@router.post("/api/tickets/{number}/reprint")
async def reprint_ticket(number: TicketNo, request: Request, box: BoxDep,
                         req: Annotated[ReprintRequest | None, Body()] = None
                         ) -> dict[str, Any]:
    """Print one of today's tickets again (after a print failure): by the kiosk that
    issued it (its ``reprint_token``) or by staff; nobody else can duplicate a number."""
    t = box.engine.state.by_num(number.upper())
    if t is None:
        raise Refused("unknown_ticket", number=number)
    if not may_reprint(request, t.id, req.token if req else None):
        raise Refused("reprint_refused", number=t.number)
    info, outcome = await reprint(box, t.number, kiosk=req.kiosk if req else None)
    return kiosk_answer(request, issued_view(box, info, outcome))


@router.get("/api/tickets")
async def list_tickets(
    request: Request,
    box: BoxDep,
    day: Annotated[dt.date | None, Query(description="YYYY-MM-DD; default today")] = None,
) -> dict[str, Any]:
    """That day's tickets with their states. Who the customers are (VIP names, stars)
    and which teller served them only with a teller's or lobby manager's login."""
    staff = is_staff(request)
    await box.settled()
    state = box.engine.state
    wanted = day.isoformat() if day else state.day
    if wanted != state.day:
        state = await box.read_day(wanted)
    now = box.clock.now()
    live = state is box.engine.state
    return {
        "day": wanted,
        "tickets": [
            ticket_view(t, box.config, state if live else None, now, identity=staff)
            for t in state.tickets.values()
        ],
    }


@router.get("/api/tickets/{number}")
async def get_ticket(request: Request, number: TicketNo, box: BoxDep) -> dict[str, Any]:
    """One of today's tickets; a waiting one with how many are ahead of it. Who the
    customer is only with a staff login, as for the list."""
    await box.settled()
    state = box.engine.state
    t = state.by_num(number.upper())
    if t is None:
        raise Refused("unknown_ticket", number=number)
    return ticket_view(t, box.config, state, box.clock.now(), identity=is_staff(request))


@router.post("/api/tickets/{number}/insert-front")
async def insert_front(request: Request, number: TicketNo, box: BoxDep) -> dict[str, Any]:
    """Put a waiting ticket at the front (号码插前, B3)."""
    await run(box, c.InsertFront(number.upper()))
    return await get_ticket(request, number, box)
