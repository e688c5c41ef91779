"""A file in the box's media folder never acts as a page (real box, real Chromium).

A lobby manager is logged in; a pushed SVG with a script, or an HTML page named ``.png``,
is opened in that browser. The script would pause business A with the manager's session
(as one did before the box checked media bytes and served them sandboxed); it must not run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import (  # noqa: F401 (browser_fixture: the fixture "browser")
    LANDSCAPE,
    BoxProcess,
    browser_fixture,
    running_box,
)

pytestmark = pytest.mark.browser

# What an attacker's file does with the session of whoever opens it on the box's origin.
ATTACK = """
fetch('/api/auth/session?kind=lobby').then(r => r.json()).then(s =>
  fetch('/api/queues/A/pause', {method: 'POST', headers: {'Content-Type': 'application/json',
    'X-CSRF-Token': s.csrf_token}, body: JSON.stringify({reason: 'pwned'})}));
"""
SVG = f"""<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">
<script><![CDATA[{ATTACK}]]></script></svg>"""
HTML = f"<!doctype html><title>offer</title><script>{ATTACK}</script>"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[BoxProcess]:
    media = tmp_path / "data" / "media"
    media.mkdir(parents=True)
    (media / "evil.svg").write_text(SVG)
    (media / "offer.png").write_text(HTML)
    with running_box(tmp_path / "data", f'web.media_dir="{media}"') as b:
        yield b


def paused(box: BoxProcess) -> dict[str, Any]:
    status, body = box.call("GET", "/api/status")
    assert status == 200
    return {q["id"]: q.get("paused") for q in body["queues"]}


@pytest.mark.parametrize("name", ["evil.svg", "offer.png"])
def test_opening_a_media_file_as_the_lobby_manager_runs_no_script(
        browser: Any, box: BoxProcess, name: str) -> None:
    context = browser.new_context(viewport=LANDSCAPE, locale="zh-CN")
    page = context.new_page()
    page.goto(box.url + "/lobby")
    page.locator("#l-user").fill("lm1")
    page.locator("#l-password").fill("1234")
    page.locator("#login button[type=submit]").click()
    page.locator("#who").wait_for()
    assert page.evaluate("fetch('/api/auth/session?kind=lobby').then(r => r.status)") == 200
    page.goto(f"{box.url}/media/{name}", wait_until="networkidle")  # any fetch has ended
    assert not any(paused(box).values()), "a script in a media file paused a business"
    context.close()
