"""The centre's HTTP API (minimal; the dashboard issue builds on the store).

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

from fastapi import Body, FastAPI, HTTPException, Path, Query
from fastapi.responses import PlainTextResponse

from protocols import uplink as proto
from protocols.metrics import CONTENT_TYPE, render

from .customers import mount_customers
from .reconcile import reconcile_day
from .reports.api import head_office_router

if TYPE_CHECKING:
    from .service import Centre

__all__ = ["create_app"]

Code = Annotated[str, Path(pattern=r"^\d{4,16}$", description="branch code")]


def create_app(centre: Centre) -> FastAPI:
    app = FastAPI(title="paidui centre", description="排队联网 centre: ingest, live, reconcile.")
    if centre.releases is not None:  # /api/releases: files, manifests, offers (F4)
        from .releases import releases_router

        app.include_router(releases_router(centre.releases,
                                           base_url=centre.config.releases.base_url))

    @app.get("/api/branches", tags=["live"])
    async def branches() -> dict[str, Any]:
        rows = await centre.read(lambda s: s.branches())
        lags = {b: lag for b, _, _, lag in await centre.read(lambda s: s.lags())}
        return {"branches": [_summary(r, lags.get(r["branch"])) for r in rows]}

    @app.get("/api/branches/{code}", tags=["live"])
    async def branch(code: Code) -> dict[str, Any]:
        rows = await centre.read(lambda s: s.branches())
        found = [r for r in rows if r["branch"] == code]
        if not found:
            raise HTTPException(404, f"no branch {code}")
        lags = {b: lag for b, _, _, lag in await centre.read(lambda s: s.lags())}
        return {**_summary(found[0], lags.get(code)), "live": found[0]["live"],
                "health": found[0]["health"]}

    @app.post("/api/branches/{code}/commands/{name}", tags=["commands"], status_code=202)
    async def command(code: Code, name: str,
                      args: Annotated[dict[str, Any] | None, Body()] = None) -> dict[str, Any]:
        """Send a command; the box answers on ``reply`` (see the replies route)."""
        if name not in proto.COMMANDS:
            raise HTTPException(404, f"unknown command {name!r}; known: {list(proto.COMMANDS)}")
        try:
            cmd_id = await centre.send_command(code, name, args or {})
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        except ConnectionError as exc:
            raise HTTPException(503, str(exc)) from None
        return {"id": cmd_id, "branch": code, "cmd": name}

    @app.get("/api/branches/{code}/replies/{cmd_id}", tags=["commands"])
    async def reply(code: Code, cmd_id: str) -> dict[str, Any]:
        found = await centre.read(lambda s: s.reply(code, cmd_id))
        if found is None:
            raise HTTPException(404, "no reply yet")
        return found

    @app.get("/api/reconcile", tags=["reconcile"])
    async def reconcile(day: Annotated[dt.date, Query(description="YYYY-MM-DD")]
                        ) -> dict[str, Any]:
        bands = centre.config.reconcile.long_wait_minutes
        return await centre.read(lambda s: reconcile_day(s, day.isoformat(), bands))

    @app.get("/api/dead-letters", tags=["operations"])
    async def dead_letters(limit: Annotated[int, Query(ge=1, le=1000)] = 100
                           ) -> dict[str, Any]:
        counts = await centre.read(lambda s: s.dead_letter_counts())
        rows = await centre.read(lambda s: s.dead_letters(limit))
        return {"counts": counts, "latest": rows}

    app.include_router(head_office_router(centre))  # reports and alerts (central/reports)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(render(await centre.metrics()), media_type=CONTENT_TYPE)

    if centre.customers is not None:  # appointments, remote tickets, public status, SMS
        mount_customers(app, centre.customers)
    return app


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
