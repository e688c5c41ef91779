"""The customer pages on a phone, in a real headless Chromium, against real processes: a
private broker, ``python -m central`` and ``python -m controller`` with its uplink.

A customer looks at the branch, signs in by SMS code, registers, books a slot, redeems the
code at the kiosk, is served and rates it from the phone; another takes a ticket remotely
and follows it. Screenshots land in docs/screenshots/customer-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import SCREENSHOTS, BoxProcess, browser_fixture, need_browser  # noqa: F401
from tests.customer_support import ID_NUMBER, CentreProcess, an_id, centre_and_box
from tests.uplink_support import BRANCH

pytestmark = pytest.mark.browser
PHONE_SIZE = {"width": 390, "height": 844}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[CentreProcess, BoxProcess]]:
    with centre_and_box(tmp_path) as linked:
        yield linked


def phone(browser: Any, centre: CentreProcess, path: str) -> Any:
    context = browser.new_context(viewport=PHONE_SIZE, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.goto(centre.url + path)
    return page


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def expect() -> Any:
    return need_browser().expect


def sign_in_on(page: Any, centre: CentreProcess, number: str, id_number: str) -> None:
    expect()(page.locator("h1")).to_have_text("登录")
    page.locator("#phone").fill(number)
    page.locator("#send-code").click()
    expect()(page.locator(".msg.ok")).to_contain_text("验证码已发送至 " + number[:3] + "****")
    page.locator("#code").fill(centre.last_code())
    page.locator("#sign-in").click()
    expect()(page.locator("h1")).to_have_text("用户注册")
    page.locator("#name").fill("王小明")
    page.locator("#id-number").fill(id_number)
    page.locator("#register").click()


def test_book_on_the_phone_redeem_at_the_kiosk_then_rate_on_the_phone(
        browser: Any, world: tuple[CentreProcess, BoxProcess]) -> None:
    centre, box = world
    for _ in range(3):
        assert box.call("POST", "/api/tickets", {"queue": "A"})[0] == 201
    centre.wait_public(f"/branches/{BRANCH}", lambda s, b: s == 200 and b["waiting_total"] == 3)
    page = phone(browser, centre, "/m")
    card = page.locator(f".branch[data-branch='{BRANCH}']")
    expect()(card).to_contain_text("郑州金水路支行", timeout=20_000)
    expect()(card).to_contain_text("等待 3 人")
    shot(page, "customer-branches-phone")
    card.locator("a").click()
    expect()(page.locator("tr[data-queue=A]")).to_contain_text("3 人")
    expect()(page.locator("tr[data-queue=A]")).to_contain_text("约 12 分")  # 3 × 4 min, 1 window
    shot(page, "customer-branch-phone")

    page.get_by_text("预约登记").click()  # not signed in yet: sign in, register, come back
    sign_in_on(page, centre, "13812345678", ID_NUMBER)
    expect()(page.locator("h1")).to_have_text("预约登记 · 郑州金水路支行", timeout=15_000)
    page.locator("#queue").select_option("A")
    page.locator("#slots .slot[data-slot='3']").click()  # 10:00-11:00, now
    expect()(page.locator("#slots .slot[data-slot='1']")).to_be_disabled()  # 08:00: past
    shot(page, "customer-book-phone")
    page.locator("#book").click()
    code = page.locator("#code")
    expect()(code).to_have_text(re.compile(r"^3\d{5}$"))
    expect()(page.locator(".qr svg")).to_be_visible()
    shot(page, "customer-booking-phone")

    for _ in range(80):  # the day's list reaches the box within a push (kept on disk)
        if box.call("GET", "/api/appointments/summary")[1].get("booked") == 1:
            break
        page.wait_for_timeout(250)
    status, ticket = box.call("POST", "/api/appointments/redeem",
                              {"code": code.inner_text(), "kiosk": "kiosk1"})
    assert status == 201 and ticket["number"] == "A004", ticket
    teller = box.teller(1, "t1")
    status, served = box.call("POST", "/api/windows/1/call-next", {}, teller)
    assert status == 200 and served["current"]["appointment"], served  # before the walk-ins
    assert box.call("POST", "/api/windows/1/finish", {}, teller)[0] == 200
    for _ in range(40):
        page.reload()
        if page.locator("#rate").count():
            break
        page.wait_for_timeout(250)
    expect()(page.locator("#rate")).to_be_visible()
    shot(page, "customer-rate-phone")
    page.locator("#rate button[data-score='5']").click()
    expect()(page.locator(".msg.ok")).to_have_text("谢谢您对我们工作的支持,再见")
    page.context.close()


def test_take_a_ticket_remotely_and_follow_it(browser: Any,
                                              world: tuple[CentreProcess, BoxProcess]) -> None:
    centre, box = world
    for _ in range(2):
        assert box.call("POST", "/api/tickets", {"queue": "A"})[0] == 201
    page = phone(browser, centre, f"/m/login?next=/m/b/{BRANCH}")
    sign_in_on(page, centre, "13912345678", an_id(11))
    take = page.locator("tr[data-queue=A] button.take")
    expect()(take).to_be_visible(timeout=20_000)
    take.click()
    expect()(page.locator("#number")).to_have_text("A003", timeout=10_000)
    expect()(page.locator("#ahead")).to_have_text("您前面还有 2 位客户在等待,约 8 分钟")
    shot(page, "customer-remote-ticket-phone")
    teller = box.teller(1, "t1")
    assert box.call("POST", "/api/windows/1/call-next", {}, teller)[0] == 200
    expect()(page.locator("#ahead")).to_have_text("您前面还有 1 位客户在等待,约 4 分钟",
                                                  timeout=15_000)  # the page follows by itself
    status, ticket = box.call("GET", "/api/tickets/A003")
    assert status == 200 and ticket["channel"] == "remote"
    page.context.close()
