"""The head office's reports over HTTP (mounted on the centre's API with the alerts by
:func:`central.head_office.head_office_router`).

Reports (docs/reports.md):

* ``GET /api/reports`` — the catalogue: id, titles, SPEC id, parameters.
* ``GET /api/reports/{report}?period=day|month|year&date=…&org=…&branch=…&queue=…
  &customer_type=…`` — one report as JSON (columns, rows, total, chart); the staff search
  (``teller-services``) also takes ``teller`` (工号, required) and ``outcome``.
* ``GET /api/reports/{report}/xlsx`` and ``/csv`` — the same rows as a download.

Alerts (docs/alerts.md): :func:`central.alerts.alerts_router`, which takes the same scope.

Scope is an explicit, required argument of the router: a function of the request giving
the org prefixes its caller may see (:data:`ScopeOf`); the back office passes the
logged-in user's (:func:`central.office.head_office`)::

    reports_router(centre, scope=users_prefixes, labels=None)

It fails closed: a router built with ``scope=None``, or a caller with no prefix, answers
every route ``403 out_of_scope``; the whole centre must be said
(:data:`~central.reports.scope.EVERYWHERE`). An org or branch outside the caller's set
answers 403; no org means the whole allowed set.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response

from ..auth import ApiError
from .catalog import REPORTS, Report, run_report
from .export import filename, to_csv, to_xlsx
from .labels import Labels, live_labels
from .scope import OutOfScope, Period, ScopeError, resolve_scope

if TYPE_CHECKING:
    from ..context import CentreContext

__all__ = ["LabelsOf", "ScopeOf", "allowed_dependency", "reports_router"]

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


ScopeOf = Callable[[Request], Awaitable[Sequence[str]]]
"""The org prefixes a request's caller may see: ``[]`` nothing, ``EVERYWHERE`` all. It
may raise (401 without a session, 403 without the permission) and may carry a
``permission`` attribute, which the routes' dependency keeps (the every-route test)."""
LabelsOf = Callable[[Request], Awaitable[Labels | None]]
"""Names for codes; None: from the branches' live snapshots."""


def allowed_dependency(scope: ScopeOf | None) -> Callable[[Request], Awaitable[list[str]]]:
    """A FastAPI dependency: the caller's allowed prefixes from ``scope``; with no scope
    function, or none of its answer, ``403 out_of_scope`` (fail closed)."""

    async def allowed(request: Request) -> list[str]:
        prefixes = list(await scope(request)) if scope is not None else []
        if not prefixes:
            raise ApiError("out_of_scope")
        return prefixes

    allowed.permission = getattr(scope, "permission", None)  # type: ignore[attr-defined]
    return allowed


def _labels_dependency(labels: LabelsOf | None) -> Callable[[Request], Awaitable[Any]]:
    async def names(request: Request) -> Labels | None:
        return await labels(request) if labels is not None else None

    return names


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
        teller: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,32}$",
                                            description="工号: the teller the staff search "
                                                        "(teller-services) lists")] = None,
        outcome: Annotated[Literal["all", "served", "not_served"],
                           Query(description="the staff search's filter")] = "all",
        rows: Annotated[int | None, Query(ge=1, le=100_000,
                                          description="JSON: send only this many rows (a "
                                                      "page; total and exports: all)")] = None,
        rows_from: Annotated[int, Query(ge=0, le=10_000_000,
                                        description="JSON: the first row sent")] = 0,
    ) -> None:
        self.date, self.period, self.org, self.branch = date, period, org, branch
        self.queue, self.customer_type, self.limit = queue, customer_type, limit
        self.teller, self.outcome = teller, outcome
        self.rows, self.rows_from = rows, rows_from


Q = Annotated[ReportQuery, Depends()]


def reports_router(centre: CentreContext, *, scope: ScopeOf | None,
                   labels: LabelsOf | None = None) -> APIRouter:
    """The reports (with the alerts: :func:`central.head_office.head_office_router`).

    Args:
        centre: the centre whose store is read.
        scope: the caller's allowed org prefixes (required; None: every route 403).
        labels: names for codes (None: from the branches' live snapshots).
    """
    router = APIRouter()
    caller = Depends(allowed_dependency(scope))  # a default, not an annotation: a local
    names = Depends(_labels_dependency(labels))  # alias would not resolve (PEP 563)

    @router.get("/api/reports", tags=["reports"])
    async def catalogue(allowed: list[str] = caller, labels: Labels | None = names
                        ) -> dict[str, Any]:
        """Every report: id, Chinese and English title, the SPEC requirement it answers;
        and the filters a page offers (``choices``): the businesses of the caller's
        branches (their live snapshots now) and the customer types."""
        seen = await centre.read(lambda s: live_labels(s, allowed))
        known: Labels = labels if labels is not None else seen
        return {"reports": [{"id": s.id, "title": s.title, "title_en": s.title_en,
                             "spec": s.spec} for s in REPORTS.values()],
                "parameters": ["period", "date", "org", "branch", "queue", "customer_type",
                               "limit", "teller", "outcome", "rows", "rows_from"],
                "formats": ["json", "xlsx", "csv"],
                "choices": {"queues": _choices(dict(sorted(seen.queues.items()))),
                            "customer_types": _choices(known.ctypes)}}

    async def compute(report: str, q: ReportQuery, allowed: list[str],
                      labels: Labels | None, *, paged: bool = False) -> Report:
        if report not in REPORTS:
            raise HTTPException(404, f"no report {report!r}; known: {', '.join(REPORTS)}")
        try:
            period = Period.parse(q.period, q.date)
            asked = resolve_scope(q.org, q.branch, q.queue, q.customer_type,
                                  allowed=allowed)
            page = (q.rows_from, q.rows) if paged and q.rows is not None else None
            return await centre.read(lambda s: run_report(
                s, report, period, asked, labels, limit=q.limit, teller=q.teller,
                outcome=q.outcome, page=page,
                now=s.clock.now()))  # the centre's clock: its "today"
        except OutOfScope as exc:
            raise ApiError("out_of_scope", message_en=str(exc)) from None
        except ScopeError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("/api/reports/{report}", tags=["reports"], response_class=Response,
                responses={200: {"content": {"application/json": {"example": EXAMPLE}},
                                 "description": "the report (docs/reports.md)"}})
    async def report_json(report: ReportId, q: Q, allowed: list[str] = caller,
                          labels: Labels | None = names) -> Response:
        """One report: ``columns`` (key, Chinese and English title, unit), ``rows``,
        ``total``, ``chart`` (what a page draws: ``series`` over ``category``), ``notes``."""
        r = await compute(report, q, allowed, labels, paged=True)
        # 60,000 rows (tellers of 10,000 branches): only the page asked for (``rows``, from
        # ``rows_from``; the grouped listings read no more from the database), not on the
        # event loop; ``rows_total`` says how many
        body = await asyncio.to_thread(_json, r, q.rows_from, q.rows)
        return Response(body, media_type="application/json")

    @router.get("/api/reports/{report}/xlsx", tags=["reports"], response_class=Response,
                responses={200: {"content": {XLSX: {}}}})
    async def report_xlsx(report: ReportId, q: Q, allowed: list[str] = caller,
                          labels: Labels | None = names) -> Response:
        """The report as an Excel workbook: header, table with units, total, chart."""
        r = await compute(report, q, allowed, labels)
        body = await asyncio.to_thread(to_xlsx, r)
        return _download(body, XLSX, filename(r, "xlsx"))

    @router.get("/api/reports/{report}/csv", tags=["reports"], response_class=Response,
                responses={200: {"content": {"text/csv": {}}}})
    async def report_csv(report: ReportId, q: Q, allowed: list[str] = caller,
                         labels: Labels | None = names) -> Response:
        """The report as CSV (UTF-8 with BOM): header row, rows, total row."""
        r = await compute(report, q, allowed, labels)
        return _download(to_csv(r), "text/csv; charset=utf-8", filename(r, "csv"))

    return router


def _choices(names: dict[str, str]) -> list[dict[str, str]]:
    return [{"id": k, "name": v} for k, v in names.items()]


def _json(report: Report, first: int = 0, count: int | None = None) -> bytes:
    out = report.to_json()
    out["rows_from"] = first
    if report.rows_total is not None:  # the report read only that page
        out["rows_total"] = report.rows_total
        return json.dumps(out, ensure_ascii=False, allow_nan=False).encode()
    out["rows_total"] = len(report.rows)
    if first or count is not None:
        out["rows"] = report.rows[first:None if count is None else first + count]
    return json.dumps(out, ensure_ascii=False, allow_nan=False).encode()


def _download(body: bytes, media_type: str, name: str) -> Response:
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
