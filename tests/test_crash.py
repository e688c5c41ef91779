"""Power cuts (SPEC A3): the real box, under ticket load, is SIGKILLed at random moments.

After every restart each number a client received is in the journal exactly once, the
numbers of the day run 1, 2, 3, … without a hole, and the next number continues.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from controller.journal import Journal
from tests.conftest import EXAMPLE, ROOT

pytestmark = pytest.mark.slow


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


async def hammer(client: httpx.AsyncClient, received: list[str], enough: asyncio.Event,
                 target: int) -> None:
    while True:
        try:
            r = await client.post("/api/tickets", json={"queue": random.choice("AB")})
        except httpx.TransportError:
            return  # the box is gone
        assert r.status_code in (201, 503), r.text  # 503: journal busy, never a wrong answer
        if r.status_code == 201:
            received.append(r.json()["number"])
            if len(received) >= target:
                enough.set()


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
        await asyncio.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await asyncio.gather(*tasks)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def journal_numbers(data: Path) -> list[str]:
    j = Journal(data / "journal.sqlite3")
    try:
        return [r.event["number"] for r in j.iter_all() if r.event["type"] == "ticket_issued"]
    finally:
        j.close()


async def test_sigkill_under_load_never_loses_or_duplicates_a_number(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    port = free_port()
    received: list[str] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        for _round in range(5):
            proc = start_box(tmp_path, port)
            target = len(received) + rng.randint(10, 60)
            await kill_mid_load(client, proc, rng, lambda enough, target=target: [
                asyncio.create_task(hammer(client, received, enough, target))
                for _ in range(8)])
            numbers = journal_numbers(tmp_path)
            counts = Counter(numbers)
            assert not [n for n, k in counts.items() if k > 1], "a number was issued twice"
            assert set(received) <= set(numbers), "a client holds a number the journal lost"
            for q in "AB":
                ns = sorted(int(n[1:]) for n in numbers if n[0] == q)
                assert ns == list(range(1, len(ns) + 1)), f"hole in {q}"
        proc = start_box(tmp_path, port)
        try:
            await wait_ready(client, proc)
            r = await client.post("/api/tickets", json={"queue": "A"})
            before = [n for n in journal_numbers(tmp_path) if n[0] == "A"]
            assert r.json()["number"] == f"A{len(before):04d}"  # continues the sequence
        finally:
            proc.terminate()
            proc.wait(10)
