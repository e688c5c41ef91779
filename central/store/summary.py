"""Report summaries maintained at ingest: events folded into counters, exactly once.

The write side of the reports: the store keeps these tables as part of every ingest, and
the reports (:mod:`central.reports`) only read them. :func:`summarize` runs inside the
store's ingest transaction (one call at the end of :meth:`central.store.Store.ingest`).
For each branch journal the transaction touched it reads the stored
events between the journal's summary cursor (``rpt_cursor``) and its new contiguous mark,
in seq order, folds them into the summary tables and moves the cursor — all in the same
transaction. So:

* a replayed or duplicated batch stores nothing new and moves no mark: nothing is counted
  twice;
* events that arrive ahead of a gap are stored but wait: they are folded, in order, in
  the transaction that fills the gap;
* a crash rolls back the events, the counters and the cursor together.

Each event adds to the counters of the moment and business it happened in (the 15-minute
slot of its ``at`` in the province's time zone, its business ``day``) — in the day, month
and year tables alike, so a year report reads one year's rows, not twelve months'; what a ticket
must remember between events (issue time, customer type, whether it has been called,
where a no-show was counted) is kept in ``rpt_ticket``. The definitions are in
docs/reports.md; :data:`MEASURES` lists the columns every summary table shares.

Bad ratings are also noted in ``alert_inbox`` for the alert rules (central/alerts.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .quality import RECON, judge_days
from .reader import rows_for_keys

if TYPE_CHECKING:
    from .reader import Reader, Writer
    from .records import Mark

__all__ = [
    "MAX_MEASURES",
    "MEASURES",
    "MIN_MEASURES",
    "WAIT_BANDS",
    "report_timezone",
    "summarize",
]

log = logging.getLogger(__name__)

MEASURES = (
    "issued", "called", "recalled", "served", "no_show", "not_served", "transferred",
    "wait_n", "wait_sum", "wait_max", "wait_le2", "wait_le5", "wait_le10", "wait_gt10",
    "over15", "over30", "over60",
    "handle_n", "handle_sum", "handle_min", "handle_max", "calls_max",
    "rated", "rating_sum", "rating_bad",
)
MAX_MEASURES = frozenset({"wait_max", "handle_max", "calls_max"})
MIN_MEASURES = frozenset({"handle_min"})
# E1 bands (seed: 2分钟以内, 3-5分钟, 6-10分钟, 10分钟以上), upper bounds in seconds.
WAIT_BANDS = (("wait_le2", 120.0), ("wait_le5", 300.0), ("wait_le10", 600.0),
              ("wait_gt10", float("inf")))
LONG_WAITS = (("over15", 900.0), ("over30", 1800.0), ("over60", 3600.0))  # E5
CHUNK = 5000

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_zones: weakref.WeakKeyDictionary[Any, ZoneInfo] = weakref.WeakKeyDictionary()

# --- the tables ----------------------------------------------------------------------------
# name -> key columns; every one of them carries all MEASURES.
CUBES = {
    "rpt_slot": ("day", "branch", "minute", "queue", "ctype"),
    "rpt_day": ("day", "branch", "queue", "ctype", "teller"),
    "rpt_month": ("month", "branch", "queue", "ctype", "teller"),
    "rpt_hour": ("month", "branch", "hour", "queue", "ctype"),
    "rpt_year": ("year", "branch", "queue", "ctype", "teller"),
    "rpt_hour_year": ("year", "branch", "hour", "queue", "ctype"),
}
RATINGS = {"rpt_rating_day": "day", "rpt_rating_month": "month", "rpt_rating_year": "year"}
GRAIN = {"day": 10, "month": 7, "year": 4}  # a business day's first characters: its period

Measures = dict[str, float]


@dataclass(slots=True)
class Ticket:
    """``rpt_ticket``: a ticket's memory between events."""

    branch: str
    epoch: str
    ticket: str
    day: str
    number: str
    queue: str
    queue_now: str
    ctype: str
    issued_at: float
    called_at: float | None = None
    wait_s: float | None = None
    calls: int = 0
    teller: str | None = None
    win: int | None = None
    outcome: str = ""
    outcome_at: float | None = None
    outcome_queue: str | None = None
    outcome_teller: str | None = None
    handle_s: float | None = None
    score: int | None = None
    bad: int | None = None
    rated_at: float | None = None
    long_wait: float | None = None  # the E5 wait, when over the first band (15 min)
    appointment: str | None = None  # the booking it redeemed (I5), until it is voided


TICKET_COLUMNS = tuple(Ticket.__dataclass_fields__)


@dataclass
class Fold:
    """What one transaction adds: measure deltas per moment and business (rolled up into
    each summary table when written), tickets, bookkeeping."""

    tz: ZoneInfo
    # (day, branch, epoch, slot start minute, hour, queue, ctype, teller) -> measures
    fine: dict[tuple[str, str, str, int, int, str, str, str], Measures] = field(
        default_factory=dict)
    ratings: dict[str, dict[tuple[Any, ...], list[int]]] = field(
        default_factory=lambda: {name: {} for name in RATINGS})
    tickets: dict[tuple[str, str, str], Ticket] = field(default_factory=dict)
    looked_up: set[tuple[str, str, str]] = field(default_factory=set)  # asked of rpt_ticket
    dirty: set[tuple[str, str, str]] = field(default_factory=set)
    days: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    inbox: list[tuple[str, str, float, str]] = field(default_factory=list)
    slots: dict[int, tuple[int, int]] = field(default_factory=dict)  # at // 900 -> local
    missing: int = 0  # events naming a ticket never issued
    unusable: int = 0  # events missing a field the summaries need

    # --- adding --------------------------------------------------------------------------

    def add(self, branch: str, epoch: str, day: str, at: float, queue: str, ctype: str,
            teller: str, measures: Measures) -> None:
        """Add ``measures`` to the summaries of this moment and business."""
        minute, hour = self._local(at)
        key = (day, branch, epoch, minute, hour, queue, ctype, teller)
        row = self.fine.get(key)
        if row is None:
            self.fine[key] = dict(measures)
        else:
            _merge(row, measures)

    def _local(self, at: float) -> tuple[int, int]:
        """(local minute of day the 15-minute slot starts at, local hour) of ``at``.

        Cached per UTC quarter-hour: zones move in whole quarter-hours, so a UTC slot is
        one local slot."""
        quarter = int(at // 900)
        hit = self.slots.get(quarter)
        if hit is None:
            local = dt.datetime.fromtimestamp(quarter * 900, self.tz)
            hit = self.slots[quarter] = (local.hour * 60 + local.minute // 15 * 15, local.hour)
        return hit

    def rate(self, branch: str, day: str, teller: str, queue: str, ctype: str, score: int,
             bad: bool) -> None:
        for name, grain in RATINGS.items():
            key = (day[:GRAIN[grain]], branch, teller, queue, ctype, score)
            row = self.ratings[name].setdefault(key, [0, 0])
            row[0] += 1
            row[1] += int(bad)

    def count_event(self, branch: str, epoch: str, day: str, seq: int) -> None:
        row = self.days.get((day, branch, epoch))
        if row is None:
            self.days[(day, branch, epoch)] = [1, seq, seq]
        else:
            row[0] += 1
            row[1], row[2] = min(row[1], seq), max(row[2], seq)

    # --- rolling up ----------------------------------------------------------------------

    def cubes(self) -> dict[str, dict[tuple[Any, ...], Measures]]:
        """The deltas of each summary table, by its key."""
        out: dict[str, dict[tuple[Any, ...], Measures]] = {name: {} for name in CUBES}
        for (day, branch, _, minute, hour, queue, ctype, teller), m in self.fine.items():
            month, year = day[:7], day[:4]
            for name, key in (("rpt_slot", (day, branch, minute, queue, ctype)),
                              ("rpt_day", (day, branch, queue, ctype, teller)),
                              ("rpt_month", (month, branch, queue, ctype, teller)),
                              ("rpt_hour", (month, branch, hour, queue, ctype)),
                              ("rpt_year", (year, branch, queue, ctype, teller)),
                              ("rpt_hour_year", (year, branch, hour, queue, ctype))):
                row = out[name].get(key)
                if row is None:
                    out[name][key] = dict(m)
                else:
                    _merge(row, m)
        return out

    def recon(self) -> dict[tuple[str, str, str, str], list[int]]:
        """``rpt_recon`` deltas: (day, branch, epoch, queue) -> RECON counts."""
        out: dict[tuple[str, str, str, str], list[int]] = {}
        for (day, branch, epoch, _, _, queue, _, _), m in self.fine.items():
            if not any(k in m for k in RECON):
                continue
            row = out.setdefault((day, branch, epoch, queue), [0] * len(RECON))
            for i, k in enumerate(RECON):
                row[i] += int(m.get(k, 0))
        return out


def _merge(row: Measures, more: Measures) -> None:
    for k, v in more.items():
        old = row.get(k)
        if old is None:
            row[k] = v
        elif k in MAX_MEASURES:
            if v > old:
                row[k] = v
        elif k in MIN_MEASURES:
            if v < old:
                row[k] = v
        else:
            row[k] = old + v


# --- the entry point -------------------------------------------------------------------------


def summarize(store: Writer, marks: Iterable[Mark],
              arrived: Mapping[tuple[str, str], Mapping[int, dict[str, Any]]] | None = None,
              totals: Iterable[Mapping[str, Any]] = ()) -> int:
    """Fold each journal's events from its summary cursor to its contiguous mark, and
    judge the totals of the days they touch and of the ``totals`` that came in.

    Runs inside the caller's transaction; returns the number of events folded.
    ``arrived`` — the events this transaction stored, by (branch, epoch) and seq — saves
    reading them back; whatever it lacks is read from the ``events`` table.
    """
    marks = list(marks)
    cursors = _cursors(store, [(m.branch, m.epoch) for m in marks])
    todo = []
    for m in marks:
        through = cursors.get((m.branch, m.epoch), 0)
        if m.contiguous > through:
            todo.append((m.branch, m.epoch, through, m.contiguous))
    sent = {(str(t["day"]), str(t["branch"])): t for t in totals}
    if not todo:
        judge_days(store, sent, sent)
        return 0
    fold = Fold(report_timezone(store))
    _prefetch_tickets(store, fold, todo, arrived or {})
    folded = 0
    for branch, epoch, low, high in todo:
        here = (arrived or {}).get((branch, epoch)) or {}
        for events in _events(store, branch, epoch, low, high, here):
            _load_tickets(store, fold, branch, epoch, events)
            for e in events:
                fold.count_event(branch, epoch, e["day"], e["seq"])
                try:
                    _fold_event(fold, branch, epoch, e)
                except (KeyError, TypeError, ValueError) as exc:  # a malformed event
                    fold.unusable += 1  # stored as sent; only the summaries skip it
                    log.warning("summaries: %s seq %s (%s) skipped: %r", branch,
                                e.get("seq"), e.get("type"), exc)
            folded += len(events)
    _write(store, fold, todo)
    judge_days(store, {(d, b) for d, b, _ in fold.days} | set(sent), sent)
    if fold.missing:
        log.warning("summaries: %d events named a ticket never issued", fold.missing)
    return folded


def _events(store: Writer, branch: str, epoch: str, low: int, high: int,
            here: Mapping[int, dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Events low+1..high in seq order: from ``here`` while it has them, else the table."""
    while low < high:
        run: list[dict[str, Any]] = []
        while low < high and (low + 1) in here and len(run) < CHUNK:
            low += 1
            run.append(here[low])
        if run:
            yield run
            continue
        stop = low
        while stop < high and (stop + 1) not in here:
            stop += 1
        yield from _read(store, branch, epoch, low, stop)
        low = stop


def report_timezone(store: Reader) -> ZoneInfo:
    """The province's time zone (``report_settings.timezone``), read once per connection."""
    tz = _zones.get(store)
    if tz is None:
        row = store.execute("SELECT value FROM report_settings WHERE name = 'timezone'"
                            ).fetchone()
        name = row[0] if row else "Asia/Shanghai"
        try:
            tz = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.error("report_settings.timezone %r is not a time zone; using Asia/Shanghai",
                      name)
            tz = ZoneInfo("Asia/Shanghai")
        _zones[store] = tz
    return tz


def _cursors(store: Writer, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The summary cursor of each (branch, epoch), in one query per 500 branches: a commit
    of a fleet's traffic touches hundreds of branches, an event or two each."""
    wanted, out = set(keys), {}
    for branch, epoch, through in rows_for_keys(
            store, "SELECT branch, epoch, through FROM rpt_cursor WHERE branch IN ({keys})",
            sorted({b for b, _ in keys})):
        if (branch, epoch) in wanted:
            out[branch, epoch] = int(through)
    return out


def _read(store: Writer, branch: str, epoch: str, low: int, high: int
          ) -> Iterator[list[dict[str, Any]]]:
    while low < high:
        rows = store.execute("SELECT body FROM events WHERE branch = ? AND epoch = ? "
                             "AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                             (branch, epoch, low, high, CHUNK)).fetchall()
        if not rows:
            return
        events = [json.loads(r[0]) if isinstance(r[0], str | bytes) else r[0] for r in rows]
        yield events
        low = int(events[-1]["seq"])


def _named(branch: str, epoch: str, events: list[dict[str, Any]]
           ) -> set[tuple[str, str, str]]:
    """The tickets these events name that they do not issue themselves."""
    issued = {e.get("ticket") for e in events if e.get("type") == "ticket_issued"}
    return {(branch, epoch, t) for e in events
            if (t := e.get("ticket")) and isinstance(t, str) and t not in issued}


def _prefetch_tickets(store: Writer, fold: Fold, todo: list[tuple[str, str, int, int]],
                      arrived: Mapping[tuple[str, str], Mapping[int, dict[str, Any]]]) -> None:
    """Load, in a few queries, the earlier tickets that this transaction's events name
    (one query per branch was most of a fleet's commit: hundreds of branches, an event
    or two each). Events read back from the table load theirs in :func:`_load_tickets`."""
    wanted: set[tuple[str, str, str]] = set()
    for branch, epoch, low, high in todo:
        here = arrived.get((branch, epoch)) or {}
        wanted |= _named(branch, epoch, [e for s, e in here.items() if low < s <= high])
    _read_tickets(store, fold, sorted(wanted))


def _load_tickets(store: Writer, fold: Fold, branch: str, epoch: str,
                  events: list[dict[str, Any]]) -> None:
    """Load the tickets these events name that were issued in an earlier transaction."""
    _read_tickets(store, fold, sorted(k for k in _named(branch, epoch, events)
                                      if k not in fold.tickets and k not in fold.looked_up))


def _read_tickets(store: Writer, fold: Fold, keys: list[tuple[str, str, str]]) -> None:
    fold.looked_up.update(keys)  # a ticket never issued is asked for once
    cols = ", ".join(TICKET_COLUMNS)
    for row in rows_for_keys(store, f"SELECT {cols} FROM rpt_ticket WHERE (branch, epoch, "
                             "ticket) IN (VALUES {keys})", keys):
        t = Ticket(*row)
        fold.tickets[(t.branch, t.epoch, t.ticket)] = t


# --- folding one event -----------------------------------------------------------------------


def _fold_event(fold: Fold, branch: str, epoch: str, e: dict[str, Any]) -> None:
    etype = e.get("type")
    if etype == "ticket_issued":
        _issued(fold, branch, epoch, e)
        return
    handler = _TICKET_HANDLERS.get(etype or "")
    if handler is None:
        return
    key = (branch, epoch, str(e.get("ticket")))
    t = fold.tickets.get(key)
    if t is None:
        fold.missing += 1
        return
    fold.dirty.add(key)
    handler(fold, t, e)


def _issued(fold: Fold, branch: str, epoch: str, e: dict[str, Any]) -> None:
    ctype = str(e.get("customer_type") or "normal")
    t = Ticket(branch, epoch, str(e["ticket"]), e["day"], str(e.get("number", "")),
               str(e["queue"]), str(e["queue"]), ctype, float(e["at"]))
    booking = e.get("appointment")
    t.appointment = booking if isinstance(booking, str) and booking else None
    key = (branch, epoch, t.ticket)
    fold.tickets[key] = t
    fold.dirty.add(key)
    fold.add(branch, epoch, t.day, t.issued_at, t.queue, ctype, "", {"issued": 1})


def _called(fold: Fold, t: Ticket, e: dict[str, Any]) -> None:
    at, teller = float(e["at"]), str(e.get("teller") or "")
    queue, ctype = str(e.get("queue") or t.queue_now), str(e.get("customer_type") or t.ctype)
    if t.outcome == "no_show":  # called back after a no-show: that no-show is undone
        _undo_no_show(fold, t)
    t.calls += 1
    t.teller, t.win, t.queue_now = teller or None, e.get("window"), queue
    m: Measures = {"called": 1}
    if t.called_at is None:  # the first call ends the wait; later calls never restart it
        t.called_at = at
        wait = e.get("wait_s")
        t.wait_s = float(wait) if isinstance(wait, int | float) else max(0.0, at - t.issued_at)
        m.update(_wait_measures(t.wait_s))
        t.long_wait = t.wait_s if t.wait_s > LONG_WAITS[0][1] else None
    fold.add(t.branch, t.epoch, e["day"], at, queue, ctype, teller, m)


def _wait_measures(wait: float) -> Measures:
    m: Measures = {"wait_n": 1, "wait_sum": wait, "wait_max": wait}
    band = next(name for name, upper in WAIT_BANDS if wait <= upper)
    m[band] = 1
    m.update(_long_wait_measures(wait))
    return m


def _long_wait_measures(wait: float) -> Measures:
    return {name: 1 for name, limit in LONG_WAITS if wait > limit}


def _undo_no_show(fold: Fold, t: Ticket) -> None:
    fold.add(t.branch, t.epoch, t.day, t.outcome_at or t.issued_at, t.outcome_queue or t.queue_now,
             t.ctype, t.outcome_teller or "", {"no_show": -1})
    t.outcome, t.outcome_at, t.outcome_queue, t.outcome_teller = "", None, None, None


def _recalled(fold: Fold, t: Ticket, e: dict[str, Any]) -> None:
    t.calls += 1
    fold.add(t.branch, t.epoch, e["day"], float(e["at"]), t.queue_now, t.ctype,
             str(e.get("teller") or ""), {"recalled": 1})


def _outcome(t: Ticket, e: dict[str, Any], outcome: str, teller: str) -> str:
    t.outcome, t.outcome_at = outcome, float(e["at"])
    t.outcome_queue = str(e.get("queue") or t.queue_now)
    t.outcome_teller = teller or None
    return t.outcome_queue


def _no_show(fold: Fold, t: Ticket, e: dict[str, Any]) -> None:
    teller = str(e.get("teller") or "")
    queue = _outcome(t, e, "no_show", teller)
    fold.add(t.branch, t.epoch, e["day"], float(e["at"]), queue, t.ctype, teller, {"no_show": 1})


def _finished(fold: Fold, t: Ticket, e: dict[str, Any]) -> None:
    teller = str(e.get("teller") or "")
    queue = _outcome(t, e, "served", teller)
    handle = e.get("handle_s")
    if not isinstance(handle, int | float):
        handle = float(e["at"]) - (t.called_at or float(e["at"]))
    t.handle_s = float(handle)
    ctype = str(e.get("customer_type") or t.ctype)
    fold.add(t.branch, t.epoch, e["day"], float(e["at"]), queue, ctype, teller, {
        "served": 1, "handle_n": 1, "handle_sum": t.handle_s, "handle_min": t.handle_s,
        "handle_max": t.handle_s, "calls_max": t.calls,
    })


def _transferred(fold: Fold, t: Ticket, e: dict[str, Any]) -> None:
    from_queue = str(e.get("from_queue") or t.queue_now)
    fold.add(t.branch, t.epoch, e["day"], float(e["at"]), from_queue, t.ctype,
             str(e.get("teller") or ""), {"transferred": 1})
    if e.get("to_queue"):
        t.queue_now = str(e["to_queue"])


def _rated(fold: Fold, t: Ticket, e: dict[str, Any]) -> None:
    score, bad = int(e["score"]), bool(e.get("bad"))
    teller = str(e.get("teller") or t.outcome_teller or "")
    t.score, t.bad, t.rated_at = score, int(bad), float(e["at"])
    queue = str(e.get("queue") or t.queue_now)
    fold.add(t.branch, t.epoch, e["day"], float(e["at"]), queue, t.ctype, teller,
             {"rated": 1, "rating_sum": score, "rating_bad": int(bad)})
    fold.rate(t.branch, e["day"], teller, queue, t.ctype, score, bad)
    if bad:
        fold.inbox.append((t.branch, "bad_rating", float(e["at"]),
                           _dumps({**e, "customer_type": t.ctype})))


def _closed(fold: Fold, t: Ticket, e: dict[str, Any]) -> None:
    if e.get("state") != "not_served":
        return
    queue = _outcome(t, e, "not_served", "")
    m: Measures = {"not_served": 1}
    if t.called_at is None:  # never called: its wait ran until the day closed (E5)
        waited = float(e["at"]) - t.issued_at
        m.update(_long_wait_measures(waited))
        t.long_wait = waited if waited > LONG_WAITS[0][1] else None
    fold.add(t.branch, t.epoch, e["day"], float(e["at"]), queue, t.ctype, "", m)


def _voided(fold: Fold, t: Ticket, e: dict[str, Any]) -> None:
    """Nobody holds the number: the box makes its booking redeemable again (A6)."""
    t.appointment = None


_TICKET_HANDLERS = {
    "ticket_called": _called,
    "ticket_recalled": _recalled,
    "ticket_no_show": _no_show,
    "ticket_finished": _finished,
    "ticket_transferred": _transferred,
    "ticket_rated": _rated,
    "ticket_closed": _closed,
    "ticket_voided": _voided,
}


# --- writing ---------------------------------------------------------------------------------


def _write(store: Writer, fold: Fold, todo: list[tuple[str, str, int, int]]) -> None:
    for name, rows in fold.cubes().items():
        _upsert_cube(store, name, CUBES[name], rows)
    for name, grain in RATINGS.items():
        store.execute_many(f"INSERT INTO {name} ({grain}, branch, teller, queue, ctype, score, n, "
                           "bad) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                           f"({grain}, branch, teller, queue, ctype, score) DO UPDATE SET "
                           f"n = {name}.n + excluded.n, bad = {name}.bad + excluded.bad",
                           [(*k, n, bad) for k, (n, bad) in sorted(fold.ratings[name].items())])
    store.execute_many(
        "INSERT INTO rpt_recon (day, branch, epoch, queue, " + ", ".join(RECON)
        + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, branch, epoch, queue) "
        "DO UPDATE SET " + ", ".join(f"{k} = rpt_recon.{k} + excluded.{k}" for k in RECON),
        [(*k, *v) for k, v in sorted(fold.recon().items())])
    store.execute_many(
        "INSERT INTO rpt_branch_day (day, branch, epoch, events, first_seq, last_seq) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (day, branch, epoch) DO UPDATE SET "
        "events = rpt_branch_day.events + excluded.events, "
        f"first_seq = {_least(store, 'rpt_branch_day.first_seq', 'excluded.first_seq')}, "
        f"last_seq = {_greatest(store, 'rpt_branch_day.last_seq', 'excluded.last_seq')}",
        [(*k, *v) for k, v in sorted(fold.days.items())])
    _save_tickets(store, fold)
    store.execute_many("INSERT INTO alert_inbox (branch, kind, at, body) VALUES (?, ?, ?, ?)",
                       fold.inbox)
    store.execute_many("INSERT INTO rpt_cursor (branch, epoch, through) VALUES (?, ?, ?) "
                       "ON CONFLICT (branch, epoch) DO UPDATE SET through = excluded.through",
                       [(b, e, high) for b, e, _, high in todo])


def _upsert_cube(store: Writer, name: str, keys: tuple[str, ...],
                 rows: dict[tuple[Any, ...], Measures]) -> None:
    if not rows:
        return
    cols = (*keys, *MEASURES)
    sets = []
    for m in MEASURES:
        old, new = f"{name}.{m}", f"excluded.{m}"
        if m in MAX_MEASURES:
            sets.append(f"{m} = {_greatest(store, old, new)}")
        elif m in MIN_MEASURES:
            sets.append(f"{m} = {_least(store, old, new)}")
        else:
            sets.append(f"{m} = {old} + {new}")
    sql = (f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
           f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(sets)}")
    store.execute_many(sql, [(*k, *_values(v)) for k, v in sorted(rows.items())])


def _values(m: Measures) -> list[Any]:
    return [m.get(k, None if k in MIN_MEASURES else 0) for k in MEASURES]


def _greatest(store: Writer, a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if store.postgres else f"max({a}, {b})"


def _least(store: Writer, a: str, b: str) -> str:
    """The smaller, NULL meaning 'none yet' (PostgreSQL's LEAST already ignores NULLs)."""
    if store.postgres:
        return f"LEAST({a}, {b})"
    return f"coalesce(min({a}, {b}), {a}, {b})"


def _save_tickets(store: Writer, fold: Fold) -> None:
    if not fold.dirty:
        return
    keys = ("branch", "epoch", "ticket")
    rest = [c for c in TICKET_COLUMNS if c not in keys]
    sql = (f"INSERT INTO rpt_ticket ({', '.join(TICKET_COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(TICKET_COLUMNS))}) "
           f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
           + ", ".join(f"{c} = excluded.{c}" for c in rest))
    rows = []
    for key in sorted(fold.dirty):
        t = fold.tickets[key]
        rows.append(tuple(getattr(t, c) for c in TICKET_COLUMNS))
    store.execute_many(sql, rows)

