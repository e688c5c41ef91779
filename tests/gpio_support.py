"""The lobby panel's buttons pressed on the simulated GPIO: shared by the GPIO and kiosk
tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from gpiozero.pins.mock import MockFactory

from controller.box import Box
from drivers.gpio import ButtonPress, GpioConfig, GpioPanel

SETTINGS = GpioConfig.model_validate({
    "buttons": [{"pin": 17, "queue": "A"}, {"pin": "GPIO27", "queue": "F"}],
    "leds": {"ready": 5, "printer_fault": 6, "link": 13},
    "buzzer": 26,
    "alarm": {"beeps": 2, "on_s": 0.01, "off_s": 0.01},
})


@contextlib.asynccontextmanager
async def panel_on(box: Box, settings: GpioConfig = SETTINGS, **kw: Any
                   ) -> AsyncIterator[tuple[GpioPanel, MockFactory, asyncio.Queue[ButtonPress]]]:
    factory = MockFactory()
    panel = GpioPanel(settings, pin_factory=factory, **kw)
    presses: asyncio.Queue[ButtonPress] = asyncio.Queue()
    panel.listeners.append(presses.put_nowait)
    task = asyncio.create_task(panel.run(box))
    await asyncio.wait_for(panel.opened.wait(), 5)
    try:
        yield panel, factory, presses
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert factory.pin(26).state is False  # the buzzer is never left sounding


def press(factory: MockFactory, pin: int) -> None:
    factory.pin(pin).drive_low()
    factory.pin(pin).drive_high()
