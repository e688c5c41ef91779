"""The reports over HTTP: JSON, Excel and CSV give the same numbers; scope; errors."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openpyxl
import pytest

from central.config import load_centre_config
from central.reports.export import HEADER_ROWS
from central.service import Centre
from central.store import open_store
from tests.office_support import ADMIN_SEED, CENTRE_TOML, add_user, admin_client
from tests.reports_support import B1, B2, B3, hand_day, ingest_all, other_days
from tests.scope_support import Caller, head_office_client
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401

DAY = {"period": "day", "date": "2026-11-25"}


@pytest.fixture
async def api(store_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    store = open_store(store_url)
    ingest_all(store, hand_day(), *other_days())
    store.close()
    centre = Centre(load_centre_config(None, [f"store.url={store_url}"]))
    # These branches span two provinces (1001, 1002): see them all, as a centre-wide
    # caller would; scope itself is tested below and in test_central_scopes.py.
    caller = Caller()
    async with head_office_client(centre, caller) as client:
        yield client, caller
    await centre.close()


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> httpx.Response:
    return await client.get(path, params={**DAY, **params})


def sheet_table(data: bytes) -> tuple[Any, list[str], list[list[Any]]]:
    """The workbook's one sheet, its header row and the rows under it (total included)."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert len(book.sheetnames) == 1
    ws = book.active
    top = HEADER_ROWS + 2
    header = [c.value for c in ws[top]]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=top + 1)]
    return ws, header, [r for r in rows if any(v is not None for v in r)]


async def test_json_excel_and_csv_hold_the_same_numbers(api: Any) -> None:
    client, _ = api
    j = (await get(client, "/api/reports/wait-by-type", org="1001")).json()
    x = await get(client, "/api/reports/wait-by-type/xlsx", org="1001")
    assert x.status_code == 200
    assert x.headers["content-disposition"].endswith('wait-by-type_day_2026-11-25.xlsx"')
    ws, header, rows = sheet_table(x.content)
    assert header == [c["header"] for c in j["columns"]]
    assert "平均等待时间(分钟) Average wait (min)" in header
    keys = [c["key"] for c in j["columns"]]
    for row, cells in zip(j["rows"], rows, strict=False):
        assert cells[:len(keys)] == [row[k] for k in keys]
    assert ws.title == "wait-by-type"
    assert [r[keys.index("ctype")] for r in rows[:len(j["rows"])]] == \
        [r["ctype"] for r in j["rows"]]
    total = rows[len(j["rows"])]  # the row under the table: every column as the JSON's total
    assert total[:len(keys)] == ["合计 Total", *[j["total"].get(k) for k in keys[1:]]]
    assert ws["A1"].value == "客户平均等待时间及分布(按客户类型)"
    assert "1001" in ws["A3"].value and "2026年11月25日" in ws["A4"].value
    assert ws["A5"].value.startswith("生成时间 Generated at: ")
    assert len(ws._charts) == 1  # a native Excel chart, as the page draws one
    chart = ws._charts[0]
    assert len(chart.series) == 4
    c = await get(client, "/api/reports/wait-by-type/csv", org="1001")
    assert c.content.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(c.content.decode("utf-8-sig"))))
    assert lines[0] == header
    normal = next(r for r in j["rows"] if r["ctype"] == "normal")
    csv_normal = next(line for line in lines[1:] if line[0] == "normal")
    # B1's waits of 1, 4, 25, 1 min and B2's 20 min
    assert float(csv_normal[keys.index("avg_wait")]) == normal["avg_wait"] == 10.2


async def test_every_report_answers_in_each_format(api: Any) -> None:
    client, _ = api
    listed = (await client.get("/api/reports")).json()["reports"]
    assert len(listed) >= 15 and {r["spec"] for r in listed} >= {"E1", "E2", "E3", "E4", "E5",
                                                                 "C4", "F5"}
    for r in listed:
        for suffix in ("", "/xlsx", "/csv"):
            res = await get(client, f"/api/reports/{r['id']}{suffix}", period="month",
                            date="2026-11")
            assert res.status_code == 200, (r["id"], suffix, res.text[:200])


async def test_a_table_without_a_chart_has_none_in_excel(api: Any) -> None:
    client, _ = api
    x = await get(client, "/api/reports/branch-summary/xlsx")
    ws, _, rows = sheet_table(x.content)
    assert ws._charts == [] and [r[0] for r in rows[:3]] == [B1, B2, B3]


async def test_the_callers_scope_is_enforced(api: Any) -> None:
    client, caller = api
    caller.allowed = ["100101"]
    r = await get(client, "/api/reports/branch-summary")
    assert {row["branch"] for row in r.json()["rows"]} == {B1, B2}
    assert (await get(client, "/api/reports/branch-summary", org="1002")).status_code == 403
    assert (await get(client, "/api/reports/branch-summary/xlsx", org="1001")).status_code \
        == 403
    assert (await get(client, "/api/reports/tellers", branch=B3)).status_code == 403
    ok = await get(client, "/api/reports/branch-summary", branch=B2)
    assert [row["branch"] for row in ok.json()["rows"]] == [B2]


async def test_two_sub_branch_managers_each_see_only_their_own_branch(store_url: str
                                                                     ) -> None:
    """Real back-office sessions (no dependency override): the managers of 金水路 (B1) and
    花园路 (B2) each get their own branch's reports, in every format, and 403 for the
    other's branch or for the city above them."""
    store = open_store(store_url)
    ingest_all(store, hand_day(), *other_days())
    store.close()
    centre = Centre(load_centre_config(CENTRE_TOML, [f"store.url={store_url}",
                                                     "http.enabled=false", ADMIN_SEED]))
    try:
        async with admin_client(centre) as (http, _):
            admin = {"Authorization": http.headers.pop("Authorization")}
            managers = {B1: await add_user(http, admin, "jinshui", "manager", B1),
                        B2: await add_user(http, admin, "huayuan", "manager", B2)}
            everyone = await http.get("/api/reports/branch-summary", headers=admin,
                                      params={**DAY, "org": "100101"})
            assert {r["branch"] for r in everyone.json()["rows"]} == {B1, B2}
            for mine, other in ((B1, B2), (B2, B1)):
                me = managers[mine]
                r = await http.get("/api/reports/branch-summary", headers=me, params=DAY)
                assert r.status_code == 200, r.text
                assert [row["branch"] for row in r.json()["rows"]] == [mine]
                _, _, rows = sheet_table((await http.get(
                    "/api/reports/branch-summary/xlsx", headers=me, params=DAY)).content)
                assert [row[0] for row in rows[:-1]] == [mine]  # and the total row
                for suffix in ("", "/xlsx", "/csv"):
                    for params in ({"branch": other}, {"org": other}, {"org": "100101"}):
                        r = await http.get(f"/api/reports/branch-summary{suffix}",
                                           headers=me, params={**DAY, **params})
                        assert r.status_code == 403, (mine, suffix, params, r.text)
            assert (await http.get("/api/reports/branch-summary", params=DAY)).status_code \
                == 401
    finally:
        await centre.close()


async def test_bad_requests_get_clear_errors(api: Any) -> None:
    client, _ = api
    assert (await get(client, "/api/reports/nope")).status_code == 404
    bad = await get(client, "/api/reports/tellers", date="2026-13-01")
    assert bad.status_code == 422 and "is not a day" in bad.json()["detail"]
    assert (await get(client, "/api/reports/tellers", period="month",
                      date="2026-11-25")).status_code == 422
    assert (await get(client, "/api/reports/tellers", org="10x1")).status_code == 422
    assert (await get(client, "/api/reports/tellers", queue="A;DROP")).status_code == 422
    assert (await client.get("/api/reports/tellers")).status_code == 422  # no date


async def test_the_openapi_document_names_the_routes(api: Any) -> None:
    client, _ = api
    paths = (await client.get("/openapi.json")).json()["paths"]
    for p in ("/api/reports", "/api/reports/{report}", "/api/reports/{report}/xlsx",
              "/api/reports/{report}/csv", "/api/alerts", "/api/alerts/{alert_id}/ack",
              "/api/alerts/thresholds/{org}"):
        assert p in paths, p
    params = {p["name"] for p in paths["/api/reports/{report}"]["get"]["parameters"]}
    assert params >= {"period", "date", "org", "branch", "queue", "customer_type"}
