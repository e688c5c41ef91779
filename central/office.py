"""The centre's people-facing side: the gate, the live board, the back office, the pages.

:class:`Office` belongs to the centre process (``centre.office``, built by
:class:`~central.service.Centre`) and runs beside its consumers: it prepares the store once
(first administrator, the configured organisation tree and branch configurations) and keeps
the live board current.
:func:`mount_office` adds its routes to the centre's FastAPI app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from common.clock import Clock, SystemClock
from common.tasks import still_cancelling

from .auth import ApiError, Gate
from .orgs import parent_code, seed_orgs

if TYPE_CHECKING:
    from .context import CentreContext, PublishingContext

__all__ = ["Office", "head_office", "mount_office"]

log = logging.getLogger(__name__)


class Office:
    """The gate, the live board and the one-time preparation of the store."""

    def __init__(self, centre: PublishingContext, clock: Clock | None = None) -> None:
        from .live import LiveBoard

        self.centre = centre
        self.settings = centre.config.web
        clock = clock or SystemClock()  # the centre's one clock (central/service.py)
        self.gate = Gate(centre, self.settings, clock.now)
        self.board = LiveBoard(centre, self.settings.live, clock)
        self._prepared = False
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        """Prepare the store, then keep the live board current until cancelled. A failure
        to prepare (the store is away) is logged and tried again: it never ends the centre."""
        delay = 0.5
        while not self._prepared:
            still_cancelling()
            try:
                await self.prepare()
            except Exception as exc:
                log.error("cannot prepare the back office: %s; trying again", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        await self.board.run()

    async def prepare(self) -> None:
        """Once: the first administrator, the seeded org tree and branch configurations."""
        async with self._lock:
            if self._prepared:
                return
            await self.gate.bootstrap()
            added = await self.centre.read(lambda s: seed_orgs(s, self.settings.orgs))
            if added:
                log.info("organisation tree: %d node(s) added from the config", added)
            from .configs import seed_configs

            await seed_configs(self.centre, self.settings.orgs)
            self._prepared = True


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
           (b"x-frame-options", b"DENY")]


class Prepared:
    """ASGI middleware: the store is prepared before the first request is answered, and
    every answer says ``nosniff``, same-origin referrers and no framing."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]],
                 office: Office) -> None:
        self.app, self.office = app, office

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.office._prepared:
            await self.office.prepare()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


def mount_office(app: FastAPI, office: Office) -> None:
    """Add logins, users, the org tree, the live dashboard, the back office, staffing, the
    reports and the alerts, and the pages."""
    from . import accounts, backoffice, live, media, pages, staffing

    app.state.gate = office.gate
    app.state.office = office

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        if request.url.path.startswith("/api/") or request.url.path == "/metrics":
            return exc.response()
        return pages.error_page(request, exc)  # a page: the login, or a short refusal

    app.add_middleware(Prepared, office=office)
    for module in (accounts, live, backoffice, media, staffing):
        app.include_router(module.router)
    app.include_router(head_office(office.centre))  # reports, alerts
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")


def head_office(centre: CentreContext) -> APIRouter:
    """The reports and alerts routes (central/reports, central/alerts.py) for logged-in
    users, their scope passed explicitly: a user sees their scope's subtree (401 without a
    session, 403 without ``view``), acknowledges and changes thresholds as themselves
    (``control``), and branches are named as the organisation tree names them."""
    from .head_office import head_office_router

    return head_office_router(centre, scope=scope_of_user, acting=user_acting,
                              labels=tree_names)


async def scope_of_user(request: Request) -> list[str]:
    """The logged-in user's allowed org prefixes: their scope, one org code."""
    who = await request.app.state.gate.require(request, "view")
    return [who.scope]


async def user_acting(request: Request) -> str:
    who = await request.app.state.gate.require(request, "control")
    return str(who.id)


scope_of_user.permission = "view"  # type: ignore[attr-defined]
user_acting.permission = "control"  # type: ignore[attr-defined]


async def tree_names(request: Request) -> Any:
    """The branches' live names, overridden by the organisation tree's."""
    from .reports.labels import labels_from_store

    def build(store: Any) -> Any:
        base = labels_from_store(store)
        names = dict(store.execute("SELECT code, name FROM orgs").fetchall())
        return dataclasses.replace(base, branches={**base.branches, **names})

    return await request.app.state.office.centre.read(build)


BOX_FACING = re.compile(r"^/api/releases/(offer/[^/]+|[^/]+/(manifest\.json|manifest\.sig|"
                        r"files/[^/]+))$")


async def releases_guard(request: Request) -> None:
    """The software releases' routes (central/releases.py): what boxes fetch — the offer,
    the signed manifests and the files, checked against the release key on the box — stays
    open to them; the operators' views (the list of releases, which branch runs what)
    need an administrator whose scope is a whole province (a root of the tree)."""
    if BOX_FACING.match(request.url.path):
        return
    office: Office = request.app.state.office
    who = await office.gate.require(request, "users")
    if parent_code(who.scope, {o.code for o in office.board.orgs}) is not None:
        raise ApiError("out_of_scope")


releases_guard.permission = "users"  # type: ignore[attr-defined]
