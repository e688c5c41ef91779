"""RS485 keypads, window displays and evaluators (SPEC B1–B4, B8, C1, D1).

One async bus master owns the serial port and speaks one of two device profiles: the
68-frame protocol of installed Chinese caller keypads and displays, or Modbus RTU for open
nodes. The codecs are in :mod:`protocols.rs485`; frames, key map, register maps, wiring,
polling and offline rules in docs/rs485.md.
"""

from __future__ import annotations

from .bus import Bus, KeyReport, Report, ScoreReport
from .component import Rs485
from .devices import Device, Screen
from .errors import BusError, PortError
from .settings import Rs485Settings, bus_devices, load_settings

__all__ = [
    "Bus",
    "BusError",
    "Device",
    "KeyReport",
    "PortError",
    "Report",
    "Rs485",
    "Rs485Settings",
    "ScoreReport",
    "Screen",
    "bus_devices",
    "load_settings",
]
