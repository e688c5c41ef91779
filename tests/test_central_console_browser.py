"""Every page of the centre in the real Chromium opens with a clean console (issue 17: "a
favicon; no 404 in the browser console on any page"): the back office as the head
office's admin, the login page and the customers' pages as anyone."""

from __future__ import annotations

from typing import Any

import pytest

from central.customers import CodeRequest, LoginRequest
from tests.centre_browser_support import browser, centre, expect, logged_in

from .console_support import ConsoleWatch
from .office_support import CentreProcess
from .uplink_support import broker_fixture

__all__ = ["broker_fixture", "browser", "centre"]

pytestmark = [pytest.mark.browser, pytest.mark.network]
OFFICE = ("/live", "/reports", "/alerts", "/office/appointments", "/office/staffing",
          "/office/config", "/office/versions", "/office/orgs", "/office/users",
          "/office/audit")
ANYONE = ("/login", "/m", "/m/login", "/m/me")


def test_every_page_of_the_centre_opens_with_a_clean_console_and_its_favicon(
        browser: Any, centre: CentreProcess) -> None:
    anyone = browser.new_page()
    watch = ConsoleWatch(anyone)
    for path in ANYONE:
        watch.visit(centre.url + path)
    watch.visit(centre.url + "/m/login")  # its inputs carry the API's limits
    for selector, model, field in (("#phone", CodeRequest, "phone"),
                                   ("#code", LoginRequest, "code")):
        limit = next(m.max_length for m in model.model_fields[field].metadata
                     if hasattr(m, "max_length"))
        assert anyone.locator(selector).get_attribute("maxlength") == str(limit), selector
    anyone.locator("#phone").fill("138 1234 5678")
    assert anyone.evaluate("document.querySelector('#phone').checkValidity()")
    anyone.locator("#phone").fill("电话")
    assert not anyone.evaluate("document.querySelector('#phone').checkValidity()")
    anyone.close()
    page = logged_in(browser, centre)
    office = ConsoleWatch(page)
    for path in OFFICE:
        office.visit(centre.url + path)
        expect()(page.locator("body")).to_be_visible()
    icon = page.locator("link[rel=icon]").get_attribute("href")
    favicon = page.request.get(centre.url + icon)
    assert favicon.status == 200 and favicon.headers["content-type"].startswith("image/svg")
    problems = watch.problems + office.problems
    assert problems == [], "\n".join(problems)
    page.context.close()
