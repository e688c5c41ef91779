"""The live dashboard's data: a real box (engine, journal, uplink) → broker → centre →
live board → JSON, Server-Sent Events over a real HTTP server, and retained MQTT
aggregates (D2, D3; SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import httpx
import pytest

from central.broker import LocalBroker
from common.clock import ManualClock
from controller.box import Box
from controller.engine import commands as c
from protocols import uplink as proto

from .office_support import B1, http_client, login, office_running, serving, sse_events
from .uplink_support import (
    broker_fixture,
    pg_url_fixture,
    running,
    store_url_fixture,
    uplink_for,
    wait_for,
)

__all__ = ["broker_fixture", "pg_url_fixture", "store_url_fixture"]

pytestmark = pytest.mark.network
VIP_CARD = "6225880137001237"


async def live_of(http: httpx.AsyncClient, headers: dict[str, str], org: str
                  ) -> dict[str, Any]:
    r = await http.get(f"/api/live?org={org}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_a_branchs_figures_reach_the_dashboard_and_roll_up_the_tree(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str) -> None:
    uplink = uplink_for(broker)
    async with office_running(broker, store_url) as centre, running(uplink.run(box)), \
            http_client(centre) as http:
        admin = await login(http)
        await box.execute(c.IssueTicket(queue="A"))
        clock.advance(60)
        await box.execute(c.IssueTicket(card=VIP_CARD, channel="card"))
        await box.execute(c.Login(5, "t2", "1234"))
        clock.advance(120)
        await box.execute(c.CallNext(5))  # the VIP: 2 minutes' wait
        clock.advance(30)
        await box.execute(c.IssueTicket(queue="B"))

        async def seen() -> dict[str, Any]:
            v = await live_of(http, admin, B1)
            t = v["totals"]
            return v if (t["issued"], t["called"], t["online"]) == (3, 1, 1) else {}

        # (the branch's online status and its events travel as separate messages)
        view = await wait_for(seen, 20, "three tickets and a call, the branch online")
        t, b = view["totals"], view["branch"]
        assert (t["waiting"], t["serving"], t["windows_open"], t["online"]) == (2, 1, 1, 1)
        assert t["avg_wait_s"] == 120.0 and t["longest_wait_s"] >= 150.0  # A001 still waits
        assert b["online"] is True and b["is_stale"] is False and b["age_s"] < 10
        window5 = next(w for w in b["windows"] if w["number"] == 5)
        assert window5["current"] == "V001" and window5["state"] == "serving"
        (vip,) = b["vip_list"]
        assert vip["name"] == "陈先生" and vip["stars"] == 5 and vip["state"] == "called"
        assert VIP_CARD not in json.dumps(view, ensure_ascii=False)
        assert [p["code"] for p in view["path"]] == ["1001", "100101", B1]

        province = await live_of(http, admin, "1001")
        assert province["totals"]["issued"] == 3 and province["totals"]["branches"] >= 1
        kids = {k["code"]: k for k in province["children"]}
        assert set(kids) == {"100101", "100102"}
        assert kids["100101"]["issued"] == 3 and kids["100102"]["issued"] == 0
        charts = (await http.get("/api/live/charts?org=1001", headers=admin)).json()
        assert sum(charts["hourly"]) == 3 and charts["hourly"][10] == 3
        assert charts["wait_hist"] == {"le2": 1, "2to5": 0, "5to10": 0, "gt10": 0}
        assert max(v or 0 for v in charts["waiting"]) >= 2


async def test_the_stream_pushes_a_new_view_when_a_ticket_is_issued(
        box: Box, broker: LocalBroker, store_url: str) -> None:
    uplink = uplink_for(broker)
    async with office_running(broker, store_url) as centre, running(uplink.run(box)), \
            serving(centre) as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            admin = await login(http)
            await box.execute(c.IssueTicket(queue="A"))
            async with http.stream("GET", "/api/live/stream?org=100101",
                                   headers=admin) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                events = sse_events(r)

                async def next_view(pred: Any) -> dict[str, Any]:
                    async for kind, data in events:
                        if kind == "view" and pred(data):
                            return data  # type: ignore[no-any-return]
                    raise AssertionError("the stream ended")

                first = await asyncio.wait_for(
                    next_view(lambda v: v["totals"]["issued"] == 1), 20)
                await box.execute(c.IssueTicket(queue="A"))
                second = await asyncio.wait_for(
                    next_view(lambda v: v["totals"]["issued"] == 2), 20)
        assert second["version"] > first["version"]
        assert second["totals"]["waiting"] == 2


async def test_a_branch_that_goes_away_is_shown_offline_since_when(
        box: Box, broker: LocalBroker, store_url: str) -> None:
    uplink = uplink_for(broker)
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        async with running(uplink.run(box)):
            await box.execute(c.IssueTicket(queue="A"))

            async def online() -> bool:
                return bool((await live_of(http, admin, B1))["branch"]["online"])

            await wait_for(online, 20, "the branch online")
        # The box vanished: the broker publishes its Last Will (here: the same message).
        async with aiomqtt.Client("127.0.0.1", broker.port, username=B1,
                                  password=uplink.settings.password) as as_box:
            await as_box.publish(f"qms/v1/{B1}/status", proto.encode(proto.will(B1, box.epoch)),
                                 qos=1, retain=True)

        async def offline() -> dict[str, Any]:
            b = (await live_of(http, admin, B1))["branch"]
            return b if b["online"] is False else {}

        b = await wait_for(offline, 20, "the branch offline")
        assert b["online_since"] is not None  # offline since then
        view = await live_of(http, admin, "100101")
        assert view["totals"]["offline"] == 1 and view["totals"]["issued"] == 1


async def test_retained_aggregates_for_any_mqtt_dashboard(
        box: Box, broker: LocalBroker, store_url: str) -> None:
    uplink = uplink_for(broker)
    async with office_running(broker, store_url), running(uplink.run(box)):
        await box.execute(c.IssueTicket(queue="A"))
        await box.execute(c.IssueTicket(queue="B"))

        async def two_tickets() -> dict[str, Any]:
            got = await retained(broker)
            province = got.get("qms/v1/agg/1001", (False, {}))[1]
            return got if province.get("issued") == 2 else {}

        await wait_for(two_tickets, 20, "aggregates with two tickets")
    got = await retained(broker)  # the centre has stopped: the broker kept them
    assert all(flag for flag, _ in got.values())
    got = {topic: msg for topic, (_, msg) in got.items()}
    p = got["qms/v1/agg/1001"]
    assert p["v"] == 1 and p["org"] == "1001" and p["name"] == "河南省分行"
    assert (p["waiting"], p["online"], p["branches"], p["never"]) == (2, 1, 7, 6)
    assert got["qms/v1/agg/100101"]["issued"] == 2
    assert got["qms/v1/agg/100102"]["issued"] == 0
    assert got[f"qms/v1/agg/{B1}"]["waiting"] == 2


async def retained(broker: LocalBroker) -> dict[str, Any]:
    """{topic: (retain flag, message)} of what a new subscriber to qms/v1/agg/+ gets."""
    got: dict[str, Any] = {}
    async with aiomqtt.Client("127.0.0.1", broker.port, username="centre",
                              password="centre-pw") as client:
        await client.subscribe("qms/v1/agg/+", qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):  # retained messages come at once
                async for m in client.messages:
                    got[str(m.topic)] = (m.retain, json.loads(bytes(m.payload or b"{}")))
    return got


async def test_an_event_the_state_cannot_take_is_counted_not_fatal(
        broker: LocalBroker, store_url: str) -> None:
    """The protocol checks seq/type/at/day; an event missing a ticket's fields passes it and
    must not stop the board (nor any other branch's figures)."""
    password = broker.add_user(B1)
    day, at = "2026-11-25", 1_795_600_000.0
    good = {"type": "ticket_issued", "day": day, "ticket": "t1", "number": "A001",
            "queue": "A", "n": 1, "customer_type": "normal"}
    events = [{"seq": 1, "type": "day_opened", "at": at, "day": day},
              {"seq": 2, "type": "ticket_issued", "at": at + 1, "day": day, "queue": "A"},
              {"seq": 3, "at": at + 2, **good}]
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        async with aiomqtt.Client("127.0.0.1", broker.port, username=B1,
                                  password=password) as as_box:
            await as_box.publish(f"qms/v1/{B1}/events",
                                 proto.encode(proto.events_batch(B1, "e1", events)), qos=1)

        async def folded() -> dict[str, Any]:
            b = (await live_of(http, admin, B1))["branch"]
            return b if b["bad_events"] == 1 else {}

        await wait_for(folded, 20, "the bad event counted")
        view = await live_of(http, admin, B1)
        assert view["totals"]["issued"] == 1 and view["totals"]["waiting"] == 1


async def test_a_demo_centre_tells_the_time_of_its_clock_start_not_the_hosts(
        box: Box, broker: LocalBroker, store_url: str) -> None:
    """A centre started with ``clock.start`` (the simulator's 10:00, issue 17) shows that
    time as the board's "now", stamps what a branch sends by it, and so the figures' age is
    seconds, not the hours between the host's time and the demo's."""
    start = dt.datetime(2026, 11, 25, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    t0 = start.timestamp()
    uplink = uplink_for(broker)
    async with office_running(broker, store_url, f"clock.start={start.isoformat()}") as centre, \
            running(uplink.run(box)), http_client(centre) as http:
        admin = await login(http)
        await box.execute(c.IssueTicket(queue="A"))

        async def seen() -> dict[str, Any]:
            v = await live_of(http, admin, B1)
            return v if v["totals"]["issued"] == 1 and v["branch"]["heard_at"] else {}

        view = await wait_for(seen, 20, "the ticket and the branch's status on the board")
        assert t0 <= view["now"] < t0 + 60
        assert t0 <= view["branch"]["heard_at"] <= view["now"]
        assert 0 <= view["branch"]["age_s"] < 60 and view["branch"]["is_stale"] is False
        province = await live_of(http, admin, "1001")
        assert t0 <= province["now"] < t0 + 60
        stored = await centre.read(lambda s: s.execute(
            "SELECT min(stored_at), max(stored_at) FROM events WHERE branch = ?",
            (B1,)).fetchone())
        assert t0 <= stored[0] <= stored[1] < t0 + 60
