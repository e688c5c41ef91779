"""The centre keeps what it stores for a bounded time (docs/store.md, "Retention"): events,
tickets and bookings 400 days, day summaries and totals 1,100 days, months and years 10
years, its own records (audit, alerts, SMS, dead letters) 400 days and the boxes' answers
7, by default. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
from pydantic import ValidationError

from central.broker import LocalBroker
from central.config import RetentionSettings
from central.retention import keep_records
from central.store import Inbound, Store, open_store
from central.store.retention import SHELVES, cutoffs, prune
from protocols.uplink import day_totals
from tests.reports_support import B1, DayLog, at
from tests.uplink_support import (  # noqa: F401
    broker_fixture,
    centre_running,
    pg_url_fixture,
    store_url_fixture,
    wait_for,
)

TODAY = dt.date(2026, 12, 7)
NOW = at(TODAY.isoformat(), 180)  # 12:00 at the branches (Asia/Shanghai)
DAY_S = 86400.0
KEPT = "2026-11-25"  # kept whole
DETAIL_GONE = "2025-07-25"  # 500 days back: its events and tickets go, its summaries stay
DAYS_GONE = "2023-08-26"  # 1,199 days back: its day summaries go too, its month stays
ALL_GONE = "2014-06-10"  # 12 years back: nothing of it stays
AGES = {"detail_days": 400, "day_days": 1100, "month_years": 10, "records_days": 400,
        "replies_days": 7}
CUT = cutoffs(TODAY, NOW, **AGES)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def a_day(day: str, epoch: str | None = None) -> DayLog:
    d = DayLog(B1, day=day, epoch=epoch or f"e{day}")
    d.issue(0, "A001")
    d.call(1, "A001", 1, "t1")
    d.finish(5, "A001")
    d.rate(6, "A001", 5)
    d.issue(7, "A002")
    d.call(8, "A002", 2, "t2")
    d.no_show(9, "A002")
    d.emit(600, "day_closed")
    return d


def send(store: Store, d: DayLog) -> None:
    store.ingest(Inbound(batches=[d.batch()]))
    store.ingest(Inbound(totals=[{"branch": d.branch, "epoch": d.epoch, "day": d.day,
                                  **day_totals(d.events)}]))


def periods(store: Store, table: str) -> set[str]:
    column = next(s.column for s in SHELVES if s.table == table)
    return {str(r[0]) for r in store.execute(f"SELECT DISTINCT {column} FROM {table}")}


def month_issued(store: Store, month: str) -> int:
    row = store.execute("SELECT sum(issued) FROM rpt_month WHERE month = ?", (month,)).fetchone()
    return int(row[0] or 0)


def test_the_cutoffs_count_back_from_the_centres_day() -> None:
    assert CUT == {"detail": "2025-11-02", "day": "2023-12-03", "month": "2016-12",
                   "year": "2016", "records": NOW - 400 * DAY_S, "replies": NOW - 7 * DAY_S}


def test_each_grain_is_kept_for_its_own_age(store: Store) -> None:
    for day in (ALL_GONE, DAYS_GONE, DETAIL_GONE, KEPT):
        send(store, a_day(day))
    before = month_issued(store, DETAIL_GONE[:7])
    gone = prune(store, CUT, limit=3)  # small batches: the job's loop runs many times

    assert periods(store, "events") == periods(store, "rpt_ticket") == {KEPT}
    for table in ("rpt_day", "rpt_slot", "rpt_rating_day", "rpt_recon", "rpt_branch_day",
                  "totals"):
        assert periods(store, table) == {DETAIL_GONE, KEPT}, table
    for table in ("rpt_month", "rpt_hour", "rpt_rating_month"):
        assert periods(store, table) == {DAYS_GONE[:7], DETAIL_GONE[:7], KEPT[:7]}, table
    for table in ("rpt_year", "rpt_hour_year", "rpt_rating_year"):
        assert periods(store, table) == {"2023", "2025", "2026"}, table
    assert month_issued(store, DETAIL_GONE[:7]) == before == 2  # the month report still adds up
    assert gone["events"] == 3 * len(a_day(KEPT).events) and gone["rpt_ticket"] == 6
    assert gone["rpt_month"] > 0 and gone["rpt_year"] > 0
    assert prune(store, CUT) == {s.table: 0 for s in SHELVES}  # nothing left to do


def ids(store: Store, table: str, column: str = "id") -> set[str]:
    return {str(r[0]) for r in store.execute(f"SELECT {column} FROM {table}")}


def test_the_centres_own_records_are_kept_for_their_age_and_never_while_in_use(
        store: Store) -> None:
    old, recent = NOW - 401 * DAY_S, NOW - 10 * DAY_S
    store.execute_many("INSERT INTO audit (at, user_id, action) VALUES (?, 'admin', ?)",
                       [(old, "login"), (recent, "user.create")])
    alert = ("INSERT INTO alerts (key, kind, branch, level, message, message_en, detail, "
             "raised_at, last_at, resolved_at, push, clear_push, sms) VALUES (?, 'long_wait', "
             "?, 'warning', '等候超时', 'Long wait', '{}', ?, ?, ?, ?, ?, 'none')")
    store.execute_many(alert, [
        ("over", B1, old, old, old, "sent", "sent"),  # resolved long ago: goes
        ("still-on", B1, old, old, None, "sent", "none"),  # on since long ago: stays
        ("clearing", B1, old, old, old, "sent", "pending"),  # the screen not told yet
        ("lately", B1, recent, recent, recent, "none", "none")])
    store.execute_many("INSERT INTO alert_sms (alert_id, phone, text, state, next_at, "
                       "created_at) VALUES (1, '13800000000', '等候超时', ?, ?, ?)",
                       [("sent", old, old), ("pending", old, old), ("sent", recent, recent)])
    store.execute_many("INSERT INTO dead_letters (topic, branch, reason, detail, payload, "
                       "received_at) VALUES ('qms/v1/x/events', 'x', 'bad_json', '', '', ?)",
                       [(old,), (recent,)])
    store.execute_many("INSERT INTO replies (branch, id, cmd, ok, body, received_at) VALUES "
                       "(?, ?, ?, ?, '{}', ?)",
                       [(B1, "c-track", "track", True, NOW - 8 * DAY_S),
                        (B1, "c-config", "config", True, old),
                        (B1, "c-today", "track", True, NOW - 60)])
    prune(store, CUT, limit=1)

    assert {r[0] for r in store.execute("SELECT action FROM audit")} == {"user.create"}
    assert ids(store, "alerts", "key") == {"still-on", "clearing", "lately"}
    assert {tuple(r) for r in store.execute("SELECT state, created_at FROM alert_sms")} == {
        ("pending", old), ("sent", recent)}
    assert [r[0] for r in store.execute("SELECT received_at FROM dead_letters")] == [recent]
    assert ids(store, "replies") == {"c-config", "c-today"}


def test_a_days_bookings_go_with_its_tickets(store: Store) -> None:
    store.execute("INSERT INTO customers (id, name, gender, phone_digest, phone_sealed, "
                  "phone_masked, id_digest, id_sealed, id_masked, id_region, id_tail, "
                  "created_at) VALUES ('c1', '张三', 'M', 'pd', 'ps', '138****0000', 'idd', "
                  "'ids', '4101**2311', '410100', '2311', 0)")
    for n, day in enumerate((DETAIL_GONE, KEPT)):
        store.execute("INSERT INTO bookings (id, customer, branch, queue, day, slot, code, "
                      "state, channel, created_at) VALUES (?, 'c1', ?, 'A', ?, 1, ?, 'booked', "
                      "'web', 0)", (f"bk{n}", B1, day, f"10000{n}"))
        store.execute("INSERT INTO booking_forms (booking, branch, day, queue, form, title, "
                      "fields_masked, revision, state, filled_at) VALUES (?, ?, ?, 'A', 'f', "
                      "'开户', '{}', 1, 'delivered', 0)", (f"bk{n}", B1, day))
        store.execute("INSERT INTO remote_tickets (token_digest, request, customer, branch, "
                      "queue, day, state, created_at) VALUES (?, ?, 'c1', ?, 'A', ?, 'issued', "
                      "0)", (f"t{n}", f"r{n}", B1, day))
        store.execute("INSERT INTO slot_counts (branch, day, queue, slot, booked) VALUES "
                      "(?, ?, 'A', 1, 1)", (B1, day))
        store.execute("INSERT INTO appointment_days (branch, day, revision) VALUES (?, ?, 1)",
                      (B1, day))
    prune(store, CUT)
    for table in ("bookings", "booking_forms", "remote_tickets", "slot_counts",
                  "appointment_days"):
        assert periods(store, table) == {KEPT}, table


def test_a_pruned_event_sent_again_is_a_duplicate_not_a_new_row(store: Store) -> None:
    old = a_day(DETAIL_GONE)
    send(store, old)
    prune(store, CUT)
    again = store.ingest(Inbound(batches=[old.batch()]))  # the box lost the ack: it re-sends
    assert (again.inserted, again.duplicates) == (0, len(old.events))
    assert [m.contiguous for m in again.marks] == [len(old.events)]  # acknowledged again
    assert periods(store, "events") == set()
    assert month_issued(store, DETAIL_GONE[:7]) == 2  # folded once


def test_an_event_beyond_a_gap_is_kept_until_the_gap_is_filled(store: Store) -> None:
    old = a_day(DETAIL_GONE)
    hole = old.events[3]
    store.ingest(Inbound(batches=[old.batch([e for e in old.events if e is not hole])]))
    prune(store, CUT)
    left = [int(r[0]) for r in store.execute("SELECT seq FROM events ORDER BY seq")]
    assert left == [e["seq"] for e in old.events[4:]]  # not yet folded: not pruned
    filled = store.ingest(Inbound(batches=[old.batch([hole])]))
    assert [m.contiguous for m in filled.marks] == [len(old.events)]
    month = store.execute("SELECT sum(issued), sum(served), sum(no_show), sum(rated) FROM "
                          "rpt_month WHERE month = ?", (DETAIL_GONE[:7],)).fetchone()
    assert tuple(int(x) for x in month) == (2, 1, 1, 1)  # every event folded, once
    prune(store, CUT)
    assert periods(store, "events") == set()


async def test_the_centres_job_prunes_on_its_own_connection(store_url: str) -> None:
    with closing(open_store(store_url)) as st:
        send(st, a_day(DETAIL_GONE))
        send(st, a_day(KEPT))
    job = asyncio.create_task(keep_records(lambda: open_store(store_url), RetentionSettings(),
                                           lambda: TODAY, lambda: NOW))
    try:
        with closing(open_store(store_url)) as st:
            for _ in range(200):
                if periods(st, "events") == {KEPT}:
                    break
                await asyncio.sleep(0.05)  # polling the job's effect from another connection
            assert periods(st, "events") == {KEPT}
            assert periods(st, "rpt_day") == {DETAIL_GONE, KEPT}
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)


async def test_a_running_centre_prunes_under_its_retention_lease(
        broker: LocalBroker, store_url: str) -> None:
    today = dt.date.today()  # the centre runs on the real clock
    old, kept = (str(today - dt.timedelta(days=d)) for d in (500, 10))
    with closing(open_store(store_url)) as st:
        send(st, a_day(old))
        send(st, a_day(kept))
    ages = [f"retention.{k}={v}" for k, v in AGES.items()]  # over the tests' keep-all
    async with centre_running(broker, store_url, *ages) as centre:
        async def pruned() -> bool:
            return await centre.read(lambda st: periods(st, "events") == {kept} and
                                     st.execute("SELECT 1 FROM leases WHERE name = "
                                                "'retention'").fetchone() is not None)

        await wait_for(pruned, 30, "the old day's events pruned by the lease holder")
        assert await centre.read(lambda st: periods(st, "rpt_day")) == {old, kept}


@pytest.mark.parametrize("ages", [{"detail_days": 2000}, {"day_days": 30},
                                  {"month_years": 2, "day_days": 1100},
                                  {"records_days": 90}])
def test_a_grain_cannot_be_kept_shorter_than_its_floor(ages: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RetentionSettings(**ages)
