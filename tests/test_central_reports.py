"""Reports (SPEC E1–E5, C4) against hand-computed days, on SQLite and PostgreSQL.

The day in tests/reports_support.py (``hand_day``) is worked through by hand in
docs/reports.md; each figure asserted here is that hand computation.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from central.reports.catalog import REPORTS, Report, run_report
from central.reports.labels import Labels
from central.reports.scope import EVERYWHERE, Period, Scope, resolve_scope
from central.store import Inbound, Store, open_store
from tests.reports_support import B1, B2, HAND, DayLog, hand_day, ingest_all, other_days
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401

DAY = "2026-11-25"


@pytest.fixture
def store(store_url: str) -> Any:
    s = open_store(store_url)
    yield s
    s.close()


def report(store: Store, rid: str, kind: str = "day", value: str = DAY,
           **scope: Any) -> Report:
    return run_report(store, rid, Period.parse(kind, value),
                      resolve_scope(**{"allowed": EVERYWHERE, **scope}),
                      Labels(queues={"A": "个人业务", "V": "VIP业务", "B": "对公业务"}))


def rows_by(r: Report, key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in r.rows}


@pytest.fixture
def hand(store: Store) -> Store:
    ingest_all(store, hand_day(), *other_days())
    return store


# --- E1, E2 -----------------------------------------------------------------------------------


def test_average_wait_and_bands_by_customer_type(hand: Store) -> None:
    r = report(hand, "wait-by-type", branches=[B1])
    rows = rows_by(r, "ctype")
    assert set(rows) == {"normal", "vip"}  # B001 (corporate) was never called: no wait
    n = rows["normal"]
    # waits 1, 4, 25, 1 min: avg 31/4, bands <=2: 2, 2-5: 1, 5-10: 0, >10: 1
    assert (n["waited"], n["avg_wait"], n["max_wait"]) == (4, 7.75, 25.0)
    assert (n["le2"], n["le5"], n["le10"], n["gt10"]) == (2, 1, 0, 1)
    assert (n["le2_pct"], n["le5_pct"], n["le10_pct"], n["gt10_pct"]) == (50.0, 25.0, 0.0, 25.0)
    v = rows["vip"]
    assert (v["waited"], v["avg_wait"], v["le10"], v["le10_pct"]) == (1, 7.0, 1, 100.0)
    assert r.total is not None
    assert (r.total["waited"], r.total["avg_wait"], r.total["max_wait"]) == (5, 7.6, 25.0)
    assert r.chart is not None and r.chart.series[0] == "le2_pct"
    assert [c.key for c in r.columns][:2] == ["ctype", "ctype_name"]
    assert rows["vip"]["ctype_name"] == "VIP客户"


def test_a_recall_does_not_restart_the_wait_and_a_callback_adds_none(hand: Store) -> None:
    r = report(hand, "wait-by-type", branches=[B1], queues=["A"])
    # A002: called at 6 (wait 4), recalled, no-show, called back at 20: still one wait of 4
    # V001 transferred to A: its wait counted at its first call, under V
    assert rows_by(r, "ctype")["normal"]["waited"] == 4
    assert "vip" not in rows_by(r, "ctype")


def test_businesses_by_customer_type(hand: Store) -> None:
    r = report(hand, "business-by-type", branches=[B1])
    rows = rows_by(r, "queue")
    assert rows["A"]["ctype:normal"] == 4 and rows["A"]["all"] == 4
    assert rows["V"]["ctype:vip"] == 1 and rows["V"]["ctype:normal"] == 0
    assert rows["B"]["ctype:corporate"] == 1
    assert rows["A"]["queue_name"] == "个人业务"
    assert r.total is not None and r.total["all"] == 6
    keys = [c.key for c in r.columns]
    assert keys.index("ctype:normal") < keys.index("ctype:corporate") < keys.index("ctype:vip")


# --- E3 ---------------------------------------------------------------------------------------


def test_handling_time_and_calls_per_teller(hand: Store) -> None:
    r = report(hand, "tellers", branches=[B1])
    t1, t2 = rows_by(r, "teller")["t1"], rows_by(r, "teller")["t2"]
    # t1 finished A001 (4 min) and V001 (10 min, after the transfer, from its last call)
    assert (t1["served"], t1["avg_handle"], t1["max_handle"], t1["min_handle"]) == \
        (2, 7.0, 10.0, 4.0)
    # t1 called A001, A002, V001, A004 and recalled A002 once; A004 stayed a no-show
    assert (t1["calls"], t1["avg_calls"], t1["max_calls"], t1["no_show"]) == (5, 2.5, 2, 1)
    # t2: A002 after the call-back (3 min: from the last call), A003 (1 min)
    assert (t2["served"], t2["avg_handle"], t2["max_handle"], t2["min_handle"]) == \
        (2, 2.0, 3.0, 1.0)
    assert (t2["calls"], t2["max_calls"], t2["transferred"], t2["no_show"]) == (3, 3, 1, 0)
    assert r.total is not None and (r.total["served"], r.total["avg_handle"]) == (4, 4.5)


def test_customer_types_and_businesses_per_teller(hand: Store) -> None:
    types = rows_by(report(hand, "teller-types", branches=[B1]), "teller")
    assert (types["t1"]["ctype:normal"], types["t1"]["ctype:vip"]) == (1, 1)
    assert (types["t2"]["ctype:normal"], types["t2"]["ctype:vip"]) == (2, 0)
    business = rows_by(report(hand, "teller-business", branches=[B1]), "teller")
    assert business["t1"]["queue:A"] == 2 and business["t2"]["queue:A"] == 2


# --- E4 ---------------------------------------------------------------------------------------


def test_branch_summary_over_an_org_subtree(hand: Store) -> None:
    r = report(hand, "branch-summary", orgs=["1001"])
    rows = rows_by(r, "branch")
    assert set(rows) == {B1, B2}  # B3 is under 1002
    b1 = rows[B1]
    assert {k: b1[k] for k in HAND if k in b1} == {k: v for k, v in HAND.items()
                                                    if k in b1}
    assert (b1["total_wait"], b1["total_handle"]) == (38.0, 18.0)
    assert rows[B2]["avg_wait"] == 20.0
    assert r.total is not None and r.total["issued"] == 7 and r.total["avg_wait"] == 9.67


def test_branch_business_and_customer_types(hand: Store) -> None:
    rows = {(x["branch"], x["queue"]): x
            for x in report(hand, "branch-business", branches=[B1]).rows}
    # issued by the business issued for; served by the business it ended in (V001 → A)
    assert (rows[(B1, "A")]["issued"], rows[(B1, "A")]["served"]) == (4, 4)
    assert (rows[(B1, "V")]["issued"], rows[(B1, "V")]["served"]) == (1, 0)
    assert rows[(B1, "V")]["avg_wait"] == 7.0 and rows[(B1, "B")]["not_served"] == 1
    types = rows_by(report(hand, "branch-types", orgs=["1001"]), "branch")
    assert (types[B1]["ctype:normal"], types[B1]["ctype:vip"], types[B2]["ctype:vip"]) == \
        (4, 1, 0)


def test_hourly_arrivals_and_volume(hand: Store) -> None:
    r = report(hand, "hourly-arrivals", branches=[B1])
    hours = rows_by(r, "hour")
    assert (hours[9]["issued"], hours[10]["issued"]) == (5, 1)
    assert hours[9]["hours"] == "09:00-10:00" and hours[9]["served"] == 4
    biz = rows_by(report(hand, "hourly-business", branches=[B1]), "hour")
    assert (biz[9]["queue:A"], biz[9]["queue:V"], biz[9]["queue:B"]) == (3, 1, 1)
    assert biz[9]["served:A"] == 4 and biz[10]["queue:A"] == 1


# --- E5 ---------------------------------------------------------------------------------------


def test_long_waits_by_branch_include_customers_never_called(hand: Store) -> None:
    rows = rows_by(report(hand, "long-waits", orgs=["1001"]), "branch")
    # B1: A003 waited 25 min; B001 waited from 09:08 to the close next morning
    assert (rows[B1]["over15"], rows[B1]["over30"], rows[B1]["over60"]) == (2, 1, 1)
    assert (rows[B2]["over15"], rows[B2]["over30"]) == (1, 0)
    detail = report(hand, "long-wait-tickets", branches=[B1]).rows
    assert [(d["number"], d["outcome"]) for d in detail] == [("A003", "served"),
                                                              ("B001", "not_served")]
    assert detail[0]["wait"] == 25.0 and detail[0]["issued_at"] == "2026-11-25 09:05:00"


# --- C4 ---------------------------------------------------------------------------------------


def test_satisfaction_per_teller_and_branch(hand: Store) -> None:
    tellers = rows_by(report(hand, "satisfaction-tellers", branches=[B1]), "teller")
    assert (tellers["t1"]["score:5"], tellers["t1"]["satisfaction"]) == (1, 100.0)
    assert (tellers["t2"]["score:2"], tellers["t2"]["rating_bad"],
            tellers["t2"]["satisfaction"]) == (1, 1, 0.0)
    branches = rows_by(report(hand, "satisfaction-branches", orgs=["1001"]), "branch")
    assert (branches[B1]["rated"], branches[B1]["satisfaction"], branches[B1]["bad_pct"]) \
        == (2, 50.0, 50.0)
    assert branches[B2]["score:4"] == 1 and branches[B2]["satisfaction"] == 100.0


def test_rating_flow_lists_each_rating(hand: Store) -> None:
    rows = report(hand, "rating-flow", branches=[B1]).rows
    assert [(r["number"], r["score"], r["level"], r["teller"], r["bad"]) for r in rows] == [
        ("A001", 5, "非常满意", "t1", ""), ("A002", 2, "不满意", "t2", "差评 bad")]
    assert rows[0]["rated_at"] == "2026-11-25 09:05:30"


# --- periods, filters, exactly once ---------------------------------------------------------


def test_month_and_year_add_up_the_days(hand: Store) -> None:
    second = DayLog(B1, "2026-11-26", seq=hand_day().seq)
    second.issue(0, "A001")
    second.call(3, "A001", 1, "t1")
    second.finish(5, "A001")
    ingest_all(hand, second)
    for kind, value in (("month", "2026-11"), ("year", "2026")):
        b1 = rows_by(report(hand, "branch-summary", kind, value, branches=[B1]), "branch")[B1]
        assert (b1["issued"], b1["served"], b1["total_wait"]) == (7, 5, 41.0)
        t1 = rows_by(report(hand, "tellers", kind, value, branches=[B1]), "teller")["t1"]
        assert (t1["served"], t1["min_handle"]) == (3, 2.0)
    hours = rows_by(report(hand, "hourly-arrivals", "month", "2026-11", branches=[B1]), "hour")
    assert hours[9]["issued"] == 6
    assert report(hand, "branch-summary", "month", "2026-10", branches=[B1]).rows == []


def test_filters_by_business_and_customer_type(hand: Store) -> None:
    r = report(hand, "branch-summary", branches=[B1], ctypes=["vip"])
    assert (r.rows[0]["issued"], r.rows[0]["served"]) == (1, 1)  # V001, served under A
    r = report(hand, "branch-summary", branches=[B1], queues=["V"])
    assert (r.rows[0]["issued"], r.rows[0]["served"], r.rows[0]["calls"]) == (1, 0, 1)


def every_report(store: Store) -> dict[str, Any]:
    out = {}
    for rid in REPORTS:
        if rid == "data-quality":
            continue
        r = run_report(store, rid, Period.parse("day", DAY), Scope(), Labels(), now=0.0)
        out[rid] = (r.rows, r.total)
    return out


def test_replays_and_duplicate_batches_count_once(store_url: str, store: Store) -> None:
    days = [hand_day(), *other_days()]
    ingest_all(store, *days)
    expected = every_report(store)
    rng = random.Random(5)
    for n in range(3):
        other = open_store(store_url.replace("centre.sqlite3", f"other{n}.sqlite3"))
        if other.postgres:  # a fresh schema per store: start from an empty one
            _clear(other)
        chunks = []
        for d in days:
            ev = d.events
            cuts = sorted(rng.sample(range(1, len(ev)), min(3, len(ev) - 1)))
            parts = [ev[a:b] for a, b in zip([0, *cuts], [*cuts, len(ev)], strict=True)]
            chunks += [d.batch(p) for p in parts]
        arrivals = chunks + rng.sample(chunks, 6)  # some twice
        rng.shuffle(arrivals)
        for b in arrivals:
            other.ingest(Inbound(batches=[b]))
        for b in rng.sample(chunks, 4):  # replays after everything arrived
            other.ingest(Inbound(batches=[b]))
        assert every_report(other) == expected
        other.close()


def test_a_fleet_commit_counts_the_same_and_reads_in_a_few_queries(store: Store) -> None:
    """A centre's commit holds an event or two from each of hundreds of branches: the
    summaries read the state they need (cursors, earlier tickets, stored totals) in a few
    queries for all of them, not a few per branch, and count what one day at a time does."""
    days = []
    for i in range(60):
        d = DayLog(f"100103{i:04d}")
        d.issue(1, "A001")
        d.call(3 + i % 7, "A001", window=1 + i % 3, teller=f"t{i % 5}")
        d.finish(9 + i % 4, "A001")
        d.rate(10 + i % 4, "A001", 1 + i % 5)
        days.append(d)
    selects: list[str] = []
    execute = store.execute

    def counting(sql: str, args: Any = ()) -> Any:
        if sql.lstrip().upper().startswith("SELECT"):
            selects.append(sql)
        return execute(sql, args)

    store.execute = counting  # type: ignore[method-assign]
    for k in range(len(days[0].events)):  # each commit: the k-th event of every branch
        selects.clear()
        store.ingest(Inbound(batches=[d.batch(d.events[k:k + 1]) for d in days]))
        assert len(selects) <= 12, selects
    store.execute = execute  # type: ignore[method-assign]
    r = report(store, "branch-summary")
    assert sum(row["issued"] for row in r.rows) == 60
    assert sum(row["served"] for row in r.rows) == 60
    assert len(r.rows) == 60


def _clear(store: Store) -> None:
    tables = [r[0] for r in store.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = "
        "current_schema() AND table_name <> 'schema_migrations'").fetchall()]
    for t in tables:
        store.execute(f"DELETE FROM {t}")
    store.execute("INSERT INTO report_settings VALUES ('timezone', 'Asia/Shanghai')")


def test_events_beyond_a_gap_wait_for_it(store: Store) -> None:
    d = hand_day()
    first, rest = d.batch(d.events[:5]), d.batch(d.events[5:])
    store.ingest(Inbound(batches=[rest]))
    assert report(store, "branch-summary", branches=[B1]).rows == []
    store.ingest(Inbound(batches=[first]))
    assert rows_by(report(store, "branch-summary", branches=[B1]), "branch")[B1]["issued"] == 6


def test_a_malformed_event_is_skipped_not_fatal(store: Store) -> None:
    d = DayLog(B1)
    d.issue(0, "A001")
    d.emit(1, "ticket_rated", ticket=d.tickets["A001"]["id"])  # no score
    d.emit(2, "ticket_called", ticket="20261125-Z999", window=1, teller="t1")  # never issued
    d.call(3, "A001", 1, "t1")
    store.ingest(Inbound(batches=[d.batch()]))
    row = report(store, "branch-summary", branches=[B1]).rows[0]
    assert (row["issued"], row["calls"]) == (1, 1)
    assert store.mark(B1, "e1").contiguous == d.seq


def test_a_scope_outside_the_allowed_prefixes_is_refused() -> None:
    from central.reports.scope import OutOfScope

    assert resolve_scope(allowed=["100101"]).prefixes == ("100101",)
    assert resolve_scope(orgs=["10010100"], allowed=["100101"]).prefixes == ("10010100",)
    with pytest.raises(OutOfScope):
        resolve_scope(orgs=["1001"], allowed=["100101"])
    with pytest.raises(OutOfScope):
        resolve_scope(branches=["1002010001"], allowed=["1001"])
    assert resolve_scope(orgs=["1001", "100101", "1002"], allowed=EVERYWHERE).prefixes == (
        "1001", "1002")


def test_no_allowed_prefix_sees_nothing_and_everything_is_said() -> None:
    """Fail closed: the allowed set is required; empty covers no branch and asking for an
    org is refused; the whole centre is the explicit EVERYWHERE."""
    from central.reports.scope import OutOfScope

    with pytest.raises(TypeError):
        resolve_scope(orgs=["1001"])  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        resolve_scope(allowed="1001")  # one string is not a list of prefixes
    nothing = resolve_scope(allowed=[])
    assert not nothing.covers(B1) and nothing.where()[0] == " AND 1 = 0"
    with pytest.raises(OutOfScope):
        resolve_scope(orgs=["1001"], allowed=[])
    with pytest.raises(OutOfScope):
        resolve_scope(branches=[B1], allowed=[])
    assert resolve_scope(allowed=EVERYWHERE).covers(B1)


def test_names_come_from_the_branches_live_snapshots(store: Store) -> None:
    ingest_all(store, hand_day())
    store.save_live({}, {B1: {"status": {
        "branch_name": "郑州金水路支行", "queues": [{"id": "A", "name": "个人业务"}],
        "windows": [{"number": 1, "teller": "t1", "teller_name": "张三"}]}}}, {})
    r = run_report(store, "tellers", Period.parse("day", DAY),
                   resolve_scope(branches=[B1], allowed=EVERYWHERE))
    t1 = rows_by(r, "teller")["t1"]
    assert (t1["branch_name"], t1["teller_name"]) == ("郑州金水路支行", "张三")
    assert rows_by(r, "teller")["t2"]["teller_name"] == "t2"  # not logged in: its id
    q = run_report(store, "branch-business", Period.parse("day", DAY),
                   resolve_scope(branches=[B1], allowed=EVERYWHERE))
    assert {row["queue"]: row["queue_name"] for row in q.rows} == {
        "A": "个人业务", "B": "B", "V": "V"}
