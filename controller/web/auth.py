"""Staff logins for the box's pages and API: signed session tokens, cookies, CSRF, throttling.

Who may do what (the contract is in docs/api.md):

* **Public** (kiosk, hall display, anyone on the branch LAN): every ``GET`` outside
  ``/api/windows/`` and ``/api/lobby/``, ``POST /api/tickets``,
  ``POST /api/tickets/{n}/reprint`` and ``…/form`` (with the issuing kiosk's token), ``POST
  /api/appointments/redeem``, ``POST /api/auth/logout`` and the two logins.
* **The teller of window n**: every other request under ``/api/windows/{n}/``. The window
  number is read once, strictly (:func:`window_number`: ``1``–``999`` in plain ASCII
  decimal, no sign, leading zero, space, dot or other digits), by the dependency
  :data:`TellerWindow` of each window route, which checks the teller session for exactly
  that number and hands the same ``int`` to the handler. A path under ``/api/windows/``
  whose number is spelled any other way (``+1``, ``01``, ``1.0``, ``%31``, ``１``) is 404
  before any handler runs (:class:`StaffGate`), and :func:`guard_window_routes` refuses to
  start an app with a window route lacking that dependency.
* **Any staff** (a teller or a lobby manager): ``POST /api/tickets/{n}/insert-front``.
* **A lobby manager** (``[[web.lobby_managers]]``): ``/api/lobby/…`` and every other
  state-changing request (pausing a business, signing the kiosks in or out, and any route
  added later: closed by default).

A teller logs in with ``POST /api/windows/{n}/login`` (the engine's ``Login``, unchanged);
its answer gains ``token``, ``csrf_token`` and ``expires_at`` and sets the ``paidui_teller``
cookie. The session is good only while the engine has that teller logged in at that window,
so a logout at the keypad ends it too; a logout through the API revokes it.

A token is ``pd1.<payload>.<hmac>`` signed with a secret kept in the data directory, so
sessions survive a restart of the box. Pages send it as an HttpOnly, SameSite=Strict cookie
and must echo ``X-CSRF-Token`` on state-changing requests, and their ``Origin`` (when sent)
must be the box's own scheme, host and port; integrations and tests send
``Authorization: Bearer <token>`` and need no CSRF token (no ambient credential).

Failed logins back off (:class:`~common.throttle.LoginThrottle`) per client address (long,
growing back-off) and per configured teller or lobby manager id (short and capped, reset by
a success from any address), so one client spraying passwords locks itself out, not the
teller.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import fastapi.routing
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from common.passwords import verify_password
from common.throttle import LoginThrottle, client_address

from ..errors import PaiduiError, Refused
from ..web_settings import WebSettings

if TYPE_CHECKING:
    from ..box import Box

__all__ = [
    "Auth", "AuthDep", "Denied", "LoginWindow", "Session", "StaffGate", "TellerWindow",
    "auth_of", "end_session", "grant_session", "guard", "login_attempt", "router",
    "window_number",
]

Kind = Literal["teller", "lobby"]
KindQuery = Annotated[Kind, Query(description="teller or lobby")]
Rule = Literal["public", "window", "staff", "lobby"]  # what rule_for decides per path
Need = Literal["teller", "staff", "lobby"]  # the session a request must carry
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

COOKIE = {"teller": "paidui_teller", "lobby": "paidui_lobby"}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}

ERRORS: dict[str, tuple[int, str, str]] = {
    "login_required": (401, "请先登录。", "Please log in first."),
    "wrong_window": (
        403, "您只能操作本人登录的窗口。", "You may only operate the window you are logged in at."
    ),
    "forbidden": (403, "无权进行此操作,请大堂经理登录。",
                  "Not allowed: a lobby manager must log in."),
    "csrf_failed": (
        403, "页面已过期,请刷新后重试。", "The page has expired; reload and try again."
    ),
    "too_many_attempts": (429, "登录失败次数过多,请{wait}秒后再试。",
                          "Too many failed logins. Try again in {wait} s."),
    "wrong_password": (401, "用户名或密码错误。", "Wrong user name or password."),
    "not_found": (404, "没有这个地址。", "Not Found"),
}


def error_response(code: str, headers: dict[str, str] | None = None, **params: Any
                   ) -> JSONResponse:
    """The API's error shape, ``{"error": {"code", "message", "message_en"}}``."""
    status, zh, en = ERRORS[code]
    body = {"code": code, "message": zh.format(**params), "message_en": en.format(**params)}
    return JSONResponse({"error": body}, status, headers=headers)


class Denied(PaiduiError, PermissionError):
    """A request the staff rules refuse; ``code`` is a key of :data:`ERRORS`."""

    def __init__(self, code: str, headers: dict[str, str] | None = None, **params: Any) -> None:
        self.code, self.headers, self.params = code, headers, params
        super().__init__(code)

    def response(self) -> JSONResponse:
        return error_response(self.code, self.headers, **self.params)


# --- window numbers ----------------------------------------------------------------------

_PLAIN_WINDOW = re.compile(r"[1-9][0-9]{0,2}")  # [0-9], not \d: no other scripts' digits
_WINDOW_PATH = re.compile(r"/api/windows/([^/]*)/[a-z][a-z\-]*")


def window_number(text: str) -> int | None:
    """The window a path segment names: ``1``–``999`` in plain ASCII decimal, else None
    (``+1``, ``01``, ``1.0``, `` 1``, ``１``, ``1000`` name none)."""
    return int(text) if _PLAIN_WINDOW.fullmatch(text) else None


def plainly_spelled(scope: Scope) -> bool:
    """Whether a request under ``/api/windows/`` is ``/api/windows/<window>/<action>`` with a
    plain window number, and arrived spelled exactly so (no percent-encoding)."""
    path: str = scope["path"]
    m = _WINDOW_PATH.fullmatch(path)
    if m is None or window_number(m.group(1)) is None:
        return False
    raw: bytes | None = scope.get("raw_path")
    return raw is None or raw.split(b"?", 1)[0] == path.encode()


# --- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    kind: Kind
    user: str
    window: int | None
    nonce: str
    expires: float

    def payload(self) -> dict[str, Any]:
        return {"k": self.kind, "u": self.user, "w": self.window, "n": self.nonce,
                "e": round(self.expires)}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_secret(data_dir: Path) -> bytes:
    """The signing key: 32 random bytes in ``<data dir>/web.secret`` (made once, mode 600)."""
    path = data_dir / "web.secret"
    try:
        raw = path.read_bytes()
        if len(raw) >= 32:
            return raw
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    raw = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    return raw


# --- sessions ------------------------------------------------------------------------------


class Auth:
    """Issues and checks sessions for one box."""

    def __init__(self, box: Box, web: WebSettings, secret: bytes) -> None:
        self.box, self.web, self.secret = box, web, secret
        self.throttle = LoginThrottle(web)
        self.logins = asyncio.Lock()  # one password check at a time: no racing the throttle
        self.revoked: dict[str, float] = {}  # nonce -> expiry

    # tokens
    def issue(self, kind: Kind, user: str, window: int | None = None) -> Session:
        expires = self.box.clock.now() + self.web.session_hours * 3600
        return Session(kind, user, window, secrets.token_hex(8), expires)

    def token(self, s: Session) -> str:
        body = _b64(json.dumps(s.payload(), separators=(",", ":")).encode())
        return f"pd1.{body}.{self._mac(body)}"

    def csrf(self, s: Session) -> str:
        return _b64(hmac.new(self.secret, b"csrf:" + s.nonce.encode(), hashlib.sha256)
                    .digest())[:32]

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest())

    def parse(self, token: str) -> Session | None:
        """The session of a well-signed, unexpired, unrevoked token that is still valid."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "pd1":
            return None
        if not hmac.compare_digest(parts[2], self._mac(parts[1])):
            return None
        try:
            p = json.loads(_unb64(parts[1]))
            s = Session(p["k"], str(p["u"]), p["w"], str(p["n"]), float(p["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if s.expires <= self.box.clock.now() or s.nonce in self.revoked:
            return None
        return s if self._still_valid(s) else None

    def _still_valid(self, s: Session) -> bool:
        if s.kind == "teller":
            return s.window is not None and self.box.engine.state.tellers.get(s.user) == s.window
        if s.kind == "lobby":
            return any(m.id == s.user for m in self.web.lobby_managers)
        return False

    def revoke(self, s: Session) -> None:
        now = self.box.clock.now()
        self.revoked = {n: e for n, e in self.revoked.items() if e > now}
        self.revoked[s.nonce] = s.expires

    def cookie(self, s: Session | None, kind: Kind) -> str:
        """A ``Set-Cookie`` value carrying ``s`` (None: clearing it)."""
        if s is None:
            return f"{COOKIE[kind]}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        age = max(0, int(s.expires - self.box.clock.now()))
        return f"{COOKIE[kind]}={self.token(s)}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}"

    def grant(self, s: Session) -> dict[str, Any]:
        """What a login answers with, besides its own fields."""
        return {"token": self.token(s), "csrf_token": self.csrf(s),
                "expires_at": round(s.expires), "kind": s.kind}

    def account(self, kind: Kind, user: str) -> str | None:
        """The throttle's key for a configured teller or lobby manager (None: nobody's)."""
        known = (self.box.config.teller(user) is not None if kind == "teller"
                 else any(m.id == user for m in self.web.lobby_managers))
        return f"{kind}:{user}" if known else None

    # requests
    def session_of(self, request: Request, kinds: tuple[Kind, ...]) -> tuple[Session | None, bool]:
        """The request's session of one of ``kinds`` and whether it came by cookie."""
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            s = self.parse(header[7:].strip())
            return (s, False) if s and s.kind in kinds else (None, False)
        for kind in kinds:
            token = request.cookies.get(COOKIE[kind])
            s = self.parse(token) if token else None
            if s is not None:
                return s, True
        return None, False

    def check(self, request: Request, need: Need, window: int | None = None) -> Session:
        """The request's session if it may act as ``need`` (the teller of ``window``, any
        staff, or a lobby manager); else raise :class:`Denied`."""
        kinds: tuple[Kind, ...] = (
            ("teller",) if need == "teller" else ("lobby",) if need == "lobby"
            else ("teller", "lobby"))
        s, by_cookie = self.session_of(request, kinds)
        if s is None:
            if need == "lobby" and self.session_of(request, ("teller",))[0] is not None:
                raise Denied("forbidden")
            raise Denied("login_required")
        if need == "teller" and (window is None or s.window != window):
            raise Denied("wrong_window")
        if by_cookie and request.method not in SAFE_METHODS and not self.csrf_ok(request, s):
            raise Denied("csrf_failed")
        return s

    def reprint_token(self, ticket_id: str) -> str:
        """What lets the kiosk that issued ``ticket_id`` print it again without a login
        (after a print failure), and nobody else duplicate somebody's number."""
        return _b64(hmac.new(self.secret, b"reprint:" + ticket_id.encode(),
                             hashlib.sha256).digest())[:22]

    def csrf_ok(self, request: Request, s: Session) -> bool:
        """A cookie session's state-changing request: the page's CSRF token, and an
        ``Origin`` (browsers send one) that is the box itself."""
        origin = request.headers.get("origin")
        scheme = str(request.scope.get("scheme", "http"))
        if origin is not None and not same_origin(origin, scheme, request.headers.get("host", "")):
            return False
        sent = request.headers.get("x-csrf-token", "")
        return bool(sent) and hmac.compare_digest(sent, self.csrf(s))


_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(?::([0-9]{1,5}))?")


def origin_of(scheme: str, host: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of ``scheme://host``, a missing port being the scheme's
    default; None when either is malformed or the scheme is not http(s)."""
    scheme = scheme.lower()
    m = _HOST.fullmatch(host)
    if scheme not in DEFAULT_PORTS or m is None:
        return None
    port = int(m.group(2)) if m.group(2) else DEFAULT_PORTS[scheme]
    return scheme, m.group(1).lower(), port


def same_origin(origin: str, scheme: str, host: str) -> bool:
    """Whether an ``Origin`` header names the box as this request reached it: the scheme
    it came over and the host and port of its ``Host`` header, exactly."""
    sent_scheme, sep, sent_host = origin.partition("://")
    mine = origin_of(scheme, host)
    return bool(sep) and mine is not None and origin_of(sent_scheme, sent_host) == mine


# --- the window routes' dependencies -------------------------------------------------------

WindowSegment = Annotated[str, PathParam(  # the pattern is documentation; window_number checks
    description="Window (counter) number, 1–999 in plain decimal (any other spelling: 404)",
    json_schema_extra={"pattern": "^[1-9][0-9]{0,2}$"})]


def _auth(request: Request) -> Auth:
    screens = getattr(request.app.state, "screens", None)
    if screens is None:
        raise Denied("login_required")  # no staff rules mounted: nobody drives a window
    auth: Auth = screens["auth"]
    return auth


async def auth_of(request: Request) -> Auth:
    """The app's staff sessions, as a route's dependency (:data:`AuthDep`)."""
    return _auth(request)


AuthDep = Annotated[Auth, Depends(auth_of)]


def _known_window(request: Request, n: str) -> int:
    window = window_number(n)
    if window is None:
        raise Denied("not_found")
    if _auth(request).box.config.window(window) is None:
        raise Refused("unknown_window", window=window)
    return window


async def login_window(request: Request, n: WindowSegment) -> int:
    """The window of a teller login (throttled by :func:`login_attempt`, not gated)."""
    return _known_window(request, n)


async def teller_window(request: Request, n: WindowSegment) -> int:
    """The window a teller command acts on, once the request's teller session is checked
    for exactly that window; the session is left on ``request.state`` for a logout."""
    window = _known_window(request, n)
    request.state.session = _auth(request).check(request, "teller", window)
    return window


LoginWindow = Annotated[int, Depends(login_window)]
TellerWindow = Annotated[int, Depends(teller_window)]


def guard_window_routes(app: FastAPI) -> None:
    """Refuse an app with a route under ``/api/windows/`` that does not take its window as
    :data:`TellerWindow` (or, for the login only, :data:`LoginWindow`): it would serve
    anyone, as the gate leaves those paths to these dependencies."""
    for route in _all_routes(app):
        path = str(getattr(route, "path", None) or "")
        if path != "/api/windows" and not path.startswith("/api/windows/"):
            continue
        dependant = getattr(route, "dependant", None)  # a Mount has none: refused
        calls = {d.call for d in dependant.dependencies} if dependant is not None else set()
        allowed = {teller_window, login_window} if path == "/api/windows/{n}/login" else {
            teller_window}
        if not calls & allowed:
            raise RuntimeError(f"{path}: a window route must take its window as TellerWindow")


def _all_routes(app: FastAPI) -> Iterator[Any]:
    """Every route of ``app``, those of included routers too (FastAPI ≥ 0.16x keeps an
    included router as one entry of ``app.routes``; older ones copy its routes in)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    yield from contexts(app.routes) if contexts is not None else app.routes


@contextlib.asynccontextmanager
async def login_attempt(request: Request, kind: Kind, user: str) -> AsyncIterator[None]:
    """Around one password check: 429 while the client's address or the account must
    wait; a ``wrong_password`` counts against both, a success clears the account. Checks
    run one at a time so concurrent guesses cannot all pass before the first one fails."""
    auth = _auth(request)
    address, account = client_address(request), auth.account(kind, user)
    async with auth.logins:
        wait = auth.throttle.wait(address, account, auth.box.clock.now())
        if wait:
            raise Denied("too_many_attempts", {"Retry-After": str(wait)}, wait=wait)
        try:
            yield
        except (Refused, Denied) as e:
            if e.code == "wrong_password":
                auth.throttle.failed(address, account, auth.box.clock.now())
            raise
        auth.throttle.succeeded(account)


def grant_session(request: Request, response: Response, kind: Kind, user: str,
                  window: int | None = None) -> dict[str, Any]:
    """After a successful login: a new session's fields for the answer, its cookie set."""
    auth = _auth(request)
    s = auth.issue(kind, user, window)
    response.headers.append("set-cookie", auth.cookie(s, kind))
    return auth.grant(s)


def end_session(request: Request, response: Response, kind: Kind) -> None:
    """After a successful logout: the session the request was checked with is revoked
    (it would no longer be found once the engine logged the teller out); cookie cleared."""
    auth = _auth(request)
    s: Session | None = getattr(request.state, "session", None)
    if s is not None:
        auth.revoke(s)
    response.headers.append("set-cookie", auth.cookie(None, kind))


# --- who may do what ---------------------------------------------------------------------

_PUBLIC_POST = re.compile(
    r"/api/(tickets|tickets/[A-Za-z0-9]{1,12}/(reprint|form)|appointments/redeem|auth/logout"
    r"|auth/lobby)"
)
_INSERT_FRONT = re.compile(r"/api/tickets/[A-Za-z0-9]{1,12}/insert-front")


def rule_for(method: str, path: str) -> Rule:
    """What a request needs: ``window`` is decided by the window routes' own dependency
    (:data:`TellerWindow`) on the number they act on; the gate only 404s a path there
    that does not spell a window plainly."""
    if path.startswith("/api/windows/"):
        return "window"
    if path.startswith("/api/lobby/"):
        return "lobby"
    if method in SAFE_METHODS:
        return "public"
    if method == "POST" and _PUBLIC_POST.fullmatch(path):
        return "public"
    if _INSERT_FRONT.fullmatch(path):
        return "staff"
    return "lobby"


class StaffGate:
    """ASGI middleware applying :func:`rule_for` to every ``/api/`` request."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], auth: Auth
                 ) -> None:
        self.app, self.auth = app, auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        rule = rule_for(request.method, scope["path"])
        try:
            if rule == "window" and not plainly_spelled(scope):
                raise Denied("not_found")  # never "public": no handler sees it
            if rule == "staff" or rule == "lobby":
                self.auth.check(request, rule)
        except Denied as denied:
            await denied.response()(scope, receive, send)
            return
        await self.app(scope, receive, send)


def guard(app: FastAPI, auth: Auth) -> None:
    """Put the staff rules on ``app`` (after its routes): the gate, the answer to a
    :class:`Denied`, and the check that every window route reads its window as it should."""
    guard_window_routes(app)

    async def denied(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Denied)
        return exc.response()

    app.add_exception_handler(Denied, denied)
    app.add_middleware(StaffGate, auth=auth)


# --- routes ------------------------------------------------------------------------------


class LobbyLogin(BaseModel):
    user: str = Field(max_length=32)
    password: str = Field(max_length=128)


router = APIRouter(tags=["auth"])


@router.post("/api/auth/lobby")
async def lobby_login(req: LobbyLogin, request: Request, response: Response, auth: AuthDep
                      ) -> dict[str, Any]:
    """Log a lobby manager (大堂经理) in: a token, a CSRF token and a cookie."""
    async with login_attempt(request, "lobby", req.user):
        manager = next((m for m in auth.web.lobby_managers if m.id == req.user), None)
        if manager is None or not await asyncio.to_thread(
                verify_password, manager.password_hash, req.password):
            raise Denied("wrong_password")
    return {"user": manager.id, "name": manager.name,
            **grant_session(request, response, "lobby", manager.id)}


@router.get("/api/auth/session")
async def session(request: Request, auth: AuthDep, kind: KindQuery = "teller") -> JSONResponse:
    """The caller's session of ``kind`` (pages ask on load), with its CSRF token."""
    s, _ = auth.session_of(request, (kind,))
    if s is None:
        return error_response("login_required")
    name = _name(auth, s)
    return JSONResponse({"kind": s.kind, "user": s.user, "name": name, "window": s.window,
                         "csrf_token": auth.csrf(s), "expires_at": round(s.expires)})


@router.post("/api/auth/logout")
async def logout(request: Request, auth: AuthDep, kind: KindQuery = "lobby") -> JSONResponse:
    """End a page session (a teller's window logout is ``/api/windows/{n}/logout``)."""
    s, _ = auth.session_of(request, (kind,))
    if s is not None:
        auth.revoke(s)
    return JSONResponse({"logged_out": s is not None},
                        headers={"set-cookie": auth.cookie(None, kind)})


def _name(auth: Auth, s: Session) -> str:
    if s.kind == "teller":
        teller = auth.box.config.teller(s.user)
        return teller.name if teller else s.user
    return next((m.name for m in auth.web.lobby_managers if m.id == s.user), s.user)


def kiosk_answer(request: Request, view: dict[str, Any]) -> dict[str, Any]:
    """A ticket as the kiosk gets it, with the token that lets it (and only it) reprint."""
    screens = getattr(request.app.state, "screens", None)
    if screens is not None:
        view["reprint_token"] = screens["auth"].reprint_token(view["id"])
    return view


def is_staff(request: Request) -> bool:
    """Whether the request carries a teller's or lobby manager's session. Without the
    screens (and their staff gate) the API is a trusted local one: staff, as it were."""
    screens = getattr(request.app.state, "screens", None)
    if screens is None:
        return True
    return screens["auth"].session_of(request, ("teller", "lobby"))[0] is not None


def may_reprint(request: Request, ticket_id: str, token: str | None) -> bool:
    """A staff session, or the token the issuing kiosk was given."""
    if is_staff(request):
        return True
    auth: Auth = request.app.state.screens["auth"]
    return bool(token) and hmac.compare_digest(str(token), auth.reprint_token(ticket_id))
