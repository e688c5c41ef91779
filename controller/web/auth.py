"""Staff logins for the box's pages and API: signed session tokens, cookies, CSRF, throttling.

Who may do what (the contract is in docs/api.md):

* **Public** (kiosk, hall display, anyone on the branch LAN): every ``GET`` except the
  staff views, ``POST /api/tickets``, ``POST /api/tickets/{n}/reprint``,
  ``POST /api/appointments/redeem`` and the two logins.
* **The teller of window n**: every other request under ``/api/windows/{n}/``. A teller logs
  in with ``POST /api/windows/{n}/login`` (the engine's ``Login``, unchanged); its answer
  gains ``token``, ``csrf_token`` and ``expires_at`` and sets the ``paidui_teller`` cookie.
  The session is good only while the engine has that teller logged in at that window, so a
  logout at the keypad ends it too.
* **Any staff** (a teller or a lobby manager): ``POST /api/tickets/{n}/insert-front``.
* **A lobby manager** (``[[web.lobby_managers]]``): ``/api/lobby/…`` and every other
  state-changing request (pausing a business, signing the kiosks in or out, and any route
  added later: closed by default).

A token is ``pd1.<payload>.<hmac>`` signed with a secret kept in the data directory, so
sessions survive a restart of the box. Pages send it as an HttpOnly, SameSite=Strict cookie
and must echo ``X-CSRF-Token`` on state-changing requests; integrations and tests send
``Authorization: Bearer <token>`` and need no CSRF token (no ambient credential).
Failed logins are counted per client address: ``web.login_attempts`` failures within
``web.login_window_s`` answer 429 until the oldest failure ages out.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..passwords import verify_password
from .settings import WebSettings

if TYPE_CHECKING:
    from ..box import Box

__all__ = ["Auth", "Session", "StaffGate", "auth_router"]

Kind = Literal["teller", "lobby"]
KindQuery = Annotated[Kind, Query(description="teller or lobby")]
Role = Literal["public", "login", "teller", "staff", "lobby"]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

COOKIE = {"teller": "paidui_teller", "lobby": "paidui_lobby"}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

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
}


def error_response(code: str, headers: dict[str, str] | None = None, **params: Any
                   ) -> JSONResponse:
    """The API's error shape, ``{"error": {"code", "message", "message_en"}}``."""
    status, zh, en = ERRORS[code]
    body = {"code": code, "message": zh.format(**params), "message_en": en.format(**params)}
    return JSONResponse({"error": body}, status, headers=headers)


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


class Throttle:
    """Failed logins per client address in a sliding window."""

    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts, self.window_s = attempts, window_s
        self.failures: dict[str, deque[float]] = {}

    def wait(self, key: str, now: float) -> int:
        """Seconds until ``key`` may try again (0: now)."""
        q = self.failures.get(key)
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q or len(q) < self.attempts:
            return 0
        return max(1, int(q[0] + self.window_s - now + 0.999))

    def fail(self, key: str, now: float) -> None:
        if len(self.failures) > 10_000:  # bounded memory under a spray of addresses
            self.failures.clear()
        self.failures.setdefault(key, deque()).append(now)


class Auth:
    """Issues and checks sessions for one box."""

    def __init__(self, box: Box, web: WebSettings, secret: bytes) -> None:
        self.box, self.web, self.secret = box, web, secret
        self.throttle = Throttle(web.login_attempts, web.login_window_s)
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

    def reprint_token(self, ticket_id: str) -> str:
        """What lets the kiosk that issued ``ticket_id`` print it again without a login
        (after a print failure), and nobody else duplicate somebody's number."""
        return _b64(hmac.new(self.secret, b"reprint:" + ticket_id.encode(),
                             hashlib.sha256).digest())[:22]

    def csrf_ok(self, request: Request, s: Session) -> bool:
        origin = request.headers.get("origin")
        if origin and origin.split("://", 1)[-1] != request.headers.get("host", ""):
            return False
        sent = request.headers.get("x-csrf-token", "")
        return bool(sent) and hmac.compare_digest(sent, self.csrf(s))


# --- who may do what ---------------------------------------------------------------------

_PUBLIC_POST = re.compile(
    r"^/api/(tickets|tickets/[A-Za-z0-9]{1,12}/reprint|appointments/redeem|auth/logout)$"
)
_WINDOW = re.compile(r"^/api/windows/([^/]+)/([a-z\-]+)$")
_LOGIN = re.compile(r"^/api/(windows/(\d{1,3})/login|auth/lobby)$")
_INSERT_FRONT = re.compile(r"^/api/tickets/[A-Za-z0-9]{1,12}/insert-front$")


def rule_for(method: str, path: str) -> tuple[Role, int | None]:
    """The role a request needs, and the window it concerns."""
    login = _LOGIN.match(path)
    if login and method == "POST":
        return "login", int(login.group(2)) if login.group(2) else None
    w = _WINDOW.match(path)
    if w:
        number = w.group(1)
        return "teller", int(number) if number.isdigit() and len(number) <= 3 else 0
    if path.startswith("/api/lobby/"):
        return "lobby", None
    if method in SAFE_METHODS:
        return "public", None
    if method == "POST" and _PUBLIC_POST.match(path):
        return "public", None
    if _INSERT_FRONT.match(path):
        return "staff", None
    return "lobby", None


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
        role, window = rule_for(request.method, scope["path"])
        if role == "teller" and self.auth.box.config.window(window or 0) is None:
            role = "public"  # no such window: the API refuses it (404/422), nothing happens
        if role == "public":
            await self.app(scope, receive, send)
        elif role == "login":
            await self._login(scope, receive, send, request, window)
        else:
            denied = self._deny(request, role, window)
            if denied is not None:
                await denied(scope, receive, send)
            elif role == "teller" and scope["path"].endswith("/logout"):
                s, _ = self.auth.session_of(request, ("teller",))
                await self.app(scope, receive, _after_logout(send, self.auth, s))
            else:
                await self.app(scope, receive, send)

    def _deny(self, request: Request, role: Role, window: int | None) -> JSONResponse | None:
        kinds: tuple[Kind, ...] = (
            ("teller",) if role == "teller" else ("lobby",) if role == "lobby"
            else ("teller", "lobby"))
        s, by_cookie = self.auth.session_of(request, kinds)
        if s is None:
            if role == "lobby" and self.auth.session_of(request, ("teller",))[0] is not None:
                return error_response("forbidden")
            return error_response("login_required")
        if role == "teller" and s.window != window:
            return error_response("wrong_window")
        if by_cookie and request.method not in SAFE_METHODS and not self.auth.csrf_ok(request, s):
            return error_response("csrf_failed")
        return None

    async def _login(self, scope: Scope, receive: Receive, send: Send, request: Request,
                     window: int | None) -> None:
        now = self.auth.box.clock.now()
        address = request.client.host if request.client else "unknown"
        wait = self.auth.throttle.wait(address, now)
        if wait:
            await error_response("too_many_attempts", {"Retry-After": str(wait)}, wait=wait)(
                scope, receive, send)
        elif window is None:
            await self.app(scope, receive, send)  # the lobby login counts its own failures
        else:
            await self.app(scope, receive, _teller_login(send, self.auth, window, address))


def _teller_login(send: Send, auth: Auth, window: int, address: str) -> Send:
    """Wraps ``send`` of ``/api/windows/{n}/login``: a success gains a session."""
    start: Message = {}
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body" or not start:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if start["status"] == 200:
            data = json.loads(body)
            s = auth.issue("teller", str(data["teller"]), window)
            data.update(auth.grant(s))
            body = json.dumps(data, ensure_ascii=False).encode()
            headers.append((b"set-cookie", auth.cookie(s, "teller").encode()))
        elif start["status"] in (401, 403):
            auth.throttle.fail(address, auth.box.clock.now())
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


def _after_logout(send: Send, auth: Auth, s: Session | None) -> Send:
    """Wraps ``send`` of a window logout: a success ends the page's session too."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 200:
            if s is not None:
                auth.revoke(s)
            headers = [*message.get("headers", []),
                       (b"set-cookie", auth.cookie(None, "teller").encode())]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


# --- routes ------------------------------------------------------------------------------


class LobbyLogin(BaseModel):
    user: str = Field(max_length=32)
    password: str = Field(max_length=128)


def auth_router(auth: Auth) -> APIRouter:
    router = APIRouter(tags=["auth"])

    @router.post("/api/auth/lobby")
    async def lobby_login(req: LobbyLogin, request: Request) -> JSONResponse:
        """Log a lobby manager (大堂经理) in: a token, a CSRF token and a cookie."""
        manager = next((m for m in auth.web.lobby_managers if m.id == req.user), None)
        ok = manager is not None and await asyncio.to_thread(
            verify_password, manager.password_hash, req.password)
        if manager is None or not ok:
            address = request.client.host if request.client else "unknown"
            auth.throttle.fail(address, auth.box.clock.now())
            return error_response("wrong_password")
        s = auth.issue("lobby", manager.id)
        body = {"user": manager.id, "name": manager.name, **auth.grant(s)}
        return JSONResponse(body, headers={"set-cookie": auth.cookie(s, "lobby")})

    @router.get("/api/auth/session")
    async def session(request: Request, kind: KindQuery = "teller") -> JSONResponse:
        """The caller's session of ``kind`` (pages ask on load), with its CSRF token."""
        s, _ = auth.session_of(request, (kind,))
        if s is None:
            return error_response("login_required")
        name = _name(auth, s)
        return JSONResponse({"kind": s.kind, "user": s.user, "name": name, "window": s.window,
                             "csrf_token": auth.csrf(s), "expires_at": round(s.expires)})

    @router.post("/api/auth/logout")
    async def logout(request: Request, kind: KindQuery = "lobby") -> JSONResponse:
        """End a page session (a teller's window logout is ``/api/windows/{n}/logout``)."""
        s, _ = auth.session_of(request, (kind,))
        if s is not None:
            auth.revoke(s)
        return JSONResponse({"logged_out": s is not None},
                            headers={"set-cookie": auth.cookie(None, kind)})

    return router


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
