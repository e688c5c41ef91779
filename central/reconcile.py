"""Daily reconciliation (数据总量对账, SPEC F3/F5) and long-wait exceptions (E5).

Each branch sends the previous day's totals and seq range; the centre recomputes the
same totals (:func:`protocols.uplink.day_totals`) from the events it stored and compares.

A branch is reported as

* ``ok`` — its totals and the stored events agree;
* ``mismatch`` — they disagree (``problems`` says how; ``replay`` lists the missing seq
  ranges to ask for again, or the day's whole range when nothing is missing but the
  counts still differ);
* ``no_totals`` — events are stored but the branch sent no totals;
* ``no_data`` — a known branch that sent nothing at all for the day.

Known: every branch the centre has heard from, and every branch of the organisation tree
(an org node of kind ``branch``) from the day after it was added to the tree — so a box
that never connected is missed too, while a branch added today is not missed for today
or earlier days. :func:`expected_from` says from which day each branch is expected (a
branch heard from: the day it was first heard); the data-quality report and the
``no_data`` alert (:mod:`central.reports.quality`) use it as it is.

Long waits: the first call's wait (or, for a ticket never served, the time from issue
to the day's close) over each band (15/30/60 minutes by default), counted per branch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from protocols.uplink import day_totals

from .orgs import tree_branches
from .store import Store
from .store.quality import totals_differences
from .store.reader import Reader
from .store.summary import report_timezone

__all__ = ["check_branch", "expected_from", "long_waits", "reconcile_day"]


def expected_from(store: Reader) -> dict[str, str]:
    """Each branch that should report, with the first day (YYYY-MM-DD) it should."""
    tz = report_timezone(store)

    def day(ts: float, later: int = 0) -> str:
        return (dt.datetime.fromtimestamp(ts, tz).date() + dt.timedelta(days=later)).isoformat()

    out = {b: day(added, 1) for b, added in tree_branches(store).items()}
    for row in store.branches():
        first = day(float(row["first_seen"]))
        out[row["branch"]] = min(first, out.get(row["branch"], first))
    return out


def reconcile_day(store: Store, day: str, bands: Iterable[int] = (15, 30, 60)
                  ) -> dict[str, Any]:
    """The whole province's reconciliation for ``day`` (YYYY-MM-DD)."""
    bands = list(bands)
    totals = store.totals(day)
    with_events = store.branches_with_events(day)
    # Every branch ever heard from (an operator asking about a day sees them all), and
    # the tree's branches expected that day even if their box never connected.
    known = sorted({b["branch"] for b in store.branches()}
                   | {b for b, since in expected_from(store).items() if since <= day})
    reports = [check_branch(store, branch, day, bands, totals.get(branch),
                            branch in with_events) for branch in known]
    by_status: dict[str, list[str]] = {"ok": [], "mismatch": [], "no_totals": [],
                                       "no_data": []}
    for r in reports:
        by_status[r["status"]].append(r["branch"])
    return {
        "day": day,
        "branches": len(known),
        "ok": by_status["ok"],
        "no_data": by_status["no_data"],
        "no_totals": by_status["no_totals"],
        "mismatch": [r for r in reports if r["status"] == "mismatch"],
        "long_waits": {r["branch"]: r["long_waits"] for r in reports
                       if any(r["long_waits"].values())},
    }


def check_branch(store: Store, branch: str, day: str, bands: Iterable[int] = (15, 30, 60),
                 sent: Mapping[str, Any] | None = None, has_events: bool | None = None
                 ) -> dict[str, Any]:
    """One branch's reconciliation for ``day``; see the module docstring for the statuses."""
    bands = list(bands)
    if sent is None:
        sent = store.totals(day).get(branch)
    events = store.day_events(branch, day, sent["epoch"] if sent else None) \
        if sent or has_events is not False else []
    report: dict[str, Any] = {"branch": branch, "day": day, "problems": [], "replay": [],
                              "long_waits": long_waits(events, bands)}
    if sent is None:
        report["status"] = "no_totals" if events else "no_data"
        return report
    ours = day_totals(events)
    report["problems"] = totals_differences(sent, ours)
    if report["problems"]:
        report["replay"] = _replay_ranges(store, branch, sent)
    report["status"] = "mismatch" if report["problems"] else "ok"
    report["centre"], report["branch_totals"] = ours, {k: sent.get(k) for k in ours}
    return report


def _replay_ranges(store: Store, branch: str, sent: Mapping[str, Any]
                   ) -> list[tuple[str, int, int]]:
    first, last, epoch = sent.get("first_seq"), sent.get("last_seq"), sent["epoch"]
    if not isinstance(first, int) or not isinstance(last, int):
        return []
    have = store.seqs(branch, epoch, first, last)
    ranges, expect = [], first
    for s in [*have, last + 1]:
        if s > expect:
            ranges.append((epoch, expect, s - 1))
        expect = s + 1
    return ranges or [(epoch, first, last)]


def long_waits(events: Iterable[Mapping[str, Any]], bands: Iterable[int]) -> dict[str, int]:
    """Tickets whose wait passed each band, e.g. ``{"over_15": 4, "over_30": 1, ...}``."""
    limits = sorted(bands)
    issued: dict[str, float] = {}
    waits: dict[str, float] = {}
    for e in events:
        ticket, etype = e.get("ticket"), e.get("type")
        if not ticket:
            continue
        if etype == "ticket_issued":
            issued[ticket] = float(e["at"])
        elif etype == "ticket_called" and ticket not in waits:
            waits[ticket] = float(e.get("wait_s") or 0.0)
        elif etype == "ticket_closed" and ticket not in waits and ticket in issued:
            waits[ticket] = float(e["at"]) - issued[ticket]
    return {f"over_{m}": sum(1 for w in waits.values() if w > m * 60) for m in limits}
