"""The data folder's disk budget (controller/disk.py): a warning before tickets stop, and a
clear 503 at the kiosk rather than a journal that runs out of room. The free figure is
simulated through the box's injected function."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from common.clock import ManualClock
from controller.box import Box
from controller.config import Config
from controller.disk import MB, RECHECK_S
from controller.notices import notices
from controller.web import create_app
from tests.uplink_support import wait_for


class Disk:
    """A file system whose free space the test sets."""

    def __init__(self, free_mb: int = 10_000) -> None:
        self.free_mb = free_mb

    def __call__(self, path: Path) -> int:
        return self.free_mb * MB


def disk_state(box: Box) -> tuple[str, str] | None:
    d = box.health.devices.get("disk")
    return (d.state, d.detail) if d else None


@pytest.fixture
async def api(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(box)),
                                 base_url="http://box") as client:
        yield client


async def test_a_filling_disk_warns_then_stops_tickets_with_a_clear_503(
        box: Box, api: httpx.AsyncClient, clock: ManualClock) -> None:
    disk = Disk()
    box.disk.free = disk
    heard: list[dict] = []
    notices(box).listeners.append(heard.append)
    assert (await api.post("/api/tickets", json={"queue": "A"})).status_code == 201
    assert disk_state(box) == ("ok", "")

    disk.free_mb = 400  # under journal.disk_warn_mb (500): warned, still issuing
    clock.advance(RECHECK_S)  # with the disk fine, it is measured at most once a second
    assert (await api.post("/api/tickets", json={"queue": "A"})).status_code == 201
    assert disk_state(box) == ("warning", "low")
    assert [n["kind"] for n in heard] == ["disk_low"] and "400 MB" in heard[0]["message"]

    disk.free_mb = 60  # under journal.disk_stop_mb (100): no new ticket, nothing journaled
    seq = box.last_seq
    r = await api.post("/api/tickets", json={"queue": "A"})
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "disk_full" and "存储空间不足" in err["message"]
    assert box.last_seq == seq and disk_state(box) == ("fault", "full")
    assert [n["kind"] for n in heard] == ["disk_low", "disk_full"]
    health = (await api.get("/api/health")).json()["devices"]
    assert {"name": "disk", "state": "fault"}.items() <= next(
        d for d in health if d["name"] == "disk").items()

    disk.free_mb = 2_000  # space freed: issuing resumes, the alarm clears, no new notice
    assert (await api.post("/api/tickets", json={"queue": "A"})).json()["number"] == "A003"
    assert disk_state(box) == ("ok", "") and len(heard) == 2


async def test_with_the_disk_fine_tickets_are_not_each_measured(
        box: Box, clock: ManualClock) -> None:
    measured: list[Path] = []

    def free(path: Path) -> int:
        measured.append(path)
        return 10_000 * MB

    box.disk.free = free
    clock.advance(RECHECK_S)
    for _ in range(5):  # a burst of tickets within a second: one measure
        box.disk.admit_ticket()
    assert len(measured) == 1
    clock.advance(RECHECK_S)
    box.disk.admit_ticket()
    assert len(measured) == 2


async def test_the_warning_has_hysteresis_and_is_told_once(box: Box) -> None:
    disk = Disk(499)
    box.disk.free = disk
    heard: list[dict] = []
    notices(box).listeners.append(heard.append)
    levels = []
    for mb in (499, 501, 480, 540, 499, 551, 600):
        disk.free_mb = mb
        levels.append(box.disk.check())
    assert levels == ["low", "low", "low", "low", "low", "ok", "ok"]
    assert len(heard) == 1


async def test_the_running_box_checks_its_disk_by_itself(config: Config, clock: ManualClock,
                                                         tmp_path: Path) -> None:
    async with Box(config, tmp_path, clock, tick_s=0.01) as box:
        box.disk.free = Disk(50)
        await wait_for(lambda: disk_state(box) == ("fault", "full"), 10, "the disk alarm")


def test_the_default_measure_is_the_data_folders_file_system(tmp_path: Path) -> None:
    import os

    from controller.disk import free_bytes

    st = os.statvfs(tmp_path)
    assert abs(free_bytes(tmp_path) - st.f_bavail * st.f_frsize) < 64 * MB
