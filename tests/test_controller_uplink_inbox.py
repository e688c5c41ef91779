"""The centre's commands on a real broker: a burst of appointment lists coalesces to the
latest per day, a full line answers ``busy``, and every command gets exactly one answer
(controller/uplink/inbox.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt

from central.broker import LocalBroker
from controller.box import Box
from protocols import uplink as proto
from tests.uplink_support import (  # noqa: F401
    BRANCH,
    broker_fixture,
    running,
    uplink_for,
    wait_for,
)

KEY = "ab" * 32
DAYS = ("2026-11-25", "2026-11-26")


class SlowDesk:
    """An ``appointments`` handler that holds the line until :attr:`gate` opens."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.ran: list[tuple[str, int]] = []

    async def __call__(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        self.ran.append((msg["day"], msg["revision"]))
        await self.gate.wait()
        return {"day": msg["day"], "revision": msg["revision"]}


async def replies(broker: LocalBroker) -> AsyncIterator[dict[str, Any]]:
    async with aiomqtt.Client("127.0.0.1", broker.port, username="centre",
                              password="centre-pw") as client:
        await client.subscribe(proto.topic(BRANCH, "reply"), qos=1)
        async for m in client.messages:
            yield json.loads(bytes(m.payload or b"{}"))


async def collect(stream: AsyncIterator[dict[str, Any]], into: dict[str, list[dict[str, Any]]]
                  ) -> None:
    async for reply in stream:
        into.setdefault(reply["id"], []).append(reply)


async def send(broker: LocalBroker, commands: list[tuple[str, dict[str, Any]]]) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port, username="centre",
                              password="centre-pw") as client:
        for name, args in commands:
            await client.publish(proto.topic(BRANCH, "cmd", name),
                                 proto.encode(proto.command(**args)), qos=1)


@contextlib.asynccontextmanager
async def line(box: Box, broker: LocalBroker, size: int
               ) -> AsyncIterator[tuple[Any, SlowDesk, dict[str, list[dict[str, Any]]]]]:
    """A connected uplink with ``size`` commands' room and a :class:`SlowDesk`; the answers
    the centre got, by command id."""
    desk = SlowDesk()
    uplink = uplink_for(broker, command_queue=size)
    uplink.register_command("appointments", desk)
    answers: dict[str, list[dict[str, Any]]] = {}
    async with running(uplink.run(box)), running(collect(replies(broker), answers)):
        await wait_for(lambda: uplink.connected, 10, "connected")
        yield uplink, desk, answers


def push(day: str, revision: int) -> tuple[str, dict[str, Any]]:
    return "appointments", {"cmd_id": f"ap-{day}-{revision}", "day": day,
                            "revision": revision, "key": KEY, "bookings": []}


async def test_a_burst_of_appointment_lists_runs_the_latest_of_each_day(
        box: Box, broker: LocalBroker) -> None:
    """600 lists (300 revisions of two days) behind a slow one, then a pause: the box runs
    the latest of each day and the pause, answers every older list ``superseded``, and
    never holds more than one list per day."""
    async with line(box, broker, 16) as (uplink, desk, answers):
        burst = [push(day, rev) for rev in range(1, 301) for day in DAYS]
        await send(broker, [*burst, ("pause", {"cmd_id": "p1", "queue": "F", "reason": "x"})])
        await wait_for(lambda: len(answers) >= 597, 30, "the superseded answered")
        assert len(uplink.inbox) <= 3  # the latest of each day and the pause
        desk.gate.set()
        await wait_for(lambda: len(answers) == 601, 30, "every command answered")
    assert all(len(a) == 1 for a in answers.values())  # exactly one answer each
    ran = {f"ap-{day}-{rev}" for day, rev in desk.ran}
    assert {f"ap-{day}-300" for day in DAYS} <= ran and len(desk.ran) <= 4
    for cmd_id, (answer,) in answers.items():
        if cmd_id in ran or cmd_id == "p1":
            assert answer["ok"] is True, answer
        else:
            assert answer["error"]["code"] == "superseded", answer
    assert uplink.inbox.refused["superseded"] == 600 - len(desk.ran)


async def test_a_full_line_answers_busy_and_drops_nothing_silently(
        box: Box, broker: LocalBroker) -> None:
    async with line(box, broker, 4) as (uplink, desk, answers):
        await send(broker, [push(DAYS[0], 1)])
        await wait_for(lambda: desk.ran, 10, "the slow list running")
        pauses = [("pause", {"cmd_id": f"p{i}", "queue": "F", "reason": "x"}) for i in range(10)]
        await send(broker, pauses)
        await wait_for(lambda: len(answers) == 6, 10, "six answered busy at once")
        assert {a[0]["error"]["code"] for a in answers.values()} == {"busy"}
        desk.gate.set()
        await wait_for(lambda: len(answers) == 11, 10, "every command answered")
    assert sorted(i for i, a in answers.items() if a[0]["ok"]) == ["ap-2026-11-25-1", "p0",
                                                                   "p1", "p2", "p3"]
    assert uplink.inbox.refused["busy"] == 6
    text = "\n".join(str(m.samples) for m in await uplink.metrics())
    assert "{'code': 'busy'}, 6" in text
