"""Branches with missing or disagreeing data (SPEC F3/F5), for any period, from summaries.

The reconciliation (:mod:`central.reconcile`) compares a branch's daily totals with the
events the centre stored, reading every event of the day. For a month of 2,000 branches
that is too slow for a report, so the comparison is made at ingest and kept:
:func:`judge_days` runs inside the ingest transaction (from
:func:`~central.reports.summary.summarize`) when a branch's totals arrive and whenever the
events of a day that has totals are folded, and stores the verdict in ``rpt_quality``.
It compares the totals with what the ingest summed up — ``rpt_recon`` (per business:
issued by the business issued for, transferred out of, and each ticket's final outcome —
served, no-show, not served — by the business it ended in) and ``rpt_branch_day`` (the
day's events and seq range) — per journal epoch, with the reconciliation's own comparison
(:func:`central.reconcile._differences`), so both say the same.

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
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .scope import Period, Scope
from .summary import RECON, report_timezone

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["STATUS_NAMES", "data_quality", "judge_days"]

STATUS_NAMES = {
    "no_data": "没有上传数据 no data",
    "no_totals": "未上传数据总量 no totals",
    "mismatch": "数据总量不一致 totals disagree",
}


# --- at ingest -------------------------------------------------------------------------------


def judge_days(store: Store, days: Iterable[tuple[str, str]],
               sent: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
    """Compare the totals of each (day, branch) in ``days`` (``sent``: totals that came in
    this transaction) with the summaries; store each verdict in ``rpt_quality``."""
    from ..reconcile import _differences

    rows = []
    for day, branch in sorted(set(days)):
        totals = sent.get((day, branch)) or _stored_totals(store, branch, day)
        if totals is None:
            continue
        epoch = str(totals.get("epoch"))
        try:
            problems = _differences(totals, _ours(store, day, branch, epoch))
        except (AttributeError, TypeError, ValueError) as exc:  # totals not as v1 says
            problems = [f"totals unreadable: {exc}"[:200]]
        rows.append((day, branch, epoch, "mismatch" if problems else "ok",
                     "; ".join(problems)[:2000]))
    store._many("INSERT INTO rpt_quality (day, branch, epoch, status, problems) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (day, branch) DO UPDATE SET "
                "epoch = excluded.epoch, status = excluded.status, "
                "problems = excluded.problems", rows)


def _stored_totals(store: Store, branch: str, day: str) -> dict[str, Any] | None:
    row = store.execute("SELECT body FROM totals WHERE branch = ? AND day = ?",
                        (branch, day)).fetchone()
    if row is None:
        return None
    body = json.loads(row[0]) if isinstance(row[0], str | bytes) else row[0]
    return body if isinstance(body, dict) else None


def _ours(store: Store, day: str, branch: str, epoch: str) -> dict[str, Any]:
    """What the centre holds for the day, shaped like :func:`protocols.uplink.day_totals`."""
    row = store.execute("SELECT events, first_seq, last_seq FROM rpt_branch_day "
                        "WHERE day = ? AND branch = ? AND epoch = ?",
                        (day, branch, epoch)).fetchone()
    events, first, last = (int(row[0]), int(row[1]), int(row[2])) if row else (0, None, None)
    queues = {q: {k: int(v) for k, v in zip(RECON, figures, strict=True)}
              for q, *figures in store.execute(
                  f"SELECT queue, {', '.join(RECON)} FROM rpt_recon WHERE day = ? AND "
                  "branch = ? AND epoch = ?", (day, branch, epoch)).fetchall()}
    return {"events": events, "first_seq": first, "last_seq": last, "queues": queues}


# --- the report ------------------------------------------------------------------------------


def data_quality(store: Store, period: Period, scope: Scope, now: float | None = None
                 ) -> list[dict[str, Any]]:
    """Every (day, branch) of ``period`` in ``scope`` whose data is missing or disagrees."""
    from ..reconcile import expected_from

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
    out = []
    for day in days:
        for branch in sorted(expected):
            key = (day, branch)
            if key in judged:
                out.append(_row(day, branch, "mismatch", judged[key]))
            elif key in with_totals:
                continue
            elif key in with_events:
                out.append(_row(day, branch, "no_totals"))
            elif expected[branch] <= day:  # expected that day, and silent
                out.append(_row(day, branch, "no_data"))
    return out


def _row(day: str, branch: str, status: str, problems: str = "") -> dict[str, Any]:
    return {"day": day, "branch": branch, "status": status,
            "status_name": STATUS_NAMES[status], "problems": problems}
