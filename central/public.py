"""Public branch status (网点信息发布和查询, H1): waiting, current numbers, estimated waits,
the least busy branches near a place. No personal data, and no request reaches a branch.

Everything comes from the ``live`` snapshot each box keeps retained on the broker and the
centre stores (``branches.live``), read from the store at most once per ``status_ttl_s``
however many phones ask (one refresh at a time; the others wait for it). The estimated
wait of a business is those waiting times its typical handling minutes (the box's
``service_minutes``, from its catalogue) shared by the windows open for it
(:func:`protocols.appointment.wait_minutes`). Teller ids and names in the live snapshot
are left out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import time
from typing import TYPE_CHECKING, Any

from protocols import appointment as ap

from .store import Store

if TYPE_CHECKING:
    from .appointments import StorePool
    from .customer_settings import CustomerSettings

__all__ = ["PublicStatus", "distance_km", "least_busy"]

DEFAULT_SERVICE_MINUTES = 5.0
SERVING = ("open", "serving")


class PublicStatus:
    """The public picture of every branch, cached for ``ttl`` seconds, read on the customer
    channels' store pool."""

    def __init__(self, pool: StorePool, settings: CustomerSettings) -> None:
        self.pool, self.settings = pool, settings
        self._at = -math.inf
        self._data: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self.reads = 0  # store reads (a spike of requests must not multiply these)

    async def branches(self) -> dict[str, dict[str, Any]]:
        """Every branch's public status by branch code (fresh within ``status_ttl_s``)."""
        if time.monotonic() - self._at < self.settings.status_ttl_s:
            return self._data
        async with self._lock:
            if time.monotonic() - self._at >= self.settings.status_ttl_s:
                rows = await self.pool.read(_live_rows)
                self.reads += 1
                self._data = {r["branch"]: self._status(r) for r in rows}
                self._at = time.monotonic()
        return self._data

    async def branch(self, code: str) -> dict[str, Any] | None:
        return (await self.branches()).get(code)

    def _status(self, r: dict[str, Any]) -> dict[str, Any]:
        live = _json(r["live"]) or {}
        cat = _json(r["catalogue"]) or {}
        st = live.get("status") or {}
        entry = self.settings.branch(r["branch"])
        b = cat.get("branch") or {}
        minutes = {q["id"]: float(q.get("service_minutes") or DEFAULT_SERVICE_MINUTES)
                   for q in cat.get("queues", [])}
        windows = [{"number": w.get("number"), "name": w.get("name"), "state": w.get("state"),
                    "current": w.get("current"), "queues": sorted(w.get("queues") or {})}
                   for w in st.get("windows") or []]
        queues = []
        for q in st.get("queues") or []:
            open_ = sum(1 for w in windows if w["state"] in SERVING and q["id"] in w["queues"])
            waiting = int(q.get("waiting") or 0)
            queues.append({
                "id": q["id"], "name": q.get("name"), "name_en": q.get("name_en"),
                "waiting": waiting, "paused": bool(q.get("paused")), "windows_open": open_,
                "wait_minutes": ap.wait_minutes(waiting, float(
                    q.get("service_minutes") or minutes.get(q["id"], DEFAULT_SERVICE_MINUTES)),
                    open_)})
        return {
            "branch": r["branch"],
            "name": (entry.name if entry and entry.name else None) or st.get("branch_name")
            or b.get("name") or r["branch"],
            "address": entry.address if entry else "",
            "latitude": _first(entry.latitude if entry else None, b.get("latitude")),
            "longitude": _first(entry.longitude if entry else None, b.get("longitude")),
            "online": bool(r["online"]), "day": st.get("day"),
            "waiting_total": int(st.get("waiting_total") or 0),
            "queues": queues, "windows": windows,
            "updated_at": _iso(live.get("at") or r["live_at"], self.settings.tz),  # branch's
        }


def _live_rows(st: Store) -> list[dict[str, Any]]:
    cur = st.execute("SELECT b.branch, b.online, b.live, b.live_at, c.body AS catalogue FROM "
                     "branches b LEFT JOIN branch_catalogue c ON c.branch = b.branch "
                     "WHERE b.live IS NOT NULL ORDER BY b.branch")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _iso(ts: float | None, tz: Any) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, tz).isoformat(
        timespec="seconds")


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0088 * 2 * math.asin(math.sqrt(min(1.0, a)))


def least_busy(branches: list[dict[str, Any]], lat: float, lon: float, *,
               queue: str | None = None, radius_km: float = 10.0, limit: int = 5
               ) -> list[dict[str, Any]]:
    """The online branches within ``radius_km`` (else the ``limit`` nearest), least busy
    first: by the estimated wait of ``queue`` if given, else the shortest wait of any
    business open there; ties by distance."""
    placed = [(distance_km(lat, lon, b["latitude"], b["longitude"]), b) for b in branches
              if b["online"] and b["latitude"] is not None and b["longitude"] is not None]
    placed.sort(key=lambda x: x[0])
    near = [x for x in placed if x[0] <= radius_km] or placed[:limit]
    ranked = []
    for km, b in near:
        waits = [q for q in b["queues"] if (queue is None or q["id"] == queue)
                 and not q["paused"]]
        if not waits:
            continue
        best = min(waits, key=lambda q: q["wait_minutes"])
        ranked.append((best["wait_minutes"], km, b, best))
    ranked.sort(key=lambda x: (x[0], x[1]))
    return [{**b, "distance_km": round(km, 2), "wait_minutes": wait, "best_queue": q["id"]}
            for wait, km, b, q in ranked[:limit]]
