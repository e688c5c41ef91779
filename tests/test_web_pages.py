"""The screens' pages and their config (controller/web/pages.py, settings.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from common.clock import ManualClock
from common.errors import ConfigError
from controller.box import Box
from controller.compose import build_components
from controller.web import create_app
from controller.web.pages import kiosk_buttons, media_files
from controller.web_settings import KioskLayout, web_settings
from tests.conftest import example_config


@pytest.fixture
async def client(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(box)),
                                 base_url="http://box") as c:
        yield c


async def test_every_page_and_its_assets_come_from_the_box(client: httpx.AsyncClient) -> None:
    for path in ("/", "/kiosk", "/caller", "/hall", "/lobby"):
        r = await client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        assert "http://" not in r.text and "https://" not in r.text  # no CDN, nothing outside
    for asset in ("common.js", "kiosk.js", "caller.js", "hall.js", "lobby.js", "screens.css"):
        assert (await client.get(f"/static/{asset}")).status_code == 200, asset
    assert (await client.get("/media/01-mobile-banking.jpg")).status_code == 404  # not seeded
    assert (await client.get("/media/../examples/branch.toml")).status_code == 404


async def test_the_kiosk_is_drawn_from_the_branch_layout(client: httpx.AsyncClient) -> None:
    html = (await client.get("/kiosk?id=kiosk-2")).text
    order = [html.index(f'data-target="{t}"') for t in ("A", "B", "V", "T", "more", "hint_cards")]
    assert order == sorted(order)
    assert 'style=' not in html  # the colours come as /theme.css (the CSP refuses styles)
    assert "该叫号纸只能办理挂失改密业务" in html
    assert '"kiosk": "kiosk-2"' in html
    assert '"children": [{"id": "F"' in html  # 更多业务 opens a menu holding 外汇业务
    assert "信用卡分期优惠进行中" in html  # the banner


async def test_a_kiosk_id_that_could_inject_is_refused(client: httpx.AsyncClient) -> None:
    assert (await client.get('/kiosk?id="><script>')).status_code == 422


def test_without_configured_buttons_the_top_level_businesses_then_the_menus() -> None:
    cfg = example_config()
    buttons = kiosk_buttons(cfg, KioskLayout())
    assert [(b["target"], b["kind"]) for b in buttons] == [
        ("A", "queue"), ("B", "queue"), ("V", "queue"), ("T", "queue"),
        ("more", "menu"), ("hint_cards", "hint")]


async def test_the_branch_layout_comes_as_a_stylesheet(client: httpx.AsyncClient) -> None:
    r = await client.get("/theme.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert "#grid > .k-btn:nth-child(4) { --btn: #a23b3b; }" in r.text  # T's own colour
    assert "body.kiosk { --bg: #0b3d6e;" in r.text and "body.hall { --bg: #061a33;" in r.text
    kiosk = (await client.get("/kiosk")).text
    assert kiosk.index("/static/screens.css") < kiosk.index("/theme.css")  # it wins


async def test_every_page_carries_the_content_security_policy(
        client: httpx.AsyncClient) -> None:
    for path in ("/", "/kiosk", "/caller", "/hall", "/lobby"):
        r = await client.get(path)
        csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
        assert csp["script-src"] == csp["style-src"] == csp["default-src"] == "'self'", path
        assert csp["frame-ancestors"] == "'none'", path
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", r.text, re.S)
        assert all(' src="/static/' in attrs or 'type="application/json"' in attrs
                   for attrs, _ in scripts), path  # nothing inline the policy would refuse
        assert " style=" not in r.text and "<style" not in r.text, path


PAYLOAD = "<script>alert(1)</script>"


@pytest.mark.parametrize("override,paths", [
    (f'branch.name="{PAYLOAD}"', ("/", "/kiosk", "/caller", "/hall", "/lobby")),
    (f'branch.name_en="{PAYLOAD}"', ("/kiosk", "/hall")),
    (f'queues.0.name="{PAYLOAD}"', ("/kiosk",)),
    (f'queues.3.notice="{PAYLOAD}"', ("/kiosk",)),
    (f'web.kiosk.title="{PAYLOAD}"', ("/kiosk",)),
    (f'web.kiosk.banner="{PAYLOAD}"', ("/kiosk",)),
    (f'web.hall.banner="{PAYLOAD}"', ("/hall",)),
    (f'windows.0.name="{PAYLOAD}"', ("/caller",)),
])
async def test_a_name_with_markup_is_shown_escaped(
        override: str, paths: tuple[str, ...], clock: ManualClock, tmp_path: Path) -> None:
    async with Box(example_config(override), tmp_path / "data", clock) as box:
        app = create_app(box)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://box") as c:
            for path in paths:
                page = (await c.get(path)).text
                assert "<script>alert" not in page, path  # neither in the HTML nor in #boot
                assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


def test_the_media_playlist(tmp_path: Path) -> None:
    heads = {"b.mp4": b"\0\0\0\x18ftypisom", "a.png": b"\x89PNG\r\n\x1a\n", "notes.txt": b"x"}
    for name, head in heads.items():
        (tmp_path / name).write_bytes(head)
    assert media_files(tmp_path, []) == [
        {"url": "/media/a.png", "kind": "image"}, {"url": "/media/b.mp4", "kind": "video"}]
    assert media_files(tmp_path, ["b.mp4", "gone.png"]) == [
        {"url": "/media/b.mp4", "kind": "video"}]
    assert media_files(tmp_path / "missing", []) == []


@pytest.mark.parametrize("override,key", [
    ("web.kiosk.background=\"red;}body{\"", "web.kiosk.background"),
    ("web.kiosk.buttons.0.target=\"Z\"", "web.kiosk.buttons.0.target"),
    ("web.kiosk.media=[\"../secret\"]", "web.kiosk.media"),
    ("web.caller.hotkeys={call_next=\"F1\",recall=\"F1\"}", "web.caller.hotkeys"),
    ("web.caller.hotkeys={fly=\"F1\"}", "web.caller.hotkeys"),
    ("web.lobby_managers.0.password_hash=\"1234\"", "web.lobby_managers.0.password_hash"),
    ("web.colour=1", "web.colour"),
])
def test_a_bad_web_section_names_its_key_and_stops_the_start(
    override: str, key: str, tmp_path: Path
) -> None:
    cfg = example_config(override)
    with pytest.raises(ConfigError) as err:
        web_settings(cfg)
    assert err.value.key == key
    with pytest.raises(ConfigError):
        build_components(cfg, tmp_path)


def test_the_example_web_section_is_valid() -> None:
    web = web_settings(example_config())
    assert [m.id for m in web.lobby_managers] == ["lm1"]
    assert web.media_path(Path("data")) == Path("data/media")  # never inside the checkout
