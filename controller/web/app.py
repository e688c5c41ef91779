"""The box's HTTP app: its JSON API (OpenAPI at ``/openapi.json``) and its screens.

Every command route builds an engine command and runs it through :meth:`Box.execute`, the
same path the keypads take, so the API obeys exactly the rules the counters do. Errors are
``{"error": {"code", "message", "message_en"}}`` with a 4xx status; bad input never 500s
(error_handlers.py).

The routes live in module-level routers, one module per area, whose handlers get the box
and its services as typed dependencies (deps.py); :func:`create_app` only puts the
services on ``app.state`` and includes the routers and the middleware:

==================  ===================================================================
``tickets.py``      ``/api/tickets…``: take, reprint, read, insert at the front
``windows.py``      ``/api/windows/{n}/…``: a teller's commands (TellerWindow)
``branch.py``       businesses paused, kiosks signed in, status, health, public config
``metrics.py``      ``/metrics``
``events.py``       ``/api/events/stream`` (SSE) and ``/api/live``
``auth.py``         ``/api/auth/…`` (lobby login, session, logout); the staff gate
``staff.py``        the soft caller's panel and the lobby manager's overview
``pages.py``        the HTML pages; ``media.py`` the kiosk's media files
``fastpath.py``     the ticket and the call-next, the busiest two, past FastAPI's routing
==================  ===================================================================
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from common import __version__
from common.limits import install_limits

from ..box import Box
from . import (
    appointments,
    auth,
    branch,
    events,
    forms,
    media,
    metrics,
    pages,
    staff,
    tickets,
    windows,
)
from .auth import guard
from .deps import screens_for
from .error_handlers import ERROR_HANDLERS
from .fastpath import FastPath

__all__ = ["API_ROUTERS", "create_app"]

API_ROUTERS: tuple[APIRouter, ...] = (
    metrics.router, tickets.router, windows.router, branch.router,
    events.router, auth.router, staff.router, forms.router,
)


# FastAPI 0.165+ asks OpenTelemetry on every request whether anybody configured it; the box
# has no OpenTelemetry, so it says so once (older FastAPI has no such argument)
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI).parameters else {})


def create_app(box: Box) -> FastAPI:
    """The box's app: routes, the staff gate and the body limits (outermost)."""
    app = FastAPI(
        title="paidui branch box",
        version=__version__,
        description="排队联网 branch controller: tickets, windows, ratings, status.",
        **_NO_TELEMETRY,
    )
    app.state.box = box
    app.state.screens = screens = screens_for(box)
    for kind, handler in ERROR_HANDLERS.items():
        app.add_exception_handler(kind, handler)
    for router in (*API_ROUTERS, pages.router, appointments.router, media.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.add_middleware(FastPath)  # the ticket and the call, inside the gate (fastpath.py)
    guard(app, screens["auth"])  # after every route: it checks how window routes read theirs
    install_limits(app, box.config.http)  # body cap and deadline, outermost (limits.py)
    return app
