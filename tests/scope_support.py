"""The head-office API (reports, alerts) on its own, built with an explicit scope that a
test sets, as the back office builds it with the logged-in user's (central/office.py).

The router takes its caller's scope and acting user as arguments; nothing is overridden.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from central.auth import ApiError
from central.head_office import head_office_router
from central.reports.scope import EVERYWHERE

__all__ = ["Caller", "head_office_client"]


class Caller:
    """Who the test's requests come from: ``allowed`` org prefixes (default: the whole
    centre), ``user`` who acknowledges (None: the request body names them)."""

    def __init__(self, allowed: Sequence[str] = EVERYWHERE, user: str | None = None) -> None:
        self.allowed, self.user = list(allowed), user

    async def scope(self, request: Request) -> list[str]:
        return list(self.allowed)

    async def acting(self, request: Request) -> Any:
        return self.user


@contextlib.asynccontextmanager
async def head_office_client(centre: Any, caller: Caller | None, base_url: str = "http://centre"
                             ) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on an app holding only the head-office router, built with
    ``caller``'s scope (None: a router built with no scope at all)."""
    app = FastAPI()

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return exc.response()

    app.include_router(head_office_router(
        centre, scope=caller.scope if caller else None,
        acting=caller.acting if caller else None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=base_url) as http:
        yield http
