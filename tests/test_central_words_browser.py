"""Plain words on the centre's pages (issue 17), in the real Chromium against a real centre
(its own Mosquitto, ``python -m central`` on the demo organisation): the report table fits
a 1366-wide screen; branches by name with the code on hover, alert kinds as sentences,
device ids as "3号窗口评价器", errors as the API's message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central.broker import LocalBroker
from tests.centre_browser_support import browser, centre, expect, logged_in

from .browser import BoxProcess
from .office_support import B1, CentreProcess
from .uplink_support import broker_fixture

__all__ = ["box", "broker_fixture", "browser", "centre"]

pytestmark = [pytest.mark.browser, pytest.mark.network]
LAPTOP = {"width": 1366, "height": 768}


def test_all_13_columns_of_a_report_are_readable_on_a_1366_wide_screen(
        browser: Any, centre: CentreProcess) -> None:
    """No column is cut off or pushed beyond the window: the table is no wider than its
    box and no header's words spill out of their cell."""
    page = logged_in(browser, centre)
    page.set_viewport_size(LAPTOP)
    page.goto(centre.url + f"/reports?org={B1}")
    report = page.locator("#report")
    expect()(report.locator('option[value="branch-business"]')).to_have_count(1)
    report.select_option("branch-business")  # E4: 13 columns, the widest report
    page.locator("#date").fill("2026-11-25")
    page.locator("#date").press("Enter")  # the form submits as the button would
    expect()(page.locator("#report-table thead th")).to_have_count(13)
    expect()(page.locator("#report-scope")).to_contain_text("郑州金水路支行")  # not its code
    fit = page.locator("#report-table").evaluate("""t => ({
      table: t.getBoundingClientRect().right, page: document.documentElement.clientWidth,
      box: t.parentElement.getBoundingClientRect().right,
      spilled: [...t.querySelectorAll('th')].filter((h) => h.scrollWidth > h.clientWidth + 1)
        .map((h) => h.textContent)})""")
    assert fit["table"] <= fit["box"] + 1 and fit["box"] <= fit["page"], fit
    assert fit["spilled"] == [], fit
    page.context.close()


@pytest.fixture
def box(tmp_path: Path, broker: LocalBroker, centre: CentreProcess) -> Iterator[BoxProcess]:
    """The example branch reporting to the centre, window 3's evaluator at bus address 7
    (not its window number), so a name in words can only come from the config."""
    password = broker.add_user(B1)
    b = BoxProcess(tmp_path / "box", f'uplink.broker="{broker.url}"',
                   f'uplink.password="{password}"', "uplink.live_interval_s=0.2",
                   "uplink.health_interval_s=1", "windows.2.evaluator=7").start()
    try:
        yield b
    finally:
        b.stop()


def test_devices_by_window_branches_by_name_alerts_as_sentences_errors_in_words(
        browser: Any, centre: CentreProcess, box: BoxProcess) -> None:
    page = logged_in(browser, centre)
    exp = expect()
    page.goto(centre.url + f"/live?org={B1}")
    evaluator = page.locator('#devices [data-device="evaluator.7"]')
    exp(evaluator).to_have_text("3号窗口评价器 Window 3 evaluator", timeout=20_000)
    assert evaluator.get_attribute("title") == "evaluator.7"
    exp(page.locator('#devices [data-device="printer"]')).to_contain_text("取号机打印机")

    alert = {"id": 1, "key": f"device_fault:{B1}:evaluator.7", "kind": "device_fault",
             "branch": B1, "level": "warning", "raised_at": 1_795_000_000, "last_at": None,
             "message": "郑州金水路支行设备故障:evaluator.7(offline)",
             "message_en": f"Device evaluator.7 at {B1}: offline", "acked_at": None,
             "resolved_at": None}
    page.route("**/api/alerts?*", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps({"alerts": [alert]})))
    page.route("**/api/alerts/1/ack", lambda route: route.fulfill(
        status=502, content_type="text/html", body="<html>Bad Gateway</html>"))
    page.goto(centre.url + f"/alerts?org={B1}")
    row = page.locator("#alerts tr[data-alert='1']")
    exp(row.locator("td").nth(1)).to_have_text("郑州金水路支行")
    assert row.locator("td .branch").get_attribute("title") == B1
    exp(row.locator("td").nth(2)).to_have_text("设备故障 A device is faulty")
    exp(row.locator("td").nth(3)).to_contain_text("设备故障:3号窗口评价器(offline)")
    exp(row.locator("td").nth(3)).to_contain_text("Device Window 3 evaluator at")
    assert "evaluator.7" not in row.locator("td").nth(3).inner_text()
    row.locator("button").click()
    exp(page.locator("#toast")).to_contain_text("服务暂时不可用")
    assert "502" not in page.locator("#toast").inner_text()
    page.context.close()


def test_the_phone_page_says_what_went_wrong_in_words(browser: Any,
                                                      centre: CentreProcess) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    page.route("**/api/public/branches*", lambda route: route.fulfill(
        status=422, content_type="application/json", body='{"detail": "Unprocessable"}'))
    page.goto(centre.url + "/m")
    exp = expect()
    exp(page.locator(".msg")).to_have_text("提交的内容有误,请检查后再试。")
    assert "出错了" not in page.locator("body").inner_text()
    context.close()
