"""The box's media folder (A10, G2): what a push may put there, how much, and how the box
serves it — checked bytes, no SVG, never as a page that could run script."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from common.clock import ManualClock
from controller.box import Box
from controller.uplink.commands import CommandRefused
from controller.uplink.media import store_media
from controller.web import create_app
from controller.web.media import playable
from protocols.media import MAX_MEDIA_FILES, MAX_MEDIA_FOLDER_BYTES, NotMedia, media_type

from .conftest import example_config

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
SCRIPT = "fetch('/api/auth/session?kind=lobby')"
SVG = (f"<svg xmlns='http://www.w3.org/2000/svg'><script>{SCRIPT}</script></svg>").encode()
HTML = f"<!doctype html><script>{SCRIPT}</script>".encode()
MP4 = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2" + b"\0" * 40


def file(name: str, data: bytes) -> dict[str, str]:
    return {"name": name, "sha256": hashlib.sha256(data).hexdigest(),
            "data": base64.b64encode(data).decode()}


@pytest.fixture
async def media_box(clock: ManualClock, tmp_path: Path) -> AsyncIterator[Box]:
    config = example_config(f'web.media_dir="{tmp_path / "media"}"')
    async with Box(config, tmp_path / "data", clock) as box:
        yield box


@pytest.mark.parametrize("name,data,problem", [
    ("banner.svg", SVG, "not an image or video"),
    ("offer.png", HTML, "the bytes are not image/png"),
    ("clip.mp4", PNG, "the bytes are not video/mp4 (they look like image/png)"),
])
async def test_a_push_whose_bytes_are_not_its_type_is_refused_and_nothing_written(
        media_box: Box, tmp_path: Path, name: str, data: bytes, problem: str) -> None:
    with pytest.raises(CommandRefused) as refused:
        await store_media(media_box, {"files": [file("ok.png", PNG), file(name, data)]})
    assert refused.value.code == "bad_media"
    assert problem in refused.value.message_en and "files.1" in refused.value.message_en
    assert refused.value.message.startswith("媒体文件无效")
    assert not (tmp_path / "media").exists() or not list((tmp_path / "media").iterdir())


async def test_the_media_folder_is_bounded_and_a_delete_makes_room(
        media_box: Box, tmp_path: Path) -> None:
    for i in range(MAX_MEDIA_FILES):
        await store_media(media_box, {"files": [file(f"p{i:02}.png", PNG)]})
    with pytest.raises(CommandRefused) as full:
        await store_media(media_box, {"files": [file("one-more.png", PNG)]})
    assert full.value.code == "media_full" and "请先删除" in full.value.message
    assert not (tmp_path / "media" / "one-more.png").exists()
    done = await store_media(media_box, {"files": [file("one-more.png", PNG)],
                                         "delete": ["p00.png"]})
    assert done["stored"] == ["one-more.png"]
    assert len(list((tmp_path / "media").iterdir())) == MAX_MEDIA_FILES


async def test_the_folder_byte_bound_counts_what_is_already_there(
        media_box: Box, tmp_path: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "big.mp4").write_bytes(MP4 + b"\0" * (MAX_MEDIA_FOLDER_BYTES - len(MP4)))
    with pytest.raises(CommandRefused, match="media_full"):
        await store_media(media_box, {"files": [file("logo.png", PNG)]})


async def test_an_old_svg_may_still_be_deleted(media_box: Box, tmp_path: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "old.svg").write_bytes(SVG)
    assert (await store_media(media_box, {"delete": ["old.svg"]}))["deleted"] == ["old.svg"]
    assert not (folder / "old.svg").exists()


@pytest.fixture
async def web(media_box: Box) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(media_box))
    async with httpx.AsyncClient(transport=transport, base_url="http://box") as client:
        yield client


async def test_media_is_served_inert_with_the_type_of_its_bytes(
        web: httpx.AsyncClient, tmp_path: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "logo.png").write_bytes(PNG)
    r = await web.get("/media/logo.png")
    assert r.status_code == 200 and r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "default-src 'none'; sandbox"


async def test_an_svg_or_a_disguised_page_in_the_folder_is_not_served(
        web: httpx.AsyncClient, tmp_path: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    for name, data in (("evil.svg", SVG), ("evil.png", HTML), ("notes.txt", b"hello"),
                       ("evil.html", HTML)):
        (folder / name).write_bytes(data)
        r = await web.get(f"/media/{name}")
        assert r.status_code == 404, name
        assert SCRIPT.encode() not in r.content
    assert (await web.get("/media/..%2Fdata%2Fweb.secret")).status_code == 404
    assert playable(folder, []) == []
    kiosk = await web.get("/kiosk")
    assert "evil" not in kiosk.text


def test_the_media_playlist_lists_only_files_whose_bytes_match(tmp_path: Path) -> None:
    for name, data in (("b.mp4", MP4), ("a.png", PNG), ("c.png", HTML), ("d.svg", SVG)):
        (tmp_path / name).write_bytes(data)
    assert playable(tmp_path, []) == [
        {"url": "/media/a.png", "kind": "image"}, {"url": "/media/b.mp4", "kind": "video"}]
    assert playable(tmp_path, ["b.mp4", "gone.png", "c.png"]) == [
        {"url": "/media/b.mp4", "kind": "video"}]


@pytest.mark.parametrize("name,head,kind", [
    ("a.png", PNG, "image/png"), ("a.JPG", b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
    ("a.gif", b"GIF89a\x01\0", "image/gif"), ("a.webp", b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
    ("a.mp4", MP4, "video/mp4"), ("a.ogv", b"OggS\0\x02", "video/ogg"),
    ("a.webm", b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"),
])
def test_each_kind_is_known_by_its_first_bytes(name: str, head: bytes, kind: str) -> None:
    assert media_type(name, head) == kind


@pytest.mark.parametrize("name,head", [
    ("a.svg", SVG), ("a.png", b""), ("a.png", b"\xff\xd8\xff"), ("a.mp4", b"\0\0\0\x18ftypheic"),
    ("a", PNG), ("a.html", HTML), ("a.webm", b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska"),
])
def test_anything_else_is_not_media(name: str, head: bytes) -> None:
    with pytest.raises(NotMedia):
        media_type(name, head)


def test_the_demo_seeds_its_media_into_the_data_folder_not_the_checkout(tmp_path: Path
                                                                        ) -> None:
    from controller.web_settings import web_settings
    from sim.demo import SAMPLE_MEDIA, seed_media

    web = web_settings(example_config())
    assert web.media_path(tmp_path / "data") == tmp_path / "data" / "media"
    folder = seed_media(tmp_path / "data")
    names = sorted(p.name for p in SAMPLE_MEDIA.iterdir())
    assert names and sorted(p.name for p in folder.iterdir()) == names
    assert [m["url"] for m in playable(folder, [])] == [f"/media/{n}" for n in names]
    (folder / names[0]).unlink()  # the box's own folder from now on: never re-seeded
    seed_media(tmp_path / "data")
    assert not (folder / names[0]).exists()
