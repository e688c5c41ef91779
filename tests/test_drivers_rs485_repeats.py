"""A keypad press repeated on the bus calls one customer (docs/rs485.md, "One press, one call").

Within one run of the box the bus already catches repeats (68-frame: the same frame within
``dedupe_s``; Modbus: the same EVENT_SEQ). What it could not catch: a Modbus keypad whose
report the box acted on and then died before acknowledging it reports the same press again
to the restarted box, which called a second customer and finished the first after 0 s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from common.clock import ManualClock
from controller.box import Box
from controller.config import Config
from controller.engine import IssueTicket
from drivers.rs485 import Rs485
from protocols.rs485.keys import KEY_CALL
from sim.rs485 import VirtualBus

from .conftest import WEDNESDAY_10AM, example_config


@contextlib.asynccontextmanager
async def driving(box: Box, config: Config, line: VirtualBus) -> AsyncIterator[Rs485]:
    rs485 = Rs485(config, port=line.port)
    task = asyncio.create_task(rs485.run(box), name="rs485-under-test")
    try:
        await asyncio.wait_for(rs485.running.wait(), 5)
        yield rs485
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def numbers(box: Box, kind: str) -> list[str]:
    return [r.event["number"] for r in await box.read_events(0, 10_000)
            if r.event["type"] == kind]


async def test_a_modbus_press_read_again_after_a_restart_calls_one_customer(
    tmp_path: Path
) -> None:
    config = example_config('rs485.profile="modbus"')
    clock = ManualClock(WEDNESDAY_10AM)
    async with VirtualBus.from_config(config) as line:
        keypad = line.keypad(1)
        async with Box(config, tmp_path / "data", clock) as box, driving(box, config, line):
            for _ in range(3):
                await box.execute(IssueTicket(queue="A"))
            await keypad.do("login", "1", "1234")
            await line.display(1).wait_for("")
            keypad.lose_acks = 1_000_000  # from now on the box's acknowledgements are lost
            press = asyncio.create_task(keypad.press(KEY_CALL, timeout=60))
            await line.display(1).wait_for("A001")  # the box called A001 …
        # … and stopped before the keypad heard it take the press: the keypad still holds it
        assert not press.done() and keypad.reports
        keypad.lose_acks = 0
        async with Box(config, tmp_path / "data", clock) as box, driving(box, config, line):
            await press  # the restarted box reads the same press and acknowledges it
            assert await numbers(box, "ticket_called") == ["A001"]
            assert await numbers(box, "ticket_finished") == []
            assert box.engine.state.window(1).current == "20261125-A001"
            await keypad.press(KEY_CALL)  # the next press is a new one
            await line.display(1).wait_for("A002")
