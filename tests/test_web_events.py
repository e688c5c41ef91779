"""The push channel (controller/web/events.py): what a screen receives, and when."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from common.clock import ManualClock
from controller.box import Box
from controller.engine import IssueTicket, Login
from controller.engine.commands import CallNext
from controller.kiosk import KioskRelay
from controller.notices import notices
from controller.web import create_app
from controller.web.events import EventHub
from drivers.card_reader import CardReader
from sim.card_swipes import SimSwipes
from tests.uplink_support import wait_for
from tests.web_events_support import parse, take


async def test_a_stream_starts_with_the_retry_time_and_a_status_snapshot(box: Box) -> None:
    await box.execute(IssueTicket(queue="A"))
    stream = EventHub(box).attach().stream("hall", None)
    assert await anext(stream) == "retry: 2000\n\n"
    status = await take(stream, "status")
    assert status["data"]["waiting_total"] == 1
    assert status["data"]["seq"] == box.last_seq
    assert {q["id"]: q["waiting"] for q in status["data"]["queues"]}["A"] == 1
    await stream.aclose()


async def test_committed_events_are_pushed_without_card_or_vip_identity(box: Box) -> None:
    hub = EventHub(box).attach()
    stream = hub.stream("hall", None)
    await take(stream, "status")
    await box.execute(IssueTicket(card="6225880137001237", channel="card"))
    msg = await take(stream, "box")
    assert msg["data"]["type"] == "ticket_issued" and msg["data"]["number"] == "V001"
    assert msg["id"] == f"{box.epoch}:{box.last_seq}"
    assert not {"card", "vip", "vip_name"} & set(msg["data"])
    status = await take(stream, "status")  # a fresh snapshot follows the burst
    assert status["data"]["waiting_total"] == 1
    await stream.aclose()


async def test_calls_appear_in_the_snapshot_newest_first(box: Box, clock: ManualClock) -> None:
    hub = EventHub(box).attach()
    for _ in range(2):
        await box.execute(IssueTicket(queue="A"))
    await box.execute(Login(1, "t1", "1234"))
    await box.execute(Login(2, "t2", "1234"))
    await box.execute(CallNext(2))
    clock.advance(30)
    await box.execute(CallNext(1))
    calls = (await hub.snapshot())["calls"]
    assert [(c["number"], c["window"]) for c in calls] == [("A002", 1), ("A001", 2)]


async def test_a_reconnecting_screen_gets_what_it_missed_then_the_snapshot(box: Box) -> None:
    hub = EventHub(box).attach()
    first = hub.stream("hall", None)
    await take(first, "status")
    await box.execute(IssueTicket(queue="A"))
    seen = (await take(first, "box"))["id"]
    await first.aclose()
    await box.execute(IssueTicket(queue="A"))
    await box.execute(IssueTicket(queue="B"))
    again = hub.stream("hall", seen)
    assert await anext(again) == "retry: 2000\n\n"
    missed = [parse(await anext(again)) for _ in range(2)]
    assert [m["data"]["number"] for m in missed] == ["A002", "B001"]
    assert all(m["data"]["replay"] for m in missed)
    assert (await take(again, "status"))["data"]["waiting_total"] == 3
    await again.aclose()


async def test_an_unknown_position_gets_only_the_snapshot(box: Box) -> None:
    await box.execute(IssueTicket(queue="A"))
    stream = EventHub(box).attach().stream("hall", "another-journal:1")
    await anext(stream)
    assert parse(await anext(stream))["event"] == "status"
    await stream.aclose()


async def test_a_slow_screen_is_dropped_and_never_holds_up_the_box(box: Box) -> None:
    hub = EventHub(box, queue_size=4, coalesce_s=0).attach()  # a batch per commit
    stream = hub.stream("hall", None)
    await take(stream, "status")
    for _ in range(20):  # the screen reads nothing meanwhile
        await box.execute(IssueTicket(queue="A"))
    assert box.engine.state.waiting_total == 20
    assert hub.stats.dropped == 1
    left = [m async for m in stream]  # what was queued, then the stream ends
    assert len(left) <= 4
    assert not hub.clients  # it reconnects and catches up by replay


async def test_an_idle_stream_sends_pings_with_the_box_time(box: Box) -> None:
    hub = EventHub(box, ping_s=0.05).attach()
    stream = hub.stream("kiosk", None)
    await take(stream, "status")
    ping = await take(stream, "ping")
    assert ping["data"] == {"seq": box.last_seq, "now": "2026-11-25T10:00:00+08:00"}
    await stream.aclose()


async def test_screens_connected_are_reported_as_device_health(box: Box) -> None:
    hub = EventHub(box, screens_report_s=0.2).attach()
    stream = hub.stream("hall", None)
    await take(stream, "status")
    assert box.health.devices["screens"].detail == "hall 1"  # the first at once
    await stream.aclose()
    assert box.health.devices["screens"].detail == "hall 1"  # the next after 0.2 s
    await wait_for(lambda: box.health.devices["screens"].detail == "none connected", 2,
                   "the screen's leaving reported")


async def test_screens_connecting_together_do_not_each_tell_every_screen(box: Box) -> None:
    """300 screens connect at once: device health (which every screen hears) says so once
    at once and once when the burst is over, not 300 times to each of them."""
    hub = EventHub(box, screens_report_s=0.2).attach()
    heard: list[str] = []
    box.health.listeners.append(lambda s: heard.append(s.detail) if s.name == "screens" else 0)
    streams = [hub.stream("hall", None) for _ in range(300)]
    for stream in streams:
        await take(stream, "status")
    await wait_for(lambda: heard[-1:] == ["hall 300"], 2, "300 screens reported")
    assert heard == ["hall 1", "hall 300"], heard
    assert hub.stats.dropped == 0
    for stream in streams:
        await stream.aclose()


async def test_the_live_view_is_served_over_http(box: Box) -> None:
    app = create_app(box)
    await box.execute(IssueTicket(queue="F"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://box") as client:
        live = (await client.get("/api/live")).json()
    queues = {q["id"]: q for q in live["queues"]}
    assert queues["F"]["waiting"] == 1 and queues["F"]["hours"] == ["09:00-16:00"]
    assert queues["F"]["offered_now"] is True
    assert live["hours_today"] == ["08:30-17:00"]
    assert live["config_version"] == box.config.version and live["epoch"] == box.epoch


async def test_at_opening_time_the_screens_get_a_status_with_nobody_doing_anything(
        config: Any, tmp_path: Any) -> None:
    """The kiosk shows 现在不在营业时间 until a status says a business is offered: at 08:30
    one must come by itself, not wait for the day's first event."""
    clock = ManualClock(1795566590.0)  # 2026-11-25 08:29:50 +08:00, a Wednesday
    async with Box(config, tmp_path / "data", clock) as box:
        hub = EventHub(box, hours_check_s=0.05).attach()
        stream = hub.stream("kiosk", None)
        first = await take(stream, "status")
        assert not any(q["offered_now"] for q in first["data"]["queues"])
        clock.advance(11)  # 08:30:01
        opened = await take(stream, "status")
        assert {q["id"] for q in opened["data"]["queues"] if q["offered_now"]} >= {"A", "B"}
        await stream.aclose()
        hub.close()


# --- what the box's own card reader and ticket buttons did, on the kiosk page ---------------


@contextlib.asynccontextmanager
async def reader_at(box: Box, kiosk: str | None = None) -> AsyncIterator[SimSwipes]:
    """The box's simulated card reader, wired to the kiosk pages as the box wires it."""
    swipes = SimSwipes()
    reader = CardReader(source=swipes, name="sim", kiosk=kiosk)
    relay = KioskRelay([reader.listeners])
    tasks = [asyncio.create_task(comp.run(box)) for comp in (reader, relay)]
    await asyncio.wait_for(swipes.opened.wait(), 5)
    await asyncio.wait_for(relay.attached.wait(), 5)
    try:
        yield swipes
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def kinds_until_marker(box: Box, stream: AsyncIterator[str]) -> list[str]:
    """The kinds of message a screen got before a marker notice posted now."""
    notices(box).post({"marker": True})
    kinds: list[str] = []
    while "notice" not in kinds:  # one write can hold several messages: read each
        kinds += [parse(m)["event"] for m in (await anext(stream)).split("\n\n") if m.strip()]
    return kinds[:kinds.index("notice")]


async def test_a_card_swipe_at_the_box_shows_on_the_kiosk_page_not_on_the_hall(box: Box) -> None:
    hub = EventHub(box).attach()
    kiosk, hall = hub.stream("kiosk", None, "kiosk"), hub.stream("hall", None)
    await take(kiosk, "status")
    await take(hall, "status")
    async with reader_at(box) as swipes:
        swipes.swipe_card("6225880137001237")  # VIP 陈先生
        issued = await asyncio.wait_for(take(kiosk, "outcome"), 5)
        swipes.swipe_card("6225880137001238")  # one digit misread: the Luhn check fails
        refused = await asyncio.wait_for(take(kiosk, "outcome"), 5)
    ticket = issued["data"]["ticket"]
    assert issued["data"]["ok"] and (ticket["number"], ticket["queue_name"]) == ("V001", "VIP业务")
    assert ticket["ahead"] == 0 and ticket["printed"] is None  # this box has no printer
    said = json.dumps(issued["data"], ensure_ascii=False)
    assert "6225880137001237" not in said and "陈" not in said and "stars" not in ticket
    assert refused["data"] == {"ok": False, "error": {
        "code": "bad_checksum", "message": "卡号校验错误,请重新刷卡。",
        "message_en": "The card number failed its check. Please swipe again."}}
    assert "outcome" not in await kinds_until_marker(box, hall)
    for stream in (kiosk, hall):
        await stream.aclose()


async def test_a_reader_named_for_one_kiosk_shows_only_on_that_kiosk_page(box: Box) -> None:
    hub = EventHub(box).attach()
    door, other = hub.stream("kiosk", None, "door"), hub.stream("kiosk", None, "kiosk")
    await take(door, "status")
    await take(other, "status")
    async with reader_at(box, kiosk="door") as swipes:
        swipes.swipe_id("410105198001012311")
        shown = await asyncio.wait_for(take(door, "outcome"), 5)
    assert shown["data"]["ticket"]["number"] == "A001"
    assert "outcome" not in await kinds_until_marker(box, other)
    t = box.engine.state.by_num("A001")
    assert t is not None and t.channel == "card"
    for stream in (door, other):
        await stream.aclose()


async def test_what_the_voice_says_reaches_the_screens_and_the_snapshot_says_it_speaks(
        box: Box) -> None:
    from controller.notices import voice

    hub = EventHub(box).attach()
    stream = hub.stream("hall", None)
    assert (await take(stream, "status"))["data"]["voice"] is False
    board = voice(box)
    board.speaking = True
    board.tell("start", {"number": "A001", "window": 3, "kind": "call"})
    said = await take(stream, "voice")
    assert said["data"] == {"phase": "start", "number": "A001", "window": 3, "kind": "call"}
    assert (await hub.snapshot())["voice"] is True
    await stream.aclose()


async def test_the_hall_hears_a_call_before_the_voice_that_speaks_it(box: Box) -> None:
    """The voice starts on the commit, while the call's event still waits for the stream's
    tick: the hall must get the call first, or it waits for a voice it already heard (and
    shows the number late)."""
    hub = EventHub(box).attach()
    hall = hub.subscribe("hall")
    await box.execute(IssueTicket(queue="A"))
    await box.execute(Login(1, "t1", "1234"))
    events = await box.execute(CallNext(1))
    hub.on_voice("start", {"number": "A001", "window": 1})  # as the voice does, at once
    kinds: list[str] = []
    while "voice" not in kinds:
        batch = await asyncio.wait_for(hall.queue.get(), 5)
        kinds += ["called" if k == "box" and "ticket_called" in m else k for k, _, m in batch]
    assert events[-1]["type"] == "ticket_called"
    assert "called" in kinds and kinds.index("called") < kinds.index("voice")


async def test_a_reader_with_no_kiosk_shows_on_one_kiosk_page_not_on_every_one(box: Box) -> None:
    """A swipe must not replace the ticket a customer is reading at another kiosk: a reader
    that names no kiosk goes to the newest ``/kiosk`` page only (issue 17)."""
    hub = EventHub(box).attach()
    door = hub.stream("kiosk", None, "door")
    older, newer = hub.stream("kiosk", None, "kiosk"), hub.stream("kiosk", None, "kiosk")
    for stream in (door, older, newer):
        await take(stream, "status")
    async with reader_at(box) as swipes:
        swipes.swipe_id("410105198001012311")
        shown = await asyncio.wait_for(take(newer, "outcome"), 5)
    assert shown["data"]["ticket"]["number"] == "A001"
    for other in (door, older):
        assert "outcome" not in await kinds_until_marker(box, other)
    for stream in (newer, older):
        await stream.aclose()
    async with reader_at(box) as swipes:  # no /kiosk page left: the door's page is the one
        swipes.swipe_card("6225880137001237")
        assert (await asyncio.wait_for(take(door, "outcome"), 5))["data"]["ok"]
    await door.aclose()
