"""What the centre keeps, and for how long (docs/store.md, "Retention").

Everything the centre stores per branch grows by the day. Each grain is kept for its own
age (``[retention]``, central/config.py), counted back from the centre's business day:

* **the detail**, every event (``events``) and every ticket (``rpt_ticket``), for
  ``detail_days`` (400 by default: a year, and the month it is compared with);
* **the day grain**, the day summaries (``rpt_slot``, ``rpt_day``, ``rpt_rating_day``,
  ``rpt_recon``, ``rpt_branch_day``, ``rpt_quality``) and the boxes' day totals
  (``totals``), for ``day_days`` (1,100: three years of day reports);
* **the month and year summaries** (``rpt_month``, ``rpt_hour``, ``rpt_rating_month``,
  ``rpt_year``, ``rpt_hour_year``, ``rpt_rating_year``) for ``month_years`` (10);
* the customer channels' days (``bookings`` with their ``booking_forms``,
  ``remote_tickets``, ``slot_counts``, ``appointment_days``) with the detail: the bookings
  report counts a booking redeemed from ``rpt_ticket``, so the two go together;
* **the centre's records** (``audit``, ``alerts`` once resolved, ``alert_sms``,
  ``dead_letters``) for ``records_days`` (400; at least 180, the six months of logs the
  Cybersecurity Law asks for), and the boxes' answers to commands (``replies``, read
  within seconds to hours) for ``replies_days`` (7), a configuration push's answer
  excepted.

Rows are deleted in batches of :data:`BATCH`, each in its own short transaction, so the
ingest and the reports are never held up for long. A table keyed by period first is
pruned by its primary key's range, one keyed by branch first (``events``, ``rpt_ticket``,
``totals``) branch by branch on its ``(branch, day)`` index, the others on an index of
their day or time column (migrations 86 and 87). An event above its journal's
contiguous mark (stored beyond a gap, not yet folded into the summaries) is never pruned,
as the box never prunes an unsent event, nor are that journal's tickets. The marks stay:
a pruned event that a box sends again is a duplicate (central/store ``_accept``), not a
new row.

The job runs on one centre instance at a time, under the ``retention`` lease
(central/service.py). Every step is idempotent: a job cut off mid-way is started again
by the next holder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Store

__all__ = ["BATCH", "SHELVES", "Shelf", "cutoffs", "prune", "prune_batch"]

BATCH = 5000  # rows deleted in one transaction, at most


@dataclass(frozen=True, slots=True)
class Shelf:
    """One table, the grain it is kept by and how its rows are found."""

    table: str
    grain: str  # "detail", "day", "month", "year", "records", "replies": its cutoff
    column: str  # the period column compared with the cutoff
    key: tuple[str, ...]  # its primary key (SQLite deletes by it)
    by_branch: bool = False  # keyed by branch first: pruned branch by branch


_RATING = ("branch", "teller", "queue", "ctype", "score")
SHELVES: tuple[Shelf, ...] = (
    Shelf("events", "detail", "day", ("branch", "epoch", "seq"), by_branch=True),
    Shelf("rpt_ticket", "detail", "day", ("branch", "epoch", "ticket"), by_branch=True),
    Shelf("totals", "day", "day", ("branch", "day"), by_branch=True),
    Shelf("rpt_slot", "day", "day", ("day", "branch", "minute", "queue", "ctype")),
    Shelf("rpt_day", "day", "day", ("day", "branch", "queue", "ctype", "teller")),
    Shelf("rpt_rating_day", "day", "day", ("day", *_RATING)),
    Shelf("rpt_recon", "day", "day", ("day", "branch", "epoch", "queue")),
    Shelf("rpt_branch_day", "day", "day", ("day", "branch", "epoch")),
    Shelf("rpt_quality", "day", "day", ("day", "branch")),
    Shelf("rpt_month", "month", "month", ("month", "branch", "queue", "ctype", "teller")),
    Shelf("rpt_hour", "month", "month", ("month", "branch", "hour", "queue", "ctype")),
    Shelf("rpt_rating_month", "month", "month", ("month", *_RATING)),
    Shelf("rpt_year", "year", "year", ("year", "branch", "queue", "ctype", "teller")),
    Shelf("rpt_hour_year", "year", "year", ("year", "branch", "hour", "queue", "ctype")),
    Shelf("rpt_rating_year", "year", "year", ("year", *_RATING)),
    # The customer channels' records of a day (its bookings before the bookings).
    Shelf("booking_forms", "detail", "day", ("booking",)),
    Shelf("bookings", "detail", "day", ("id",)),
    Shelf("remote_tickets", "detail", "day", ("token_digest",)),
    Shelf("slot_counts", "detail", "day", ("branch", "day", "queue", "slot")),
    Shelf("appointment_days", "detail", "day", ("branch", "day")),
    # What happened at the centre, by when.
    Shelf("audit", "records", "at", ("id",)),
    Shelf("alert_sms", "records", "created_at", ("id",)),
    Shelf("alerts", "records", "resolved_at", ("id",)),
    Shelf("dead_letters", "records", "received_at", ("id",)),
    Shelf("replies", "replies", "received_at", ("branch", "id")),
)

# Rows never pruned, whatever their age: an event its journal's contiguous mark has not
# passed (not folded yet), and the tickets of a journal with such a gap (folding its later
# events needs them); an alert still on (resolved_at NULL is never "older") or with a
# push to the lobby on its way; an SMS still to send; a box's answer to a configuration
# push (the branch's running version is read from them, central/configs.py).
_KEEP = {
    "events": " AND t.seq <= COALESCE((SELECT m.contiguous FROM marks m "
              "WHERE m.branch = t.branch AND m.epoch = t.epoch), 0)",
    "rpt_ticket": " AND NOT EXISTS (SELECT 1 FROM marks m WHERE m.branch = t.branch "
                  "AND m.epoch = t.epoch AND m.max_seen > m.contiguous)",
    "alerts": " AND t.push <> 'pending' AND t.clear_push <> 'pending'",
    "alert_sms": " AND t.state <> 'pending'",
    "replies": " AND t.cmd <> 'config'",
}
DAY_S = 86400.0


def cutoffs(today: dt.date, now: float, *, detail_days: int, day_days: int,
            month_years: int, records_days: int, replies_days: int) -> dict[str, str | float]:
    """The first period (or instant) kept of each grain: what is older is pruned.

    ``today`` 2026-12-07 with 400, 1100 and 10: events from 2025-11-02, day summaries from
    2023-12-03, months from 2016-12, years from 2016; the centre's records (epoch seconds)
    from ``now`` less ``records_days``, the boxes' answers less ``replies_days``."""
    return {"detail": (today - dt.timedelta(days=detail_days)).isoformat(),
            "day": (today - dt.timedelta(days=day_days)).isoformat(),
            "month": f"{today.year - month_years:04}-{today.month:02}",
            "year": f"{today.year - month_years:04}",
            "records": now - records_days * DAY_S,
            "replies": now - replies_days * DAY_S}


def prune_batch(st: Store, shelf: Shelf, cutoff: str | float, branch: str | None = None,
                limit: int = BATCH) -> int:
    """Delete up to ``limit`` rows of ``shelf`` older than ``cutoff`` (of ``branch``
    when the table is pruned branch by branch), in one transaction; returns how many."""
    where = f"t.{shelf.column} < ?" + _KEEP.get(shelf.table, "")
    args: list[object] = [cutoff, limit]
    if shelf.by_branch:
        where, args = f"t.branch = ? AND {where}", [branch, *args]
    if st.postgres:  # the row's address: no second lookup by key
        sql = (f"DELETE FROM {shelf.table} WHERE ctid = ANY(ARRAY(SELECT t.ctid "
               f"FROM {shelf.table} t WHERE {where} LIMIT ?))")
    else:  # WITHOUT ROWID tables: by their primary key
        cols = ", ".join(shelf.key)
        sql = (f"DELETE FROM {shelf.table} WHERE ({cols}) IN (SELECT "
               f"{', '.join('t.' + c for c in shelf.key)} FROM {shelf.table} t "
               f"WHERE {where} LIMIT ?)")

    def run() -> int:
        return int(st.execute(sql, args).rowcount)

    return int(st.retrying(run, idempotent=True))


def steps(st: Store, cut: dict[str, str | float]
          ) -> list[tuple[Shelf, str | float, str | None]]:
    """Each (shelf, cutoff, branch) to prune, branch-first tables once per known branch."""
    branches = [r[0] for r in st.execute("SELECT branch FROM branches ORDER BY branch")]
    return [(shelf, cut[shelf.grain], b) for shelf in SHELVES
            for b in (branches if shelf.by_branch else [None])]


def prune(st: Store, cut: dict[str, str | float], limit: int = BATCH) -> dict[str, int]:
    """Prune every shelf to ``cut`` (:func:`cutoffs`); returns the rows deleted per table.
    The centre's job runs the same steps one batch at a time (central/service.py)."""
    gone = {s.table: 0 for s in SHELVES}
    for shelf, cutoff, branch in steps(st, cut):
        while (n := prune_batch(st, shelf, cutoff, branch, limit)):
            gone[shelf.table] += n
            if n < limit:
                break
    return gone
