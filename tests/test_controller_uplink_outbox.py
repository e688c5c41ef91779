"""The uplink's parts on their own (controller/uplink/outbox.py, session.py): no broker, a
real box and journal, a client that records what would be published."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controller.box import Box
from controller.engine import commands as c
from controller.uplink.commands import CommandRefused
from controller.uplink.counters import LinkCounters
from controller.uplink.outbox import Outbox
from controller.uplink.session import Session
from controller.uplink.settings import UplinkSettings
from protocols import uplink as proto


class Recorder:
    """Stands in for ``aiomqtt.Client``: keeps every publish, decoded."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, topic: str, payload: bytes, qos: int = 0,
                      retain: bool = False) -> None:
        self.sent.append((topic, proto.decode(topic, payload)[1]))

    def seqs(self) -> list[list[int]]:
        return [[e["seq"] for e in msg["events"]] for _, msg in self.sent]


def settings(**kw: Any) -> UplinkSettings:
    return UplinkSettings(broker="mqtt://127.0.0.1:1883", **kw)


async def outbox_of(box: Box, **kw: Any) -> tuple[Outbox, LinkCounters, int]:
    """An outbox whose centre has what the box wrote at its start (up to the returned seq)."""
    await box.settled()
    counters = LinkCounters()
    out = Outbox(settings(**kw), counters)
    out.attach(box, box.last_seq)
    box.listeners.append(out.heard)
    out.restart()
    return out, counters, box.last_seq


async def test_the_outbox_sends_in_batches_within_its_window_and_acks_settle(box: Box) -> None:
    out, counters, s = await outbox_of(box, batch_size=2, window=3)
    for _ in range(4):
        await box.execute(c.IssueTicket(queue="A"))
    client: Any = Recorder()
    for _ in range(3):
        await out.send_some(client)
    assert client.seqs() == [[s + 1, s + 2], [s + 3]]  # the window is full at 3 in flight
    assert (out.sent, out.acked, counters.events_sent) == (s + 3, s, 3)

    assert not out.on_ack({"epoch": "other", "acked_through": s + 3})  # not this journal
    assert out.on_ack({"epoch": box.epoch, "acked_through": s + 2})
    assert not out.on_ack({"epoch": box.epoch, "acked_through": s + 1})  # never backwards
    await out.send_some(client)
    assert client.seqs()[-1] == [s + 4] and out.acked == s + 2
    await out.store_ack()
    assert box.journal is not None and box.journal.acked_through == s + 2


async def test_a_reconnect_sends_again_from_the_last_ack(box: Box) -> None:
    out, counters, s = await outbox_of(box)
    for _ in range(3):
        await box.execute(c.IssueTicket(queue="A"))
    client: Any = Recorder()
    await out.send_some(client)
    out.on_ack({"epoch": box.epoch, "acked_through": s + 1})
    out.restart()  # the connection dropped with two in flight
    assert (out.sent, counters.retries) == (s + 1, 1)
    await out.send_some(client)
    assert client.seqs() == [[s + 1, s + 2, s + 3], [s + 2, s + 3]]


async def test_a_replay_needs_a_connection_and_leaves_the_outbox_alone(box: Box) -> None:
    out, counters, s = await outbox_of(box, batch_size=2)
    for _ in range(5):
        await box.execute(c.IssueTicket(queue="A"))
    await box.settled()
    with pytest.raises(CommandRefused, match="offline"):
        await out.replay(None, s + 1, s + 5)
    client: Any = Recorder()
    went = await out.replay(client, s + 2, s + 9)
    assert went == {"from": s + 2, "through": s + 5, "batches": 2}  # through: what there is
    assert client.seqs() == [[s + 2, s + 3], [s + 4, s + 5]]
    assert out.sent == s and counters.replays == 1  # the outbox's own progress stays


async def test_the_back_off_doubles_to_its_cap_and_starts_afresh_after_a_long_connection(
        ) -> None:
    session = Session(settings(reconnect_min_s=1, reconnect_max_s=8), LinkCounters(),
                      lambda: None)
    delays = [session.next_delay() for _ in range(6)]
    for delay, base in zip(delays, (1, 2, 4, 8, 8, 8), strict=True):
        assert base * 0.5 <= delay <= base * 1.5  # randomised: boxes must not all retry at once
    session._up_since = asyncio.get_running_loop().time() - 31  # it was up half a minute
    assert session.next_delay() <= 1.5
