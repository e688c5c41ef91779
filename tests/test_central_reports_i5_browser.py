"""The head office's I5 figures on the report page, in a real headless Chromium against a
real centre (``python -m central`` on the demo organisation): the staff search by 工号
asks for the staff number and the served / not served filter only when it is chosen, and
shows what the API answers for that query, downloads included; the appointment
statistics show their total. Screenshot: docs/screenshots/centre-report-staff.png."""

from __future__ import annotations

import csv
import io
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from central.store import open_store

from .centre_browser_support import browser, centre, expect, logged_in, save
from .office_support import CentreProcess
from .reports_support import add_bookings, booking_day, hand_day, ingest_all
from .uplink_support import broker_fixture

__all__ = ["broker_fixture", "browser", "centre"]

pytestmark = [pytest.mark.browser, pytest.mark.network]


def test_the_staff_search_and_the_appointment_statistics_on_the_report_page(
        browser: Any, centre: CentreProcess) -> None:
    token = centre.token()
    store = open_store(f"sqlite:///{centre.data_dir / 'centre.sqlite3'}")
    try:
        ingest_all(store, hand_day(), booking_day())
        add_bookings(store)
    finally:
        store.close()
    page = logged_in(browser, centre)
    page.goto(centre.url + "/reports")
    exp = expect()
    exp(page.locator('#report option[value="teller-services"]')).to_have_count(1,
                                                                             timeout=20_000)
    exp(page.locator("#teller")).to_be_hidden()  # only the staff search takes a 工号
    page.select_option("#org", "1001")
    page.select_option("#period", "month")
    page.fill("#date", "2026-11-24")
    page.select_option("#report", "teller-services")
    exp(page.locator("#teller")).to_be_visible()
    page.fill("#teller", "t1")
    page.select_option("#outcome", "not_served")
    page.click("#filters button[type=submit]")
    exp(page.locator("#report-table tbody tr").first).to_be_visible()
    href = page.locator("#xlsx").get_attribute("href")
    assert href is not None
    query = urllib.parse.urlparse(href).query
    asked = urllib.parse.parse_qs(query)
    assert asked["teller"] == ["t1"] and asked["outcome"] == ["not_served"], asked
    status, report = centre.call("GET", "/api/reports/teller-services?" + query, token=token)
    assert status == 200, report
    assert [r["number"] for r in report["rows"]] == ["A002", "A004"]
    shown = page.locator("#report-table tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))")
    keys = [c["key"] for c in report["columns"]]
    numbers = [row[keys.index("number")] for row in shown[:len(report["rows"])]]
    assert numbers == ["A002", "A004"]
    exp(page.locator("#result")).to_contain_text("弃号 1 人,未办理 1 人")
    save(page, "centre-report-staff")
    with page.expect_download() as download:  # the CSV the page links, as the browser saves it
        page.click("#csv")
    saved = Path(download.value.path()).read_text(encoding="utf-8-sig")
    lines = list(csv.reader(io.StringIO(saved)))
    assert [line[keys.index("number")] for line in lines[1:3]] == ["A002", "A004"]

    page.select_option("#report", "appointments")
    exp(page.locator("#teller")).to_be_hidden()
    page.click("#filters button[type=submit]")
    exp(page.locator("#result h2")).to_contain_text("预约排队服务信息统计表")
    total = page.locator("#report-table tr.total td").evaluate_all(
        "cells => cells.map(c => c.textContent)")
    status, stats = centre.call("GET", "/api/reports/appointments?" + urllib.parse.urlencode(
        {"org": "1001", "period": "month", "date": "2026-11"}), token=token)
    assert status == 200
    keys = [c["key"] for c in stats["columns"]]
    assert float(total[keys.index("booked")]) == stats["total"]["booked"] == 8
