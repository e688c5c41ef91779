"""Every store on the box that grows has a bound (docs/journal.md, "Bounds"): the notice
board, the centre's command answers, the link's daily counters, downloaded releases, the
log and the metrics' label sets. (The journal, the media folder and the disk budget have
their own tests: test_journal.py, test_controller_media.py, test_controller_disk.py.)"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.box import Box
from controller.notices import Notices
from controller.uplink.commands import KEEP, CommandDesk
from controller.uplink.counters import DAYS_KEPT, LinkCounters
from controller.web import create_app
from protocols.release import update_command
from tests.update_support import (  # noqa: F401 (fixtures)
    Running,
    bundles,
    fake_current,
    lay_out,
    running,
    static_centre,
)


def test_the_notice_board_keeps_the_latest_twenty() -> None:
    board = Notices()
    for i in range(1000):
        board.post({"id": str(i), "message": "请注意"})
    assert [n["id"] for n in board.recent] == [str(i) for i in range(980, 1000)]


async def test_the_centres_command_answers_are_kept_for_the_latest_500(box: Box,
                                                                     tmp_path: Path) -> None:
    async def nothing(*_: Any) -> dict[str, Any]:
        return {}

    async def no_config() -> None:
        return None

    desk = CommandDesk(box, tmp_path, replay=nothing, totals=nothing, on_config=no_config)
    for i in range(KEEP + 100):
        await desk.run("alert", {"id": f"c{i}", "kind": "long_wait", "message": "请注意"})
    kept = json.loads((tmp_path / "commands.json").read_text(encoding="utf-8"))
    assert len(kept) == KEEP and next(iter(kept)) == "c100" and f"c{KEEP + 99}" in kept


def test_the_link_keeps_its_daily_counters_for_400_days(tmp_path: Path) -> None:
    file = tmp_path / "uplink" / "link-days.jsonl"
    counters = LinkCounters()
    for day in range(DAYS_KEPT + 50):
        counters.roll(f"d{day:04}", file)
        counters.timeouts = day
    lines = file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == DAYS_KEPT
    assert json.loads(lines[-1])["day"] == f"d{DAYS_KEPT + 48:04}"  # the newest finished day


async def test_a_failed_download_of_another_release_is_not_kept(
        running: Running, static_centre: tuple[str, Path], bundles: dict[str, Path],  # noqa: F811
        tmp_path: Path) -> None:
    url, site = static_centre
    dst = lay_out(site, "bad", bundles["0.2.0"])
    wheel = next((dst / "files").glob("paidui_testenv-*"))
    wheel.write_bytes(wheel.read_bytes()[:-1] + b"!")  # fails its digest after the download
    fake_current(tmp_path / "opt")
    stale = tmp_path / "opt" / "incoming" / "0.1.9"
    stale.mkdir(parents=True)
    (stale / "paidui-0.1.9.whl.part").write_bytes(b"\0" * 100_000)  # an old, given-up fetch
    await running.updater.offer(update_command("c-1", "0.2.0", f"{url}/bad/manifest.json"))
    assert (await running.until("failed", "installed"))[-1]["status"] == "failed"
    assert [p.name for p in (tmp_path / "opt" / "incoming").iterdir()] == ["0.2.0"]


def test_the_box_logs_to_the_service_journal_only(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from common.logs import setup_logging

    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("INFO", "json")
        assert all(type(h) is logging.StreamHandler for h in root.handlers)  # no file handler
        logging.getLogger("paidui.test").info("hello")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert list(tmp_path.iterdir()) == []  # nothing written beside the process


@pytest.fixture
async def api(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(box)),
                                 base_url="http://box") as client:
        yield client


def series(text: str) -> set[str]:
    """Each sample's name and labels (its value dropped)."""
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")}


async def test_metrics_label_sets_do_not_grow_with_traffic(box: Box,
                                                           api: httpx.AsyncClient) -> None:
    before = series((await api.get("/metrics")).text)
    for i in range(60):
        await api.post("/api/tickets", json={"queue": "AB"[i % 2]})
        await api.get(f"/api/tickets/A{i:03}")
        await api.get(f"/no/such/path/{i}")
    after = series((await api.get("/metrics")).text)
    assert after == before
    assert not [s for s in after if "A0" in s or "/no/such" in s]
