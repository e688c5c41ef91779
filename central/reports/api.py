"""The head office's reports and alerts over HTTP (mounted on the centre's API).

Reports (docs/reports.md):

* ``GET /api/reports`` — the catalogue: id, titles, SPEC id, parameters.
* ``GET /api/reports/{report}?period=day|month|year&date=…&org=…&branch=…&queue=…
  &customer_type=…`` — one report as JSON (columns, rows, total, chart).
* ``GET /api/reports/{report}/xlsx`` and ``/csv`` — the same rows as a download.

Alerts (docs/alerts.md): see :func:`central.alerts.alerts_router`.

Scope: every route takes the caller's allowed org prefixes from the
:func:`allowed_prefixes` dependency (default: everything). The back office enforces a
user's scope with one override::

    app.dependency_overrides[allowed_prefixes] = my_users_prefixes  # -> list[str] | None

An org or branch outside that set answers 403; no org means the whole allowed set.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response

from .catalog import REPORTS, Report, run_report
from .export import filename, to_csv, to_xlsx
from .labels import Labels, live_labels
from .scope import OutOfScope, Period, ScopeError, resolve_scope

if TYPE_CHECKING:
    from ..service import Centre

__all__ = ["allowed_prefixes", "head_office_router", "report_labels"]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXAMPLE = {
    "report": "wait-by-type", "title": "客户平均等待时间及分布(按客户类型)",
    "title_en": "Average wait and wait distribution by customer type", "spec": "E1",
    "period": {"kind": "day", "value": "2026-11-25", "label": "2026年11月25日"},
    "scope": {"orgs": ["1001"], "branches": None, "queues": None, "customer_types": None,
              "label": "机构 org 1001"},
    "generated_at": "2026-11-26T10:00:00+08:00",
    "columns": [{"key": "avg_wait", "title": "平均等待时间", "title_en": "Average wait",
                 "unit": "分钟", "unit_en": "min",
                 "header": "平均等待时间(分钟) Average wait (min)"}],
    "rows": [{"ctype": "normal", "ctype_name": "普通客户", "avg_wait": 7.75}],
    "total": {"label": "合计 Total", "avg_wait": 7.6},
    "chart": {"kind": "column", "title": "等待时间分布", "category": "ctype_name",
              "series": ["le2_pct"], "stacked": False, "y_title": "%"},
    "notes": [],
}


def allowed_prefixes() -> list[str] | None:
    """The org prefixes the caller may see; None: all. Overridden by the back office."""
    return None


def report_labels() -> Labels | None:
    """Names for codes; None: from the branches' live snapshots. The back office, which
    holds the branch configurations, may override it."""
    return None


ReportId = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,40}$", description="report id, see "
                                                                         "GET /api/reports")]


class ReportQuery:
    """The query parameters every report takes."""

    def __init__(
        self,
        date: Annotated[str, Query(description="2026-11-25 (day), 2026-11 (month), 2026 "
                                               "(year)")],
        period: Annotated[Literal["day", "month", "year"], Query()] = "day",
        org: Annotated[list[str] | None, Query(description="org code(s): the node and its "
                                                           "subtree; repeat for several")
                       ] = None,
        branch: Annotated[list[str] | None, Query(description="branch code(s) to narrow to")
                          ] = None,
        queue: Annotated[list[str] | None, Query(description="business id(s)")] = None,
        customer_type: Annotated[list[str] | None, Query(description="customer type id(s)")
                                 ] = None,
        limit: Annotated[int, Query(ge=1, le=100_000,
                                    description="rows of a listing report")] = 5000,
    ) -> None:
        self.date, self.period, self.org, self.branch = date, period, org, branch
        self.queue, self.customer_type, self.limit = queue, customer_type, limit


Allowed = Annotated[list[str] | None, Depends(allowed_prefixes)]
Names = Annotated[Labels | None, Depends(report_labels)]
Q = Annotated[ReportQuery, Depends()]


def head_office_router(centre: Centre) -> APIRouter:
    """Reports and alerts; ``app.include_router(head_office_router(centre))``."""
    from ..alerts import alerts_router

    router = APIRouter()

    @router.get("/api/reports", tags=["reports"])
    async def catalogue(allowed: Allowed, labels: Names) -> dict[str, Any]:
        """Every report: id, Chinese and English title, the SPEC requirement it answers;
        and the filters a page offers (``choices``): the businesses of the caller's
        branches (their live snapshots now) and the customer types."""
        seen = await centre.read(lambda s: live_labels(s, allowed))
        names: Labels = labels if labels is not None else seen
        return {"reports": [{"id": s.id, "title": s.title, "title_en": s.title_en,
                             "spec": s.spec} for s in REPORTS.values()],
                "parameters": ["period", "date", "org", "branch", "queue", "customer_type",
                               "limit"],
                "formats": ["json", "xlsx", "csv"],
                "choices": {"queues": _choices(dict(sorted(seen.queues.items()))),
                            "customer_types": _choices(names.ctypes)}}

    async def compute(report: str, q: ReportQuery, allowed: list[str] | None,
                      labels: Labels | None) -> Report:
        if report not in REPORTS:
            raise HTTPException(404, f"no report {report!r}; known: {', '.join(REPORTS)}")
        try:
            period = Period.parse(q.period, q.date)
            scope = resolve_scope(q.org, q.branch, q.queue, q.customer_type, allowed)
        except OutOfScope as exc:
            raise HTTPException(403, str(exc)) from None
        except ScopeError as exc:
            raise HTTPException(422, str(exc)) from None
        return await centre.read(lambda s: run_report(s, report, period, scope, labels,
                                                      limit=q.limit))

    @router.get("/api/reports/{report}", tags=["reports"], response_class=Response,
                responses={200: {"content": {"application/json": {"example": EXAMPLE}},
                                 "description": "the report (docs/reports.md)"}})
    async def report_json(report: ReportId, q: Q, allowed: Allowed, labels: Names
                          ) -> Response:
        """One report: ``columns`` (key, Chinese and English title, unit), ``rows``,
        ``total``, ``chart`` (what a page draws: ``series`` over ``category``), ``notes``."""
        r = await compute(report, q, allowed, labels)
        body = await asyncio.to_thread(_json, r)  # 12,000 rows: not on the event loop
        return Response(body, media_type="application/json")

    @router.get("/api/reports/{report}/xlsx", tags=["reports"], response_class=Response,
                responses={200: {"content": {XLSX: {}}}})
    async def report_xlsx(report: ReportId, q: Q, allowed: Allowed, labels: Names
                          ) -> Response:
        """The report as an Excel workbook: header, table with units, total, chart."""
        r = await compute(report, q, allowed, labels)
        body = await asyncio.to_thread(to_xlsx, r)
        return _download(body, XLSX, filename(r, "xlsx"))

    @router.get("/api/reports/{report}/csv", tags=["reports"], response_class=Response,
                responses={200: {"content": {"text/csv": {}}}})
    async def report_csv(report: ReportId, q: Q, allowed: Allowed, labels: Names
                         ) -> Response:
        """The report as CSV (UTF-8 with BOM): header row, rows, total row."""
        r = await compute(report, q, allowed, labels)
        return _download(to_csv(r), "text/csv; charset=utf-8", filename(r, "csv"))

    router.include_router(alerts_router(centre))
    return router


def _choices(names: dict[str, str]) -> list[dict[str, str]]:
    return [{"id": k, "name": v} for k, v in names.items()]


def _json(report: Report) -> bytes:
    return json.dumps(report.to_json(), ensure_ascii=False, allow_nan=False).encode()


def _download(body: bytes, media_type: str, name: str) -> Response:
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
