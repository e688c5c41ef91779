"""Numbers nobody holds (docs/journal.md): the real box is SIGKILLed under ticket load.

Killed between committing a ticket and answering it, the box used to restart with numbers
that no client held, and a window then called them into an empty hall. Now such a ticket
is voided at start-up. After each kill and restart: every client that lost its answer
retries with the same ``Idempotency-Key``; then a teller calls everything. No window calls
a voided number, every number a client holds is called, and nothing else is.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from pathlib import Path

import httpx
import pytest

from controller.journal import Journal
from tests.crash_support import free_port, kill_mid_load, start_box, wait_ready

pytestmark = pytest.mark.slow


def journal_of(data: Path, etype: str) -> list[str]:
    j = Journal(data / "journal.sqlite3")
    try:
        return [r.event["number"] for r in j.iter_all() if r.event["type"] == etype]
    finally:
        j.close()


async def hammer(client: httpx.AsyncClient, kiosk: str, held: list[str],
                 lost: list[tuple[str, str, str]], enough: asyncio.Event, target: int) -> None:
    """One kiosk taking tickets, one at a time and one key per ticket, until the box dies;
    a request whose answer was lost is kept to retry, as the kiosk page does."""
    queue, key = random.choice("AB"), secrets.token_hex(12)
    while True:
        try:
            r = await client.post("/api/tickets", json={"queue": queue, "kiosk": kiosk},
                                  headers={"Idempotency-Key": key})
        except httpx.TransportError:
            lost.append((kiosk, queue, key))
            return
        assert r.status_code in (201, 503), r.text  # 503: journal busy, asked again
        if r.status_code == 201:
            held.append(r.json()["number"])
            queue, key = random.choice("AB"), secrets.token_hex(12)
            if len(held) >= target:
                enough.set()


async def call_everything(client: httpx.AsyncClient) -> list[str]:
    r = await client.post("/api/windows/3/login", json={"teller": "t1", "password": "1234"})
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    called = []
    while True:
        r = await client.post("/api/windows/3/call-next", headers=auth)
        if r.status_code != 200:
            assert r.json()["error"]["code"] == "no_waiting", r.text
            break
        called.append(r.json()["current"]["number"])
    await client.post("/api/windows/3/logout", headers=auth)
    return called


async def test_a_number_nobody_holds_is_voided_and_never_called(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    port = free_port()
    held: list[str] = []
    voided_total = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        for _round in range(3):
            proc = start_box(tmp_path, port)
            lost: list[tuple[str, str, str]] = []
            target = len(held) + rng.randint(20, 60)
            await kill_mid_load(client, proc, rng, lambda enough, target=target, lost=lost: [
                asyncio.create_task(hammer(client, f"k{i}", held, lost, enough, target))
                for i in range(8)])
            voided_before = set(journal_of(tmp_path, "ticket_voided"))
            proc = start_box(tmp_path, port)
            try:
                await wait_ready(client, proc)
                voided = set(journal_of(tmp_path, "ticket_voided")) - voided_before
                voided_total += len(voided)
                assert not voided & set(held), "a number a client holds was voided"
                for kiosk, queue, key in lost:  # the kiosks that lost their answer ask again
                    r = await client.post("/api/tickets", json={"queue": queue, "kiosk": kiosk},
                                          headers={"Idempotency-Key": key})
                    assert r.status_code == 201, r.text
                    assert r.json()["number"] not in voided
                    held.append(r.json()["number"])
                called = await call_everything(client)
                assert not set(called) & set(journal_of(tmp_path, "ticket_voided")), \
                    "a window called a voided number"
                issued = set(journal_of(tmp_path, "ticket_issued"))
                served = set(journal_of(tmp_path, "ticket_called"))
                assert set(held) <= served, "a number a client holds was never called"
                assert served == set(held), "a window called a number nobody holds"
                assert issued == served | set(journal_of(tmp_path, "ticket_voided"))
            finally:
                proc.terminate()
                proc.wait(10)
    print(f"voided after 3 SIGKILLs under load: {voided_total}")  # the figure (docs)
