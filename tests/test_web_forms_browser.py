"""Pre-filled forms (预填单, I2) in a real headless Chromium against a real box: a customer
fills one in at the kiosk after taking a number; the teller who calls it sees it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import (  # noqa: F401 (browser_fixture: the fixture "browser")
    LANDSCAPE,
    PORTRAIT,
    BoxProcess,
    browser_fixture,
    expect,
    log_in_caller,
    page_at,
    running_box,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def box(tmp_path: Path) -> Iterator[BoxProcess]:
    with running_box(tmp_path / "data", "web.ping_seconds=2") as b:
        yield b


def test_a_form_filled_at_the_kiosk_shows_on_the_soft_caller(browser: Any, box: BoxProcess
                                                             ) -> None:
    kiosk = page_at(browser, box, "/kiosk", PORTRAIT)
    kiosk.locator(".k-btn[data-target=A]").click()
    expect()(kiosk.locator("#r-number")).to_have_text("A001")
    kiosk.locator("#form-entry").click()
    expect()(kiosk.locator("#f-title")).to_have_text("请选择预填单")
    kiosk.locator("#f-choices .k-btn", has_text="存款预填单").click()
    expect()(kiosk.locator("#f-title")).to_have_text("存款预填单")
    kiosk.locator("#f-fields [name=account]").fill("6225 8801 2345 1237")
    kiosk.locator("#f-fields [name=holder]").fill("陈小明")
    kiosk.locator("#f-fields [name=amount]").fill("12")
    kiosk.locator("#f-fields [name=amount]").fill("12.345")  # three decimals: refused
    kiosk.locator("#f-submit").click()
    expect()(kiosk.locator("#f-error")).to_contain_text("金额")
    kiosk.locator("#f-fields [name=amount]").fill("5000")
    kiosk.locator("#f-submit").click()
    expect()(kiosk.locator("#r-take")).to_contain_text("预填单已提交")
    expect()(kiosk.locator("#form-entry")).to_be_hidden()

    caller = page_at(browser, box, "/caller", LANDSCAPE)
    log_in_caller(caller, 1, "t1", "1234")
    expect()(caller.locator("#form")).to_be_hidden()
    caller.locator("#actions [data-act=call_next]").click()
    expect()(caller.locator("#c-num")).to_have_text("A001")
    expect()(caller.locator("#form")).to_be_visible()
    expect()(caller.locator("#cf-title")).to_contain_text("存款预填单")
    expect()(caller.locator("#cf-fields")).to_contain_text("6225880123451237")
    expect()(caller.locator("#cf-fields")).to_contain_text("5000.00")
    caller.locator("#cf-print").click()
    expect()(caller.locator("#cf-note")).not_to_be_empty()  # printed, or the printer's words
    caller.locator("#actions [data-act=finish]").click()
    expect()(caller.locator("#c-num")).to_have_text("—")
    expect()(caller.locator("#form")).to_be_hidden()  # nothing of that customer stays
    for page in (kiosk, caller):
        page.context.close()
