"""A pre-filled form (预填单, I2) filled on the phone, in a real headless Chromium, against
real processes: a private broker, ``python -m central`` and ``python -m controller``. The
customer takes a ticket remotely, fills in the transfer form on the phone page, and the
teller who calls the number reads it on the box."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import BoxProcess, browser_fixture, need_browser  # noqa: F401
from tests.customer_support import CentreProcess, an_id, centre_and_box
from tests.uplink_support import BRANCH

pytestmark = pytest.mark.browser
PHONE_SIZE = {"width": 390, "height": 844}
# The centre's phone page offers one form for business A (a TOML literal: --set).
TRANSFER_FORM = (
    'forms.business=[{id = "transfer", queue = "A", title = "转账预填单", fields = ['
    '{name = "account", label = "付款账号", type = "account", required = true}, '
    '{name = "payee", label = "收款人", type = "text", required = true, mask = "name"}, '
    '{name = "payee_account", label = "收款账号", type = "account", required = true}, '
    '{name = "amount", label = "金额", type = "amount", required = true}]}]')


@pytest.fixture
def linked(tmp_path: Path) -> Iterator[tuple[CentreProcess, BoxProcess]]:
    with centre_and_box(tmp_path, TRANSFER_FORM) as world:
        yield world


def test_a_form_filled_on_the_phone_is_read_by_the_teller_who_calls_the_number(
        browser: Any, linked: tuple[CentreProcess, BoxProcess]) -> None:
    expect = need_browser().expect
    centre, box = linked
    context = browser.new_context(viewport=PHONE_SIZE, is_mobile=True, has_touch=True,
                                  locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.goto(centre.url + f"/m/login?next=/m/b/{BRANCH}")
    page.locator("#phone").fill("13912345678")
    page.locator("#send-code").click()
    expect(page.locator(".msg.ok")).to_contain_text("验证码已发送")
    page.locator("#code").fill(centre.last_code())
    page.locator("#sign-in").click()
    page.locator("#name").fill("王小明")
    page.locator("#id-number").fill(an_id(12))
    page.locator("#register").click()
    take = page.locator("tr[data-queue=A] button.take")
    expect(take).to_be_visible(timeout=20_000)
    take.click()
    expect(page.locator("#number")).to_have_text("A001", timeout=10_000)
    page.get_by_text("填写预填单").click()
    expect(page.locator("#form h2")).to_have_text("转账预填单")
    page.locator("#form [name=account]").fill("6225880123451237")
    page.locator("#form [name=payee]").fill("李四")
    page.locator("#form [name=payee_account]").fill("6217000012345678")
    page.locator("#form [name=amount]").fill("800")
    page.locator("#form button[type=submit]").click()
    expect(page.locator(".msg.ok")).to_contain_text("预填单已提交", timeout=10_000)
    expect(page.locator("#form")).to_contain_text("付款账号:622588******1237")  # masked back
    context.close()

    teller = box.teller(1, "t1")
    assert box.call("POST", "/api/windows/1/call-next", {}, teller)[0] == 200
    status, form = box.call("GET", "/api/windows/1/form", token=teller)
    assert status == 200 and form["number"] == "A001"
    assert form["form"]["channel"] == "remote"
    assert [f["value"] for f in form["form"]["fields"]] == [
        "6225880123451237", "李四", "6217000012345678", "800.00"]
