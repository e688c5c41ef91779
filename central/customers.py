"""The customer channels of one centre process, and their HTTP API and pages.

:class:`CustomerChannels` bundles appointments (:mod:`central.appointments`), remote tickets
and rating (:mod:`central.remote`), the public status (:mod:`central.public`) and SMS
commands (:mod:`central.sms`); :func:`mount_customers` adds their routes to the centre's app:

* public, no sign-in: ``/api/public/branches[/{code}]``, ``/api/public/nearby``,
  ``/api/public/branches/{code}/bookable``, ``/api/public/branches/{code}/tickets/{id}``
  (a printed ticket's QR), ``/api/public/tickets/{token}`` (a remote ticket's link);
* signing in: ``/api/public/login/code`` (SMS), ``/api/public/login``, ``/logout``;
* a signed-in customer (``Authorization: Bearer <token>``): ``/api/public/me``,
  ``/register``, ``/bookings`` (list, book, one, cancel, rate), ``/tickets`` (remote);
* staff (a back-office session with the ``view`` permission, limited to the user's
  organisation subtree): ``/api/staff/appointments`` and ``….csv``, and
  ``/api/staff/businesses`` (what the search's business filter offers);
* the SMS gateway: ``/api/sms/inbound``;
* pages for phones: ``/m/…`` (one page, drawn by ``static/customer/app.js``), the printed
  ticket's ``/b/{branch}/t/{ticket}`` and the booking QR's ``/yy/…``.

Errors are ``{"error": {"code", "message", "message_en"}}`` like the box's.
"""

from __future__ import annotations

import datetime as dt
import hmac
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from controller.appointments import Throttle, TooManyAttempts
from protocols import appointment as ap

from .appointments import Appointments, Customer, CustomerRefused, refused
from .auth import ApiError, Principal, need, outside_sessions
from .public import PublicStatus, least_busy
from .remote import BranchLink, RemoteTickets
from .sms_commands import SmsDesk

if TYPE_CHECKING:
    from .service import Centre

__all__ = ["CustomerChannels", "mount_customers"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static" / "customer"


class CustomerChannels:
    """Appointments, remote tickets, public status and SMS commands of one centre process."""

    def __init__(self, centre: Centre, **kw: Any) -> None:
        self.appointments = Appointments(centre, **kw)
        self.link = BranchLink(centre, self.appointments.pool)
        self.remote = RemoteTickets(self.appointments, self.link)
        self.status = PublicStatus(self.appointments)
        self.sms = SmsDesk(self.appointments, self.status)
        per = self.appointments.settings.codes_per_address
        self.code_throttle = Throttle(per_source=per, per_box=100 * per, window_s=600)

    async def run(self) -> None:
        """The push of bookings to the branches, until cancelled."""
        try:
            await self.appointments.run()
        finally:
            await self.link.close()


# --- requests --------------------------------------------------------------------------


class CodeRequest(BaseModel):
    phone: str = Field(max_length=20)


class LoginRequest(BaseModel):
    phone: str = Field(max_length=20)
    code: str = Field(max_length=8)


class RegisterRequest(BaseModel):
    name: str = Field(max_length=40)
    gender: Literal["M", "F", ""] | None = None
    id_number: str = Field(max_length=24)
    card: str | None = Field(None, max_length=40, description="a bank card, to redeem by card")


class BookRequest(BaseModel):
    branch: str = Field(pattern=r"^\d{4,16}$")
    queue: str = Field(pattern=r"^[A-Za-z0-9_]{1,16}$")
    day: dt.date
    slot: int = Field(ge=1, le=9)


class TicketRequest(BaseModel):
    branch: str = Field(pattern=r"^\d{4,16}$")
    queue: str = Field(pattern=r"^[A-Za-z0-9_]{1,16}$")


class RateRequest(BaseModel):
    score: int = Field(ge=1, le=9)


class SmsInbound(BaseModel):
    from_: str = Field(alias="from", max_length=20)
    text: str = Field(max_length=500)


# --- wiring ------------------------------------------------------------------------------


def mount_customers(app: FastAPI, channels: CustomerChannels) -> None:
    """Add the customer channels' routes, pages and error handling to the centre's app."""
    app.state.customers = channels
    public = [Depends(outside_sessions("customers"))]
    for router in (public_router(channels), customer_router(channels), sms_router(channels),
                   pages_router()):
        app.include_router(router, dependencies=public)
    app.include_router(staff_router(channels))
    app.mount("/static/customer", StaticFiles(directory=STATIC), name="customer-static")
    app.add_exception_handler(CustomerRefused, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(ap.AppointmentFormatError, _bad_format)  # type: ignore[arg-type]
    app.add_exception_handler(TooManyAttempts, _too_many)  # type: ignore[arg-type]


def _error(status: int, code: str, message: str, message_en: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "message_en": message_en}},
                        status, headers=headers)


async def _refused(request: Request, exc: CustomerRefused) -> JSONResponse:
    return _error(exc.status, exc.code, exc.message, exc.message_en)


async def _bad_format(request: Request, exc: ap.AppointmentFormatError) -> JSONResponse:
    return _error(422, exc.code, exc.message, exc.message_en)


async def _too_many(request: Request, exc: TooManyAttempts) -> JSONResponse:
    return _error(429, exc.code, exc.message, exc.message_en, {"Retry-After": str(exc.wait)})


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


# --- public --------------------------------------------------------------------------------


def public_router(ch: CustomerChannels) -> APIRouter:
    r = APIRouter(prefix="/api/public", tags=["public"])

    @r.get("/branches")
    async def branches() -> dict[str, Any]:
        """Every branch: waiting per business, current numbers, estimated waits (H1)."""
        return {"branches": list((await ch.status.branches()).values())}

    @r.get("/branches/{code}")
    async def branch(code: str) -> dict[str, Any]:
        found = await ch.status.branch(code)
        if found is None:
            raise refused("unknown_branch", branch=code)
        return found

    @r.get("/nearby")
    async def nearby(lat: Annotated[float, Query(ge=-90, le=90)],
                     lon: Annotated[float, Query(ge=-180, le=180)],
                     queue: Annotated[str | None, Query(max_length=16)] = None,
                     radius_km: Annotated[float, Query(gt=0, le=200)] = 10.0,
                     limit: Annotated[int, Query(ge=1, le=50)] = 5) -> dict[str, Any]:
        """The least busy branches near a place (by the estimated wait, then distance)."""
        every = list((await ch.status.branches()).values())
        return {"branches": least_busy(every, lat, lon, queue=queue.upper() if queue else None,
                                       radius_km=radius_km, limit=limit)}

    @r.get("/branches/{code}/bookable")
    async def bookable(code: str, day: Annotated[dt.date | None, Query()] = None
                       ) -> dict[str, Any]:
        """The businesses of a branch and, per slot of ``day``, the places left."""
        return await ch.appointments.bookable(code, day.isoformat() if day else None)

    @r.get("/branches/{code}/tickets/{ticket}")
    async def printed_ticket(code: str, ticket: Annotated[str, PathParam(
            pattern=r"^\d{8}-[A-Za-z]{0,3}\d{1,6}$")]) -> dict[str, Any]:
        """A printed ticket's QR (``/t/<day>-<number>``): where it stands. No rating: the
        paper proves nothing about who holds it (the evaluator at the window rates)."""
        return await ch.remote.follow(code, ticket.upper())

    @r.get("/tickets/{token}")
    async def remote_ticket(token: str) -> dict[str, Any]:
        """A remote ticket: where it stands ("3 ahead, about 9 minutes"), rateable when done."""
        return await ch.remote.view(token)

    @r.post("/tickets/{token}/rate")
    async def rate_remote(token: str, req: RateRequest) -> dict[str, Any]:
        return await ch.remote.rate(token, req.score)

    @r.post("/login/code")
    async def send_code(req: CodeRequest, request: Request) -> dict[str, Any]:
        """Text a sign-in code to this mobile number."""
        host = request.client.host if request.client else "?"
        ch.code_throttle.check(host, ch.appointments.clock())
        ch.code_throttle.failed(host, ch.appointments.clock())  # every code sent counts
        return await ch.appointments.send_code(req.phone)

    @r.post("/login")
    async def login(req: LoginRequest) -> dict[str, Any]:
        return await ch.appointments.sign_in(req.phone, req.code)

    return r


# --- signed-in customers --------------------------------------------------------------------


async def _who(request: Request, authorization: Annotated[str | None, Header()] = None
               ) -> Customer:
    channels: CustomerChannels = request.app.state.customers
    return await channels.appointments.customer(_bearer(authorization))


Who = Annotated[Customer, Depends(_who)]


def customer_router(ch: CustomerChannels) -> APIRouter:
    r = APIRouter(prefix="/api/public", tags=["customers"])
    a = ch.appointments

    @r.post("/logout")
    async def logout(me: Who, authorization: Annotated[str | None, Header()] = None
                     ) -> dict[str, Any]:
        await a.sign_out(_bearer(authorization) or "")
        return {"signed_out": True}

    @r.get("/me")
    async def me(me: Who) -> dict[str, Any]:
        if me.id is None:
            return {"registered": False, "phone": ap.mask_phone(me.phone)}
        return {"registered": True, **(await a.profile(me))}

    @r.post("/register", status_code=201)
    async def register(req: RegisterRequest, me: Who) -> dict[str, Any]:
        """Name, gender and ID number (checked) for the signed-in phone (H2)."""
        return {"registered": True, **(await a.register(me, req.name, req.gender or None,
                                                        req.id_number, req.card))}

    @r.get("/bookings")
    async def my_bookings(me: Who) -> dict[str, Any]:
        """我的预约: each with its code and QR payload."""
        return {"bookings": await a.my_bookings(me)}

    @r.post("/bookings", status_code=201)
    async def book(req: BookRequest, me: Who) -> dict[str, Any]:
        return await a.book(me, req.branch, req.queue, req.day.isoformat(), req.slot)

    @r.get("/bookings/{booking}")
    async def one_booking(booking: str, me: Who) -> dict[str, Any]:
        found = await a.my_bookings(me, only=booking)
        if not found:
            raise refused("booking_unknown")
        return {**found[0], "qr_svg": qr_svg(found[0]["qr"]),
                **(await ch.remote.branch_words(found[0]["branch"]))}

    @r.post("/bookings/{booking}/cancel")
    async def cancel(booking: str, me: Who) -> dict[str, Any]:
        return await a.cancel(me, booking)

    @r.post("/bookings/{booking}/rate")
    async def rate_booking(booking: str, req: RateRequest, me: Who) -> dict[str, Any]:
        """Rate the service an appointment led to, once (C3)."""
        found = await a.my_bookings(me, only=booking)
        if not found:
            raise refused("booking_unknown")
        b = found[0]
        if not b.get("ticket_number") or b["day"] != a.today():
            raise CustomerRefused("not_rateable", 409, "服务结束后才能评价。",
                                  "You can rate once the service is finished.")
        return await ch.remote.rate_number(b["branch"], b["ticket_number"], req.score)

    @r.post("/tickets", status_code=201)
    async def remote_ticket(req: TicketRequest, me: Who) -> dict[str, Any]:
        """远程取号 (H3): a ticket of the branch's own numbering, from the phone."""
        return await ch.remote.take(me, req.branch, req.queue)

    return r


def qr_svg(text: str) -> str:
    """A QR code as inline SVG (drawn here: no image fetched from anywhere)."""
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    out = io.BytesIO()
    img.save(out)
    text = out.getvalue().decode()
    return text[text.index("<svg"):]  # inline: no XML declaration


# --- staff ---------------------------------------------------------------------------------


def staff_router(ch: CustomerChannels) -> APIRouter:
    r = APIRouter(prefix="/api/staff", tags=["staff"])
    a = ch.appointments

    viewer = Depends(need("view"))

    def scoped(f: Filters, who: Principal) -> dict[str, Any]:
        """The filters, held to the user's subtree (a wider ``branch`` is refused)."""
        args = f.args()
        if args.get("branch") is None:
            args["branch"] = who.user.scope
        elif not args["branch"].startswith(who.user.scope):
            raise ApiError("forbidden")
        return args

    @r.get("/appointments")
    async def search(f: Annotated[Filters, Query()], who: Principal = viewer
                     ) -> dict[str, Any]:
        """预约管理: by time, name, area, ID number; exact, or ``fuzzy=true``. Masked."""
        return await a.search(**scoped(f, who))

    @r.get("/businesses")
    async def businesses(who: Principal = viewer) -> dict[str, Any]:
        """The businesses booked at the user's branches (the search's ``queue``)."""
        return {"businesses": await a.businesses(who.user.scope)}

    @r.get("/appointments.csv")
    async def export(f: Annotated[Filters, Query()], who: Principal = viewer) -> Response:
        text = await a.export_csv(**scoped(f, who))
        return PlainTextResponse(text, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": 'attachment; filename="appointments.csv"'})

    return r


class Filters(BaseModel):
    day_from: dt.date | None = None
    day_to: dt.date | None = None
    slot: int | None = Field(None, ge=1, le=9)
    branch: str | None = Field(None, max_length=16, description="org code prefix")
    queue: str | None = Field(None, max_length=16)
    state: Literal["booked", "cancelled"] | None = None
    name: str | None = Field(None, max_length=40)
    area: str | None = Field(None, max_length=6, description="ID region code prefix")
    id_number: str | None = Field(None, max_length=24)
    phone: str | None = Field(None, max_length=20)
    fuzzy: bool = False
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)

    def args(self) -> dict[str, Any]:
        d = self.model_dump()
        for k in ("day_from", "day_to"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


# --- SMS -----------------------------------------------------------------------------------


def sms_router(ch: CustomerChannels) -> APIRouter:
    r = APIRouter(prefix="/api/sms", tags=["sms"])

    @r.post("/inbound")
    async def inbound(req: SmsInbound, authorization: Annotated[str | None, Header()] = None
                      ) -> dict[str, Any]:
        """A message the gateway received: answered (through the gateway) and returned."""
        expected = ch.appointments.settings.sms.inbound_token
        if not expected:
            raise CustomerRefused("sms_inbound_off", 503, "短信上行未开通。",
                                  "Inbound SMS is not configured (customers.sms.inbound_token).")
        if not hmac.compare_digest(_bearer(authorization) or "", expected):
            raise CustomerRefused("sms_gateway_only", 401, "仅限短信网关。",
                                  "Only the SMS gateway may post here.")
        phone = ap.parse_phone(req.from_)
        return {"to": ap.mask_phone(phone), "replies": await ch.sms.handle(phone, req.text)}

    return r


# --- pages ---------------------------------------------------------------------------------


def pages_router() -> APIRouter:
    r = APIRouter(include_in_schema=False)
    shell = (STATIC / "app.html").read_text(encoding="utf-8")

    def page() -> HTMLResponse:
        return HTMLResponse(shell, headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                       "style-src 'self'; script-src 'self'"})

    for path in ("/m", "/m/{rest:path}", "/b/{branch}/t/{ticket}",
                 "/yy/{branch}/{day}/{code}"):
        r.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)
    return r

