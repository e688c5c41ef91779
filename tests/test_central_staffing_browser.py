"""排班建议 (B5/E) in a real headless Chromium against a real centre (``python -m central``
on the demo organisation) holding a week of 金水路 (1001010001)'s events: the provincial
administrator picks the branch, the day, the history, target and level; the table shows
each hour's advised windows and the total window-hours, and the CSV link downloads them.
A screenshot lands in docs/screenshots/centre-staffing.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central import configs as cf
from central.broker import LocalBroker
from central.store import open_store
from controller.config import parse_config

from .centre_browser_support import browser, expect, logged_in, save
from .office_support import B1, CentreProcess
from .staffing_support import ADVISED, history, store_history
from .uplink_support import broker_fixture

__all__ = ["broker_fixture", "browser"]

pytestmark = [pytest.mark.browser, pytest.mark.network]


@pytest.fixture
def centre(tmp_path: Path, broker: LocalBroker) -> Iterator[CentreProcess]:
    c = CentreProcess(tmp_path / "centre", broker).start()
    try:
        store = open_store(f"sqlite:///{c.data_dir / 'centre.sqlite3'}")
        try:
            stored = cf.latest(store, B1)
            assert stored is not None
            store_history(store, B1, history(parse_config(stored["body"])))
        finally:
            store.close()
        yield c
    finally:
        c.stop()


def test_advise_a_branch_and_download_the_plan(browser: Any, centre: CentreProcess) -> None:
    page = logged_in(browser, centre)
    exp = expect()
    page.click('nav a[href="/office/staffing"]')
    page.wait_for_url("**/office/staffing")
    exp(page.locator("#branch")).to_contain_text("金水路")
    page.select_option("#branch", B1)
    page.fill("#date", ADVISED.isoformat())
    page.fill("#days", "7")
    page.fill("#target", "10")
    page.fill("#level", "0.8")
    page.click("#run")
    exp(page.locator("#rows tbody tr").first).to_be_visible(timeout=30_000)
    exp(page.locator("#total")).to_contain_text("合计 Total")
    exp(page.locator("#summary")).to_contain_text("window-hours")
    link = page.locator("#csv")
    exp(link).to_be_visible()
    assert f"branch={B1}" in (link.get_attribute("href") or "")
    with page.expect_download() as got:
        link.click()
    assert got.value.suggested_filename == f"staffing_{B1}_{ADVISED.isoformat()}.csv"
    save(page, "centre-staffing")
