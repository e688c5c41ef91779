"""Public branch status (H1): from the stored live picture, cached, no personal data; the
least busy branches near a place."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from central.broker import LocalBroker
from central.public import distance_km, least_busy
from common.clock import ManualClock
from controller.box import Box
from controller.engine import commands as c
from tests.customer_support import (
    customer_centre,
    http,
    linked_box,
    plain_centre,
    put_catalogue,
)
from tests.uplink_support import BRANCH, broker_fixture, running, wait_for  # noqa: F401

ZHENGZHOU, BEIJING = (34.7466, 113.6253), (39.9042, 116.4074)


def test_distances_are_great_circle_kilometres() -> None:
    assert distance_km(*ZHENGZHOU, *ZHENGZHOU) == 0
    assert 610 < distance_km(*ZHENGZHOU, *BEIJING) < 630


def branch(code: str, lat: float, lon: float, waits: dict[str, int], online: bool = True,
           paused: tuple[str, ...] = ()) -> dict:
    return {"branch": code, "online": online, "latitude": lat, "longitude": lon,
            "queues": [{"id": q, "wait_minutes": w, "paused": q in paused}
                       for q, w in waits.items()]}


def test_least_busy_near_a_place_ranks_by_wait_then_distance() -> None:
    here = ZHENGZHOU
    found = least_busy([
        branch("1", here[0] + 0.01, here[1], {"A": 20, "B": 5}),   # ~1 km
        branch("2", here[0] + 0.03, here[1], {"A": 8}),            # ~3 km
        branch("3", here[0] + 0.05, here[1], {"A": 8}),            # ~5.6 km
        branch("4", here[0] + 0.02, here[1], {"A": 0}, online=False),
        branch("5", here[0] + 0.02, here[1], {"A": 0}, paused=("A",)),
        branch("6", *BEIJING, {"A": 0}),                           # far away
    ], *here, queue="A")
    assert [b["branch"] for b in found] == ["2", "3", "1"]
    assert found[0]["wait_minutes"] == 8 and 3.0 < found[0]["distance_km"] < 3.5
    any_queue = least_busy([branch("1", *here, {"A": 20, "B": 5}), branch("2", *here, {"A": 8})],
                           *here)
    assert [(b["branch"], b["best_queue"]) for b in any_queue] == [("1", "B"), ("2", "A")]
    nothing_near = least_busy([branch("6", *BEIJING, {"A": 3})], *here, limit=1)
    assert [b["branch"] for b in nothing_near] == ["6"]  # none within 10 km: the nearest


async def test_the_public_status_shows_the_branch_without_personal_data(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    # polled until the box's picture arrives: the edge's per-address limits are not the
    # subject here (tests/test_central_edge.py)
    async with customer_centre(broker, store_url, clock, tmp_path,
                               "http.public.enabled=false") as centre, \
            linked_box(box, broker), http(centre) as api:
        for q in "AAAB":
            await box.execute(c.IssueTicket(queue=q))
        await box.execute(c.Login(1, "t1", "1234"))
        await box.execute(c.CallNext(1))
        await box.execute(c.PauseQueue("F", "系统升级"))

        async def shown() -> dict:
            r = await api.get(f"/api/public/branches/{BRANCH}")
            got = r.json() if r.status_code == 200 else {}
            paused = {q["id"]: q.get("paused") for q in got.get("queues", [])}
            # the picture after the last step (F paused), not one taken on the way (A A A:
            # also 3 waiting, before B was issued and A001 called)
            return got if got.get("waiting_total") == 3 and got.get("latitude") and \
                paused.get("F") else {}

        b = await wait_for(shown, 20, "the branch's live picture with its coordinates")
        queues = {q["id"]: q for q in b["queues"]}
        assert b["name"] == "郑州金水路支行" and b["online"]
        assert queues["A"]["waiting"] == 2 and queues["A"]["windows_open"] == 1
        assert queues["A"]["wait_minutes"] == 8  # 2 × 4 min at one window
        assert queues["F"]["paused"] and queues["B"]["wait_minutes"] == 8  # B: 1 × 8, closed
        assert {"number": 1, "current": "A001"}.items() <= next(
            w for w in b["windows"] if w["number"] == 1).items()
        text = json.dumps(b, ensure_ascii=False)
        for private in ("teller", "t1", "柜员", "张", "vip"):
            assert private not in text
        near = await api.get("/api/public/nearby", params={"lat": 34.77, "lon": 113.68})
        assert [x["branch"] for x in near.json()["branches"]] == [BRANCH]


async def test_a_spike_of_requests_reads_the_store_once_and_asks_no_branch(
        tmp_path: Path, clock: ManualClock) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with plain_centre(store_url, tmp_path, clock,
                            "customers.status_ttl_s=30",
                            "http.public.enabled=false") as (centre, api):  # edge: own tests
        assert centre.customers is not None
        a = centre.customers.appointments
        await put_catalogue(a, clock)
        live = {"v": 1, "branch": BRANCH, "at": clock.now(), "status": {
            "branch_name": "测试", "waiting_total": 1, "day": "2026-11-25",
            "queues": [{"id": "A", "name": "个人业务", "waiting": 1}], "windows": []}}
        await a.pool.read(lambda st: st.save_live({BRANCH: {"online": True}}, {BRANCH: live}, {}))
        answers = await asyncio.gather(*(api.get("/api/public/branches") for _ in range(200)))
        assert {r.status_code for r in answers} == {200}
        assert centre.customers.status.reads == 1
        assert len(answers[0].json()["branches"]) == 1


@pytest.mark.parametrize("params", [{"lat": 95, "lon": 0}, {"lat": 1}, {"lat": "x", "lon": 2}])
async def test_nearby_refuses_impossible_places(tmp_path: Path, clock: ManualClock,
                                                params: dict) -> None:
    async with plain_centre(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path, clock) as (_, api):
        assert (await api.get("/api/public/nearby", params=params)).status_code == 422
