"""One press is one customer over HTTP: the ``Idempotency-Key`` (controller/web/idempotency.py,
docs/api.md "Repeats and idempotency").

A repeat of a keyed request from the same asker gets the first answer and acts once; the
key is parsed strictly; another asker never reads an earlier answer; the answers kept are
bounded; a kiosk retrying ``POST /api/tickets`` after a lost answer gets the same ticket,
also after the box restarted in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from common.clock import ManualClock
from controller.box import Box
from controller.config import Config
from controller.web import create_app
from controller.web.idempotency import KEEP_S, SIZE, Repeats

KEY = "k-0123456789abcdef"


def client_of(box: Box, address: str = "10.0.0.21") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(box), client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://box")


@pytest.fixture
async def api(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(box) as c:
        yield c


async def teller(api: httpx.AsyncClient, window: int = 1, who: str = "t1") -> dict[str, str]:
    r = await api.post(f"/api/windows/{window}/login", json={"teller": who, "password": "1234"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def events(box: Box, etype: str) -> list[dict]:
    await box.settled()
    return [r.event for r in await box.read_events(0, 10_000) if r.event["type"] == etype]


async def tickets(api: httpx.AsyncClient, n: int, queue: str = "A") -> list[str]:
    out = []
    for _ in range(n):
        r = await api.post("/api/tickets", json={"queue": queue})
        assert r.status_code == 201, r.text
        out.append(r.json()["number"])
    return out


# --- window commands -----------------------------------------------------------------------


async def test_a_double_submitted_call_next_calls_one_customer(
    api: httpx.AsyncClient, box: Box
) -> None:
    first, _ = await tickets(api, 2)
    auth = {**await teller(api), "Idempotency-Key": KEY}
    a, b = await asyncio.gather(api.post("/api/windows/1/call-next", headers=auth),
                                api.post("/api/windows/1/call-next", headers=auth))
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json() and a.json()["current"]["number"] == first
    assert {a.headers.get("idempotent-replayed"), b.headers.get("idempotent-replayed")} == {
        None, "true"}
    assert [e["number"] for e in await events(box, "ticket_called")] == [first]
    assert await events(box, "ticket_finished") == []  # the first customer is not finished


async def test_a_repeat_gets_the_first_answer_and_a_new_key_acts(
    api: httpx.AsyncClient, box: Box
) -> None:
    await tickets(api, 2)
    auth = await teller(api)
    one = await api.post("/api/windows/1/call-next", headers={**auth, "Idempotency-Key": KEY})
    again = await api.post("/api/windows/1/call-next", headers={**auth, "Idempotency-Key": KEY})
    assert again.json() == one.json() and again.headers["idempotent-replayed"] == "true"
    nxt = await api.post("/api/windows/1/call-next", headers={**auth, "Idempotency-Key": KEY + "2"})
    assert nxt.json()["current"]["number"] != one.json()["current"]["number"]
    assert len(await events(box, "ticket_called")) == 2


async def test_a_refusal_is_the_first_answer_too(api: httpx.AsyncClient, box: Box) -> None:
    auth = {**await teller(api), "Idempotency-Key": KEY}
    r = await api.post("/api/windows/1/call-next", headers=auth)
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_waiting"
    await tickets(api, 1)
    r = await api.post("/api/windows/1/call-next", headers=auth)  # the same press, repeated
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_waiting"
    assert await events(box, "ticket_called") == []


async def test_another_session_never_reads_an_earlier_answer(
    api: httpx.AsyncClient, box: Box
) -> None:
    await tickets(api, 3)
    t1 = await teller(api, 1, "t1")
    r1 = await api.post("/api/windows/1/call-next", headers={**t1, "Idempotency-Key": KEY})
    assert r1.status_code == 200
    # the same key from window 2's teller: its own request, on its own window
    t2 = await teller(api, 2, "t2")
    r2 = await api.post("/api/windows/2/call-next", headers={**t2, "Idempotency-Key": KEY})
    assert "idempotent-replayed" not in r2.headers and r2.json()["window"] == 2
    # window 1's teller logs out and in again: a new session, the old answer is not theirs
    await api.post("/api/windows/1/logout", headers=t1)
    t1b = await teller(api, 1, "t1")
    r3 = await api.post("/api/windows/1/call-next", headers={**t1b, "Idempotency-Key": KEY})
    assert "idempotent-replayed" not in r3.headers
    assert r3.json()["current"]["number"] != r1.json()["current"]["number"]
    # and no session at all is turned away by the gate before any answer is looked up
    api.cookies.clear()
    r4 = await api.post("/api/windows/1/call-next", headers={"Idempotency-Key": KEY})
    assert r4.status_code == 401
    assert len(await events(box, "ticket_called")) == 3


@pytest.mark.parametrize("key", [
    "short", "x" * 65, "has space in it..", "abcdefghijklmnop\u0661", "semi;colon;abcdefgh",
    "ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐ",
])
async def test_a_malformed_key_is_refused_and_nothing_happens(
    api: httpx.AsyncClient, box: Box, key: str
) -> None:
    await tickets(api, 1)
    auth = await teller(api)
    r = await api.post("/api/windows/1/call-next",
                       headers=[*auth.items(), ("Idempotency-Key", key.encode())])
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_idempotency_key"
    assert await events(box, "ticket_called") == []


async def test_a_key_sent_twice_in_one_request_is_refused(api: httpx.AsyncClient, box: Box
                                                          ) -> None:
    await tickets(api, 1)
    auth = await teller(api)
    r = await api.post("/api/windows/1/call-next", headers=[
        *auth.items(), ("Idempotency-Key", KEY), ("Idempotency-Key", KEY + "x")])
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_idempotency_key"
    assert await events(box, "ticket_called") == []


async def test_a_key_reused_for_another_request_is_refused(api: httpx.AsyncClient, box: Box
                                                           ) -> None:
    await tickets(api, 2)
    auth = {**await teller(api), "Idempotency-Key": KEY}
    assert (await api.post("/api/windows/1/call-next", headers=auth)).status_code == 200
    r = await api.post("/api/windows/1/finish", headers=auth, json={"ask_rating": True})
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
    assert await events(box, "ticket_finished") == []


# --- tickets -----------------------------------------------------------------------------


async def test_a_retried_ticket_request_gets_the_same_ticket(api: httpx.AsyncClient, box: Box
                                                             ) -> None:
    key = {"Idempotency-Key": KEY}
    one = await api.post("/api/tickets", json={"queue": "A", "kiosk": "k1"}, headers=key)
    two = await api.post("/api/tickets", json={"queue": "A", "kiosk": "k1"}, headers=key)
    assert one.status_code == two.status_code == 201
    assert two.json()["number"] == one.json()["number"] == "A001"
    assert len(await events(box, "ticket_issued")) == 1


async def test_the_same_key_from_another_kiosk_or_address_is_another_ticket(
    api: httpx.AsyncClient, box: Box
) -> None:
    key = {"Idempotency-Key": KEY}
    one = await api.post("/api/tickets", json={"queue": "A", "kiosk": "k1"}, headers=key)
    other_kiosk = await api.post("/api/tickets", json={"queue": "A", "kiosk": "k2"}, headers=key)
    async with client_of(box, "10.0.0.99") as elsewhere:
        other_place = await elsewhere.post("/api/tickets", json={"queue": "A", "kiosk": "k1"},
                                           headers=key)
    got = [r.json()["number"] for r in (one, other_kiosk, other_place)]
    assert got == ["A001", "A002", "A003"]


async def test_a_retried_ticket_after_a_restart_gets_the_same_ticket(
    config: Config, clock: ManualClock, tmp_path: Path
) -> None:
    key = {"Idempotency-Key": KEY}
    body = {"queue": "A", "kiosk": "k1"}
    async with Box(config, tmp_path / "data", clock) as box, client_of(box) as api:
        first = await api.post("/api/tickets", json=body, headers=key)
        await api.post("/api/tickets", json={"queue": "A", "kiosk": "k2"})
    async with Box(config, tmp_path / "data", clock) as box, client_of(box) as api:
        again = await api.post("/api/tickets", json=body, headers=key)
        assert again.status_code == 201
        assert again.json()["number"] == first.json()["number"] == "A001"
        assert again.json()["reprint_token"] == first.json()["reprint_token"]
        assert [e["number"] for e in await events(box, "ticket_issued")] == ["A001", "A002"]


# --- the bound ---------------------------------------------------------------------------


async def test_the_answers_kept_are_bounded_in_number_and_time(clock: ManualClock) -> None:
    repeats = Repeats(clock, size=3, keep_s=60)
    acted: list[str] = []

    async def act(key: str) -> str:
        acted.append(key)
        return key

    for key in ("a", "b", "c", "d"):
        await repeats.once("who", key, "req", lambda key=key: act(key))  # type: ignore[misc]
    assert len(repeats) == 3
    assert await repeats.once("who", "b", "req", lambda: act("b")) == ("b", True)
    await repeats.once("who", "a", "req", lambda: act("a"))  # dropped first: acts again
    assert acted == ["a", "b", "c", "d", "a"]
    clock.advance(61)
    assert await repeats.once("who", "c", "req", lambda: act("c")) == ("c", False)
    assert len(repeats) == 1
    assert (SIZE, KEEP_S) == (1024, 600.0)  # the documented bound (docs/api.md)
