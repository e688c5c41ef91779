"""Remote tickets (H3) and remote rating (C3) over a real broker, a real centre, a real box.

Wed 2026-11-25 10:00 at the example branch; business A (个人业务) takes 4 minutes.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiomqtt
import pytest

from central.broker import LocalBroker
from common.clock import ManualClock
from controller.box import Box
from controller.engine import commands as c
from protocols import uplink as proto
from tests.customer_support import bearer, bookable, customer_centre, http, linked_box, sign_in
from tests.uplink_support import (  # noqa: F401
    BRANCH,
    broker_fixture,
    held_line,
    pg_url_fixture,
    running,
    store_url_fixture,
    wait_for,
)


async def test_a_phone_ticket_is_a_branch_ticket_followed_then_rated_once(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker), http(centre) as api:
        await bookable(centre)
        token = await sign_in(api, centre)
        for _ in range(3):
            await box.execute(c.IssueTicket(queue="A"))  # three walk-ins at the kiosk
        r = await api.post("/api/public/tickets", headers=bearer(token),
                           json={"branch": BRANCH, "queue": "A"})
        assert r.status_code == 201, r.text
        got = r.json()
        assert got["number"] == "A004" and got["ahead"] == 3 and got["wait_minutes"] == 12
        assert got["branch_name"] == "郑州金水路支行" and got["state"] == "waiting"
        t = box.engine.state.by_num("A004")
        assert t is not None and t.channel == "remote"
        link = got["token"]

        await box.execute(c.Login(1, "t1", "1234"))
        await box.execute(c.Login(2, "t2", "1234"))
        await box.execute(c.CallNext(1))  # A001 to window 1; two windows open for A

        async def moved() -> dict:
            v = (await api.get(f"/api/public/tickets/{link}")).json()
            return v if v.get("ahead") == 2 else {}

        v = await wait_for(moved, 10, "the follow-up page to see one fewer ahead")
        assert v["wait_minutes"] == 4 and v["live"] and not v["can_rate"]  # 2 × 4 / 2 windows
        printed = await api.get(f"/api/public/branches/{BRANCH}/tickets/20261125-A003")
        assert printed.json()["ahead"] == 1 and printed.json()["state"] == "waiting"

        for _ in range(3):
            await box.execute(c.CallNext(1))  # … A004 is called, then finished
        await box.execute(c.Finish(1))
        clock.advance(1800)

        async def done() -> dict:
            v = (await api.get(f"/api/public/tickets/{link}")).json()
            return v if v.get("state") == "finished" else {}

        assert (await wait_for(done, 10, "the service to be finished"))["can_rate"]
        r = await api.post(f"/api/public/tickets/{link}/rate", json={"score": 4})
        assert r.status_code == 200 and r.json()["level"] == "满意"
        r = await api.post(f"/api/public/tickets/{link}/rate", json={"score": 1})
        assert r.status_code == 409 and r.json()["error"]["code"] == "already_rated"
        assert "已评价" in r.json()["error"]["message"]
        t = box.engine.state.by_num("A004")
        assert t is not None and t.rated == 4


async def test_the_branch_refuses_a_phone_ticket_with_the_kiosk_words(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker), http(centre) as api:
        await bookable(centre)
        token = await sign_in(api, centre)
        await box.execute(c.PauseQueue("A", "系统维护"))
        r = await api.post("/api/public/tickets", headers=bearer(token),
                           json={"branch": BRANCH, "queue": "A"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "queue_paused"
        assert "系统维护" in r.json()["error"]["message"]
        r = await api.post("/api/public/tickets", headers=bearer(token),
                           json={"branch": BRANCH, "queue": "Q"})
        assert r.json()["error"]["code"] == "unknown_queue"
        assert not box.engine.state.tickets  # nothing issued
        anonymous = await api.post("/api/public/tickets", json={"branch": BRANCH, "queue": "B"})
        assert anonymous.status_code == 401


async def test_a_phone_ticket_the_busy_box_did_not_run_is_try_again_then_issued(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    """A box whose command line is full answers the ticket ``busy`` without issuing one; the
    phone is told the branch is busy, to try again (not the box's words to the centre), and
    the try does not count against the customer's remote tickets."""
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path,
                               "customers.remote_per_customer=1") as centre, \
            linked_box(box, broker, command_queue=1) as (uplink, _), http(centre) as api:
        await bookable(centre)
        token = await sign_in(api, centre)
        async with held_line(centre, uplink, waiting=1):
            r = await api.post("/api/public/tickets", headers=bearer(token),
                               json={"branch": BRANCH, "queue": "A"})
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == "branch_busy" and "请稍后再试" in error["message"]
            assert not box.engine.state.tickets
        r = await api.post("/api/public/tickets", headers=bearer(token),
                           json={"branch": BRANCH, "queue": "A"})
        assert r.status_code == 201, r.text
        assert r.json()["number"] == "A001"


async def test_an_offline_branch_is_reported_at_once_and_a_silent_one_in_time(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path,
                               "customers.remote_timeout_s=1") as centre, http(centre) as api:
        async with linked_box(box, broker):
            await bookable(centre)
            token = await sign_in(api, centre)
        await vanish(broker, box)
        assert centre.customers is not None
        link = centre.customers.link

        async def offline() -> bool:
            return await link.online(BRANCH) is False

        await wait_for(offline, 10, "the branch's Last Will / offline status")
        started = time.monotonic()
        r = await api.post("/api/public/tickets", headers=bearer(token),
                           json={"branch": BRANCH, "queue": "A"})
        assert time.monotonic() - started < 0.5
        assert r.status_code == 503 and r.json()["error"]["code"] == "branch_offline"
        assert "无法连接" in r.json()["error"]["message"]

        # A branch the centre believes online that does not answer: told after the timeout.
        store = centre.customers.appointments.pool
        await store.run(lambda st: st.execute("UPDATE branches SET online = ? WHERE branch = ?",
                                              (True, BRANCH)))

        async def online() -> bool:
            return await link.online(BRANCH) is True

        await wait_for(online, 5, "the centre to read the branch online (read ≤ 1/s)")
        started = time.monotonic()
        r = await api.post("/api/public/tickets", headers=bearer(token),
                           json={"branch": BRANCH, "queue": "A"})
        assert 0.9 < time.monotonic() - started < 3
        assert r.status_code == 504 and r.json()["error"]["code"] == "branch_no_answer"
    assert not box.engine.state.tickets


async def vanish(broker: LocalBroker, box: Box) -> None:
    """What the broker does when a box loses power: publish its Last Will (retained, offline).

    (A box that stops cleanly disconnects politely, and MQTT sends no Will then.)"""
    async with aiomqtt.Client("127.0.0.1", broker.port, username=BRANCH,
                              password=broker.add_user(BRANCH)) as client:
        await client.publish(proto.topic(BRANCH, "status"),
                             proto.encode(proto.will(BRANCH, box.epoch)), qos=1, retain=True)


@pytest.mark.parametrize("ticket", ["20261124-A001", "20261125-A999"])
async def test_a_printed_ticket_of_another_day_or_unknown_shows_no_position(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path,
        ticket: str) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker), http(centre) as api:
        await bookable(centre)
        r = await api.get(f"/api/public/branches/{BRANCH}/tickets/{ticket}")
        assert r.status_code == 200
        assert r.json()["state"] in ("expired", "unknown") and "ahead" not in r.json()
