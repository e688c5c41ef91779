"""Kiosk media files: uploaded at the centre for an org node, pushed to a real box core
over MQTT, written into its media folder and confirmed (A10, G2)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.broker import LocalBroker
from central.edge import MEDIA_BODY_BYTES
from common.clock import ManualClock
from controller.box import Box
from controller.uplink.media import store_media

from .conftest import example_config
from .office_support import B1, add_user, http_client, login, office_running
from .uplink_support import (
    broker_fixture,
    pg_url_fixture,
    running,
    store_url_fixture,
    uplink_for,
    wait_for,
)

__all__ = ["broker_fixture", "pg_url_fixture", "store_url_fixture"]

pytestmark = pytest.mark.network
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


async def test_files_for_a_node_reach_its_branches_kiosk_folder(
        broker: LocalBroker, store_url: str, clock: ManualClock, tmp_path: Path) -> None:
    media = tmp_path / "kiosk-media"
    config = example_config(f'web.media_dir="{media}"')
    uplink = uplink_for(broker)
    async with Box(config, tmp_path / "data", clock) as box:
        uplink.register_command("media", store_media)  # as controller/components.py does
        async with office_running(broker, store_url) as centre, running(uplink.run(box)), \
                http_client(centre) as http:
            admin = await login(http)
            viewer = await add_user(http, admin, "v1", "viewer", "1001")
            banner = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
            for org, name, data in (("1001", "banner.gif", banner), ("1001", "logo.png", PNG),
                                    (B1, "logo.png", PNG + b"\0")):
                r = await http.put(f"/api/orgs/{org}/media/{name}", headers=admin,
                                   content=data)
                assert r.status_code == 201, r.text
            denied = await http.put("/api/orgs/1001/media/x.png", headers=viewer, content=PNG)
            assert denied.status_code == 403
            bad = await http.put("/api/orgs/1001/media/notes.txt", headers=admin, content=b"x")
            assert bad.status_code == 422
            svg = await http.put("/api/orgs/1001/media/evil.svg", headers=admin,
                                 content=b"<svg xmlns='http://www.w3.org/2000/svg'>"
                                         b"<script>alert(1)</script></svg>")
            assert svg.status_code == 422  # SVG can carry script: never accepted
            page = await http.put("/api/orgs/1001/media/offer.png", headers=admin,
                                  content=b"<!doctype html><script>alert(1)</script>")
            assert page.status_code == 422
            assert "文件内容与类型不符" in page.json()["error"]["message"]
            big = await http.put("/api/orgs/1001/media/big.png", headers=admin,
                                 content=b"\0" * 2_600_000)
            assert big.status_code == 422 and "上限" in big.json()["error"]["message"]

            listed = (await http.get(f"/api/branches/{B1}/media", headers=admin)).json()
            assert [(f["name"], f["org"]) for f in listed["files"]] == [
                ("banner.gif", "1001"), ("logo.png", B1)]  # the branch's own logo wins
            sent = await http.post(f"/api/branches/{B1}/media/push", headers=admin)
            assert sent.status_code == 202
            ids = [s["id"] for s in sent.json()["sent"]]

            async def confirmed() -> list[Any]:
                replies = [await centre.read(lambda s, i=i: s.reply(B1, i)) for i in ids]
                return replies if all(replies) else []

            replies = await wait_for(confirmed, 20, "the box's answers")
            assert all(r["ok"] for r in replies)
            assert (media / "banner.gif").read_bytes() == banner
            assert (media / "logo.png").read_bytes() == PNG + b"\0"

            forged = await centre.send_command(B1, "media", {"files": [{
                "name": "evil.png", "sha256": hashlib.sha256(b"other").hexdigest(),
                "data": base64.b64encode(PNG).decode()}]})
            disguised = await centre.send_command(B1, "media", {"files": [{
                "name": "offer.png", "sha256": hashlib.sha256(b"<html>").hexdigest(),
                "data": base64.b64encode(b"<html>").decode()}]})
            escape = await centre.send_command(B1, "media", {"files": [{
                "name": "../x.png", "sha256": hashlib.sha256(PNG).hexdigest(),
                "data": base64.b64encode(PNG).decode()}]})

            async def refused() -> list[Any]:
                got = [await centre.read(lambda s, i=i: s.reply(B1, i))
                       for i in (forged, disguised, escape)]
                return got if all(got) else []

            for r in await wait_for(refused, 20, "the refusals"):
                assert r["ok"] is False and r["error"]["code"] == "bad_media"
            assert not (media / "evil.png").exists() and not (tmp_path / "x.png").exists()
            assert not (media / "offer.png").exists()
            audit = (await http.get("/api/audit?action=media", headers=admin)).json()["rows"]
            assert {a["action"] for a in audit} == {"media.upload", "media.push"}


GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"


async def test_an_upload_is_read_with_a_running_count_and_checked_against_its_type(
        broker: LocalBroker, store_url: str) -> None:
    pulled = 0

    async def chunked(n: int) -> AsyncIterator[bytes]:  # no Content-Length to refuse
        nonlocal pulled
        for _ in range(n):
            pulled += 1
            yield PNG + b"\0" * (256 * 1024 - len(PNG))

    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        # 10 MiB offered: the edge (central/edge.py) cuts it at twice the file limit
        r = await http.put("/api/orgs/1001/media/huge.png", headers=admin, content=chunked(40))
        assert r.status_code == 413
        assert pulled <= MEDIA_BODY_BYTES // (256 * 1024) + 2  # stopped at the cap, not 40
        # 4 MiB: through the edge, then the route's own count names the file limit
        r = await http.put("/api/orgs/1001/media/big.png", headers=admin, content=chunked(16))
        assert r.status_code == 422 and "至少" in r.json()["error"]["message"]
        lied = await http.put("/api/orgs/1001/media/logo.png", content=PNG,
                              headers={**admin, "Content-Type": "image/gif"})
        assert lied.status_code == 422
        err = lied.json()["error"]
        assert "与文件内容 image/png 不符" in err["message"]
        assert "declared image/gif, the bytes are image/png" in err["message_en"]
        for kind in ("image/png", "application/octet-stream", "image/png; charset=x"):
            ok = await http.put("/api/orgs/1001/media/logo.png", content=PNG,
                                headers={**admin, "Content-Type": kind})
            assert ok.status_code == 201, (kind, ok.text)
        svg = await http.put("/api/orgs/1001/media/a.svg", content=b"<svg/>",
                             headers={**admin, "Content-Type": "image/svg+xml"})
        assert svg.status_code == 422
        assert svg.json()["error"]["message_en"].endswith(
            "(.gif, .jpeg, .jpg, .mp4, .ogv, .png, .webm, .webp)")


async def test_what_a_branch_is_given_stays_within_what_its_box_keeps(
        broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url, "web.media.branch_files=3",
                              f"web.media.branch_bytes={3 * len(PNG) + 10}",
                              f"web.media.total_bytes={6 * len(PNG)}") as centre, \
            http_client(centre) as http:
        admin = await login(http)

        async def put(org: str, name: str, data: bytes = PNG) -> httpx.Response:
            return await http.put(f"/api/orgs/{org}/media/{name}", headers=admin, content=data)

        for org, name in (("1001", "a.png"), ("1001", "b.png"), (B1, "c.png")):
            assert (await put(org, name)).status_code == 201
        fourth = await put(B1, "d.png")  # B1 would be given a, b, c, d
        assert fourth.status_code == 422
        assert fourth.json()["error"]["message"].startswith("媒体文件超出配额")
        assert f"the branches of {B1} would be given 4 files" in fourth.json()["error"][
            "message_en"]
        above = await put("1001", "e.png")  # every branch under 1001 is checked: B1 too
        assert above.status_code == 422 and B1 in above.json()["error"]["message_en"]
        assert (await put(B1, "b.png")).status_code == 201  # replacing a name: still 3
        bigger = await put(B1, "c.png", PNG + b"\0" * 20)  # 3 files, but too many bytes
        assert bigger.status_code == 422 and "bytes" in bigger.json()["error"]["message_en"]
        assert (await put("100102", "x.png")).status_code == 201  # another subtree
        assert (await put("100103", "y.png")).status_code == 201  # 6 PNGs at the centre
        full = await put("100104", "z.png")  # the centre's store: 7 PNGs > 6
        assert full.status_code == 422 and "media store" in full.json()["error"]["message_en"]
        listed = await http.get(f"/api/branches/{B1}/media", headers=admin)
        assert [f["name"] for f in listed.json()["files"]] == ["a.png", "b.png", "c.png"]


async def test_a_push_sends_only_what_the_box_does_not_hold(
        broker: LocalBroker, store_url: str, clock: ManualClock, tmp_path: Path) -> None:
    media = tmp_path / "kiosk-media"
    uplink = uplink_for(broker)
    async with Box(example_config(f'web.media_dir="{media}"'), tmp_path / "data",
                   clock) as box:
        uplink.register_command("media", store_media)
        async with office_running(broker, store_url) as centre, running(uplink.run(box)), \
                http_client(centre) as http:
            admin = await login(http)

            async def push(query: str = "") -> dict[str, Any]:
                r = await http.post(f"/api/branches/{B1}/media/push{query}", headers=admin)
                assert r.status_code == 202, r.text
                body: dict[str, Any] = r.json()

                async def answered() -> bool:
                    got = [await centre.read(lambda s, i=s["id"]: s.reply(B1, i))
                           for s in body["sent"]]
                    assert all(g is None or g["ok"] for g in got), got
                    return all(got)

                await wait_for(answered, 20, "the box's answers")
                return body

            for name, data in (("a.png", PNG), ("b.gif", GIF), ("c.png", PNG + b"c")):
                assert (await http.put(f"/api/orgs/1001/media/{name}", headers=admin,
                                       content=data)).status_code == 201
            first = await push()
            assert [s["name"] for s in first["sent"]] == ["a.png", "b.gif", "c.png"]
            again = await push()
            assert again["sent"] == [] and again["unchanged"] == ["a.png", "b.gif", "c.png"]

            await http.put(f"/api/orgs/{B1}/media/a.png", headers=admin, content=PNG + b"\0")
            await http.delete("/api/orgs/1001/media/b.gif", headers=admin)
            changed = await push()
            assert [s["name"] for s in changed["sent"]] == ["a.png"]
            assert changed["deleted"] == ["b.gif"] and changed["unchanged"] == ["c.png"]
            assert sorted(p.name for p in media.iterdir()) == ["a.png", "c.png"]
            assert (media / "a.png").read_bytes() == PNG + b"\0"

            await http.delete(f"/api/orgs/{B1}/media/a.png", headers=admin)  # 1001's is back
            (media / "c.png").unlink()  # lost on the box: its next answer says so
            assert [s["name"] for s in (await push())["sent"]] == ["a.png"]
            healed = await push()
            assert [s["name"] for s in healed["sent"]] == ["c.png"]
            assert (media / "c.png").read_bytes() == PNG + b"c"
            assert (media / "a.png").read_bytes() == PNG
            assert (await push())["sent"] == []
            assert [s["name"] for s in (await push("?full=true"))["sent"]] == ["a.png", "c.png"]
