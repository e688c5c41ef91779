"""The centre's HTTP edge: body caps, the public routes' per-address rate limits and their
concurrency cap, and validation errors that never echo the request (docs/centre-security.md
"The HTTP edge", docs/security.md "Proxies, body caps and the public routes' limits").

One ASGI middleware, :class:`Edge`, installed outermost by :func:`install_edge`. For each
request, in this order:

1. **Rate limit** (public routes only): a token bucket per client address and kind of
   route, checked before a byte of the body is read. Kinds: ``read`` (``GET``/``HEAD`` of
   ``/api/public/…``, the customer pages ``/m``, ``/b/…``, ``/yy/…`` and
   ``/static/customer/…``), ``act`` (any other method under ``/api/public/``: sign-in, the
   code, registration, remote ticket, booking, cancel, rating) and ``sms``
   (``/api/sms/inbound`` and ``/api/wechat``: the operator's gateway and WeChat's servers
   post every customer's message from a few addresses). An IPv6 client is counted by its
   /64 (one subscriber's prefix), an IPv4 client by its address. Each kind keeps at most
   ``http.public.max_addresses`` buckets, least recently used dropped first. Empty →
   **429** ``rate_limited`` with ``Retry-After`` (seconds until a token is back).
   Staff routes have no bucket here.
2. **Body cap** (every route): common/limits.py's :class:`BodyLimit` —
   ``http.max_body_bytes`` (64 KiB), the media upload twice the media file limit (the
   route answers its own 422 naming the limit up to there), ``http.body_timeout_s``.
3. **Concurrency cap** (public routes only): at most ``http.public.max_in_flight``
   public requests in the application at once; one more → **503** ``busy`` with
   ``Retry-After`` at once, never queued. Staff requests are never counted nor refused,
   so they keep the process's time while the public routes shed load.

The client address is the connection's peer, or what a proxy named in
``http.trusted_proxies`` says in ``X-Forwarded-For`` (uvicorn rewrites it before this runs;
common/httpserver.py).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from common.httpserver import HOLD_KEY
from common.limits import BodyLimit, send_error
from protocols.media import MAX_MEDIA_BYTES

if TYPE_CHECKING:
    from .config import HttpSettings

__all__ = ["Buckets", "Edge", "client_key", "install_edge", "route_kind"]

log = logging.getLogger(__name__)

MEDIA_UPLOAD = re.compile(r"^/api/orgs/[^/]+/media/[^/]+$")
MEDIA_BODY_BYTES = 2 * MAX_MEDIA_BYTES  # the route refuses over MAX_MEDIA_BYTES itself
REPORT_EVERY_S = 60.0  # refusals are logged at most this often (a flood is long)
PAGES = ("/b/", "/yy/", "/m/", "/static/customer/")


def route_kind(method: str, path: str) -> str | None:
    """``read``, ``act`` or ``sms`` for a public route; None for a staff route."""
    if path.startswith("/api/public/"):
        return "read" if method in ("GET", "HEAD") else "act"
    if path in ("/api/sms/inbound", "/api/wechat"):  # gateways: few addresses, all customers
        return "sms"
    if path == "/m" or path.startswith(PAGES):
        return "read"
    return None


def client_key(host: str) -> str:
    """The bucket of a client address: an IPv4 address, an IPv6 /64, or (not an address:
    a proxy's odd value) its first 64 characters."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Buckets:
    """Token buckets, one per key, ``rate`` tokens a second up to ``burst``; at most
    ``max_keys`` kept (least recently used dropped: a dropped key starts full again)."""

    def __init__(self, rate: float, burst: int, max_keys: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.max_keys, self.clock = rate, burst, max_keys, clock
        self.table: OrderedDict[str, list[float]] = OrderedDict()  # key → [tokens, at]

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0 if there was one, else the seconds until there is."""
        now = self.clock()
        bucket = self.table.get(key)
        if bucket is None:
            if len(self.table) >= self.max_keys:
                self.table.popitem(last=False)
            bucket = self.table[key] = [float(self.burst), now]
        else:
            self.table.move_to_end(key)
            bucket[0] = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        return (1.0 - bucket[0]) / self.rate


class Edge:
    """ASGI middleware (see the module docstring); :func:`install_edge` puts it outermost."""

    def __init__(self, app: ASGIApp, *, http: HttpSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        pub = http.public
        self.app, self.public = app, pub
        self.buckets = {
            "read": Buckets(pub.read_per_s, pub.read_burst, pub.max_addresses, clock),
            "act": Buckets(pub.act_per_s, pub.act_burst, pub.max_addresses, clock),
            "sms": Buckets(pub.sms_per_s, pub.sms_burst, pub.max_addresses, clock),
        }
        self.body = BodyLimit(self._gated, max_bytes=http.max_body_bytes,
                              timeout_s=http.body_timeout_s, limit_for=self._cap)
        self.max_body_bytes = http.max_body_bytes
        self.in_flight = 0
        self.refused: Counter[str] = Counter()  # since the start, by code
        self._unreported: Counter[str] = Counter()
        self._reported_at: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = route_kind(scope["method"], scope["path"])
        if kind is not None and self.public.enabled:
            wait = self.buckets[kind].take(client_key((scope.get("client") or ("?",))[0]))
            if wait:
                seconds = max(1, math.ceil(wait))
                await self._refuse(scope, send, 429, "rate_limited", seconds,
                                   f"请求过于频繁,请{seconds}秒后再试。",
                                   f"Too many requests; try again in {seconds} s.")
                return
        await self.body(scope, receive, send)

    async def _gated(self, scope: Scope, receive: Receive, send: Send) -> None:
        public = self.public.enabled and route_kind(scope["method"], scope["path"]) is not None
        if not public:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.public.max_in_flight:
            seconds = self.public.busy_retry_s
            await self._refuse(scope, send, 503, "busy", seconds, "服务繁忙,请稍后再试。",
                               f"The service is busy; try again in {seconds} s.")
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _refuse(self, scope: Scope, send: Send, status: int, code: str, seconds: int,
                      message: str, message_en: str) -> None:
        """Answer at once; a request without a body keeps its connection, which the server
        then reads nothing from for ``seconds`` (common/httpserver.py ``HOLD_KEY``)."""
        self._count(code)
        keep = not _has_body(scope)  # a body not read: the connection cannot go on
        if keep:
            scope[HOLD_KEY] = seconds
        await send_error(send, status, code, message, message_en,
                         ((b"retry-after", str(seconds).encode()),), close=not keep)

    def _cap(self, scope: Scope) -> int:
        if scope["method"] == "PUT" and MEDIA_UPLOAD.match(scope["path"]):
            return max(self.max_body_bytes, MEDIA_BODY_BYTES)
        return self.max_body_bytes

    def _count(self, code: str) -> None:
        self.refused[code] += 1
        self._unreported[code] += 1
        now = time.monotonic()
        if self._reported_at is None or now - self._reported_at >= REPORT_EVERY_S:
            self._reported_at = now
            detail = ", ".join(f"{k} {n}" for k, n in sorted(self._unreported.items()))
            log.warning("public routes refused (%s); %d in flight", detail, self.in_flight)
            self._unreported.clear()


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if (name == b"content-length" and value.strip() != b"0") or \
                name == b"transfer-encoding":
            return True
    return False


def install_edge(app: FastAPI, http: HttpSettings) -> None:
    """Install :class:`Edge` outermost (call it after every other middleware) and the
    validation-error answer that does not echo the request."""
    app.add_middleware(Edge, http=http)
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]


_SPACES = re.compile(r"\s+")


def _clean(text: str, limit: int = 120) -> str:
    """Printable text only (no control, format or bidi characters), at most ``limit``."""
    spaced = _SPACES.sub(" ", text)
    return "".join(c for c in spaced if unicodedata.category(c)[0] != "C").strip()[:limit]


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """``422 invalid_request`` naming the first bad field and why — never its value (FastAPI's
    own answer echoes the whole ``input``: a 300 MB body came back whole)."""
    errors = exc.errors()
    first: dict[str, Any] = dict(errors[0]) if errors else {"loc": (), "msg": "invalid request"}
    where = _clean(".".join(str(p) for p in first.get("loc", ()) if p != "body"), 80)
    if first.get("type") == "json_invalid":
        code, zh, en = "malformed_json", "请求格式错误(JSON)。", "Malformed JSON."
    else:
        msg = _clean(str(first.get("msg", ""))).removeprefix("Value error, ")
        code, zh, en = ("invalid_request", f"请求参数错误:{where} {msg}".strip(),
                        f"Invalid request: {where}: {msg}".replace(": :", ":"))
    return JSONResponse({"error": {"code": code, "message": zh, "message_en": en},
                         "detail": en}, 422)
