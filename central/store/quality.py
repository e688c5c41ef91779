"""The data-quality verdicts kept at ingest (SPEC F3/F5): a day's totals against the summaries.

The reconciliation (:mod:`central.reconcile`) compares a branch's daily totals with the
events the centre stored, reading every event of the day. For a month of 2,000 branches
that is too slow for a report, so the comparison is made at ingest and kept:
:func:`judge_days` runs inside the ingest transaction (from
:func:`~central.store.summary.summarize`) when a branch's totals arrive and whenever the
events of a day that has totals are folded, and stores the verdict in ``rpt_quality``.
It compares the totals with what the ingest summed up — ``rpt_recon`` (per business:
issued by the business issued for, transferred out of, and each ticket's final outcome —
served, no-show, not served — by the business it ended in) and ``rpt_branch_day`` (the
day's events and seq range) — per journal epoch, with the comparison the reconciliation
uses too (:func:`totals_differences`), so both say the same.

The data-quality report that lists the verdicts is :mod:`central.reports.quality`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .reader import rows_for_keys

if TYPE_CHECKING:
    from .reader import Reader, Writer

__all__ = ["judge_days", "totals_differences"]

RECON = ("issued", "served", "no_show", "transferred", "not_served")  # rpt_recon columns


def judge_days(store: Writer, days: Iterable[tuple[str, str]],
               sent: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
    """Compare the totals of each (day, branch) in ``days`` (``sent``: totals that came in
    this transaction) with the summaries; store each verdict in ``rpt_quality``."""
    rows = []
    days = sorted(set(days))
    stored = _stored_totals(store, [k for k in days if not sent.get(k)])
    for day, branch in days:
        totals = sent.get((day, branch)) or stored.get((day, branch))
        if totals is None:
            continue
        epoch = str(totals.get("epoch"))
        try:
            problems = totals_differences(totals, _ours(store, day, branch, epoch))
        except (AttributeError, TypeError, ValueError) as exc:  # totals not as v1 says
            problems = [f"totals unreadable: {exc}"[:200]]
        rows.append((day, branch, epoch, "mismatch" if problems else "ok",
                     "; ".join(problems)[:2000]))
    store.execute_many("INSERT INTO rpt_quality (day, branch, epoch, status, problems) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (day, branch) DO UPDATE SET "
                       "epoch = excluded.epoch, status = excluded.status, "
                       "problems = excluded.problems", rows)


def _stored_totals(store: Reader, days: list[tuple[str, str]]
                   ) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored totals of these (day, branch): one query per day and 500 branches (a
    fleet's commit names hundreds of branches, and mid-day none has sent its totals)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    by_day: dict[str, list[str]] = {}
    for day, branch in days:
        by_day.setdefault(day, []).append(branch)
    for day, branches in sorted(by_day.items()):
        for branch, raw in rows_for_keys(
                store, "SELECT branch, body FROM totals WHERE day = ? AND branch IN ({keys})",
                branches, (day,)):
            body = json.loads(raw) if isinstance(raw, str | bytes) else raw
            if isinstance(body, dict):
                out[day, branch] = body
    return out


def _ours(store: Reader, day: str, branch: str, epoch: str) -> dict[str, Any]:
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


def totals_differences(sent: Mapping[str, Any], ours: Mapping[str, Any]) -> list[str]:
    """How a branch's day totals (``sent``) and the centre's (``ours``, shaped like
    :func:`protocols.uplink.day_totals`) disagree, one line each; ``[]``: they agree."""
    problems = []
    for key in ("events", "first_seq", "last_seq"):
        if sent.get(key) != ours.get(key):
            problems.append(f"{key}: branch {sent.get(key)}, centre {ours.get(key)}")
    theirs = sent.get("queues") or {}
    for queue in sorted(set(theirs) | set(ours["queues"])):
        a, b = theirs.get(queue, {}), ours["queues"].get(queue, {})
        for field in sorted(set(a) | set(b)):
            if a.get(field, 0) != b.get(field, 0):
                problems.append(f"{queue}.{field}: branch {a.get(field, 0)}, "
                                f"centre {b.get(field, 0)}")
    return problems
