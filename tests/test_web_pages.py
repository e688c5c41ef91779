"""The screens' pages and their config (controller/web/pages.py, settings.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from controller.box import Box
from controller.components import build_components
from controller.errors import ConfigError
from controller.web import create_app
from controller.web.pages import kiosk_buttons, media_files
from controller.web.settings import KioskLayout, web_settings
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
    assert 'style="--btn:#a23b3b"' in html  # T's own colour
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


def test_labels_are_escaped_in_the_page() -> None:
    from controller.web.pages import _button_html

    html = _button_html({"kind": "queue", "target": "A", "label": "<b>x</b>", "label_en": "",
                         "colour": None, "text_colour": None, "row": None, "col": None,
                         "col_span": 1, "row_span": 1})
    assert "<b>" not in html and "&lt;b&gt;" in html


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
