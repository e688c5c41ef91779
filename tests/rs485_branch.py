"""A running box whose RS485 driver talks to the virtual bus over a real pty (RS485 tests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.clock import ManualClock
from controller.box import Box
from controller.health import Status
from controller.ports import WindowKeys
from drivers.rs485 import Rs485
from sim.rs485 import VirtualBus

from .conftest import WEDNESDAY_10AM, example_config


@dataclass
class Branch:
    box: Box
    line: VirtualBus
    rs485: Rs485
    profile: str
    text_displays: bool = False

    def number(self, number: str) -> str:
        """What a window display shows for ``number`` in this profile."""
        if self.profile == "legacy68" and not self.text_displays:
            digits = "".join(ch for ch in number if ch.isdigit())
            return digits.rjust(6)
        return number

    @property
    def paused(self) -> str:
        return "------" if self.profile == "legacy68" and not self.text_displays else "暂停服务"

    @property
    def blank(self) -> str:
        return "      " if self.profile == "legacy68" and not self.text_displays else ""

    async def events(self, kind: str) -> list[dict[str, Any]]:
        records = await self.box.read_events(0, 10_000)
        return [r.event for r in records if r.event["type"] == kind]

    async def health(self, name: str, state: str, timeout: float = 10.0) -> Status:
        """Wait until device ``name`` reports ``state``."""
        current = self.box.health.devices.get(name)
        if current is not None and current.state == state:
            return current
        reached: asyncio.Future[Status] = asyncio.get_running_loop().create_future()

        def listen(status: Status) -> None:
            if status.name == name and status.state == state and not reached.done():
                reached.set_result(status)

        self.box.health.listeners.append(listen)
        try:
            return await asyncio.wait_for(reached, timeout)
        finally:
            self.box.health.listeners.remove(listen)

    def counters(self) -> dict[str, int]:
        assert self.rs485.bus is not None
        return self.rs485.bus.counters()


@contextlib.asynccontextmanager
async def running_branch(tmp_path: Path, profile: str, *overrides: str,
                         keys: WindowKeys | None = None) -> AsyncIterator[Branch]:
    """The example branch with its RS485 bus on the simulator, driver running (``keys``: a
    fake of the box's window keys port, else the box's own)."""
    config = example_config(f'rs485.profile="{profile}"', *overrides)
    clock = ManualClock(WEDNESDAY_10AM)
    async with Box(config, tmp_path / "data", clock, keys=keys) as box, \
            VirtualBus.from_config(config) as line:
        rs485 = Rs485(config, port=line.port)
        task = asyncio.create_task(rs485.run(box), name="rs485-under-test")
        try:
            await asyncio.wait_for(rs485.running.wait(), 5)
            text = any(o.startswith("rs485.display=") and "text" in o for o in overrides)
            yield Branch(box, line, rs485, profile, text)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
