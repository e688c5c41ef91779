"""The 68-frame profile on the bus: echo acknowledgements, unprompted keys, heartbeat polls.

Keypads and evaluators speak when a key is pressed; the host echoes each such frame as its
acknowledgement (a device resends a frame nobody echoed, so a frame repeated within
``dedupe_s`` is acknowledged again but not acted on twice). Everything the host sends is
acknowledged by the addressed device echoing it; a heartbeat is a ``0x00`` poll of the
device's class. Frames are laid out in protocols/rs485/legacy68.py.
"""

from __future__ import annotations

from typing import Any

from protocols.rs485 import legacy68 as l68

from .bus import Bus, KeyReport, ScoreReport
from .devices import Device, Kind, Screen
from .settings import Rs485Settings
from .text import screen_bytes

__all__ = ["Legacy68"]

_CLASS: dict[Kind, int] = {"keypad": l68.KEYPAD, "display": l68.DISPLAY,
                           "evaluator": l68.EVALUATOR}


class Legacy68:
    """The 68-frame rules for :class:`~drivers.rs485.bus.Bus`."""

    name = "legacy68"

    def __init__(self, settings: Rs485Settings) -> None:
        self.settings = settings
        self._counters = l68.Counters()

    def decode(self, buf: bytearray, idle: bool) -> tuple[int, Any]:
        return l68.decode(buf, self._counters, idle)

    def counters(self) -> dict[str, int]:
        c = self._counters
        return {"frames": c.frames, "checksum_errors": c.bad_checksum, "bad_end": c.bad_end,
                "garbage_bytes": c.garbage}

    def polled(self, device: Device) -> bool:
        return False  # 68-frame devices speak unasked

    # --- what devices send unasked ---------------------------------------------------------

    def received(self, bus: Bus, message: Any, at: float) -> None:
        frame: l68.Frame = message
        if frame.command not in l68.UPSTREAM:
            bus.stats["unexpected"] += 1  # e.g. an echo that came after its timeout
            return
        kind: Kind = "keypad" if frame.command == l68.CMD_KEY else "evaluator"
        device = bus.device(kind, frame.address)
        if device is None:
            bus.stats["unknown_device"] += 1
            return
        bus.heard(device)
        if frame not in device.pending_ack:  # a resend of a frame not yet echoed: echo once
            device.pending_ack.append(frame)
            bus.queue_ack(device)
        if self._resent(device, frame, at):
            bus.stats["duplicates"] += 1
            return
        report = self._report(device, frame, at)
        if report is None:
            bus.stats["bad_reports"] += 1
        else:
            bus.report(report)

    def _resent(self, device: Device, frame: l68.Frame, at: float) -> bool:
        key = bytes((frame.command,)) + frame.data
        last = device.last_upstream
        device.last_upstream = (key, at)
        return last is not None and last[0] == key and at - last[1] < self.settings.dedupe_s

    def _report(self, device: Device, frame: l68.Frame, at: float
                ) -> KeyReport | ScoreReport | None:
        if frame.command == l68.CMD_KEY:
            if not frame.data:
                return None
            return KeyReport(device, frame.data[-1], frame.data[:-1], at)
        if len(frame.data) != 1:
            return None
        return ScoreReport(device, frame.data[0], at)

    async def acknowledge(self, bus: Bus, device: Device) -> None:
        frames, device.pending_ack = device.pending_ack, []
        for frame in frames:
            await bus.send(frame.encode())

    # --- what the host sends ---------------------------------------------------------------

    async def _echoed(self, bus: Bus, device: Device, frame: l68.Frame, tries: int) -> bool:
        wire = frame.encode()
        reply = await bus.exchange(device, wire, len(wire), frame.__eq__, tries)
        return reply is not None

    async def check(self, bus: Bus, device: Device) -> None:
        await self._echoed(bus, device, l68.Frame(device.wire, l68.CMD_POLL,
                                                  bytes((_CLASS[device.kind],))), 1)

    async def poll(self, bus: Bus, device: Device) -> None:
        await self.check(bus, device)

    async def beep(self, bus: Bus, device: Device, count: int) -> bool:
        frame = l68.Frame(device.wire, l68.CMD_BEEP, bytes((count,)))
        return await self._echoed(bus, device, frame, 1 + self.settings.retries)

    async def show(self, bus: Bus, device: Device, screen: Screen) -> bool:
        frame = self.frame_for(device, screen)
        if frame is None:
            return True  # nothing this device can show for it (a beep said it)
        return await self._echoed(bus, device, frame, 1 + self.settings.retries)

    def frame_for(self, device: Device, screen: Screen) -> l68.Frame | None:
        """The frame that puts ``screen`` on ``device`` (None: it cannot show it)."""
        if device.kind == "evaluator":
            return self._evaluator_frame(device, screen)
        text_device = (self.settings.display if device.kind == "display"
                       else self.settings.keypad_display) == "text"
        if text_device:
            command = l68.CMD_TEXT if device.kind == "display" else l68.CMD_KEYPAD_TEXT
            return l68.Frame(device.wire, command, screen_bytes(screen.text, l68.MAX_TEXT))
        command = l68.CMD_DIGITS if device.kind == "display" else l68.CMD_KEYPAD_DIGITS
        if screen.mode == "number":
            return l68.Frame(device.wire, command, l68.digits_for(screen.text))
        if screen.mode == "paused":
            return l68.Frame(device.wire, command, l68.dashes())
        if screen.mode == "message":
            return None
        return l68.Frame(device.wire, command, l68.blanks())

    def _evaluator_frame(self, device: Device, screen: Screen) -> l68.Frame:
        text = screen_bytes(screen.text, l68.MAX_TEXT)
        if screen.mode == "prompt":
            return l68.Frame(device.wire, l68.CMD_PROMPT, text)
        if screen.mode in ("thanks", "message"):
            return l68.Frame(device.wire, l68.CMD_THANKS, text)
        return l68.Frame(device.wire, l68.CMD_IDLE)
