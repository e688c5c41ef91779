"""sd_notify over a real AF_UNIX datagram socket, as systemd listens for it."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.box import Box
from controller.health import Status
from controller.watchdog import Watchdog, notify


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.setblocking(False)
    yield path, sock
    sock.close()


async def receive(sock: socket.socket, timeout: float = 5.0) -> str:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        return (await loop.sock_recv(sock, 4096)).decode()


async def test_ready_then_watchdog_pings(box: Box, systemd: tuple[str, socket.socket]) -> None:
    path, sock = systemd
    dog = Watchdog({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    task = asyncio.create_task(dog.run(box))
    ready = await receive(sock)
    assert ready.startswith("READY=1\nSTATUS=branch 1001010001: serving")
    assert [await receive(sock), await receive(sock)] == ["WATCHDOG=1", "WATCHDOG=1"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert box.health.devices["watchdog"].state == "ok"


async def test_a_journal_that_does_not_settle_starves_the_watchdog(
        box: Box, systemd: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch) -> None:
    path, sock = systemd
    stuck = asyncio.Event()
    monkeypatch.setattr(box, "settled", stuck.wait)  # a journal writer that never answers
    faults: asyncio.Queue[Status] = asyncio.Queue()
    box.health.listeners.append(lambda s: faults.put_nowait(s) if s.name == "watchdog" else None)
    task = asyncio.create_task(Watchdog({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
                               .run(box))
    assert (await receive(sock)).startswith("READY=1")
    status = await asyncio.wait_for(faults.get(), 5)
    assert (status.state, status.detail) == ("fault", "journal does not settle")
    with pytest.raises(TimeoutError):
        await receive(sock, timeout=0.3)  # no WATCHDOG=1: systemd will restart the box
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_outside_systemd_or_for_another_pid_it_stays_quiet(
        box: Box, systemd: tuple[str, socket.socket]) -> None:
    await asyncio.wait_for(Watchdog({}).run(box), 1)  # no NOTIFY_SOCKET: ends at once
    path, sock = systemd
    other = Watchdog({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000",
                      "WATCHDOG_PID": str(os.getpid() + 1)})
    await asyncio.wait_for(other.run(box), 1)  # READY only: the watchdog is not ours
    assert (await receive(sock)).startswith("READY=1")
    assert other.interval == 0


def test_abstract_socket_names_and_a_missing_socket() -> None:
    name = f"@paidui-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name[1:])
        assert notify("STATUS=hello", name)
        assert sock.recv(100) == b"STATUS=hello"
    assert not notify("READY=1", "/nonexistent/notify")
    assert not notify("READY=1", "")
