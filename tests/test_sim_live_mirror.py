"""The simulator's view of the box: Server-Sent Events read back, windows followed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sim.live.mirror import Mirror, sse_messages


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_server_sent_events_are_read_back_message_by_message() -> None:
    got = [m async for m in sse_messages(_lines(
        "retry: 2000", "",
        "id: e1:5", "event: box", 'data: {"type": "ticket_issued"}', "",
        ": a comment", "event: ping", "data: {", "data: }", "",
        "event: status", "data:{}",  # no space after the colon; stream ends without a blank
    ))]
    assert got == [("box", '{"type": "ticket_issued"}', "e1:5"), ("ping", "{\n}", None)]


def _snapshot(seq: int, epoch: str = "e1") -> dict[str, object]:
    return {
        "day": "2026-11-25", "epoch": epoch, "seq": seq, "now": "2026-11-25T10:00:00+08:00",
        "queues": [{"id": "A", "waiting": 2}, {"id": "V", "waiting": 0}],
        "windows": [{"number": 1, "teller": "t1", "current": "A001", "current_queue": "A"},
                    {"number": 3, "teller": None, "current": None}],
    }


def test_a_snapshot_then_events_keep_the_windows() -> None:
    m = Mirror()
    m.status(_snapshot(10))
    assert m.window(1).ticket == "20261125-A001" and m.waiting == {"A": 2, "V": 0}
    m.event({"type": "ticket_finished", "ticket": "20261125-A001", "window": 1}, "e1:11")
    assert m.window(1).ticket is None and m.window(1).teller == "t1"
    m.event({"type": "ticket_called", "ticket": "20261125-A002", "number": "A002",
             "queue": "A", "window": 1}, "e1:12")
    assert m.window(1).number == "A002"
    m.event({"type": "ticket_closed", "ticket": "20261125-A002"}, "e1:13")
    assert m.window(1).ticket is None
    m.event({"type": "teller_login", "window": 3, "teller": "t2"}, "e1:14")
    assert m.window_of("t2") == 3
    m.event({"type": "ticket_rated", "score": 4, "window": 1}, "e1:15")
    assert (m.seq, m.counts["ticket_rated"], m.score_sum) == (15, 1, 4)
    assert m.box_now() is not None


def test_a_new_journal_starts_counting_again() -> None:
    m = Mirror()
    m.status(_snapshot(500))
    m.status(_snapshot(3, epoch="e2"))  # the box came back with a new journal
    assert (m.epoch, m.seq) == ("e2", 3)


async def test_waiting_on_the_mirror_wakes_on_a_change() -> None:
    m = Mirror()
    waiter = asyncio.create_task(m.wait_for(lambda: m.window(1).teller == "t1", 5.0))
    await asyncio.sleep(0)  # the waiter parked before the change (the behaviour)
    m.event({"type": "teller_login", "window": 1, "teller": "t1"}, None)
    assert await waiter is True
    assert await m.wait_for(lambda: False, 0.01) is False
