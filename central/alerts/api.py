"""The alerts' HTTP routes: ``/api/alerts`` and ``/api/alerts/thresholds``."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..auth import ApiError
from ..reports.api import ScopeOf, allowed_dependency
from ..reports.scope import OutOfScope, Scope, ScopeError, resolve_scope
from .rules import (
    DEFAULTS,
    Thresholds,
    acknowledge,
    change_thresholds,
    effective_thresholds,
    get_alert,
    list_alerts,
    load_thresholds,
    masked,
)

if TYPE_CHECKING:
    from ..context import CentreContext

__all__ = ["AckRequest", "Binding", "acting_dependency", "alerts_router", "routes"]


Acting = Callable[[Request], Awaitable[str]]
"""Who acknowledges an alert or changes thresholds: the logged-in user's id (it may raise
401/403, and carry a ``permission`` attribute the route's dependency keeps)."""
OrgPath = Annotated[str, Path(description="org code, or 'province' for every branch")]


def acting_dependency(acting: Acting | None) -> Callable[[Request], Awaitable[str | None]]:
    """A FastAPI dependency: the acting user's id from ``acting``; None when the router was
    built without one (an API without users: the request body names them)."""

    async def user(request: Request) -> str | None:
        return await acting(request) if acting is not None else None

    user.permission = getattr(acting, "permission", None)  # type: ignore[attr-defined]
    return user


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str | None = Field(None, min_length=1, max_length=64)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _within(code: str, allowed: list[str]) -> bool:
    """``code`` (``''``: the province node) lies under one of the allowed prefixes."""
    return any(code.startswith(a) for a in allowed)


def _org_key(org: str) -> str:
    if org == "province":
        return ""
    if not re.fullmatch(r"\d{1,16}", org):
        raise ValueError(f"{org[:40]!r} is not an org code (digits) or 'province'")
    return org


def alerts_router(centre: CentreContext, *, scope: ScopeOf | None, acting: Acting | None
                  ) -> APIRouter:
    """``/api/alerts``: list, one, acknowledge; ``/api/alerts/thresholds``: per org node.

    The routes are :data:`routes`'; this binds them to ``centre`` and to the caller.
    ``scope`` (required) gives the caller's allowed org prefixes: None, or a caller with
    none, answers every route ``403 out_of_scope``; the province node (``''``) is only
    within :data:`~central.reports.scope.EVERYWHERE`. ``acting`` names who acknowledges
    and who changes thresholds (None: the body's ``user``)."""
    binding = Binding(centre, allowed_dependency(scope), acting_dependency(acting))

    async def bind(request: Request) -> None:
        request.state.alerts = binding

    bind.permission = getattr(scope, "permission", None)  # type: ignore[attr-defined]
    router = APIRouter()
    router.include_router(routes, dependencies=[Depends(bind)])
    return router


@dataclass(frozen=True)
class Binding:
    """What :func:`alerts_router` binds the routes to: the centre, and how a request's
    allowed org prefixes and acting user are found."""

    centre: CentreContext
    allowed: Callable[[Request], Awaitable[list[str]]]
    acting: Callable[[Request], Awaitable[str | None]]


def _binding(request: Request) -> Binding:
    found = getattr(request.state, "alerts", None)
    if not isinstance(found, Binding):  # a route included without alerts_router: closed
        raise ApiError("out_of_scope")
    return found


async def _allowed(request: Request) -> list[str]:
    return await _binding(request).allowed(request)


async def _acting(request: Request) -> str | None:
    return await _binding(request).acting(request)


def _centre(request: Request) -> CentreContext:
    return _binding(request).centre


AlertCentre = Annotated["CentreContext", Depends(_centre)]
Allowed = Annotated[list[str], Depends(_allowed)]
Actor = Annotated[str | None, Depends(_acting)]


def _scope_of(org: list[str] | None, branch: list[str] | None, allowed: list[str]) -> Scope:
    try:
        return resolve_scope(org, branch, allowed=allowed)
    except OutOfScope as exc:
        raise ApiError("out_of_scope", message_en=str(exc)) from None
    except ScopeError as exc:
        raise HTTPException(422, str(exc)) from None


def _node(org: str, allowed: list[str]) -> str:
    try:
        code = _org_key(org)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if not _within(code, allowed):
        raise ApiError("out_of_scope", message_en=f"org {org} is outside your scope")
    return code


routes = APIRouter(tags=["alerts"])
"""The alerts' routes; include them through :func:`alerts_router`, which binds them."""


@routes.get("/api/alerts")
async def alerts(
    centre: AlertCentre,
    allowed: Allowed,
    org: Annotated[list[str] | None, Query()] = None,
    branch: Annotated[list[str] | None, Query()] = None,
    kind: Annotated[list[str] | None, Query()] = None,
    state: Annotated[str, Query(pattern="^(all|open|unacked)$")] = "all",
    after: Annotated[int, Query(ge=0, description="only ids above this, oldest first "
                                                  "(poll with the last id seen)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Alerts in the caller's scope, newest first; phone numbers masked."""
    scope = _scope_of(org, branch, allowed)
    rows = await centre.read(lambda s: list_alerts(s, scope, state=state, kinds=kind or (),
                                                   after=after, limit=limit))
    last = max([after, *(r["id"] for r in rows)])
    return {"alerts": rows, "last_id": last}


@routes.get("/api/alerts/thresholds")
async def thresholds(centre: AlertCentre, allowed: Allowed) -> dict[str, Any]:
    """Every org node's own settings (phones masked) and the built-in defaults."""
    nodes = await centre.read(load_thresholds)
    visible = {o: masked(v) for o, v in sorted(nodes.items()) if _within(o, allowed)}
    return {"defaults": DEFAULTS, "nodes": visible}


@routes.get("/api/alerts/thresholds/{org}")
async def thresholds_at(org: OrgPath, centre: AlertCentre, allowed: Allowed
                        ) -> dict[str, Any]:
    """The settings in force at an org node or branch, and the node's own."""
    code = _node(org, allowed)
    nodes = await centre.read(load_thresholds)
    return {"org": code or "province", "own": masked(nodes.get(code, {})),
            "effective": masked(effective_thresholds(nodes, code))}


@routes.put("/api/alerts/thresholds/{org}")
async def put_thresholds(org: OrgPath, request: Request,
                         body: Annotated[dict[str, Any], Body()],
                         centre: AlertCentre, allowed: Allowed, user: Actor
                         ) -> dict[str, Any]:
    """Set an org node's own settings (the keys given; the rest is inherited)."""
    code = _node(org, allowed)
    try:
        settings = Thresholds.model_validate(body).set_keys()
    except ValidationError as exc:
        raise HTTPException(422, [{"loc": list(e["loc"]), "msg": e["msg"]}
                                  for e in exc.errors()]) from None
    await centre.read(lambda s: change_thresholds(s, code, settings, user,
                                                  _address(request)))
    return await thresholds_at(org, centre, allowed)


@routes.delete("/api/alerts/thresholds/{org}")
async def delete_thresholds(org: OrgPath, request: Request, centre: AlertCentre,
                            allowed: Allowed, user: Actor) -> dict[str, Any]:
    """Remove an org node's own settings: it inherits everything again."""
    code = _node(org, allowed)
    await centre.read(lambda s: change_thresholds(s, code, None, user, _address(request)))
    return await thresholds_at(org, centre, allowed)


@routes.get("/api/alerts/{alert_id}")
async def one(alert_id: Annotated[int, Path(ge=1)], centre: AlertCentre, allowed: Allowed
              ) -> dict[str, Any]:
    found = await centre.read(lambda s: get_alert(s, alert_id))
    if found is None or not _scope_of(None, None, allowed).covers(found["branch"]):
        raise HTTPException(404, f"no alert {alert_id}")
    return found


@routes.post("/api/alerts/{alert_id}/ack")
async def ack(alert_id: Annotated[int, Path(ge=1)], request: Request, centre: AlertCentre,
              allowed: Allowed, user: Actor,
              body: Annotated[AckRequest | None, Body()] = None) -> dict[str, Any]:
    """Acknowledge an alert (确认) with the user's name; the first one stays."""
    name = user or (body.user if body else None)
    if not name:
        raise HTTPException(422, "say who acknowledges: {\"user\": \"name\"}")
    found = await centre.read(lambda s: get_alert(s, alert_id))
    if found is None or not _scope_of(None, None, allowed).covers(found["branch"]):
        raise HTTPException(404, f"no alert {alert_id}")
    done = await centre.read(lambda s: acknowledge(s, alert_id, name, _address(request)))
    assert done is not None
    return done
