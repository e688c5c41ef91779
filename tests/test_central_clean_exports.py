"""Exports neutralise formula cells (OWASP "CSV injection"): the staff's appointment CSV,
the reports' CSV and Excel, the staffing advice — one function, central.reports.export
safe_cell. A customer named ``=cmd|'/c calc'!A1`` is written as text; numbers stay numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.appointments import Customer
from central.reports.catalog import Column, Report
from central.reports.export import FORMULA_START, safe_cell, to_csv, to_xlsx
from central.reports.scope import Period, Scope
from common.clock import ManualClock
from tests.customer_support import an_id, plain_centre, put_catalogue, staff
from tests.uplink_support import BRANCH, pg_url_fixture, store_url_fixture  # noqa: F401

EVIL = "=cmd|'/c calc'!A1"


@pytest.mark.parametrize(("value", "cell"), [
    (EVIL, "'" + EVIL), ("+1+cmd|x", "'+1+cmd|x"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("张伟", "张伟"), ("a=b", "a=b"), (None, ""),
    (-3, -3), (-2.5, -2.5), (0, 0), ("-3", "-3"), ("+86", "+86"), ("-1.5e3", "-1.5e3"),
])
def test_a_cell_that_would_run_is_written_as_text_and_numbers_stay_numbers(
        value: object, cell: object) -> None:
    assert safe_cell(value) == cell
    assert type(safe_cell(value)) is type(cell)


@given(st.text(max_size=30))
def test_no_text_leaves_as_a_formula(text: str) -> None:
    out = safe_cell(text)
    assert not out.startswith(FORMULA_START) or float(out) == float(text)


def a_report(name: str) -> Report:
    cols = [Column("branch_name", "网点", "Branch"), Column("waiting", "等待", "Waiting",
                                                            "people")]
    return Report("evil", "测试", "Test", "A1", Period("day", "2026-11-25"),
                  Scope(prefixes=("41",)), "2026-11-25T10:00:00+08:00", cols,
                  [{"branch_name": name, "waiting": -3}, {"branch_name": "北京", "waiting": 2.5}],
                  total={"label": "=SUM(B1:B2)", "waiting": -0.5})


def test_the_report_csv_and_workbook_neutralise_a_formula_name() -> None:
    from openpyxl import load_workbook

    rows = list(csv.reader(io.StringIO(to_csv(a_report(EVIL)).decode("utf-8-sig"))))
    assert rows[1] == ["'" + EVIL, "-3"] and rows[3][0] == "'=SUM(B1:B2)"
    ws = load_workbook(io.BytesIO(to_xlsx(a_report(EVIL)))).active
    cells = {c.value: c for row in ws.iter_rows() for c in row if c.value is not None}
    assert "'" + EVIL in cells and cells["'" + EVIL].data_type == "s"
    assert "'=SUM(B1:B2)" in cells and EVIL not in cells
    assert not any(c.data_type == "f" for c in cells.values())  # nothing Excel would run
    assert cells[-3].data_type == "n" and cells[-0.5].data_type == "n"  # numbers stay numbers


async def test_a_customer_named_like_a_formula_is_text_in_the_staff_csv(
        store_url: str, tmp_path: Path, clock: ManualClock) -> None:
    async with plain_centre(store_url, tmp_path, clock) as (centre, api):
        assert centre.customers is not None
        a = centre.customers.appointments
        await put_catalogue(a, clock)
        phone = "13800000009"
        who = Customer(a.vault.digest(phone), phone, None, None)
        profile = await a.register(who, EVIL, None, an_id(9))
        await a.book(Customer(who.phone_digest, phone, profile["id"], EVIL), BRANCH, "A",
                     "2026-11-25", 4)
        r = await api.get("/api/staff/appointments.csv", headers=await staff(api))
        assert r.status_code == 200
        rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
        assert len(rows) == 1 and rows[0]["name"].startswith("'=")
        assert not any(v.startswith(FORMULA_START) for v in rows[0].values())
