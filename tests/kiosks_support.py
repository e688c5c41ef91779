"""A branch with two kiosks (``[[kiosks]]``, SPEC I4), each with its simulated printer:
shared by the several-kiosks tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from controller.box import Box
from controller.compose import printer_components
from controller.config import Config
from controller.web import create_app
from drivers.printer import PrinterComponent
from sim.printer import SimPrinter
from tests.conftest import example_config
from tests.printer_support import wait_health

TWO_KIOSKS = ('kiosks=[{id = "1", name = "一号取号机", name_en = "Kiosk 1"},'
              ' {id = "2", name = "二号取号机", name_en = "Kiosk 2"}]')


def two_kiosks(*overrides: str) -> Config:
    """The example branch with two kiosks, every device simulated (its GPIO ticket
    buttons name no kiosk: they stand at the first)."""
    return example_config(TWO_KIOSKS, *overrides)


@contextlib.asynccontextmanager
async def printers_running(box: Box) -> AsyncIterator[dict[str, SimPrinter]]:
    """Each kiosk's printer component running on its simulated printer, once its health
    is ok: kiosk id -> the simulated printer; stopped on exit."""
    comps = [c for c in printer_components(box.config, box.data_dir)
             if isinstance(c, PrinterComponent)]
    tasks = [asyncio.create_task(c.run(box), name=f"{c.name}-under-test") for c in comps]
    try:
        sims: dict[str, SimPrinter] = {}
        for comp in comps:
            await wait_health(box, comp.name, "ok")
            assert comp.kiosk is not None and isinstance(comp.sim, SimPrinter)
            sims[comp.kiosk] = comp.sim
        yield sims
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def kiosk_api(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    """The box's HTTP API, as the kiosk pages call it."""
    transport = httpx.ASGITransport(app=create_app(box))
    async with httpx.AsyncClient(transport=transport, base_url="http://box") as client:
        yield client
