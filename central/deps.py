"""The typed FastAPI dependencies the centre's routers ask for.

The routers are module-level ``APIRouter``s; their handlers name what they need in their
signatures and FastAPI hands it over per request:

* the services, from ``request.app.state`` (set by :func:`central.web.create_app`):
  :data:`ContextDep` (the narrow :class:`~central.context.CentreContext`: configuration,
  store reads, commands — what most routes need), :data:`GateDep`, :data:`BoardDep`,
  :data:`ChannelsDep` (:data:`MaybeChannels` where the channels may be off);
  :data:`CentreDep` (the whole process) only where a route needs more than these (the
  metrics);
* the software releases (:mod:`central.releases`, also served by a process of its own):
  :data:`ReleasesDep`, :data:`ReleasesBase`;
* the caller, a :class:`~central.auth.Principal` holding a permission (401 without a
  session, 403 without the permission): :data:`Viewer`, :data:`Controller`,
  :data:`Configurer`, :data:`Auditor`, :data:`UsersAdmin`, :data:`OrgsAdmin`.

A test builds an app with ``app.state.centre`` (and the rest) and includes one router.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from .auth import Principal, need

if TYPE_CHECKING:
    from .auth import Gate
    from .context import CentreContext
    from .customers import CustomerChannels
    from .live import LiveBoard
    from .releases import ReleaseStore
    from .service import Centre

__all__ = ["Auditor", "BoardDep", "CentreDep", "ChannelsDep", "Configurer", "ContextDep",
           "Controller", "GateDep", "MaybeChannels", "OrgsAdmin", "ReleasesBase", "ReleasesDep",
           "UsersAdmin", "Viewer", "board_of", "centre_of", "channels_of", "context_of",
           "gate_of", "maybe_channels_of", "releases_base_of", "releases_of"]


def centre_of(request: Request) -> Centre:
    """The centre whose app answers the request."""
    centre: Centre = request.app.state.centre
    return centre


def context_of(request: Request) -> CentreContext:
    """The centre as a route sees it: configuration, store reads, commands to branches."""
    context: CentreContext = request.app.state.centre
    return context


def gate_of(request: Request) -> Gate:
    """The back office's gate: logins, sessions, permissions."""
    gate: Gate = request.app.state.gate
    return gate


def board_of(request: Request) -> LiveBoard:
    """The live board the dashboard reads."""
    board: LiveBoard = request.app.state.office.board
    return board


def channels_of(request: Request) -> CustomerChannels:
    """The customer channels (appointments, remote tickets, status, SMS)."""
    channels: CustomerChannels = request.app.state.customers
    return channels


async def maybe_channels_of(request: Request) -> CustomerChannels | None:
    """The customer channels, or None when ``customers.enabled`` is off."""
    channels: CustomerChannels | None = getattr(request.app.state, "customers", None)
    return channels


async def releases_of(request: Request) -> ReleaseStore:
    """The software releases (``app.state.releases``: :func:`central.releases.mount_releases`)."""
    store: ReleaseStore = request.app.state.releases
    return store


async def releases_base_of(request: Request) -> str:
    """The URL boxes fetch releases from: ``releases.base_url``, else the request's own."""
    base: str | None = getattr(request.app.state, "releases_base_url", None)
    return base or str(request.base_url).rstrip("/")


CentreDep = Annotated["Centre", Depends(centre_of)]
ContextDep = Annotated["CentreContext", Depends(context_of)]
GateDep = Annotated["Gate", Depends(gate_of)]
BoardDep = Annotated["LiveBoard", Depends(board_of)]
ChannelsDep = Annotated["CustomerChannels", Depends(channels_of)]
MaybeChannels = Annotated["CustomerChannels | None", Depends(maybe_channels_of)]
ReleasesDep = Annotated["ReleaseStore", Depends(releases_of)]
ReleasesBase = Annotated[str, Depends(releases_base_of)]

Viewer = Annotated[Principal, Depends(need("view"))]
Controller = Annotated[Principal, Depends(need("control"))]
Configurer = Annotated[Principal, Depends(need("configure"))]
Auditor = Annotated[Principal, Depends(need("audit"))]
UsersAdmin = Annotated[Principal, Depends(need("users"))]
OrgsAdmin = Annotated[Principal, Depends(need("orgs"))]
