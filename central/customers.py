"""The customer channels of one centre process, and their HTTP API and pages.

:class:`CustomerChannels` bundles appointments (:mod:`central.appointments`), remote tickets
and rating (:mod:`central.remote`), the public status (:mod:`central.public`) and SMS
commands (:mod:`central.sms`); :func:`mount_customers` adds their routes to the centre's app:

* public, no sign-in: ``/api/public/branches[/{code}]``, ``/api/public/nearby``,
  ``/api/public/branches/{code}/bookable``, ``/api/public/branches/{code}/tickets/{id}``
  (a printed ticket's QR), ``/api/public/tickets/{token}`` (a remote ticket's link),
  ``/api/public/forms`` and ``…/tickets/{token}/form`` (pre-filled forms, central/forms.py);
* signing in: ``/api/public/login/code`` (SMS), ``/api/public/login``, ``/logout``;
* a signed-in customer (``Authorization: Bearer <token>``): ``/api/public/me``,
  ``/register``, ``/bookings`` (list, book, one, cancel, rate, form), ``/tickets`` (remote);
* staff (a back-office session with the ``view`` permission, limited to the user's
  organisation subtree): ``/api/staff/appointments`` and ``….csv``, and
  ``/api/staff/businesses`` (what the search's business filter offers);
* the SMS gateway: ``/api/sms/inbound``;
* pages for phones: ``/m/…`` (one page, drawn by ``static/customer/app.js``), the printed
  ticket's ``/b/{branch}/t/{ticket}`` and the booking QR's ``/yy/…``.

Errors are ``{"error": {"code", "message", "message_en"}}`` like the box's.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import functools
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

from common.throttle import TooManyAttempts, client_address
from protocols import appointment as ap

from .appointments import Appointments, Customer, CustomerRefused, refused
from .auth import ApiError, Principal, outside_sessions
from .booking_forms import BookingForms
from .code_limits import CodeLimits
from .deps import ChannelsDep, Viewer
from .forms import FormRequest, RemoteForms
from .forms import router as forms_router
from .names import check_name
from .nearturn import NearTurn
from .notify_sms import SmsNotifier
from .public import PublicStatus, least_busy
from .remote import BranchLink, RemoteTickets
from .reports.export import safe_row
from .sms_commands import SmsDesk
from .templating import customer_shell

if TYPE_CHECKING:
    from collections.abc import Callable

    from .context import CentreContext
    from .leases import Leases
    from .wechat.endpoint import WeChatAccount

__all__ = ["CustomerChannels", "customer_router", "mount_customers", "pages_router",
           "public_router", "sms_router", "staff_router"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static" / "customer"


class CustomerChannels:
    """Appointments, remote tickets, public status and SMS commands of one centre process."""

    def __init__(self, centre: CentreContext, *,
                 wechat_wall: Callable[[], float] | None = None, **kw: Any) -> None:
        self.appointments = Appointments(centre, **kw)
        self.link = BranchLink(centre, self.appointments.pool)
        self.remote = RemoteTickets(self.appointments, self.link)
        self.status = PublicStatus(self.appointments.pool, self.appointments.settings)
        self.sms = SmsDesk(self.appointments, self.status, rate=self.remote.rate_number)
        self.code_limits = CodeLimits(self.appointments.pool, self.appointments.settings)
        self.forms = RemoteForms(self.remote, centre.config.form_settings)
        self.booking_forms = BookingForms(self.appointments, self.forms)  # before the ticket
        self.wechat: WeChatAccount | None = None  # the official account, when enabled
        if centre.config.wechat.enabled:
            from .wechat.endpoint import make_account

            self.wechat = make_account(centre.config.wechat, self.appointments, self.remote,
                                       self.status, self.code_limits, wechat_wall)
        # "Your turn is near" (H6): WeChat first when the account can send, then SMS.
        s = self.appointments.settings
        self.near_turn = NearTurn(self.appointments, self.remote.tracker,
                                  [SmsNotifier(self.appointments)] if s.notify_sms else [])
        if self.wechat is not None and self.wechat.api is not None:
            from .wechat.notify import WeChatNotifier

            self.near_turn.add_notifier(WeChatNotifier(
                self.wechat.api, self.appointments.pool, centre.config.wechat))

    async def run(self, leases: Leases | None = None) -> None:
        """The push of bookings to the branches, the near-turn watcher and the delivery of
        booking forms, until cancelled (with ``leases``: each while this process holds its
        lease, ``appointments``, ``near_turn`` and ``booking_forms``)."""
        try:
            async with asyncio.TaskGroup() as tg:
                forms = self.booking_forms.run
                tg.create_task(forms() if leases is None else
                               leases.run("booking_forms", forms), name="booking-forms")
                if self.appointments.settings.notify:
                    watch = self.near_turn.run
                    tg.create_task(watch() if leases is None else
                                   leases.run("near_turn", watch), name="near-turn")
                await self.appointments.run(leases)
        finally:
            await self.link.close()
            if self.wechat is not None:
                await self.wechat.close()


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


BRANCH_CODE = r"^[0-9]{4,16}$"  # ASCII digits: a pattern's \d would take ١٢ or ፩ too
PRINTED_TICKET = r"^[0-9]{8}-[A-Za-z]{0,3}[0-9]{1,6}$"  # the QR's <day>-<number>
TOKEN = r"^[A-Za-z0-9_-]{16,64}$"  # a remote ticket's link (token_urlsafe)
BOOKING_ID = r"^[A-Za-z0-9_-]{1,64}$"

Branch = Annotated[str, PathParam(pattern=BRANCH_CODE)]
Token = Annotated[str, PathParam(pattern=TOKEN)]
BookingId = Annotated[str, PathParam(pattern=BOOKING_ID)]


class BookRequest(BaseModel):
    branch: str = Field(pattern=BRANCH_CODE)
    queue: str = Field(pattern=r"^[A-Za-z0-9_]{1,16}$")
    day: dt.date
    slot: int = Field(ge=1, le=9)


class TicketRequest(BaseModel):
    branch: str = Field(pattern=BRANCH_CODE)
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
    for router in (public_router, forms_router, customer_router, sms_router, pages_router):
        app.include_router(router, dependencies=public)
    app.include_router(staff_router)
    if channels.wechat is not None:  # /api/wechat: WeChat's servers, by their signature
        from .wechat.endpoint import mount_wechat

        mount_wechat(app, channels.wechat)
    app.mount("/static/customer", StaticFiles(directory=STATIC), name="customer-static")
    app.add_exception_handler(CustomerRefused, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(ap.AppointmentFormatError, _bad_format)  # type: ignore[arg-type]
    app.add_exception_handler(TooManyAttempts, _too_many)  # type: ignore[arg-type]


def _error(status: int, code: str, message: str, message_en: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "message_en": message_en}},
                        status, headers=headers)


async def _refused(request: Request, exc: CustomerRefused) -> JSONResponse:
    wait = getattr(exc, "retry_after", None)
    return _error(exc.status, exc.code, exc.message, exc.message_en,
                  None if wait is None else {"Retry-After": str(wait)})


async def _bad_format(request: Request, exc: ap.AppointmentFormatError) -> JSONResponse:
    return _error(422, exc.code, exc.message, exc.message_en)


async def _too_many(request: Request, exc: TooManyAttempts) -> JSONResponse:
    return _error(429, exc.code, exc.message, exc.message_en, {"Retry-After": str(exc.wait)})


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


# --- public --------------------------------------------------------------------------------


public_router = APIRouter(prefix="/api/public", tags=["public"])
"""Open to anyone: the branches' status, bookable slots, tickets, signing in."""


@public_router.get("/branches")
async def branches(ch: ChannelsDep) -> dict[str, Any]:
    """Every branch: waiting per business, current numbers, estimated waits (H1)."""
    return {"branches": list((await ch.status.branches()).values())}


@public_router.get("/branches/{code}")
async def branch(ch: ChannelsDep, code: Branch) -> dict[str, Any]:
    found = await ch.status.branch(code)
    if found is None:
        raise refused("unknown_branch", branch=code)
    return found


@public_router.get("/nearby")
async def nearby(ch: ChannelsDep, lat: Annotated[float, Query(ge=-90, le=90)],
                 lon: Annotated[float, Query(ge=-180, le=180)],
                 queue: Annotated[str | None, Query(max_length=16)] = None,
                 radius_km: Annotated[float, Query(gt=0, le=200)] = 10.0,
                 limit: Annotated[int, Query(ge=1, le=50)] = 5) -> dict[str, Any]:
    """The least busy branches near a place (by the estimated wait, then distance)."""
    every = list((await ch.status.branches()).values())
    return {"branches": least_busy(every, lat, lon, queue=queue.upper() if queue else None,
                                   radius_km=radius_km, limit=limit)}


@public_router.get("/branches/{code}/bookable")
async def bookable(ch: ChannelsDep, code: Branch,
                   day: Annotated[dt.date | None, Query()] = None) -> dict[str, Any]:
    """The businesses of a branch and, per slot of ``day``, the places left."""
    return await ch.appointments.bookable(code, day.isoformat() if day else None)


@public_router.get("/branches/{code}/tickets/{ticket}")
async def printed_ticket(ch: ChannelsDep, code: Branch, ticket: Annotated[str, PathParam(
        pattern=PRINTED_TICKET)]) -> dict[str, Any]:
    """A printed ticket's QR (``/t/<day>-<number>``): where it stands. No rating: the
    paper proves nothing about who holds it (the evaluator at the window rates)."""
    return await ch.remote.follow(code, ticket.upper())


@public_router.get("/tickets/{token}")
async def remote_ticket(ch: ChannelsDep, token: Token) -> dict[str, Any]:
    """A remote ticket: where it stands ("3 ahead, about 9 minutes"), rateable when done."""
    return await ch.remote.view(token)


@public_router.post("/tickets/{token}/rate")
async def rate_remote(ch: ChannelsDep, token: Token, req: RateRequest) -> dict[str, Any]:
    return await ch.remote.rate(token, req.score)


@public_router.post("/login/code")
async def send_code(ch: ChannelsDep, req: CodeRequest, request: Request) -> dict[str, Any]:
    """Text a sign-in code to this mobile number: the number checked first (422, not
    counted), then the limits per network, per phone and for the centre (429)."""
    phone = ap.parse_phone(req.phone)
    a = ch.appointments
    taken = await ch.code_limits.reserve(a.vault.digest(phone), client_address(request),
                                         a.clock())
    try:
        return await a.send_code(phone)
    except Exception:  # not sent (the gateway failed): not counted
        await ch.code_limits.release(taken)
        raise


@public_router.post("/login")
async def login(ch: ChannelsDep, req: LoginRequest) -> dict[str, Any]:
    return await ch.appointments.sign_in(req.phone, req.code)


# --- signed-in customers --------------------------------------------------------------------


async def _who(ch: ChannelsDep, authorization: Annotated[str | None, Header()] = None
               ) -> Customer:
    return await ch.appointments.customer(_bearer(authorization))


Who = Annotated[Customer, Depends(_who)]


customer_router = APIRouter(prefix="/api/public", tags=["customers"])
"""A signed-in customer's own profile, bookings and remote tickets."""


@customer_router.post("/logout")
async def logout(ch: ChannelsDep, me: Who,
                 authorization: Annotated[str | None, Header()] = None
                 ) -> dict[str, Any]:
    await ch.appointments.sign_out(_bearer(authorization) or "")
    return {"signed_out": True}


@customer_router.get("/me")
async def me(ch: ChannelsDep, me: Who) -> dict[str, Any]:
    if me.id is None:
        return {"registered": False, "phone": ap.mask_phone(me.phone)}
    return {"registered": True, **(await ch.appointments.profile(me))}


@customer_router.post("/register", status_code=201)
async def register(ch: ChannelsDep, req: RegisterRequest, me: Who) -> dict[str, Any]:
    """Name, gender and ID number (checked) for the signed-in phone (H2)."""
    return {"registered": True, **(await ch.appointments.register(me, check_name(req.name),
                                                    req.gender or None, req.id_number,
                                                    req.card))}


@customer_router.get("/bookings")
async def my_bookings(ch: ChannelsDep, me: Who) -> dict[str, Any]:
    """我的预约: each with its code and QR payload."""
    return {"bookings": await ch.appointments.my_bookings(me)}


@customer_router.post("/bookings", status_code=201)
async def book(ch: ChannelsDep, req: BookRequest, me: Who) -> dict[str, Any]:
    return await ch.appointments.book(me, req.branch, req.queue, req.day.isoformat(), req.slot)


@customer_router.get("/bookings/{booking}")
async def one_booking(ch: ChannelsDep, booking: BookingId, me: Who) -> dict[str, Any]:
    found = await ch.appointments.my_bookings(me, only=booking)
    if not found:
        raise refused("booking_unknown")
    return {**found[0], "qr_svg": qr_svg(found[0]["qr"]),
            "form": await ch.booking_forms.form_of(found[0]["id"]),
            **(await ch.remote.branch_words(found[0]["branch"]))}


@customer_router.post("/bookings/{booking}/cancel")
async def cancel(ch: ChannelsDep, booking: BookingId, me: Who) -> dict[str, Any]:
    return await ch.appointments.cancel(me, booking)


@customer_router.post("/bookings/{booking}/rate")
async def rate_booking(ch: ChannelsDep, booking: BookingId, req: RateRequest, me: Who
                       ) -> dict[str, Any]:
    """Rate the service an appointment led to, once (C3)."""
    found = await ch.appointments.my_bookings(me, only=booking)
    if not found:
        raise refused("booking_unknown")
    b = found[0]
    if not b.get("ticket_number") or b["day"] != ch.appointments.today():
        raise CustomerRefused("not_rateable", 409, "服务结束后才能评价。",
                              "You can rate once the service is finished.")
    return await ch.remote.rate_number(b["branch"], b["ticket_number"], req.score)


@customer_router.post("/tickets", status_code=201)
async def take_ticket(ch: ChannelsDep, req: TicketRequest, me: Who) -> dict[str, Any]:
    """远程取号 (H3): a ticket of the branch's own numbering, from the phone."""
    return await ch.remote.take(me, req.branch, req.queue)


@customer_router.post("/bookings/{booking}/form")
async def fill_booking_form(ch: ChannelsDep, booking: BookingId, req: FormRequest, me: Who
                            ) -> dict[str, Any]:
    """A pre-filled form (I2) for a booking, any time after booking: kept (masked, and
    sealed until delivered) and sent to the branch once the booking has its ticket, or at
    once when it already has (central/booking_forms.py)."""
    return await ch.booking_forms.fill(me, booking, req.form, req.fields)


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


staff_router = APIRouter(prefix="/api/staff", tags=["staff"])
"""The back office's appointment search and export, held to the user's subtree."""


def _scoped(f: Filters, who: Principal) -> dict[str, Any]:
    """The filters, held to the user's subtree (a wider ``branch`` is refused)."""
    args = f.args()
    if args.get("branch") is None:
        args["branch"] = who.user.scope
    elif not args["branch"].startswith(who.user.scope):
        raise ApiError("forbidden")
    return args


@staff_router.get("/appointments")
async def search(ch: ChannelsDep, f: Annotated[Filters, Query()], who: Viewer
                 ) -> dict[str, Any]:
    """预约管理: by time, name, area, ID number; exact, or ``fuzzy=true``. Masked."""
    return await ch.appointments.search(**_scoped(f, who))


@staff_router.get("/businesses")
async def businesses(ch: ChannelsDep, who: Viewer) -> dict[str, Any]:
    """The businesses booked at the user's branches (the search's ``queue``)."""
    return {"businesses": await ch.appointments.businesses(who.user.scope)}


@staff_router.get("/appointments.csv")
async def export(ch: ChannelsDep, f: Annotated[Filters, Query()], who: Viewer) -> Response:
    """The search as CSV (UTF-8 with BOM for Excel), masked like every page."""
    found = await ch.appointments.search(**{**_scoped(f, who), "limit": 100_000, "offset": 0})
    return PlainTextResponse(appointments_csv(found["bookings"]),
                             media_type="text/csv; charset=utf-8", headers={
                                 "Content-Disposition": 'attachment; '
                                                        'filename="appointments.csv"'})


CSV_COLUMNS = ("day", "slot_label", "branch", "branch_name", "queue", "queue_name", "name",
               "gender", "phone", "id_number", "state", "ticket_number", "channel", "booked_at")


def appointments_csv(bookings: list[dict[str, Any]]) -> str:
    """The staff's appointment export: a header row, then one row per (masked) booking,
    each cell passed through :func:`~central.reports.export.safe_cell` (a customer named
    ``=cmd|…`` is written as text, not as a formula)."""
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for b in bookings:
        w.writerow(safe_row(b.get(k) for k in CSV_COLUMNS))
    return out.getvalue()


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


sms_router = APIRouter(prefix="/api/sms", tags=["sms"])
"""The SMS gateway's inbound messages (its own bearer token)."""


@sms_router.post("/inbound")
async def inbound(ch: ChannelsDep, req: SmsInbound,
                  authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
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


# --- pages ---------------------------------------------------------------------------------


pages_router = APIRouter(include_in_schema=False)
"""The phone pages: one shell page (central/templates/customer.html), drawn by
``static/customer/app.js``."""


@functools.cache
def _shell() -> str:
    return customer_shell()


def _page() -> HTMLResponse:
    return HTMLResponse(_shell(), headers={
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                   "style-src 'self'; script-src 'self'"})


for _path in ("/m", "/m/{rest:path}", "/b/{branch}/t/{ticket}", "/yy/{branch}/{day}/{code}"):
    pages_router.add_api_route(_path, _page, methods=["GET"], response_class=HTMLResponse)
