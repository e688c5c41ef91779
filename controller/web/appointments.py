"""``POST /api/appointments/redeem`` (public: the kiosk) and a count-only summary, for the
box's appointment desk (controller/appointments/, docs/appointments.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from common.throttle import TooManyAttempts
from protocols import appointment as ap

from ..appointments import Appointments
from ..box import Box
from ..kiosk import issued_view
from .auth import kiosk_answer
from .deps import BoxDep

__all__ = ["RedeemRequest", "router"]

router = APIRouter(tags=["appointments"])


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


def desk_of(box: Box) -> Appointments | None:
    """The box's appointment desk, if this branch takes bookings."""
    found = box.appointment_redeemer
    return found if isinstance(found, Appointments) else None


def refuse(status: int, code: str, message: str, message_en: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message,
                                   "message_en": message_en}}, status, headers=headers)


@router.post("/api/appointments/redeem", status_code=201)
async def redeem(req: RedeemRequest, request: Request, box: BoxDep) -> Any:
    """Redeem a booking (预约兑号, A6): answered exactly like ``POST /api/tickets``."""
    found = desk_of(box)
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
    return kiosk_answer(request, issued_view(box, info, outcome))


@router.get("/api/appointments/summary")
async def summary(box: BoxDep) -> dict[str, Any]:
    """Today's bookings received and redeemed (counts only)."""
    found = desk_of(box)
    if found is None:
        return {"enabled": False}
    return {"enabled": True, **found.summary(box)}
