"""What the box's routes are given: its services, as typed FastAPI dependencies.

:func:`~controller.web.app.create_app` keeps the box on ``app.state.box`` and the services
the pages and the staff rules share (:class:`Screens`, built once by :func:`screens_for`)
on ``app.state.screens``. A route asks for what it needs by type, never through a closure::

    @router.get("/api/status")
    async def status(box: BoxDep) -> dict[str, Any]: ...

``WebDep`` is the ``[web]`` section of the box's current configuration (the pages').

The other services have their dependency next to their class: ``AuthDep`` and the window
dependencies in :mod:`controller.web.auth`, ``HubDep`` in :mod:`controller.web.events`,
``MediaFolder`` in :mod:`controller.web.media`. A test can build an app of one router with
a fake on ``app.state``, or call a handler with the services as arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypedDict

from fastapi import Depends, Request

from ..box import Box
from ..engine import Event
from ..engine import commands as c
from ..web_settings import WebSettings, web_settings
from .auth import Auth, load_secret
from .events import EventHub
from .idempotency import asked

__all__ = ["BoxDep", "Screens", "WebDep", "box_of", "run", "screens_for", "web_of"]


class Screens(TypedDict):
    """The services of the box's screens and staff rules, on ``app.state.screens``."""

    hub: EventHub  # committed events to every screen (events.py)
    auth: Auth  # staff sessions (auth.py)
    web: WebSettings  # the ``[web]`` section: pages, logins
    media: Path  # the kiosk's media folder (media.py)


def screens_for(box: Box) -> Screens:
    """The screens' services for ``box``; the hub starts listening to it at once."""
    web = web_settings(box.config)
    auth = Auth(box, web, load_secret(box.data_dir))
    hub = EventHub(box, ping_s=web.ping_seconds, reprint_token=auth.reprint_token).attach()
    return Screens(hub=hub, auth=auth, web=web, media=web.media_path(box.data_dir))


async def box_of(request: Request) -> Box:
    """The box the app serves (async: a dependency FastAPI need not run in a thread)."""
    box: Box = request.app.state.box
    return box


BoxDep = Annotated[Box, Depends(box_of)]


async def web_of(request: Request) -> WebSettings:
    """The ``[web]`` section of the box's configuration as it is now: a push replaces
    ``box.config``, and a page must not pair the new configuration with the old layout
    (a kiosk button naming a removed business). Validating it takes microseconds."""
    return web_settings(request.app.state.box.config)


WebDep = Annotated[WebSettings, Depends(web_of)]


async def run(box: Box, cmd: c.Command) -> list[Event]:
    """Run ``cmd`` as the keypads do, with the request's idempotency key (idempotency.py)."""
    return await box.execute(cmd, asked())
