"""The box's screens tell the branch's time (``[branch] timezone``, Asia/Shanghai), whatever
the zone of the PC or kiosk showing them: a real box at 01:30 Beijing (its demo clock) and
the real Chromium with its zone set to UTC, where it is 17:30 the day before.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .browser import LANDSCAPE, PORTRAIT, BoxProcess, browser_fixture, expect, running_box

__all__ = ["browser_fixture"]

pytestmark = pytest.mark.browser
RAW_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def in_utc(browser: Any, box: BoxProcess, path: str, size: dict[str, int]) -> Any:
    context = browser.new_context(viewport=size, locale="zh-CN", timezone_id="UTC")
    page = context.new_page()
    page.goto(box.url + path)
    return page


@pytest.fixture
def box(tmp_path: Path) -> Any:
    with running_box(tmp_path / "data", "clock.start=2026-11-25T01:30:00+08:00") as b:
        yield b


def test_kiosk_and_hall_clocks_show_beijing_time_on_a_utc_pc(browser: Any, box: BoxProcess
                                                             ) -> None:
    kiosk = in_utc(browser, box, "/kiosk", PORTRAIT)
    expect()(kiosk.locator("#clock")).to_have_text(re.compile(r"^01:3\d$"))  # not 17:3x
    hall = in_utc(browser, box, "/hall", LANDSCAPE)
    expect()(hall.locator("#clock")).to_have_text(re.compile(r"^01:3\d:\d\d$"))
    for page in (kiosk, hall):
        assert not RAW_ISO.search(page.locator("body").inner_text())


def test_the_screens_time_helper_reads_the_branch_clock_on_a_utc_pc(
        browser: Any, box: BoxProcess) -> None:
    """PD.hhmm (the lobby's log lines) and PD.day: the branch's wall clock and date."""
    lobby = in_utc(browser, box, "/lobby", LANDSCAPE)
    assert lobby.evaluate("PD.hhmm(Date.parse('2026-11-24T17:30:00Z'))") == "01:30"
    assert lobby.evaluate("PD.day('2026-11-24T17:30:00Z')") == "2026-11-25"
