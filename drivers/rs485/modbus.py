"""The Modbus RTU profile on the bus: register polls, report acknowledgements, screen writes.

A Modbus node never speaks unasked, so keypads are polled every round (five registers:
queued reports, key, sequence, digit count, first digits) and evaluators too while they
ask for a score. A report is acted on once per sequence number and acknowledged by
writing that number back. The engine journals each keypad's latest sequence number with
the command it caused, so a report read again after the box restarted (it acted, then died
before the acknowledgement) is not acted on twice either (docs/rs485.md). A screen is
one write from ``MODE``; a heartbeat reads ``DEVICE_TYPE`` and checks the right kind of
node answers. Maps: protocols/rs485/modbus.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from protocols.rs485 import FrameError
from protocols.rs485 import modbus as mb

from .bus import Bus, KeyReport, ScoreReport
from .devices import Device, Kind, Screen
from .settings import Rs485Settings
from .text import screen_bytes

__all__ = ["Modbus"]

_TYPE: dict[Kind, int] = {"keypad": mb.TYPE_KEYPAD, "display": mb.TYPE_DISPLAY,
                          "evaluator": mb.TYPE_EVALUATOR}
_MODE = {"blank": mb.MODE_BLANK, "idle": mb.MODE_BLANK, "number": mb.MODE_TEXT,
         "paused": mb.MODE_TEXT, "message": mb.MODE_TEXT, "prompt": mb.MODE_PROMPT,
         "thanks": mb.MODE_THANKS}


class Modbus:
    """The Modbus rules for :class:`~drivers.rs485.bus.Bus`."""

    name = "modbus"

    def __init__(self, settings: Rs485Settings) -> None:
        self.settings = settings
        self._counters = mb.Counters()

    def decode(self, buf: bytearray, idle: bool) -> tuple[int, Any]:
        return mb.decode_response(buf, self._counters, idle)

    def counters(self) -> dict[str, int]:
        c = self._counters
        return {"frames": c.frames, "checksum_errors": c.bad_crc, "garbage_bytes": c.garbage}

    def received(self, bus: Bus, message: Any, at: float) -> None:
        bus.stats["unexpected"] += 1  # a reply after its timeout, or another master's

    def polled(self, device: Device) -> bool:
        return device.kind == "keypad" or (
            device.kind == "evaluator" and device.screen.mode == "prompt")

    async def _ask(self, bus: Bus, device: Device, request: mb.ReadRequest | mb.WriteSingle
                   | mb.WriteMultiple, tries: int) -> Any:
        reply = await bus.exchange(device, mb.encode(request), mb.reply_length(request),
                                   lambda m: mb.matches(request, m), tries)
        if isinstance(reply, mb.ExceptionReply):
            bus.stats["exceptions"] += 1
        return reply

    async def check(self, bus: Bus, device: Device) -> None:
        reply = await self._ask(bus, device, mb.ReadRequest(device.wire, mb.REG_DEVICE_TYPE, 1), 1)
        if isinstance(reply, mb.ReadReply) and reply.values[0] != _TYPE[device.kind]:
            bus.stats["wrong_type"] += 1
            found = mb.DEVICE_TYPES.get(reply.values[0], f"type {reply.values[0]}")
            bus.health(device.name, "fault", f"a {found} answers at unit {device.wire}")

    async def poll(self, bus: Bus, device: Device) -> None:
        request = mb.ReadRequest(device.wire, mb.REG_EVENTS, mb.POLL_COUNT)
        reply = await self._ask(bus, device, request, 1)
        if not isinstance(reply, mb.ReadReply):
            return
        queued, code, seq, count, first = reply.values
        if not queued or not seq:
            return
        regs = [first]
        if count > 4:
            more = await self._ask(bus, device, mb.ReadRequest(
                device.wire, mb.REG_EVENT_DIGITS + 1, mb.EVENT_DIGIT_REGS - 1), 1)
            if not isinstance(more, mb.ReadReply):
                return  # not acknowledged: read again next round
            regs += more.values
        device.pending_ack.append(seq)
        if seq == device.last_seq:
            bus.stats["duplicates"] += 1  # our acknowledgement was lost: only ack again
            return
        device.last_seq = seq
        report = self._report(device, code, regs, count, seq)
        if report is None:
            bus.stats["bad_reports"] += 1
        else:
            bus.report(report)

    def _report(self, device: Device, code: int, regs: list[int], count: int, seq: int
                ) -> KeyReport | ScoreReport | None:
        now = asyncio.get_running_loop().time()
        if device.kind == "evaluator":
            return ScoreReport(device, code, now) if 1 <= code <= 9 else None
        try:
            digits = mb.unpack_symbols(regs, count)
        except FrameError:
            return None
        return KeyReport(device, code, digits, now, seq)

    async def acknowledge(self, bus: Bus, device: Device) -> None:
        seqs, device.pending_ack = device.pending_ack, []
        for seq in seqs:
            request = mb.WriteSingle(device.wire, mb.REG_EVENT_ACK, seq)
            await self._ask(bus, device, request, 1 + self.settings.retries)

    async def beep(self, bus: Bus, device: Device, count: int) -> bool:
        request = mb.WriteSingle(device.wire, mb.REG_BEEP, count)
        return await self._ask(bus, device, request, 1 + self.settings.retries) is not None

    async def show(self, bus: Bus, device: Device, screen: Screen) -> bool:
        values = mb.screen_registers(_MODE[screen.mode], screen_bytes(screen.text, mb.MAX_TEXT))
        request = mb.WriteMultiple(device.wire, mb.REG_MODE, values)
        # An exception reply still means the node is there; resending would not help.
        return await self._ask(bus, device, request, 1 + self.settings.retries) is not None
