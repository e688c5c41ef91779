"""The head office's alert and report pages in a real headless Chromium, against a real
centre (``python -m central`` on the demo organisation, with its alert desk every 5 s) and
a real box on branch 1001010001 (the fixtures of tests/test_central_browser.py).

A provincial administrator sees a new alert appear on the live dashboard with a beep,
acknowledges it on the alerts page, edits a node's alert thresholds (and is told what is
wrong with a bad value), and asks for a report of two branches and one business, which
shows the same figures as the JSON API for that query. Screenshots land in
docs/screenshots/centre-*.png.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import pytest

from central.store import open_store

from .browser import BoxProcess
from .centre_browser_support import box, browser, centre, expect, logged_in, save
from .office_support import B1, CentreProcess
from .reports_support import B2, B4, hand_day, ingest_all
from .uplink_support import broker_fixture

__all__ = ["box", "broker_fixture", "browser", "centre"]

pytestmark = [pytest.mark.browser, pytest.mark.network]
COUNT_BEEPS = """
window.__beeps = 0;
const original = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__beeps += 1;
  return original.call(this);
};
"""


def need_reports(centre: CentreProcess) -> str:
    token = centre.token()
    if centre.call("GET", "/api/reports", token=token)[0] == 404:
        pytest.skip("the reports and alerts service is not on this centre")
    return token


def test_a_new_alert_shows_on_the_dashboard_with_a_beep_and_is_acknowledged(
        browser: Any, centre: CentreProcess, box: BoxProcess) -> None:
    token = need_reports(centre)
    page = logged_in(browser, centre)
    page.context.add_init_script(COUNT_BEEPS)
    page.goto(centre.url + "/live")
    exp = expect()
    exp(page.locator("#link")).to_contain_text("实时")
    exp(page.locator("#alerts-card")).to_be_hidden()  # nothing to see yet
    page.wait_for_timeout(5500)  # the panel has polled once: what comes now is new

    status, _ = centre.call("PUT", f"/api/alerts/thresholds/{B1}", {"waiting_over": 1}, token)
    assert status == 200
    for _ in range(2):
        assert box.call("POST", "/api/tickets", {"queue": "A"})[0] == 201
    item = page.locator("#alerts-list li[data-alert]").first
    exp(item).to_contain_text("等待人数已经超过1个", timeout=30_000)
    exp(item).to_contain_text("郑州金水路支行")
    exp(page.locator("#alerts-count")).to_have_text("1")
    assert page.evaluate("() => window.__beeps") >= 1
    save(page, "centre-live-alert")

    page.click("#alerts-link")
    page.wait_for_url("**/alerts?org=*")
    alert_id = page.locator("#alerts tr[data-alert]").first.get_attribute("data-alert")
    assert alert_id is not None
    row = page.locator(f'#alerts tr[data-alert="{alert_id}"]')
    exp(row).to_contain_text("未确认")
    row.locator("button").click()
    page.uncheck("#open-only")  # acknowledged alerts are listed too
    exp(row).to_contain_text("已确认 admin", timeout=10_000)
    save(page, "centre-alerts")
    status, alert = centre.call("GET", f"/api/alerts/{alert_id}", token=token)
    assert status == 200 and alert["acked_by"] == "admin"

    page.goto(centre.url + "/live")  # nothing left to acknowledge: the panel is gone
    exp(page.locator("#link")).to_contain_text("实时")
    page.wait_for_timeout(1500)
    exp(page.locator("#alerts-card")).to_be_hidden()


def test_edit_a_nodes_alert_thresholds_on_the_alerts_page(
        browser: Any, centre: CentreProcess) -> None:
    token = need_reports(centre)
    status, _ = centre.call("PUT", "/api/alerts/thresholds/100101",
                            {"sms_to": ["13812345678"], "push_kinds": ["waiting_over"]}, token)
    assert status == 200
    page = logged_in(browser, centre)
    page.goto(centre.url + "/alerts")
    exp = expect()
    page.select_option("#th-org", "100101")
    exp(page.locator("#th-sms_to")).to_have_value("138****5678")
    exp(page.locator("#th-waiting_over")).to_have_attribute("placeholder", "继承 inherit: 30")

    page.fill("#th-waiting_over", "-5")  # wrong twice: both said, next to their fields
    page.fill("#th-sms_to", "138****5678, 12ab")
    page.click("#th-save")
    exp(page.locator("#th-error")).to_contain_text("请修改以下设置")
    exp(page.locator("#th-error")).to_contain_text("排队等待人数超过")
    exp(page.locator('label[data-key="waiting_over"] .field-error')).to_contain_text("不能小于 0")
    exp(page.locator('label[data-key="sms_to"]')).to_have_class("bad")
    save(page, "centre-thresholds-error")
    assert centre.call("GET", "/api/alerts/thresholds/100101", token=token)[1]["own"] == {
        "sms_to": ["138****5678"], "push_kinds": ["waiting_over"]}  # nothing saved

    page.fill("#th-waiting_over", "12")
    page.fill("#th-sms_to", "138****5678, 13900001111")
    page.select_option("#th-bad_rating", "false")
    page.click("#th-save")
    exp(page.locator("#toast")).to_contain_text("已保存")
    exp(page.locator("#th-state")).to_contain_text("本节点自设 4 项")
    save(page, "centre-thresholds")
    status, node = centre.call("GET", "/api/alerts/thresholds/100101", token=token)
    assert node["own"] == {"waiting_over": 12, "bad_rating": False,
                           "sms_to": ["138****5678", "139****1111"],
                           "push_kinds": ["waiting_over"]}  # the stored number kept
    status, branch = centre.call("GET", f"/api/alerts/thresholds/{B1}", token=token)
    assert branch["effective"]["waiting_over"] == 12  # inherited below the node
    status, audit = centre.call("GET", "/api/audit?action=alert.thresholds", token=token)
    assert audit["rows"][0]["action"] == "alert.thresholds.save"


def box_heard(centre: CentreProcess, token: str) -> None:
    """Wait until the centre holds the box's live snapshot (its businesses' names)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, branch = centre.call("GET", f"/api/branches/{B1}", token=token)
        if status == 200 and ((branch.get("live") or {}).get("status") or {}).get("queues"):
            return
        time.sleep(0.3)  # polling another process's API
    raise TimeoutError("the box's live snapshot did not reach the centre")


def test_a_report_of_two_branches_and_one_business_matches_the_api(
        browser: Any, centre: CentreProcess, box: BoxProcess) -> None:
    token = centre.token()
    box_heard(centre, token)  # the businesses offered are those of the live branches
    need_reports(centre)
    store = open_store(f"sqlite:///{centre.data_dir / 'centre.sqlite3'}")
    try:
        days = []
        for branch in (B2, B4):  # the worked day (docs/reports.md) at two more branches
            day = hand_day()
            day.branch = branch
            days.append(day)
        days[1].issue(200, "A005")
        ingest_all(store, *days)
    finally:
        store.close()

    page = logged_in(browser, centre)
    page.goto(centre.url + "/reports")
    exp = expect()
    exp(page.locator('#queue option[value="A"]')).to_have_count(1, timeout=20_000)  # the box's
    page.select_option("#org", "1001")
    page.select_option("#branch", [B2, B4])
    page.select_option("#queue", "A")
    page.select_option("#report", "branch-business")
    page.fill("#date", "2026-11-25")
    page.click("#filters button[type=submit]")
    exp(page.locator("#report-table tr.total")).to_be_visible()
    href = page.locator("#csv").get_attribute("href")
    assert href is not None
    query = urllib.parse.parse_qs(urllib.parse.urlparse(href).query)
    assert query["branch"] == [B2, B4] and query["queue"] == ["A"], query

    status, report = centre.call(
        "GET", "/api/reports/branch-business?" + urllib.parse.urlparse(href).query, token=token)
    assert status == 200, report
    assert {r["branch"] for r in report["rows"]} == {B2, B4}
    assert {r["queue"] for r in report["rows"]} == {"A"}
    assert report["total"]["issued"] == 4 + 5  # A001–A004, and A005 at the second
    cells = page.locator("#report-table tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))")
    assert len(cells) == len(report["rows"]) + 1
    keys = [c["key"] for c in report["columns"]]
    for shown, row in zip(cells, [*report["rows"], report["total"]], strict=True):
        for text, key in zip(shown, keys, strict=True):
            value = row.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert abs(float(text) - value) < 0.01, (key, text, value)
    save(page, "centre-report")

    page.select_option("#report", "wait-by-type")  # a chart of several series: all drawn
    page.click("#filters button[type=submit]")
    exp(page.locator("#report-chart svg")).to_be_visible()
    status, waits = centre.call("GET", "/api/reports/wait-by-type?" + urllib.parse.urlencode(
        {"org": "1001", "branch": [B2, B4], "queue": "A", "period": "day",
         "date": "2026-11-25"}, doseq=True), token=token)
    assert status == 200 and len(waits["chart"]["series"]) > 1
    drawn = page.locator("#report-chart rect[data-series]").evaluate_all(
        "rs => [...new Set(rs.map(r => r.dataset.series))]")
    assert len(drawn) == len(waits["chart"]["series"])
    save(page, "centre-report-chart")


