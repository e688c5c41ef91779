"""Kiosk media files: uploaded at the centre for an org node, pushed to a real box core
over MQTT, written into its media folder and confirmed (A10, G2)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from central.broker import LocalBroker
from controller.box import Box
from controller.clock import ManualClock
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
