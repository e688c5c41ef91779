"""Waiting for a device's health entry, and the box's simulated printer running: shared by
the printer and kiosk tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from controller.box import Box
from controller.compose import printer_component
from drivers.printer import PrinterComponent
from sim.printer import SimPrinter


@contextlib.asynccontextmanager
async def printer_running(box: Box) -> AsyncIterator[tuple[PrinterComponent, SimPrinter]]:
    """The box's printer component (the example branch's: the simulated printer) running,
    once its health is ok; stopped on exit."""
    comp = printer_component(box.config, box.data_dir)
    assert comp is not None
    task = asyncio.create_task(comp.run(box), name="printer-under-test")
    try:
        await wait_health(box, "printer", "ok")
        assert isinstance(comp.sim, SimPrinter)
        yield comp, comp.sim
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_health(box: Box, name: str, state: str, timeout: float = 5.0) -> None:
    seen = asyncio.Event()

    def listen(status: Any) -> None:
        if status.name == name and status.state == state:
            seen.set()

    box.health.listeners.append(listen)
    try:
        current = box.health.devices.get(name)
        if current is None or current.state != state:
            await asyncio.wait_for(seen.wait(), timeout)
    finally:
        box.health.listeners.remove(listen)
