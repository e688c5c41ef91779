"""One press is one customer, in a real Chromium against a real box (a subprocess).

A double-click on 叫号 in the soft caller calls one customer (the first is not finished
after 0 s); a double tap on a business at the kiosk gives one ticket.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.journal import Journal

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


def journal(box: BoxProcess, etype: str) -> list[str]:
    j = Journal(box.data_dir / "journal.sqlite3")
    try:
        return [r.event["number"] for r in j.iter_all() if r.event["type"] == etype]
    finally:
        j.close()


def posts_to(page: Any, suffix: str) -> list[str]:
    """The POSTs the page sends to a URL ending in ``suffix``, as they finish."""
    seen: list[str] = []
    page.on("requestfinished", lambda r: seen.append(r.url)
            if r.method == "POST" and r.url.endswith(suffix) else None)
    return seen


def test_a_double_click_on_call_calls_one_customer(browser: Any, box: BoxProcess) -> None:
    for _ in range(3):
        assert box.call("POST", "/api/tickets", {"queue": "A"})[0] == 201
    caller = page_at(browser, box, "/caller", LANDSCAPE)
    log_in_caller(caller, 1, "t1", "1234")
    expect()(caller.locator("#c-waiting")).to_have_text("3")
    sent = posts_to(caller, "/call-next")
    call = caller.locator("#actions [data-act=call_next]")
    call.dblclick()
    expect()(caller.locator("#note")).to_contain_text("叫号成功")
    expect()(call).to_be_enabled()  # the press is over: nothing more is in flight
    expect()(caller.locator("#c-waiting")).to_have_text("2")
    expect()(caller.locator("#c-num")).to_have_text("A001")
    assert journal(box, "ticket_called") == ["A001"]
    assert journal(box, "ticket_finished") == []  # the first customer is not finished
    assert len(sent) == 1
    caller.context.close()


def test_a_double_tap_on_a_business_gives_one_ticket(browser: Any, box: BoxProcess) -> None:
    kiosk = page_at(browser, box, "/kiosk", PORTRAIT)
    sent = posts_to(kiosk, "/api/tickets")
    button = kiosk.locator(".k-btn[data-target=A]").first
    expect()(button).to_be_visible()
    button.dblclick(force=True)  # force: the second tap lands even if something covers it
    expect()(kiosk.locator("#r-number")).to_have_text("A001")
    expect()(kiosk.locator("#busy")).to_be_hidden()
    assert journal(box, "ticket_issued") == ["A001"]
    assert len(sent) == 1
    kiosk.context.close()
