"""Device and link health (SPEC D1): what each part of the box says about itself.

Drivers and links report here; the local pages, ``/metrics`` and the uplink read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from common.clock import Clock

from .ports import HealthState as State
from .ports import Status

__all__ = ["Health", "State", "Status"]


class Health:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.devices: dict[str, Status] = {}
        self.listeners: list[Callable[[Status], None]] = []

    def report(self, name: str, state: State, detail: str = "") -> None:
        """Record a device's state; listeners hear only of changes."""
        old = self.devices.get(name)
        if old is not None and old.state == state and old.detail == detail:
            return
        status = Status(name, state, detail, self.clock.now())
        self.devices[name] = status
        for listener in self.listeners:
            listener(status)

    def snapshot(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in sorted(self.devices.values(), key=lambda s: s.name)]
