"""The box's HTTP JSON API (OpenAPI at ``/openapi.json``).

Every route builds an engine command and runs it through :meth:`Box.execute`, the same
path the keypads take, so the API obeys exactly the rules the counters do. Errors are
``{"error": {"code", "message", "message_en"}}`` with a 4xx status; bad input never 500s.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Annotated, Any

from fastapi import Body, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..box import Box
from ..engine import Event
from ..engine import commands as c
from ..errors import JournalError, Refused
from ..kiosk import issue_and_print, issued_view, reprint
from .auth import (
    LoginWindow,
    TellerWindow,
    end_session,
    grant_session,
    is_staff,
    kiosk_answer,
    login_attempt,
    may_reprint,
)
from .idempotency import asked, kiosk_asker, once, teller_asker
from .limits import install_limits
from .metrics import install_metrics
from .pages import mount_screens
from .views import status_view, ticket_view

__all__ = ["create_app"]

log = logging.getLogger(__name__)

TicketNo = Annotated[str, Path(pattern=r"^[A-Za-z]{0,3}\d{1,6}$", description="e.g. A023")]


class ReprintRequest(BaseModel):
    token: str | None = Field(None, max_length=64, description="the issuing kiosk's token")


class IssueRequest(BaseModel):
    queue: str | None = Field(None, max_length=16, description="Business id, e.g. A")
    card: str | None = Field(None, max_length=40, description="Card or ID number")
    kiosk: str = Field("kiosk", max_length=32)

    @model_validator(mode="after")
    def _one_of(self) -> IssueRequest:
        if (self.queue is None) == (self.card is None):
            raise ValueError("give exactly one of 'queue' or 'card'")
        return self


class LoginRequest(BaseModel):
    teller: str = Field(max_length=32)
    password: str = Field(max_length=128)


class FinishRequest(BaseModel):
    ask_rating: bool = False


class TransferRequest(BaseModel):
    to_window: int | None = Field(None, ge=1, le=999)
    to_queue: str | None = Field(None, max_length=16)
    number: str | None = Field(None, pattern=r"^[A-Za-z]{0,3}\d{1,6}$")

    @model_validator(mode="after")
    def _one_of(self) -> TransferRequest:
        if (self.to_window is None) == (self.to_queue is None):
            raise ValueError("give exactly one of 'to_window' or 'to_queue'")
        return self


class CallBackRequest(BaseModel):
    number: str | None = Field(None, pattern=r"^[A-Za-z]{0,3}\d{1,6}$")


class RatingRequest(BaseModel):
    score: int = Field(ge=1, le=9)


class PauseRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=60, description="shown to customers (A7)")


def _error(status: int, code: str, message: str, message_en: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "message_en": message_en}}, status
    )


def create_app(box: Box) -> FastAPI:
    app = FastAPI(
        title="paidui branch box",
        version=__version__,
        description="排队联网 branch controller: tickets, windows, ratings, status.",
    )
    app.state.box = box
    _install_error_handlers(app)
    install_metrics(app, box)

    def cfg() -> Any:
        return box.config

    async def run(cmd: c.Command) -> list[Event]:
        return await box.execute(cmd, asked())  # asked(): see idempotency.py

    def window_result(events: list[Event], window: int) -> dict[str, Any]:
        state = box.engine.state
        ws = state.window(window)
        cur = state.tickets.get(ws.current) if ws.current else None
        return {
            "window": window,
            "state": "closed" if ws.teller is None else ("paused" if ws.paused else "open"),
            "teller": ws.teller,
            "current": ticket_view(cur, cfg()) if cur else None,
            "events": [e["type"] for e in events],
        }

    # --- tickets -----------------------------------------------------------------------

    @app.post("/api/tickets", status_code=201, tags=["tickets"])
    @once(kiosk_asker)
    async def issue_ticket(req: IssueRequest, request: Request) -> dict[str, Any]:
        """Take a ticket (取号) for a business or by card. Durable before it is answered.
        The answer's ``reprint_token`` lets this kiosk print it again after a failure."""
        channel = "card" if req.card is not None else "kiosk"
        cmd = c.IssueTicket(queue=req.queue, card=req.card, kiosk=req.kiosk, channel=channel)
        info, outcome = await issue_and_print(box, cmd, request=asked())
        return kiosk_answer(request, issued_view(box, info, outcome))

    @app.post("/api/tickets/{number}/reprint", tags=["tickets"])
    async def reprint_ticket(number: TicketNo, request: Request,
                             req: Annotated[ReprintRequest | None, Body()] = None
                             ) -> dict[str, Any]:
        """Print one of today's tickets again (after a print failure): by the kiosk that
        issued it (its ``reprint_token``) or by staff; nobody else can duplicate a number."""
        t = box.engine.state.by_num(number.upper())
        if t is None:
            raise Refused("unknown_ticket", number=number)
        if not may_reprint(request, t.id, req.token if req else None):
            raise Refused("reprint_refused", number=t.number)
        info, outcome = await reprint(box, t.number)
        return kiosk_answer(request, issued_view(box, info, outcome))

    @app.get("/api/tickets", tags=["tickets"])
    async def list_tickets(
        request: Request,
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
                ticket_view(t, cfg(), state if live else None, now, identity=staff)
                for t in state.tickets.values()
            ],
        }

    @app.get("/api/tickets/{number}", tags=["tickets"])
    async def get_ticket(request: Request, number: TicketNo) -> dict[str, Any]:
        """One of today's tickets; a waiting one with how many are ahead of it. Who the
        customer is only with a staff login, as for the list."""
        await box.settled()
        state = box.engine.state
        t = state.by_num(number.upper())
        if t is None:
            raise Refused("unknown_ticket", number=number)
        return ticket_view(t, cfg(), state, box.clock.now(), identity=is_staff(request))

    @app.post("/api/tickets/{number}/insert-front", tags=["tickets"])
    async def insert_front(request: Request, number: TicketNo) -> dict[str, Any]:
        """Put a waiting ticket at the front (号码插前, B3)."""
        await run(c.InsertFront(number.upper()))
        return await get_ticket(request, number)

    # --- windows -----------------------------------------------------------------------

    # Each route reads its window as TellerWindow: parsed strictly once, the teller's
    # session checked for exactly that number, which is the one the handler acts on.

    @app.post("/api/windows/{n}/login", tags=["windows"])
    async def login(n: LoginWindow, req: LoginRequest, request: Request, response: Response
                    ) -> dict[str, Any]:
        """Log a teller in at window n; the answer carries its session (docs/api.md)."""
        async with login_attempt(request, "teller", req.teller):
            result = window_result(await run(c.Login(n, req.teller, req.password)), n)
        return result | grant_session(request, response, "teller", result["teller"], n)

    @app.post("/api/windows/{n}/logout", tags=["windows"])
    @once(teller_asker)
    async def logout(n: TellerWindow, request: Request, response: Response) -> dict[str, Any]:
        result = window_result(await run(c.Logout(n)), n)
        end_session(request, response, "teller")
        return result

    @app.post("/api/windows/{n}/call-next", tags=["windows"])
    @once(teller_asker)
    async def call_next(n: TellerWindow) -> dict[str, Any]:
        return window_result(await run(c.CallNext(n)), n)

    @app.post("/api/windows/{n}/recall", tags=["windows"])
    @once(teller_asker)
    async def recall(n: TellerWindow) -> dict[str, Any]:
        return window_result(await run(c.Recall(n)), n)

    @app.post("/api/windows/{n}/no-show", tags=["windows"])
    @once(teller_asker)
    async def no_show(n: TellerWindow) -> dict[str, Any]:
        return window_result(await run(c.NoShow(n)), n)

    @app.post("/api/windows/{n}/finish", tags=["windows"])
    @once(teller_asker)
    async def finish(n: TellerWindow, req: Annotated[FinishRequest | None, Body()] = None
                     ) -> dict[str, Any]:
        ask = req.ask_rating if req else False
        return window_result(await run(c.Finish(n, ask_rating=ask)), n)

    @app.post("/api/windows/{n}/pause", tags=["windows"])
    @once(teller_asker)
    async def pause(n: TellerWindow) -> dict[str, Any]:
        return window_result(await run(c.PauseWindow(n)), n)

    @app.post("/api/windows/{n}/resume", tags=["windows"])
    @once(teller_asker)
    async def resume(n: TellerWindow) -> dict[str, Any]:
        return window_result(await run(c.ResumeWindow(n)), n)

    @app.post("/api/windows/{n}/transfer", tags=["windows"])
    @once(teller_asker)
    async def transfer(n: TellerWindow, req: TransferRequest) -> dict[str, Any]:
        """Move the current (or a numbered) ticket to another window or business (B4)."""
        number = req.number.upper() if req.number else None
        cmd = c.Transfer(n, to_window=req.to_window, to_queue=req.to_queue, number=number)
        return window_result(await run(cmd), n)

    @app.post("/api/windows/{n}/hold", tags=["windows"])
    @once(teller_asker)
    async def hold(n: TellerWindow) -> dict[str, Any]:
        return window_result(await run(c.Hold(n)), n)

    @app.post("/api/windows/{n}/call-back", tags=["windows"])
    @once(teller_asker)
    async def call_back(n: TellerWindow, req: Annotated[CallBackRequest | None, Body()] = None
                        ) -> dict[str, Any]:
        number = req.number.upper() if req and req.number else None
        return window_result(await run(c.CallBack(n, number)), n)

    @app.post("/api/windows/{n}/rating", tags=["windows"])
    async def rating(n: TellerWindow, req: RatingRequest) -> dict[str, Any]:
        """The customer's rating of the service just finished at this window (C1)."""
        events = await run(c.Rate(n, req.score))
        e = events[-1]
        level = cfg().rating_level(req.score)
        return {
            "window": n, "number": e["number"], "score": req.score, "bad": e["bad"],
            "level": level.name if level else "", "level_en": level.name_en if level else "",
            "message": "谢谢您对我们工作的支持,再见", "message_en": "Thank you. Goodbye.",
        }

    # --- the branch --------------------------------------------------------------------

    @app.post("/api/queues/{queue}/pause", tags=["branch"])
    async def pause_queue(queue: str, req: PauseRequest) -> dict[str, Any]:
        """Pause a business on the kiosks with a reason (G3); tickets are refused (A7)."""
        await run(c.PauseQueue(queue, req.reason))
        return {"queue": queue, "paused": True, "reason": req.reason}

    @app.post("/api/queues/{queue}/resume", tags=["branch"])
    async def resume_queue(queue: str) -> dict[str, Any]:
        await run(c.ResumeQueue(queue))
        return {"queue": queue, "paused": False}

    @app.post("/api/kiosk/sign-in", tags=["branch"])
    async def sign_in() -> dict[str, Any]:
        await run(c.SignIn())
        return {"kiosk_open": box.engine.state.kiosk_open}

    @app.post("/api/kiosk/sign-out", tags=["branch"])
    async def sign_out() -> dict[str, Any]:
        await run(c.SignOut())
        return {"kiosk_open": box.engine.state.kiosk_open}

    @app.get("/api/status", tags=["branch"])
    async def status() -> dict[str, Any]:
        """Waiting per business, current ticket per window, windows open or paused."""
        await box.settled()
        return status_view(box.engine.state, cfg(), box.clock.now())

    @app.get("/api/health", tags=["branch"])
    async def health() -> dict[str, Any]:
        return {**box.describe(), "version": __version__, "devices": box.health.snapshot(),
                "refusals": dict(box.refusals), "journal_failures": box.journal_failures}

    @app.get("/api/config", tags=["branch"])
    async def public_config() -> dict[str, Any]:
        """What kiosks and screens need to draw themselves (no passwords, no card numbers)."""
        conf = cfg()
        return {
            "branch": conf.branch.model_dump(),
            "queues": [q.model_dump(mode="json") for q in conf.queues],
            "menus": [m.model_dump() for m in conf.menus],
            "windows": [w.model_dump() for w in conf.windows],
            "rating_levels": [r.model_dump() for r in conf.rating_levels],
            "hours": conf.hours.model_dump(),
            "version": conf.version,
        }

    mount_screens(app, box)  # kiosk, soft caller, hall display, lobby manager, event stream
    install_limits(app, box.config.http)  # body cap and deadline, outermost (limits.py)
    return app


_BAD = re.compile(r"\s+")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"error": exc.to_json()}, exc.status)

    @app.exception_handler(JournalError)
    async def journal(request: Request, exc: JournalError) -> JSONResponse:
        log.error("journal error on %s %s: %s", request.method, request.url.path, exc)
        return _error(503, "journal_unavailable", "系统暂时无法记录,请稍后再试。",
                      "The box cannot record right now; please try again shortly.")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        if first.get("type") == "json_invalid":
            return _error(400, "malformed_json", "请求格式错误(JSON)。",
                          f"Malformed JSON: {first.get('msg')}")
        msg = _BAD.sub(" ", str(first.get("msg", ""))).removeprefix("Value error, ")
        return _error(422, "invalid_request", f"请求参数错误:{where} {msg}",
                      f"Invalid request: {where}: {msg}".replace(": :", ":"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), str(exc.detail))

