"""The RS485 bus as a box component: open the port, run the bus and the windows on it.

The port is ``rs485.port`` (a real adapter: ``--set rs485.port=/dev/ttyUSB0``) or, with
``hardware = "sim"`` and no port, the virtual bus's pty (sim/rs485.py), which the
composition root (controller/compose.py) builds as its own component. The profile is
``rs485.profile``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from common.errors import ConfigError
from controller.config import Config

from .bus import Bus, Profile
from .devices import Device
from .legacy68 import Legacy68
from .link import SerialLink
from .modbus import Modbus
from .settings import Rs485Settings, bus_devices, load_settings
from .windows import Windows

if TYPE_CHECKING:
    from controller.ports import Host

__all__ = ["NoPort", "PortSource", "Rs485", "make_profile"]


class PortSource(Protocol):
    """Where the port comes from when it is not configured (the simulator)."""

    async def wait_port(self) -> str: ...


def make_profile(settings: Rs485Settings) -> Profile:
    return Legacy68(settings) if settings.profile == "legacy68" else Modbus(settings)


class Rs485:
    """Component ``rs485``: the bus master and the windows' keypads, displays, evaluators.

    Args:
        config: the branch config; ``[rs485]`` and the windows' addresses are checked here
            (a bad value raises ConfigError naming the key, before anything starts).
        port: the serial port; default ``rs485.port``.
        port_source: asked for the port when there is none (the simulator's pty).
    """

    name = "rs485"

    def __init__(self, config: Config, *, port: str | None = None,
                 port_source: PortSource | None = None) -> None:
        self.settings = load_settings(config)
        self.devices: list[Device] = bus_devices(config, self.settings)
        self.port = port or self.settings.port
        self.port_source = port_source
        if self.port is None and port_source is None:
            raise ConfigError("rs485.port", "no serial port given (and no simulator)")
        self.bus: Bus | None = None
        self.windows: Windows | None = None
        self.running = asyncio.Event()

    async def run(self, box: Host) -> None:
        """Serve the bus until cancelled; a port failure raises (the supervisor restarts)."""
        port = self.port
        if port is None:
            assert self.port_source is not None
            port = await self.port_source.wait_port()
        for d in self.devices:  # a restart knows nothing of what the devices show
            d.shown, d.beeps, d.pending_ack = None, 0, []
        profile = make_profile(self.settings)
        bus = Bus(self.settings, self.devices, profile, health=box.health.report)
        windows = Windows(box, bus, self.settings)
        link = SerialLink(port, self.settings, receive=bus.received)
        box.listeners.append(windows.on_events)
        try:
            async with link:
                rs485 = ", kernel RS485" if link.kernel_rs485 else ""
                box.health.report("rs485", "ok", f"{profile.name} on {port} at "
                                  f"{self.settings.baudrate} baud{rs485}")
                self.bus, self.windows = bus, windows
                self.running.set()
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(bus.run(link), name="rs485-bus")
                    tg.create_task(windows.run(), name="rs485-windows")
        except* Exception as group:
            raise group.exceptions[0] from None
        finally:
            self.running.clear()
            box.listeners.remove(windows.on_events)


class NoPort:
    """Real hardware, devices on the bus, and no ``rs485.port``: say so in the box's health
    (the lobby screen's device list, the centre's dashboard) instead of running silently
    with dead keypads."""

    name = "rs485"

    async def run(self, box: Host) -> None:
        box.health.report("rs485", "fault", "未设置串口 rs485.port: 呼叫器、窗口屏和评价器不工作"
                          " (no rs485.port: keypads, displays, evaluators not driven; "
                          "rs485.kinds = [] if the windows use soft callers only)")
        await asyncio.Event().wait()  # nothing to drive; the supervisor keeps us
