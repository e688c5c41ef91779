"""The centre's HTTP API (minimal; the dashboard issue builds on the store).

Every route needs a session (``Depends(need(...))``, central/auth.py) and answers only
about the caller's org subtree: out-of-scope branches are 403, lists are filtered.
:func:`central.office.mount_office` adds logins, users, the org tree, the live
dashboard, the back office and the pages.

* ``GET /api/branches`` — the live picture: online, versions, waiting, devices, lag.
* ``GET /api/branches/{code}`` — one branch, with its latest live and health messages.
* ``POST /api/branches/{code}/commands/{name}`` — send a command (pause, resume, replay,
  config, totals, update); ``GET /api/branches/{code}/replies/{id}`` — its answer.
* ``GET /api/reconcile?day=YYYY-MM-DD`` — reconciliation and long waits (F3, F5, E5).
* ``GET /api/dead-letters`` — the latest rejected messages and the counts by reason.
* ``GET /metrics`` — Prometheus text.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse

from protocols import uplink as proto
from protocols.metrics import CONTENT_TYPE, render

from . import audit
from .auth import ApiError, Principal
from .customers import mount_customers
from .deps import CentreDep, ContextDep, Controller, GateDep, UsersAdmin, Viewer
from .edge import install_edge
from .masking import mask_event, mask_text
from .office import mount_office, releases_guard
from .reconcile import reconcile_day

if TYPE_CHECKING:
    from .service import Centre

__all__ = ["create_app", "router"]

Code = Annotated[str, Path(pattern=r"^\d{4,16}$", description="branch code")]


def create_app(centre: Centre) -> FastAPI:
    """The centre's app: the office's routers and middleware, the branch routes, the
    releases and the customer channels when configured, and the edge outermost."""
    app = FastAPI(title="paidui centre", description="排队联网 centre: ingest, live, reconcile.")
    app.state.centre = centre
    mount_office(app, centre.office)
    if centre.releases is not None:  # /api/releases: files, manifests, offers (F4)
        from .releases import mount_releases

        mount_releases(app, centre.releases, base_url=centre.config.releases.base_url,
                       dependencies=[Depends(releases_guard)])
    app.include_router(router)
    if centre.customers is not None:  # appointments, remote tickets, public status, SMS
        mount_customers(app, centre.customers)
    install_edge(app, centre.config.http)  # outermost: rate limits, body caps (edge.py)
    return app


router = APIRouter()
"""The branches' live picture and commands, reconciliation, dead letters, metrics."""


BRANCHES_PAGE = 1000  # branches per answer of /api/branches, unless asked for fewer


@router.get("/api/branches", tags=["live"])
async def branches(centre: ContextDep, who: Viewer,
                   offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                   limit: Annotated[int, Query(ge=1, le=BRANCHES_PAGE)] = BRANCHES_PAGE
                   ) -> dict[str, Any]:
    """The branches heard from in the caller's subtree, a page at a time in code order
    (``total`` says how many): 10,000 branches' live pictures are never one answer."""
    codes = [b for b in await centre.read(lambda s: s.branch_codes()) if who.sees(b)]
    page = codes[offset:offset + limit]
    rows = await centre.read(lambda s: s.branches(page)) if page else []
    lags = {b: lag for b, _, _, lag in await centre.read(lambda s: s.lags(page))}
    return {"branches": [_summary(r, lags.get(r["branch"])) for r in rows],
            "total": len(codes), "offset": offset, "limit": limit}


@router.get("/api/branches/{code}", tags=["live"])
async def branch(code: Code, centre: ContextDep, who: Viewer) -> dict[str, Any]:
    who.check(code)
    found = await centre.read(lambda s: s.branches([code]))
    if not found:
        raise HTTPException(404, f"no branch {code}")
    lags = {b: lag for b, _, _, lag in await centre.read(lambda s: s.lags([code]))}
    return {**_summary(found[0], lags.get(code)), "live": found[0]["live"],
            "health": found[0]["health"]}


@router.post("/api/branches/{code}/commands/{name}", tags=["commands"], status_code=202)
async def command(code: Code, name: str, centre: ContextDep, who: Controller,
                  args: Annotated[dict[str, Any] | None, Body()] = None) -> dict[str, Any]:
    """Send a command; the box answers on ``reply`` (see the replies route)."""
    who.check(code)
    if name == "config" and not who.can("configure"):
        raise ApiError("forbidden")
    if name == "form":  # a customer's form: only from their phone (central/forms.py), never
        raise ApiError("forbidden")  # typed by staff nor kept whole in the audit log
    if name not in proto.COMMANDS:
        raise HTTPException(404, f"unknown command {name!r}; known: {list(proto.COMMANDS)}")
    try:
        cmd_id = await centre.send_command(code, name, args or {})
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    except ConnectionError as exc:
        raise HTTPException(503, str(exc)) from None
    await centre.read(lambda s: audit.record(s, who, f"command.{name}", code, cmd_id,
                                             {k: v for k, v in (args or {}).items()
                                              if k != "config"}))
    return {"id": cmd_id, "branch": code, "cmd": name}


@router.get("/api/branches/{code}/replies/{cmd_id}", tags=["commands"])
async def reply(code: Code, cmd_id: str, centre: ContextDep, who: Viewer) -> dict[str, Any]:
    who.check(code)
    found = await centre.read(lambda s: s.reply(code, cmd_id))
    if found is None:
        raise HTTPException(404, "no reply yet")
    return mask_event(found)


@router.get("/api/reconcile", tags=["reconcile"])
async def reconcile(day: Annotated[dt.date, Query(description="YYYY-MM-DD")],
                    centre: ContextDep, who: Viewer) -> dict[str, Any]:
    bands = centre.config.reconcile.long_wait_minutes
    report = await centre.read(lambda s: reconcile_day(s, day.isoformat(), bands))
    return _scoped_report(report, who)


@router.get("/api/dead-letters", tags=["operations"])
async def dead_letters(centre: ContextDep, who: UsersAdmin,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Rejected messages about the caller's subtree (those naming no branch: any
    administrator); payloads with customers' numbers masked."""
    counts = await centre.read(lambda s: s.dead_letter_counts())
    rows = await centre.read(lambda s: s.dead_letters(limit))
    latest = [{**r, "payload": mask_text(r["payload"]), "detail": mask_text(r["detail"])}
              for r in rows if r["branch"] is None or who.sees(r["branch"])]
    return {"counts": counts, "latest": latest}


@router.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
async def metrics(request: Request, centre: CentreDep, gate: GateDep) -> PlainTextResponse:
    """Prometheus text: for a scraper with ``web.metrics_token``, or an administrator."""
    if not gate.metrics_allowed(request):
        await gate.require(request, "users")
    return PlainTextResponse(render(await centre.metrics()), media_type=CONTENT_TYPE)


def _scoped_report(report: dict[str, Any], who: Principal) -> dict[str, Any]:
    """The reconciliation limited to the caller's branches."""
    sees = who.sees
    return {
        **report,
        "branches": sum(1 for b in report["ok"] + report["no_data"] + report["no_totals"]
                        if sees(b)) + sum(1 for r in report["mismatch"] if sees(r["branch"])),
        "ok": [b for b in report["ok"] if sees(b)],
        "no_data": [b for b in report["no_data"] if sees(b)],
        "no_totals": [b for b in report["no_totals"] if sees(b)],
        "mismatch": [r for r in report["mismatch"] if sees(r["branch"])],
        "long_waits": {b: v for b, v in report["long_waits"].items() if sees(b)},
    }


def _summary(row: dict[str, Any], lag: int | None) -> dict[str, Any]:
    live = (row.get("live") or {}).get("status") or {}
    health = row.get("health") or {}
    devices = health.get("devices") or []
    return {
        "branch": row["branch"], "name": live.get("branch_name"), "online": row["online"],
        "epoch": row["epoch"], "last_seq": row["last_seq"], "lag": lag,
        "version": row["version"], "config_version": row["config_version"],
        "waiting": live.get("waiting_total"), "day": live.get("day"),
        "devices_not_ok": [d.get("name") for d in devices if d.get("state") != "ok"],
        "status_at": row["status_at"], "live_at": row["live_at"],
        "health_at": row["health_at"],
    }
