"""The year summaries (migration 85): a year report reads ``rpt_year``, ``rpt_hour_year``
and ``rpt_rating_year``, folded at ingest with the month tables, and says exactly what
the same report summed over the year's twelve months said before; on SQLite and
PostgreSQL (docs/reports.md, "Year summaries")."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from central.reports import catalog
from central.reports.catalog import REPORTS, run_report
from central.reports.labels import Labels
from central.reports.scope import Period, Scope
from central.store import Inbound, Store, open_store
from tests.reports_support import B1, B2, B3, B4, DayLog
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401

NOW = 1_800_000_000.0  # 2027-01-15: every day of 2026 is over
# every report the summary tables answer (the ticket listings and the data quality read
# rpt_ticket, rpt_quality, bookings: by day, whatever the period)
CUBED = [r for r in REPORTS if r not in ("long-wait-tickets", "rating-flow", "data-quality",
                                         "appointments", "teller-services")]


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def busy_days(seed: int = 7) -> list[DayLog]:
    """Four branches' days spread over 2025-12 and 2026 (each branch one journal): tickets
    of three businesses and customer types, called by three tellers, served, discarded,
    called back, transferred, left waiting, rated."""
    rng = random.Random(seed)
    days = sorted({"2025-12-30", "2026-01-05", "2026-02-28", "2026-03-01", "2026-06-15",
                   "2026-11-25", "2026-12-31", *(f"2026-{m:02d}-1{m % 9}"
                                                 for m in range(1, 13))})
    out, seqs = [], dict.fromkeys((B1, B2, B3, B4), 0)
    for day in days:
        for branch in (B1, B2, B3, B4):
            d = DayLog(branch, day, seq=seqs[branch])
            for i in range(rng.randint(3, 9)):
                number = f"{rng.choice('AAVB')}{i + 1:03d}"
                d.issue(i * 7, number, rng.choice(("normal", "normal", "vip", "corporate")))
                if rng.random() < 0.1:
                    continue  # still waiting when the day closes
                teller = rng.choice(("t1", "t2", "t3"))
                d.call(i * 7 + rng.uniform(0.5, 40), number, rng.randint(1, 3), teller)
                if rng.random() < 0.2:
                    d.recall(i * 7 + 41, number)
                if rng.random() < 0.15:
                    d.no_show(i * 7 + 42, number)
                    if rng.random() < 0.5:
                        d.call(i * 7 + 60, number, 1, teller, callback=True)
                    else:
                        continue
                if rng.random() < 0.1:
                    d.transfer(i * 7 + 61, number, "A")
                    d.call(i * 7 + 70, number, 2, rng.choice(("t1", "t2")))
                d.finish(i * 7 + 75 + rng.uniform(0, 20), number)
                if rng.random() < 0.6:
                    d.rate(i * 7 + 96, number, rng.randint(1, 5))
            for number in list(d.tickets):
                d.close(1380, number)  # never served: closed with the day
            d.emit(1380, "day_closed")
            seqs[branch] = d.seq
            out.append(d)
    return out


def by_months(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the year reports read the year's months as before migration 85."""
    monkeypatch.setitem(catalog.CUBE_TABLES, (True, "year"), "rpt_hour")
    monkeypatch.setitem(catalog.CUBE_TABLES, (False, "year"), "rpt_month")
    monkeypatch.setitem(catalog.RATING_TABLES, "year", "rpt_rating_month")

    def months(period: Period) -> tuple[str, list[Any]]:
        if period.kind != "year":
            return f"{period.kind} = ?", [period.value]
        return "month >= ? AND month <= ?", list(period.months)

    monkeypatch.setattr(catalog, "_period_sql", months)


SCOPES = [Scope(), Scope(prefixes=("100101",)), Scope(branches=(B3,)),
          Scope(queues=("A",), ctypes=("vip", "normal"))]


def answers(store: Store, year: str) -> dict[tuple[str, int], Any]:
    out = {}
    for rid in CUBED:
        for i, scope in enumerate(SCOPES):
            r = run_report(store, rid, Period("year", year), scope, Labels(), now=NOW)
            out[(rid, i)] = (r.columns, r.rows, r.total, r.chart, r.notes)
    return out


def test_the_year_tables_say_what_the_months_said(store: Store,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    days = busy_days()
    rng = random.Random(3)
    batches = []
    for d in days:  # each day in two transactions, some twice, some replayed
        cut = rng.randint(1, len(d.events) - 1)
        batches += [d.batch(d.events[:cut]), d.batch(d.events[cut:])]
    for b in [*batches, *rng.sample(batches, 8)]:
        store.ingest(Inbound(batches=[b]))
    new = {y: answers(store, y) for y in ("2025", "2026", "2027")}
    assert sum(len(a[1]) for a in new["2026"].values()) > 200  # rows to compare, not none
    assert all(not a[1] for a in new["2027"].values())
    by_months(monkeypatch)
    assert {y: answers(store, y) for y in new} == new


def test_the_migration_sums_the_months_already_there(store: Store) -> None:
    for d in busy_days(11):
        store.ingest(Inbound(batches=[d.batch()]))
    tables = ("rpt_year", "rpt_hour_year", "rpt_rating_year")
    folded = {t: rows_of(store, t) for t in tables}
    assert all(folded.values())
    with store.transaction():  # back to version 84: months, no year tables
        for t in tables:
            store.execute(f"DROP TABLE {t}")
        store.execute("DELETE FROM schema_migrations WHERE version = 85")
    store.migrate()
    assert {t: rows_of(store, t) for t in tables} == folded


def rows_of(store: Store, table: str) -> list[tuple[Any, ...]]:
    """The table's rows, sums of seconds to the microsecond (added in another order)."""
    return sorted(tuple(round(v, 6) if isinstance(v, float) else v for v in r)
                  for r in store.execute(f"SELECT * FROM {table}").fetchall())


PERIODS = [Period("day", "2026-11-25"), Period("month", "2026-06"), Period("year", "2026")]


def test_a_page_of_a_report_is_that_part_of_the_whole(store: Store) -> None:
    """The JSON's page (``rows``, ``rows_from``): the grouped listings let the database
    sort, cut and total; each page is exactly those rows of the whole report, with the
    whole report's total, chart and notes."""
    for d in busy_days(5):
        store.ingest(Inbound(batches=[d.batch()]))
    labels = Labels()
    paged = set()
    for rid in REPORTS:
        for period in PERIODS:
            for scope in SCOPES[:3]:
                whole = run_report(store, rid, period, scope, labels, now=NOW)
                for first, count in ((0, 1), (0, 3), (2, 5), (1000, 5), (0, 100_000)):
                    part = run_report(store, rid, period, scope, labels, now=NOW,
                                      page=(first, count))
                    assert (part.columns, part.total, part.chart, part.notes) == \
                        (whole.columns, whole.total, whole.chart, whole.notes), rid
                    if part.rows_total is None:  # all its rows: the caller cuts
                        assert part.rows == whole.rows, rid
                        continue
                    paged.add(rid)
                    assert part.rows_total == len(whole.rows), rid
                    assert part.rows == whole.rows[first:first + count], (rid, first)
    few = Labels(levels={4: "满意", 5: "非常满意"})  # scores 1-3 rated too: columns of their own
    for rid in ("satisfaction-tellers", "satisfaction-branches"):
        whole = run_report(store, rid, PERIODS[2], Scope(), few, now=NOW)
        part = run_report(store, rid, PERIODS[2], Scope(), few, now=NOW, page=(1, 4))
        assert [c.key for c in part.columns if c.key.startswith("score:")] == \
            [f"score:{s}" for s in range(1, 6)]
        assert (part.columns, part.total, part.rows, part.rows_total) == \
            (whole.columns, whole.total, whole.rows[1:5], len(whole.rows))
    assert paged == {"tellers", "teller-types", "teller-business", "branch-summary",
                     "branch-business", "branch-types", "long-waits", "satisfaction-tellers",
                     "satisfaction-branches"}
