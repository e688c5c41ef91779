"""Runs the box's devices and links, one task each, and restarts any that fails.

A component is anything with a ``name`` and ``async run(box)``: a printer driver, the
RS485 bus master, the uplink. ``run`` lasts until cancelled; if it raises, the supervisor
logs it, marks the component's health as ``fault`` and starts it again after a capped,
randomised back-off. A device fault never stops ticketing: the engine does not wait on it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .box import Box

__all__ = ["Component", "Supervisor"]

log = logging.getLogger(__name__)


class Component(Protocol):
    name: str

    async def run(self, box: Box) -> None: ...


class Supervisor:
    def __init__(self, box: Box, components: Sequence[Component], *,
                 first_delay: float = 0.5, max_delay: float = 30.0) -> None:
        self.box = box
        self.components = list(components)
        self.first_delay, self.max_delay = first_delay, max_delay
        self.restarts: dict[str, int] = {c.name: 0 for c in self.components}

    async def run(self) -> None:
        """Run every component until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for comp in self.components:
                tg.create_task(self._keep(comp), name=f"component:{comp.name}")

    async def _keep(self, comp: Component) -> None:
        delay = self.first_delay
        while True:
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                await comp.run(self.box)
                return  # finished on its own: nothing to restart
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("component %s failed", comp.name)
                self.box.health.report(comp.name, "fault", f"{type(exc).__name__}: {exc}")
            self.restarts[comp.name] += 1
            if loop.time() - started > 60:  # it ran a good while: start afresh
                delay = self.first_delay
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, self.max_delay)
