"""Branches with missing or disagreeing data (SPEC F3/F5), for any period, from summaries.

The reconciliation (:mod:`central.reconcile`) compares a branch's daily totals with the
events the centre stored, reading every event of the day. For a month of 2,000 branches
that is too slow for a report, so this module compares the same totals with what the
ingest summed up (``rpt_recon``): per business issued (by the business issued for),
transferred (out of), and each ticket's final outcome (served, no-show, not served) by the
business it ended in; plus the day's number of events and seq range per journal epoch.
Both are kept per journal epoch (``rpt_recon``, ``rpt_branch_day``), so a day that spans
two journals is compared for the epoch its totals name, as the reconciliation does. The
comparison itself is the reconciliation's own (:func:`central.reconcile._differences`).

Statuses: ``no_data`` (a known branch sent nothing for the day), ``no_totals`` (events but
no totals), ``mismatch`` (they disagree). Days that agree are not listed. Today and later
days are not judged: the branch sends a day's totals after it ends.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ..reconcile import _differences
from .scope import Period, Scope
from .summary import RECON, report_timezone

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["STATUS_NAMES", "data_quality"]

STATUS_NAMES = {
    "no_data": "没有上传数据 no data",
    "no_totals": "未上传数据总量 no totals",
    "mismatch": "数据总量不一致 totals disagree",
}


def data_quality(store: Store, period: Period, scope: Scope, now: float | None = None
                 ) -> list[dict[str, Any]]:
    """Every (day, branch) of ``period`` in ``scope`` whose data is missing or disagrees."""
    tz = report_timezone(store)
    today = dt.datetime.now(tz).date() if now is None else \
        dt.datetime.fromtimestamp(now, tz).date()
    days = [d for d in period.day_list() if dt.date.fromisoformat(d) < today]
    if not days:
        return []
    first, last = days[0], days[-1]
    known = {r["branch"]: float(r["first_seen"]) for r in store.branches()
             if scope.covers(r["branch"])}
    sent = _totals(store, first, last, scope)
    counts = _event_counts(store, first, last, scope)
    queues = _queue_figures(store, first, last, scope)
    out = []
    for day in days:
        end = dt.datetime.combine(dt.date.fromisoformat(day) + dt.timedelta(days=1),
                                  dt.time(), tz).timestamp()
        for branch in sorted(known):
            if known[branch] >= end:
                continue  # not known yet that day
            found = _judge(branch, day, sent.get((day, branch)),
                           counts.get((day, branch), {}), queues.get((day, branch), {}))
            if found is not None:
                out.append(found)
    return out


def _judge(branch: str, day: str, totals: dict[str, Any] | None,
           epochs: dict[str, tuple[int, int, int]],
           queues: dict[str, dict[str, dict[str, int]]]) -> dict[str, Any] | None:
    problems: list[str] = []
    if totals is None:
        status = "no_totals" if epochs else "no_data"
    else:
        epoch = totals["epoch"]
        events, first_seq, last_seq = epochs.get(epoch, (0, None, None))
        ours = {"events": events, "first_seq": first_seq, "last_seq": last_seq,
                "queues": queues.get(epoch, {})}
        problems = _differences(totals, ours)
        status = "mismatch" if problems else "ok"
    if status == "ok":
        return None
    return {"day": day, "branch": branch, "status": status,
            "status_name": STATUS_NAMES[status], "problems": "; ".join(problems)}


def _totals(store: Store, first: str, last: str, scope: Scope
            ) -> dict[tuple[str, str], dict[str, Any]]:
    where, args = scope.where(queue=False, ctype=False)
    rows = store.execute(f"SELECT day, branch, body FROM totals WHERE day >= ? AND day <= ?"
                         f"{where}", [first, last, *args])
    return {(d, b): (json.loads(body) if isinstance(body, str | bytes) else body)
            for d, b, body in rows}


def _event_counts(store: Store, first: str, last: str, scope: Scope
                  ) -> dict[tuple[str, str], dict[str, tuple[int, int, int]]]:
    where, args = scope.where(queue=False, ctype=False)
    rows = store.execute("SELECT day, branch, epoch, events, first_seq, last_seq "
                         f"FROM rpt_branch_day WHERE day >= ? AND day <= ?{where}",
                         [first, last, *args])
    out: dict[tuple[str, str], dict[str, tuple[int, int, int]]] = defaultdict(dict)
    for d, b, epoch, n, lo, hi in rows:
        out[(d, b)][epoch] = (int(n), int(lo), int(hi))
    return out


def _queue_figures(store: Store, first: str, last: str, scope: Scope
                   ) -> dict[tuple[str, str], dict[str, dict[str, dict[str, int]]]]:
    """(day, branch) → epoch → business → the reconciliation's figures."""
    where, args = scope.where(queue=False, ctype=False)
    rows = store.execute(f"SELECT day, branch, epoch, queue, {', '.join(RECON)} FROM rpt_recon "
                         f"WHERE day >= ? AND day <= ?{where}", [first, last, *args])
    out: dict[tuple[str, str], dict[str, dict[str, dict[str, int]]]] = defaultdict(dict)
    for d, b, epoch, q, *figures in rows:
        out[(d, b)].setdefault(epoch, {})[q] = {
            o: int(v or 0) for o, v in zip(RECON, figures, strict=True)}
    return out
