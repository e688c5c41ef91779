"""Power cuts (SPEC A3): the real box, under ticket load, is SIGKILLed at random moments.

After every restart each number a client received is in the journal exactly once, the
numbers of the day run 1, 2, 3, … without a hole, and the next number continues.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import httpx
import pytest

from controller.journal import Journal
from tests.crash_support import free_port, kill_mid_load, start_box, wait_ready

pytestmark = pytest.mark.slow


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
