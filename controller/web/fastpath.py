"""The box's two busiest routes, the kiosk's ``POST /api/tickets`` and the teller's
``POST /api/windows/{n}/call-next``, without FastAPI's routing, dependency solving and
response validation: about a third of what a ticket and its call cost the box's CPU
(docs/performance.md, "The HTTP ticket path").

Same handlers, same rules. :class:`FastPath` sits inside the body limits and the staff
gate (both have run), and calls the very handlers FastAPI would — their ``@once``
idempotency included — with the arguments FastAPI would give them: the window checked by
:func:`~controller.web.auth.teller_window`, the body validated by the route's own model.
Whatever goes wrong is answered by the app's own exception handlers. Whatever it is not
sure of (a body that is not a JSON object valid for the route, another content type, a
query string, any other route or method) goes to FastAPI unchanged, before anything is
done, and is answered as before (the 400/422 words included).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import teller_window, window_number
from .deps import box_of
from .tickets import IssueRequest, issue_ticket
from .tickets import router as tickets_router
from .windows import call_next
from .windows import router as windows_router

__all__ = ["FastPath"]

WINDOWS, CALL_NEXT = "/api/windows/", "/call-next"


def _route(router: Any, path: str) -> APIRoute:
    """The router's route for ``POST path``: what FastAPI would put in ``scope["route"]``
    (the idempotency keys' fingerprint names it)."""
    return next(r for r in router.routes
                if isinstance(r, APIRoute) and r.path == path and "POST" in (r.methods or ()))


TICKETS_ROUTE = _route(tickets_router, "/api/tickets")
CALL_NEXT_ROUTE = _route(windows_router, "/api/windows/{n}/call-next")


class FastPath:
    """ASGI middleware (see the module docstring); install it inside the staff gate."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope["query_string"]:
            path: str = scope["path"]
            if path == "/api/tickets":
                await self._ticket(scope, receive, send)
                return
            if path.startswith(WINDOWS) and path.endswith(CALL_NEXT):
                n = path[len(WINDOWS):-len(CALL_NEXT)]
                if window_number(n) is not None:
                    await self._call_next(scope, receive, send, n)
                    return
        await self.app(scope, receive, send)

    async def _ticket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        req = _issue_request(scope, message)
        if req is None:  # FastAPI answers it, the body given back as it came
            await self.app(scope, _again(message, receive), send)
            return
        scope["route"], scope["path_params"] = TICKETS_ROUTE, {}
        request = Request(scope, receive)

        async def act(response: Response) -> Any:
            return await issue_ticket(req=req, request=request, box=await box_of(request),
                                      response=response)

        await _answer(scope, receive, send, request, 201, act)

    async def _call_next(self, scope: Scope, receive: Receive, send: Send, n: str) -> None:
        scope["route"], scope["path_params"] = CALL_NEXT_ROUTE, {"n": n}
        request = Request(scope, receive)

        async def act(response: Response) -> Any:
            window = await teller_window(request, n)  # the teller's session, for window n
            return await call_next(n=window, box=await box_of(request), request=request,
                                   response=response)

        await _answer(scope, receive, send, request, 200, act)


def _issue_request(scope: Scope, message: Message) -> IssueRequest | None:
    """The ticket asked for, when the body is plainly one: one JSON object sent whole as
    ``application/json``, valid for the route's model; else None (FastAPI's to answer)."""
    if message["type"] != "http.request" or message.get("more_body", False):
        return None
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    if content_type.split(b";", 1)[0].strip().lower() != b"application/json":
        return None
    try:
        data = json.loads(message.get("body", b""))
        return IssueRequest.model_validate(data) if isinstance(data, dict) else None
    except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError too
        return None


def _again(first: Message, receive: Receive) -> Receive:
    """``receive`` that gives ``first`` (already read) again, then the connection's own."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return first
        return await receive()

    return replayed


async def _answer(scope: Scope, receive: Receive, send: Send, request: Request, status: int,
                  act: Callable[[Response], Awaitable[Any]]) -> None:
    """Run ``act`` and answer as FastAPI would: its result as JSON with ``status`` and the
    headers the handler set on its sub-response, a response it returns as it is, an
    exception through the app's handlers (one without a handler goes on up: a 500)."""
    sub = Response()  # what FastAPI gives a handler that takes ``response``
    del sub.headers["content-length"]
    sub.status_code = None  # type: ignore[assignment]
    try:
        raw = await act(sub)
    except Exception as exc:
        handler = _handler_for(request, exc)
        if handler is None:
            raise
        response = await handler(request, exc)
    else:
        if isinstance(raw, Response):
            response = raw
        else:
            response = _json(raw, sub.status_code or status)
            response.headers.raw.extend(sub.headers.raw)
    await response(scope, receive, send)


def _json(content: Any, status: int) -> JSONResponse:
    try:
        return JSONResponse(content, status)
    except TypeError:  # a date, a model: what FastAPI's encoder makes of them
        return JSONResponse(jsonable_encoder(content), status)


def _handler_for(request: Request, exc: Exception) -> Callable[..., Awaitable[Response]] | None:
    """The app's handler for ``exc`` (by its class, nearest first), as Starlette looks it
    up; None for one only the server-error handler (a 500) takes."""
    handlers = request.app.exception_handlers
    for kind in type(exc).__mro__:
        if kind is Exception:
            return None
        if kind in handlers:
            handler: Callable[..., Awaitable[Response]] = handlers[kind]
            return handler
    return None
