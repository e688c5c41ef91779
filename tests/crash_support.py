"""A box in a child process to start, load and kill: shared by the crash tests."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import EXAMPLE, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_box(data: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "controller", "--config", str(EXAMPLE), "--data-dir", str(data),
         "--http", f"127.0.0.1:{port}", "--set", "clock.start=2026-11-25T10:00:00+08:00",
         # A long busy day: no waiting cap, four-digit numbers for the two businesses.
         "--set", "thresholds.branch_waiting_cap=0", "--set", "thresholds.lobby_alert_waiting=0",
         "--set", "queues.0.digits=4", "--set", "queues.1.digits=4",
         "--log-level", "WARNING", "--set", 'hardware="none"'],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


async def wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"box exited: {err}")
        try:
            if (await client.get("/api/status")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)  # polling a starting process's port; nothing to await
    raise AssertionError("box did not start")


async def kill_mid_load(client: httpx.AsyncClient, proc: subprocess.Popen[bytes],
                        rng: random.Random,
                        load: Callable[[asyncio.Event], list[asyncio.Task[None]]]) -> None:
    """Once the box answers, start ``load`` (its tasks set the event once enough tickets
    are out, however loaded the machine is), then SIGKILL the box a random moment later —
    mid-commit as likely as not — and let the load's tasks see the box gone. The box is
    dead afterwards."""
    enough = asyncio.Event()
    try:
        await wait_ready(client, proc)
        tasks = load(enough)
        await asyncio.wait_for(enough.wait(), 60)
        await asyncio.sleep(rng.uniform(0, 0.05))  # random pacing of the load (the behaviour)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await asyncio.gather(*tasks)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
