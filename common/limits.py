"""Request bodies: a cap checked before reading and a deadline for the whole body.

No route of the box takes more than a few hundred bytes (a ticket, a login, a reason), so
the body of every request is read here, whole, before the application sees it:

* a ``Content-Length`` over ``http.max_body_bytes`` → **413** at once, not a byte read;
* a chunked body is counted as it arrives and cut at the cap → **413**;
* a body not complete within ``http.body_timeout_s`` of the head → **408**.

Each refusal closes the connection (``Connection: close``): what the client still sends is
not read. The application then gets the body in one piece, as if it had just arrived.
Request heads (their size and deadline) are the server's (common/httpserver.py).

The centre uses the same middleware (central/edge.py) with a ``limit_for`` that gives its
media upload a larger cap than every other route.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "install_limits", "send_error"]

log = logging.getLogger(__name__)


def install_limits(app: Any, http: Any) -> None:
    """Put :class:`BodyLimit` outermost on ``app`` with the ``[http]`` section's values."""
    app.add_middleware(BodyLimit, max_bytes=http.max_body_bytes, timeout_s=http.body_timeout_s)


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, message_en: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message, self.message_en = status, code, message, message_en


class BodyLimit:
    """ASGI middleware (see the module docstring); install it outermost.

    ``limit_for(scope)``: the cap of one request when it is not ``max_bytes`` (None: the
    same for all)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float,
                 limit_for: Callable[[Scope], int] | None = None) -> None:
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
        except _Refusal as r:
            log.info("%s %s from %s: %s", scope["method"], scope["path"],
                     (scope.get("client") or ("?",))[0], r.message_en)
            await _answer(send, r)
            return
        if body is None:  # the client went away
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        cap = self.max_bytes if self.limit_for is None else self.limit_for(scope)
        length = _content_length(scope)
        if length is not None and length > cap:
            raise _too_large(cap)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > cap:
                        raise _too_large(cap)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _Refusal(408, "request_timeout", "请求发送超时,请重试。",
                           f"The request body did not arrive within {self.timeout_s:g} s."
                           ) from None


def _too_large(cap: int) -> _Refusal:
    return _Refusal(413, "body_too_large", "请求内容过大。",
                    f"The request body is over {cap} bytes.")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value)  # h11 has refused a malformed or repeated one (400)
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the application: the body read here, then the connection's own
    (for ``http.disconnect``)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(send: Send, r: _Refusal) -> None:
    await send_error(send, r.status, r.code, r.message, r.message_en)


async def send_error(send: Send, status: int, code: str, message: str, message_en: str,
                     headers: tuple[tuple[bytes, bytes], ...] = (), *, close: bool = True
                     ) -> None:
    """Answer ``{"error": {code, message, message_en}}`` and (``close``) close the
    connection."""
    payload: dict[str, Any] = {"error": {"code": code, "message": message,
                                         "message_en": message_en}}
    data = json.dumps(payload, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        *([(b"connection", b"close")] if close else []), *headers]})
    await send({"type": "http.response.body", "body": data})
