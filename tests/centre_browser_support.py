"""A headless browser, a centre and a box in processes of their own: the centre's browser
tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central.broker import LocalBroker

from .browser import SCREENSHOTS, BoxProcess, browser_fixture, need_browser
from .office_support import ADMIN, ADMIN_PW, B1, CentreProcess

DESKTOP = {"width": 1600, "height": 1000}


browser = browser_fixture  # the one Chromium fixture (tests/browser.py), as the tests name it


@pytest.fixture
def centre(tmp_path: Path, broker: LocalBroker) -> Iterator[CentreProcess]:
    c = CentreProcess(tmp_path / "centre", broker).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def box(tmp_path: Path, broker: LocalBroker, centre: CentreProcess) -> Iterator[BoxProcess]:
    password = broker.add_user(B1)
    data = tmp_path / "box"
    data.mkdir()
    b = BoxProcess(data / "data", f"uplink.broker={broker.url!r}".replace("'", '"'),
                   f'uplink.password="{password}"', "uplink.live_interval_s=0.2",
                   "uplink.health_interval_s=5", f'web.media_dir="{data / "media"}"').start()
    try:
        yield b
    finally:
        b.stop()


def expect() -> Any:
    return need_browser().expect


def logged_in(browser: Any, centre: CentreProcess, user: str = ADMIN,
              password: str = ADMIN_PW, shot: str | None = None) -> Any:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.goto(centre.url + "/live")  # no session: to the login, then back
    page.wait_for_url("**/login?next=*")
    page.fill("#user", user)
    page.fill("#password", password)
    if shot:
        save(page, shot)
    page.click("button[type=submit]")
    page.wait_for_url("**/live**")
    return page


def save(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(400)  # the last frame painted (fonts, charts)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
