"""Screens that help (issue 17), in a real headless Chromium against a real box (a
subprocess on the example branch, its clock at Wed 2026-11-25 10:00): the soft caller shows
the teller's own day and the numbers waiting, and asks before 弃号; the lobby manager is
told on login what is already wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import (  # noqa: F401 (browser_fixture: the fixture "browser")
    LANDSCAPE,
    BoxProcess,
    browser_fixture,
    expect,
    log_in_caller,
    page_at,
    running_box,
)
from .console_support import ConsoleWatch

pytestmark = pytest.mark.browser


@pytest.fixture
def box(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[BoxProcess]:
    marker = request.node.get_closest_marker("box")
    with running_box(tmp_path / "data", "web.ping_seconds=2",
                     *(marker.args if marker else ())) as b:
        yield b


def test_the_soft_caller_shows_the_tellers_day_and_asks_before_discarding(
        browser: Any, box: BoxProcess) -> None:
    for _ in range(3):
        assert box.call("POST", "/api/tickets", {"queue": "A"})[0] == 201
    caller = page_at(browser, box, "/caller", LANDSCAPE)
    log_in_caller(caller, 1, "t1", "1234")
    exp = expect()
    exp(caller.locator("#c-numbers")).to_have_text("等待号码 Waiting: A001 A002 A003")
    exp(caller.locator("#t-served")).to_have_text("0")
    caller.locator("#actions [data-act=call_next]").click()
    exp(caller.locator("#c-num")).to_have_text("A001")
    caller.locator("#actions [data-act=call_next]").click()  # A001 done, A002 called
    exp(caller.locator("#c-num")).to_have_text("A002")
    exp(caller.locator("#t-served")).to_have_text("1")
    exp(caller.locator("#t-handle")).not_to_have_text("—")
    exp(caller.locator("#c-numbers")).to_have_text("等待号码 Waiting: A003")

    caller.locator("#actions [data-act=no_show]").click()
    exp(caller.locator("#d-confirm")).to_be_visible()
    exp(caller.locator("#d-confirm-text")).to_contain_text("A002")
    caller.locator("#d-confirm button[value=cancel]").click()  # not yet: still serving A002
    exp(caller.locator("#d-confirm")).to_be_hidden()
    exp(caller.locator("#c-num")).to_have_text("A002")
    assert box.call("GET", "/api/tickets/A002")[1]["state"] == "called"
    caller.locator("#actions [data-act=no_show]").click()
    caller.locator("#d-confirm-ok").click()
    exp(caller.locator("#c-num")).to_have_text("—")
    assert box.call("GET", "/api/tickets/A002")[1]["state"] == "no_show"
    caller.context.close()


@pytest.mark.box("thresholds.lobby_alert_waiting=3")
def test_the_lobby_manager_is_told_on_login_what_is_already_wrong(
        browser: Any, box: BoxProcess) -> None:
    """Over the threshold before the manager logs in: the pop-up comes at login (not only
    on a new crossing), and the log holds the last hour's alerts (the bad rating too)."""
    token = box.teller(5, "t1")
    box.call("POST", "/api/tickets", {"queue": "V"})
    box.call("POST", "/api/windows/5/call-next", {}, token)
    box.call("POST", "/api/windows/5/finish", {"ask_rating": True}, token)
    assert box.call("POST", "/api/windows/5/rating", {"score": 1}, token)[0] == 200
    for q in "AABV":
        assert box.call("POST", "/api/tickets", {"queue": q})[0] == 201
    page = page_at(browser, box, "/lobby", LANDSCAPE)
    page.locator("#l-user").fill("lm1")
    page.locator("#l-password").fill("1234")
    page.locator("#login button[type=submit]").click()
    exp = expect()
    exp(page.locator("#popup")).to_be_visible()
    exp(page.locator("#p-text")).to_have_text("请注意,目前网点排队等待人数已经超过3个。")
    log = page.locator("#log")
    exp(log.locator("li[data-kind=lobby_alert]")).to_contain_text("10:")  # the box's clock
    exp(log.locator("li[data-kind=bad_rating]")).to_contain_text("V001")
    page.context.close()


def test_every_page_of_the_box_opens_with_a_clean_console_and_its_favicon(
        browser: Any, box: BoxProcess) -> None:
    """Every screen, logged out and logged in: no console error, no exception, no request
    answered 4xx/5xx or failed (a missing favicon was a 404 in every console)."""
    assert box.call("POST", "/api/tickets", {"queue": "A"})[0] == 201
    page = page_at(browser, box, "/", LANDSCAPE)
    watch = ConsoleWatch(page)
    for path in ("/", "/kiosk", "/kiosk?id=door", "/hall", "/caller", "/lobby"):
        watch.visit(box.url + path)
    watch.visit(box.url + "/caller")
    log_in_caller(page, 1, "t1", "1234")
    expect()(page.locator("#who")).to_contain_text("王丽")
    page.locator("#actions [data-act=call_next]").click()
    expect()(page.locator("#c-num")).to_have_text("A001")
    watch.visit(box.url + "/lobby")
    page.locator("#l-user").fill("lm1")
    page.locator("#l-password").fill("1234")
    page.locator("#login button[type=submit]").click()
    expect()(page.locator("#who")).to_have_text("赵经理")
    page.wait_for_timeout(800)
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon and icon.endswith(".svg")
    favicon = page.request.get(box.url + icon)
    assert favicon.status == 200 and favicon.headers["content-type"].startswith("image/svg")
    assert watch.problems == [], "\n".join(watch.problems)
    page.context.close()
