"""Reports over days the real engine played (queueing), and the data-quality report (F5).

The figures are recomputed from the events in the plainest way (or by the uplink's own
reconciliation) and must equal what the summaries give.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import replace
from typing import Any

import pytest

from central.orgs import add_org
from central.reconcile import check_branch, long_waits, reconcile_day
from central.reports.catalog import run_report
from central.reports.labels import Labels
from central.reports.scope import Period, Scope
from central.store import EventBatch, Inbound, Store, open_store
from protocols.uplink import day_totals
from queueing.day import simulate_day
from queueing.scenario import default_scenario
from tests.conftest import example_config
from tests.reports_support import B1, B2, B3, B4
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401

DAY = dt.date(2026, 11, 25)
LATER = dt.datetime(2026, 12, 5, 12, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


@pytest.fixture
def store(store_url: str) -> Any:
    s = open_store(store_url)
    yield s
    s.close()


def engine_day(seed: int, customers: int = 160) -> list[dict[str, Any]]:
    cfg = example_config()
    scenario = default_scenario(cfg, DAY, customers)
    scenario = replace(scenario, behaviour=replace(scenario.behaviour, no_show=0.15))
    run = simulate_day(cfg, scenario, seed)
    return [{**e, "seq": i + 1} for i, e in enumerate(run.events)]


def ingest(store: Store, branch: str, events: list[dict[str, Any]], *, totals: bool = True,
           epoch: str = "e1", first_seen: float = 0.0) -> None:
    for i in range(0, len(events), 97):  # several transactions, as the consumer would
        store.ingest(Inbound(batches=[EventBatch(branch, epoch, events[i:i + 97])]),
                     first_seen)
    if totals:
        day = [e for e in events if e["day"] == DAY.isoformat()]
        store.ingest(Inbound(totals=[{"branch": branch, "epoch": epoch,
                                      "day": DAY.isoformat(), **day_totals(day)}]), first_seen)


def summary(store: Store, branch: str) -> dict[str, Any]:
    r = run_report(store, "branch-summary", Period("day", DAY.isoformat()),
                   Scope(branches=(branch,)), Labels())
    return r.rows[0]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_real_engine_day_adds_up(store: Store, seed: int) -> None:
    events = engine_day(seed)
    ingest(store, B1, events)
    today = [e for e in events if e["day"] == DAY.isoformat()]
    totals = day_totals(today)["queues"]
    row = summary(store, B1)
    for field, ours in (("issued", "issued"), ("served", "served"), ("no_show", "no_show"),
                        ("not_served", "not_served")):
        assert row[ours] == sum(q[field] for q in totals.values()), field
    first_waits: dict[str, float] = {}
    for e in today:
        if e["type"] == "ticket_called":
            first_waits.setdefault(e["ticket"], e["wait_s"])
    handles = [e["handle_s"] for e in today if e["type"] == "ticket_finished"]
    assert row["avg_wait"] == round(statistics.fmean(first_waits.values()) / 60, 2)
    assert row["avg_handle"] == round(statistics.fmean(handles) / 60, 2)
    assert row["calls"] == sum(e["type"] in ("ticket_called", "ticket_recalled")
                               for e in today)
    assert row["no_show"] > 0 and row["not_served"] >= 0
    lw = run_report(store, "long-waits", Period("day", DAY.isoformat()), Scope(), Labels())
    expected = long_waits(today, (15, 30, 60))
    got = {f"over_{n}": (lw.rows[0][f"over{n}"] if lw.rows else 0) for n in (15, 30, 60)}
    assert got == expected


def quality(store: Store, value: str = DAY.isoformat(), kind: str = "day"
            ) -> dict[str, dict[str, Any]]:
    r = run_report(store, "data-quality", Period.parse(kind, value), Scope(), Labels(),
                   now=LATER)
    return {row["branch"]: row for row in r.rows}


def test_data_quality_agrees_with_the_reconciliation(store: Store) -> None:
    ingest(store, B1, engine_day(3))  # agrees
    ingest(store, B2, engine_day(4), totals=False)  # events, no totals
    events = engine_day(5)
    ingest(store, B3, events, totals=False)
    wrong = day_totals([e for e in events if e["day"] == DAY.isoformat()])
    wrong["queues"]["A"]["served"] += 1
    store.ingest(Inbound(totals=[{"branch": B3, "epoch": "e1", "day": DAY.isoformat(),
                                  **wrong}]), 0.0)
    store.save_live({B4: {"online": True}}, {}, {}, 0.0)  # known, sent nothing
    found = quality(store)
    assert {b: r["status"] for b, r in found.items()} == {
        B2: "no_totals", B3: "mismatch", B4: "no_data"}
    proper = reconcile_day(store, DAY.isoformat())
    assert proper["ok"] == [B1] and proper["no_totals"] == [B2] and proper["no_data"] == [B4]
    assert found[B3]["problems"] == "; ".join(check_branch(store, B3, DAY.isoformat())
                                              ["problems"])
    assert "A.served: branch" in found[B3]["problems"]


def test_a_month_lists_each_day_and_skips_branches_not_yet_known(store: Store) -> None:
    ingest(store, B1, engine_day(6))
    joined = dt.datetime(2026, 11, 28, 12, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    store.save_live({B2: {"online": True}}, {}, {}, joined.timestamp())
    found = run_report(store, "data-quality", Period.parse("month", "2026-11"), Scope(),
                       Labels(), now=LATER).rows
    b1_days = sorted(r["day"] for r in found if r["branch"] == B1)
    b2_days = sorted(r["day"] for r in found if r["branch"] == B2)
    assert DAY.isoformat() not in b1_days and "2026-11-24" in b1_days
    assert b2_days == ["2026-11-28", "2026-11-29", "2026-11-30"]


def test_today_is_not_judged(store: Store) -> None:
    ingest(store, B1, engine_day(7), totals=False)
    during = dt.datetime(2026, 11, 25, 15, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    r = run_report(store, "data-quality", Period.parse("day", DAY.isoformat()), Scope(),
                   Labels(), now=during.timestamp())
    assert r.rows == []


def test_a_journal_recreated_mid_day_is_compared_by_its_epoch(store: Store) -> None:
    ingest(store, B1, engine_day(8), totals=False, epoch="e1")  # the old journal, lost
    ingest(store, B1, engine_day(9), totals=True, epoch="e2")  # a fresh one, same day
    assert check_branch(store, B1, DAY.isoformat())["status"] == "ok"
    assert B1 not in quality(store)
    summary_issued = summary(store, B1)["issued"]  # the reports count both journals
    assert summary_issued == sum(
        e["type"] == "ticket_issued" and e["day"] == DAY.isoformat()
        for e in engine_day(8) + engine_day(9))


def test_a_tree_branch_whose_box_never_connected_has_no_data(store: Store) -> None:
    def on(day: str, hour: int) -> float:
        return dt.datetime(*map(int, day.split("-")), hour,
                           tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()

    silent, late = "1001010003", "1001010004"
    add_org(store, "1001", "河南省分行", "head", now=on("2026-11-01", 9))
    add_org(store, "100101", "郑州分行", "city", now=on("2026-11-01", 9))
    add_org(store, silent, "郑州二七支行", "branch", now=on("2026-11-01", 9))
    add_org(store, late, "郑州高新区支行", "branch", now=on(DAY.isoformat(), 15))  # that day
    ingest(store, B1, engine_day(10))
    assert {b: r["status"] for b, r in quality(store).items()} == {silent: "no_data"}
    reconciled = reconcile_day(store, DAY.isoformat())
    assert reconciled["ok"] == [B1] and reconciled["no_data"] == [silent]
    assert {silent, late} <= set(reconcile_day(store, "2026-11-26")["no_data"])
    found = run_report(store, "data-quality", Period.parse("month", "2026-11"), Scope(),
                       Labels(), now=LATER).rows
    assert sorted(r["day"] for r in found if r["branch"] == late) == [  # from the next day
        "2026-11-26", "2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"]
    assert sum(r["branch"] == silent for r in found) == 29  # 11-02 to 11-30
    assert {r["branch"] for r in found} == {B1, silent, late}  # not the city node 100101
