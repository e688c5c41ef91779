"""Two kiosk pages in a real headless Chromium against a real box (a subprocess) whose two
kiosks print on two virtual network printers (``[[kiosks]]``, SPEC I4): the kiosk whose
printer runs out of paper says it is out of service and sends the customer to the other,
which goes on printing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import (  # noqa: F401 (browser_fixture: the fixture "browser")
    PORTRAIT,
    BoxProcess,
    PrinterThread,
    browser_fixture,
    expect,
    page_at,
    running_box,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def printers() -> Iterator[tuple[PrinterThread, PrinterThread]]:
    one, two = PrinterThread(), PrinterThread()
    try:
        yield one, two
    finally:
        one.close()
        two.close()


def _kiosk(n: int, printer: PrinterThread) -> str:
    return (f'{{id = "{n}", name = "{n}号取号机", name_en = "Kiosk {n}", printer = '
            f'{{backend = "network", host = "127.0.0.1", port = {printer.port}, poll_s = 0.2}}}}')


@pytest.fixture
def box(tmp_path: Path, printers: tuple[PrinterThread, PrinterThread]
        ) -> Iterator[BoxProcess]:
    kiosks = f"kiosks=[{_kiosk(1, printers[0])}, {_kiosk(2, printers[1])}]"
    with running_box(tmp_path / "data", kiosks) as b:
        yield b


def test_a_kiosk_out_of_paper_sends_its_customers_to_the_other(
        browser: Any, box: BoxProcess, printers: tuple[PrinterThread, PrinterThread]) -> None:
    one, two = printers
    first = page_at(browser, box, "/kiosk?id=1", PORTRAIT)
    second = page_at(browser, box, "/kiosk?id=2", PORTRAIT)
    for page in (first, second):
        expect()(page.locator("#closed")).to_be_hidden()

    one.set_paper("out")  # kiosk 1's roll runs out; the status poll sees it
    expect()(first.locator("#c-title")).to_have_text("本机暂停取号", timeout=10_000)
    expect()(first.locator("#c-hours")).to_have_text("本机打印机暂停服务,请到2号取号机取号。")
    expect()(second.locator("#closed")).to_be_hidden()

    second.locator(".k-btn[data-target=A]").click()  # kiosk 2 goes on printing
    expect()(second.locator("#r-number")).to_have_text("A001")
    expect()(second.locator("#r-print")).to_be_hidden()  # no print failure to report

    one.set_paper("ok")  # refilled: kiosk 1 is in service again by itself
    expect()(first.locator("#closed")).to_be_hidden(timeout=10_000)
    for page in (first, second):
        page.context.close()
    assert [t.number for t in two.sim.tickets] == ["A001"]
    assert one.sim.tickets == []
