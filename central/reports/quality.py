"""Branches with missing or disagreeing data (SPEC F3/F5), for any period, from summaries.

The reconciliation (:mod:`central.reconcile`) compares a branch's daily totals with the
events the centre stored, reading every event of the day. For a month of 2,000 branches
that is too slow for a report, so the comparison is made at ingest and kept in
``rpt_quality`` (:mod:`central.store.quality`, with the reconciliation's own comparison,
so both say the same); this report reads the verdicts.

:func:`data_quality` lists, for a period and scope: ``no_data`` (a branch expected that day
sent nothing for it), ``no_totals`` (events but no totals), ``mismatch`` (they
disagree). Days that agree are not listed; today and later days are not judged (a branch
sends a day's totals after it ends). Which branches are expected to send a day's data —
those heard from by then, and the organisation tree's branches from the day after they
were added, whether their box ever connected or not — is
:func:`central.reconcile.expected_from`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..reconcile import expected_from
from ..store.summary import report_timezone
from .scope import Period, Scope

if TYPE_CHECKING:
    from ..store.reader import Reader

__all__ = ["STATUS_NAMES", "data_quality"]

STATUS_NAMES = {
    "no_data": "没有上传数据 no data",
    "no_totals": "未上传数据总量 no totals",
    "mismatch": "数据总量不一致 totals disagree",
}


def data_quality(store: Reader, period: Period, scope: Scope, now: float | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """Every (day, branch) of ``period`` in ``scope`` whose data is missing or disagrees,
    in day and branch order; with ``limit``, the first ``limit`` + 1 of them (enough to
    say there are more: a year of 10,000 silent branches is millions)."""
    tz = report_timezone(store)
    today = dt.datetime.now(tz).date() if now is None else \
        dt.datetime.fromtimestamp(now, tz).date()
    days = [d for d in period.day_list() if dt.date.fromisoformat(d) < today]
    if not days:
        return []
    first, last = days[0], days[-1]
    where, args = scope.where(queue=False, ctype=False)
    expected = {b: since for b, since in expected_from(store).items() if scope.covers(b)}
    pairs = [first, last, *args]
    with_events = set(store.execute(
        f"SELECT DISTINCT day, branch FROM rpt_branch_day WHERE day >= ? AND day <= ?{where}",
        pairs).fetchall())
    with_totals = set(store.execute(
        f"SELECT day, branch FROM totals WHERE day >= ? AND day <= ?{where}", pairs).fetchall())
    judged = {(d, b): p for d, b, p in store.execute(
        "SELECT day, branch, problems FROM rpt_quality WHERE status = 'mismatch' AND "
        f"day >= ? AND day <= ?{where}", pairs).fetchall()}
    out, order = [], sorted(expected)
    for day in days:
        for branch in order:
            key = (day, branch)
            if key in judged:
                out.append(_row(day, branch, "mismatch", judged[key]))
            elif key in with_totals:
                continue
            elif key in with_events:
                out.append(_row(day, branch, "no_totals"))
            elif expected[branch] <= day:  # expected that day, and silent
                out.append(_row(day, branch, "no_data"))
            if limit is not None and len(out) > limit:
                return out
    return out


def _row(day: str, branch: str, status: str, problems: str = "") -> dict[str, Any]:
    return {"day": day, "branch": branch, "status": status,
            "status_name": STATUS_NAMES[status], "problems": problems}
