"""Plain words on the branch's screens (issue 17): English that fits the kiosk's buttons,
and a hall display whose English line is readable and which lists the numbers called but
not yet come. A real box in a subprocess and the real Chromium (tests/browser.py)."""

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
    page_at,
    running_box,
)

pytestmark = pytest.mark.browser

# Every visible button whose content does not fit inside it: wider or taller than the
# button (scrollWidth/scrollHeight), or a line reaching out of its padding box (a centred
# flex column overflows upwards too, which scrollHeight does not count).
OVERFLOWING = """() => [...document.querySelectorAll('button')]
  .filter((b) => b.offsetParent !== null)
  .filter((b) => {
    if (b.scrollWidth > b.clientWidth + 1 || b.scrollHeight > b.clientHeight + 1) return true;
    const r = b.getBoundingClientRect(), s = getComputedStyle(b);
    const top = r.top + parseFloat(s.borderTopWidth) + parseFloat(s.paddingTop) - 1;
    const bottom = r.bottom - parseFloat(s.borderBottomWidth) - parseFloat(s.paddingBottom) + 1;
    const left = r.left + parseFloat(s.borderLeftWidth) + parseFloat(s.paddingLeft) - 1;
    const right = r.right - parseFloat(s.borderRightWidth) - parseFloat(s.paddingRight) + 1;
    return [...b.children].some((c) => { const k = c.getBoundingClientRect();
      return k.top < top || k.bottom > bottom || k.left < left || k.right > right; });
  })
  .map((b) => b.textContent.trim())"""


@pytest.fixture
def box(tmp_path: Path) -> Iterator[BoxProcess]:
    with running_box(tmp_path / "data", "web.ping_seconds=2") as b:
        yield b


@pytest.mark.parametrize("size", [PORTRAIT, LANDSCAPE], ids=["portrait", "landscape"])
def test_english_text_fits_every_kiosk_button(browser: Any, box: BoxProcess,
                                              size: dict[str, int]) -> None:
    page = page_at(browser, box, "/kiosk", size)
    expect()(page.locator("#grid .k-btn").first).to_be_visible()
    page.locator("#lang").click()
    expect()(page.locator("#lang")).to_have_text("中文")
    assert page.evaluate(OVERFLOWING) == [], "start screen"
    page.locator(".k-btn[data-target=more]").click()
    expect()(page.locator("#menu-title")).to_have_text("More services")
    assert page.evaluate(OVERFLOWING) == [], "menu"
    page.context.close()


def test_the_hall_lists_the_numbers_called_but_not_yet_come(browser: Any, box: BoxProcess
                                                            ) -> None:
    """A recalled number (still called) and a missed one (过号) are listed with where to go,
    in Chinese and English, as the seed's hall screen does; a number served is not."""
    hall = page_at(browser, box, "/hall", LANDSCAPE)
    expect()(hall.locator("#clock")).not_to_be_empty()
    expect()(hall.locator("#missed-panel")).to_be_hidden()
    for q in "AAA":
        assert box.call("POST", "/api/tickets", {"queue": q})[0] == 201
    first, second = box.teller(1, "t1"), box.teller(2, "t2")
    assert box.call("POST", "/api/windows/1/call-next", {}, first)[0] == 200  # A001
    assert box.call("POST", "/api/windows/1/recall", {}, first)[0] == 200
    recalled = hall.locator("#missed li[data-number=A001]")
    expect()(recalled).to_contain_text("请到 1 号窗口", timeout=10_000)
    expect()(recalled).to_contain_text("Called again: window 1")
    assert box.call("POST", "/api/windows/1/no-show", {}, first)[0] == 200
    expect()(recalled).to_contain_text("过号", timeout=10_000)
    expect()(recalled).to_contain_text("Missed")
    assert box.call("POST", "/api/windows/2/call-next", {}, second)[0] == 200  # A002, served
    assert box.call("POST", "/api/windows/2/finish", {}, second)[0] == 200
    expect()(hall.locator("#calls")).to_contain_text("A002", timeout=30_000)
    assert hall.locator("#missed li").all_inner_texts()[0].startswith("A001")
    assert hall.locator("#missed li[data-number=A002]").count() == 0
    hall.context.close()


@pytest.mark.parametrize("size", [LANDSCAPE, PORTRAIT], ids=["landscape", "portrait"])
def test_the_hall_english_line_is_readable(browser: Any, box: BoxProcess,
                                           size: dict[str, int]) -> None:
    """The English line is read from across the hall: at least 36 px on a 1080-pixel-wide
    or -tall screen (the Chinese line is about 47), fully opaque, light on the dark ground."""
    hall = page_at(browser, box, "/hall", size)
    expect()(hall.locator("#now-en")).to_have_text("Welcome")
    font, opacity, colour = hall.locator("#now-en").evaluate(
        "e => { const s = getComputedStyle(e); return [parseFloat(s.fontSize),"
        " parseFloat(s.opacity), s.color]; }")
    assert font >= 36 and opacity >= 0.95, (font, opacity)
    r, g, b = (int(x) for x in colour[colour.index("(") + 1:colour.index(")")].split(",")[:3])
    assert min(r, g, b) >= 200, colour
    hall.context.close()
