"""Head-office figures (SPEC I5): the appointment statistics and the staff search by 工号,
against known seeded days (tests/reports_support.py: ``hand_day``, ``booking_day``,
``BOOKINGS``), as JSON, Excel and CSV, held to the caller's scope."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.config import load_centre_config
from central.reports.catalog import run_report
from central.reports.export import _NUMBER, FORMULA_START, HEADER_ROWS, to_csv, to_xlsx
from central.reports.labels import Labels
from central.reports.scope import EVERYWHERE, Period, ScopeError, resolve_scope
from central.reports.staff import OUTCOMES, teller_condition
from central.service import Centre
from central.store import Store, open_store
from tests.office_support import ADMIN_SEED, CENTRE_TOML, add_user, admin_client
from tests.reports_support import (
    B1,
    B2,
    B3,
    B4,
    NOW_I5,
    add_bookings,
    booking_day,
    hand_day,
    ingest_all,
    other_days,
)
from tests.scope_support import Caller, head_office_client
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401

MONTH = Period.parse("month", "2026-11")
FIGURES = ("booked", "redeemed", "no_show", "cancelled", "pending", "redeemed_pct",
           "no_show_pct")
EVIL = "=cmd|'/c calc'!A1"


@pytest.fixture
def store(store_url: str) -> Any:
    s = open_store(store_url)
    ingest_all(s, hand_day(), booking_day(), *other_days())
    add_bookings(s)
    yield s
    s.close()


def report(store: Store, rid: str, orgs: list[str] | None = None, *,
           period: Period = MONTH, **kw: Any) -> Any:
    return run_report(store, rid, period, resolve_scope(orgs, allowed=EVERYWHERE),
                      now=NOW_I5, **kw)


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in FIGURES)


# --- appointment statistics ----------------------------------------------------------------


def test_bookings_count_by_day_branch_business_and_channel(store: Store) -> None:
    r = report(store, "appointments", ["1001"])
    got = {(x["day"], x["branch"], x["queue"], x["channel"]): figures(x) for x in r.rows}
    assert got == {
        # bk2: redeemed, its ticket already in the bookings table
        ("2026-11-24", B1, "A", "sms"): (1, 1, 0, 0, 0, 100.0, 0.0),
        # bk1 redeemed from the events alone; bk3 never came
        ("2026-11-24", B1, "A", "web"): (2, 1, 1, 0, 0, 50.0, 50.0),
        # bk5's ticket was voided: not redeemed after all
        ("2026-11-24", B1, "A", "wechat"): (1, 0, 1, 0, 0, 0.0, 100.0),
        ("2026-11-24", B1, "V", "web"): (1, 0, 0, 1, 0, None, None),
        ("2026-11-24", B2, "A", "sms"): (1, 0, 1, 0, 0, 0.0, 100.0),
        ("2026-11-24", B4, "A", "web"): (1, 0, 1, 0, 0, 0.0, 100.0),
        # the 26th is still to come at noon on the 25th
        ("2026-11-26", B1, "A", "web"): (1, 0, 0, 0, 1, 0.0, 0.0),
    }
    assert [(x["day"], x["branch"], x["queue"], x["channel"]) for x in r.rows] == sorted(got)
    assert figures(r.total) == (8, 2, 4, 1, 1, 28.6, 57.1)
    web = next(x for x in r.rows if x["channel"] == "wechat")
    assert web["channel_name"] == "微信 WeChat" and web["queue_name"]


def test_a_day_and_a_sub_branch_org_count_only_theirs(store: Store) -> None:
    day = report(store, "appointments", ["100101"], period=Period.parse("day", "2026-11-24"))
    assert {x["branch"] for x in day.rows} == {B1, B2}
    assert figures(day.total) == (6, 2, 3, 1, 0, 40.0, 60.0)
    assert B3 not in str(report(store, "appointments", ["1001"]).to_json())


def test_once_its_day_is_over_a_booking_not_redeemed_is_a_no_show(store: Store) -> None:
    later = run_report(store, "appointments", Period.parse("day", "2026-11-26"),
                       resolve_scope(["1001"], allowed=EVERYWHERE),
                       now=NOW_I5 + 2 * 86400)
    assert figures(later.total) == (1, 0, 1, 0, 0, 0.0, 100.0)


def test_a_listing_over_its_limit_says_so_and_the_total_counts_everything(
        store: Store) -> None:
    r = report(store, "appointments", ["1001"], limit=2)
    assert len(r.rows) == 2 and any("2" in n for n in r.notes[-1:])
    assert r.total["booked"] == 8


# --- staff search by 工号 ---------------------------------------------------------------------


def rows_of(r: Any) -> list[tuple[Any, ...]]:
    return [(x["branch"], x["day"], x["number"], x["outcome"], x["wait"], x["handle"],
             x["score"]) for x in r.rows]


def test_a_tellers_services_over_a_month(store: Store) -> None:
    r = report(store, "teller-services", ["100101"], teller="t1")
    assert rows_of(r) == [
        (B1, "2026-11-24", "A001", "served", 1.0, 5.0, 4),
        (B1, "2026-11-24", "A002", "not_served", 5.0, None, None),  # open at the close
        (B1, "2026-11-25", "A001", "served", 1.0, 4.0, 5),
        # V001: first called by t2, transferred; t1 finished it (10 min at t1's window)
        (B1, "2026-11-25", "V001", "served", 7.0, 10.0, None),
        (B1, "2026-11-25", "A004", "no_show", 1.0, None, None),
        (B2, "2026-11-25", "A001", "served", 20.0, 5.0, 4),
    ]
    # A002 of the 25th: t1's no-show was undone by t2's call-back, so it is t2's service
    assert r.total["handle"] == 24.0 and r.total["calls"] == 7
    assert r.rows[0]["level"] == "满意" and r.rows[0]["outcome_name"] == "办结 served"
    assert "办结 4 人,弃号 1 人,未办理 1 人" in r.notes[0]
    assert "平均办理 6 分钟" in r.notes[0] and "评价 3 次,平均 4.33 分" in r.notes[0]


def test_served_and_not_served_filters(store: Store) -> None:
    served = report(store, "teller-services", ["100101"], teller="t1", outcome="served")
    assert [x["outcome"] for x in served.rows] == ["served"] * 4
    missed = report(store, "teller-services", ["100101"], teller="t1", outcome="not_served")
    assert [(x["number"], x["outcome"]) for x in missed.rows] == [
        ("A002", "not_served"), ("A004", "no_show")]
    t2 = report(store, "teller-services", [B1], teller="t2",
                period=Period.parse("day", "2026-11-25"))
    assert [(x["number"], x["handle"], x["score"]) for x in t2.rows] == [
        ("A002", 3.0, 2), ("A003", 1.0, None)]


def test_the_staff_search_takes_only_a_well_formed_staff_number(store: Store) -> None:
    for teller in ("t 1", "x" * 33, "t1';--"):
        with pytest.raises(ScopeError):
            report(store, "teller-services", teller=teller)
    for teller in (None, ""):  # the page before a number is typed: it says to give one
        asked = report(store, "teller-services", teller=teller)
        assert asked.rows == [] and "工号" in asked.notes[0]
    with pytest.raises(ScopeError):
        report(store, "teller-services", teller="t1", outcome="everything")


# --- exports -----------------------------------------------------------------------------------


def test_names_from_outside_are_text_in_the_exports(store: Store) -> None:
    evil = Labels(branches={B1: EVIL}, queues={"A": "+A"}, tellers={(B1, "t1"): "@t1"})
    for rid, kw in (("appointments", {}), ("teller-services", {"teller": "t1"})):
        r = run_report(store, rid, MONTH, resolve_scope([B1], allowed=EVERYWHERE), evil,
                       now=NOW_I5, **kw)
        lines = list(csv.reader(io.StringIO(to_csv(r).decode("utf-8-sig"))))
        cells = [c for line in lines for c in line]
        assert "'" + EVIL in cells and "'+A" in cells
        assert all(not c.startswith(FORMULA_START) or _NUMBER.fullmatch(c) for c in cells)
        ws = openpyxl.load_workbook(io.BytesIO(to_xlsx(r))).active
        values = [c for row in ws.iter_rows() for c in row if c.value is not None]
        assert not any(c.data_type == "f" for c in values)
        assert any(c.value == "'" + EVIL and c.data_type == "s" for c in values)
    assert "'@t1" in cells  # the teller's name in the staff search


# --- over HTTP, in the caller's scope ----------------------------------------------------------


@pytest.fixture
async def centre(store_url: str, store: Store) -> AsyncIterator[Centre]:
    c = Centre(load_centre_config(CENTRE_TOML, [f"store.url={store_url}", "http.enabled=false",
                                                ADMIN_SEED]))
    yield c
    await c.close()


DAY24 = {"period": "day", "date": "2026-11-24"}


async def test_json_excel_and_csv_agree(centre: Centre) -> None:
    async with head_office_client(centre, Caller(["1001"])) as http:
        for path, extra in (("/api/reports/appointments", {}),
                            ("/api/reports/teller-services", {"teller": "t1"})):
            j = (await http.get(path, params={**DAY24, **extra})).json()
            keys = [c["key"] for c in j["columns"]]
            c = await http.get(path + "/csv", params={**DAY24, **extra})
            lines = list(csv.reader(io.StringIO(c.content.decode("utf-8-sig"))))
            assert lines[0] == [col["header"] for col in j["columns"]]
            assert len(lines) == 1 + len(j["rows"]) + 1
            x = await http.get(path + "/xlsx", params={**DAY24, **extra})
            ws = openpyxl.load_workbook(io.BytesIO(x.content)).active
            top = HEADER_ROWS + 2
            for i, row in enumerate(j["rows"], start=top + 1):
                assert [ws.cell(i, k + 1).value for k in range(len(keys))] == \
                    [row[k] if row[k] is not None else None for k in keys]
        stats = (await http.get("/api/reports/appointments", params=DAY24)).json()
        assert stats["total"]["booked"] == 7 and stats["spec"] == "I5"
        cat = (await http.get("/api/reports")).json()
        assert {"appointments", "teller-services"} <= {r["id"] for r in cat["reports"]}
        assert {"teller", "outcome"} <= set(cat["parameters"])


async def test_the_staff_search_refuses_a_malformed_staff_number(centre: Centre) -> None:
    async with head_office_client(centre, Caller(["1001"])) as http:
        for params in ({"teller": "t 1"}, {"teller": "t1", "outcome": "x"},
                       {"teller": "x" * 33}):
            r = await http.get("/api/reports/teller-services", params={**DAY24, **params})
            assert r.status_code == 422, r.text


@pytest.mark.parametrize("rid", ["appointments", "teller-services"])
async def test_no_scope_sees_nothing(centre: Centre, rid: str) -> None:
    for caller in (None, Caller(allowed=[])):
        async with head_office_client(centre, caller) as http:
            for tail in ("", "/csv", "/xlsx"):
                r = await http.get(f"/api/reports/{rid}{tail}",
                                   params={**DAY24, "teller": "t1"})
                assert r.status_code == 403, r.text
                assert B1 not in r.text


@pytest.mark.parametrize("rid", ["appointments", "teller-services"])
async def test_a_sub_branch_manager_sees_only_their_subtree(centre: Centre, rid: str) -> None:
    """A real back-office session: the manager of 100101 (B1, B2) is refused 1001 as a
    whole and another sub-branch's branch; asking for nothing gives their own subtree."""
    async with admin_client(centre) as (http, _):
        admin = {"Authorization": http.headers.pop("Authorization")}
        me = await add_user(http, admin, "zhihang", "manager", "100101")
        q = {**DAY24, "teller": "t1"}
        for tail in ("", "/csv", "/xlsx"):
            for asked in ({"org": "1001"}, {"branch": B4}, {"org": "1002"}):
                r = await http.get(f"/api/reports/{rid}{tail}", params={**q, **asked},
                                   headers=me)
                assert r.status_code == 403, (rid, tail, asked, r.text[:200])
            bare = await http.get(f"/api/reports/{rid}{tail}", params=q)
            assert bare.status_code == 401
        mine = (await http.get(f"/api/reports/{rid}", params=q, headers=me)).json()
        assert mine["rows"] and {x["branch"] for x in mine["rows"]} <= {B1, B2}
        text = str(mine)
        assert B3 not in text and B4 not in text
        if rid == "appointments":
            assert mine["total"]["booked"] == 6


# --- the staff number from outside; migration 0069 on a store that had tickets already ---------


@given(st.text(max_size=40), st.sampled_from(["all", "served", "not_served", "", "x"]))
def test_any_staff_number_is_taken_or_refused_never_run(teller: str, outcome: str) -> None:
    """The 工号 never reaches the SQL as text: a well-formed one is an argument, anything
    else is refused with words."""
    try:
        sql, args = teller_condition(teller, outcome)
    except ScopeError as exc:
        assert "teller" in str(exc) or "outcome" in str(exc)
        return
    assert sql == f" AND {OUTCOMES[outcome]}" and set(args) == {teller}


async def test_junk_staff_numbers_over_http_are_422_never_500(centre: Centre) -> None:
    async with head_office_client(centre, Caller(["1001"])) as http:
        for junk in ("'; DROP TABLE rpt_ticket; --", "工号", "a" * 200, "t1\x00", "%", " "):
            r = await http.get("/api/reports/teller-services",
                               params={**DAY24, "teller": junk})
            assert r.status_code == 422, (junk, r.text[:200])


def test_migration_0069_finds_the_bookings_of_tickets_folded_before_it(
        store_url: str, store: Store) -> None:
    """A store whose tickets were folded before 0069 (no ``appointment`` column): the
    migration reads each ticket's booking from the stored events once, voided ones left
    out, so the statistics count them redeemed."""
    for index in ("rpt_ticket_appointment", "rpt_ticket_outcome_teller", "rpt_ticket_teller"):
        store.execute(f"DROP INDEX {index}")
    store.execute("ALTER TABLE rpt_ticket DROP COLUMN appointment")
    store.execute("DELETE FROM schema_migrations WHERE version = 69")
    store.close()
    again = open_store(store_url)
    try:
        found = dict(again.execute("SELECT number, appointment FROM rpt_ticket "
                                   "WHERE day = '2026-11-24' AND branch = ?", (B1,)).fetchall())
        assert found == {"A001": "bk1", "A002": "bk2", "A003": None}  # A003 was voided
        r = report(again, "appointments", [B1], period=Period.parse("day", "2026-11-24"))
        assert r.total["redeemed"] == 2
    finally:
        again.close()
