"""The centre's pages tell time in the province's zone (``report_settings.timezone``,
Asia/Shanghai), whatever the zone of the analyst's PC: a real centre (``python -m
central``) and the real Chromium with its zone set to UTC.

At 01:30 in Beijing it is still yesterday in UTC: the report page's default date is
Beijing's today, not UTC's (``toISOString``). The audit log shows the login just made at
Beijing's clock time, and no page shows a raw ISO time.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from .centre_browser_support import DESKTOP, browser, centre, expect
from .office_support import ADMIN, ADMIN_PW, CentreProcess
from .uplink_support import broker_fixture

__all__ = ["broker_fixture", "browser", "centre"]

pytestmark = [pytest.mark.browser, pytest.mark.network]
BEIJING = ZoneInfo("Asia/Shanghai")
RAW_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def in_utc(browser: Any, centre: CentreProcess, at: dt.datetime | None = None) -> Any:
    """A logged-in page on a PC set to UTC (its clock at ``at`` when given)."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="UTC")
    page = context.new_page()
    if at is not None:
        page.clock.install(time=at)
    page.goto(centre.url + "/login")
    page.fill("#user", ADMIN)
    page.fill("#password", ADMIN_PW)
    page.click("button[type=submit]")
    page.wait_for_url("**/live**")
    return page


def test_the_report_defaults_to_today_in_beijing_at_half_past_one(
        browser: Any, centre: CentreProcess) -> None:
    page = in_utc(browser, centre, dt.datetime(2026, 11, 25, 1, 30, tzinfo=BEIJING))
    page.goto(centre.url + "/reports")
    expect()(page.locator("#date")).to_have_value("2026-11-25")  # UTC: still 11-24
    assert page.evaluate("new Date().toISOString()").startswith("2026-11-24T17:30")


def test_the_audit_log_shows_beijing_time_on_a_utc_pc(browser: Any, centre: CentreProcess
                                                      ) -> None:
    page = in_utc(browser, centre)
    logged_in_at = dt.datetime.now(BEIJING)
    page.goto(centre.url + "/office/audit")
    cell = page.locator("table tbody tr td").first
    expect()(cell).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))  # today: the time alone
    shown = dt.datetime.combine(logged_in_at.date(), dt.time.fromisoformat(cell.inner_text()),
                                BEIJING)
    assert abs((shown - logged_in_at).total_seconds()) < 120, (cell.inner_text(), logged_in_at)
    # an ISO time from the API (a booking's booked_at on 预约管理) reads the same way
    assert page.evaluate("PD.when('2026-11-24T17:30:00Z')") == "11-25 01:30:00"
    for path in ("/office/audit", "/office/versions", "/alerts", "/live", "/reports"):
        page.goto(centre.url + path)
        page.wait_for_load_state("networkidle")
        assert not RAW_ISO.search(page.locator("body").inner_text()), path
