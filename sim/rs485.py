"""A virtual RS485 bus: keypads, window displays and evaluators on a pty, at real baud timing.

The devices obey the documented frames of either profile (docs/rs485.md): 68-frame devices
echo what the host sends them and send key presses and scores unasked, resending until
the host echoes; Modbus nodes answer register reads and writes after the line's 3.5
character silence. Bytes take their wire time both ways (sim/wire.py).

Test API::

    async with VirtualBus("legacy68", 9600) as line:   # or VirtualBus.from_config(config)
        line.port                                       # open this as the serial port
        await line.keypad(1).do("login", "1", "1234")   # teller code 1, password 1234
        await line.keypad(1).press(KEY_CALL)            # returns once the host took it
        await line.display(1).wait_for("   001")        # what a person reads on it
        await line.evaluator(1).rate(5)
        line.keypad(2).online = False                   # unplug it
        line.noise(b"\\x55\\xaa")                         # line noise
        line.corrupt(2)                                 # flip a bit in the next 2 replies

With ``hardware = "sim"`` the box runs :class:`SimulatedBus` as component ``rs485.sim``
(the config's bus addresses and profile) and the RS485 driver opens its pty.
``python -m sim.rs485 --config FILE`` runs one alone and prints its port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from protocols.rs485 import FrameError
from protocols.rs485 import legacy68 as l68
from protocols.rs485 import modbus as mb
from protocols.rs485.keys import KeyAction, key_sequence

from .wire import PtyWire

if TYPE_CHECKING:
    from controller.box import Box
    from controller.config import Config

__all__ = ["SimDevice", "SimDisplay", "SimEvaluator", "SimKeypad", "SimulatedBus", "VirtualBus"]

log = logging.getLogger(__name__)

_CLASS = {"keypad": l68.KEYPAD, "display": l68.DISPLAY, "evaluator": l68.EVALUATOR}
_TYPE = {"keypad": mb.TYPE_KEYPAD, "display": mb.TYPE_DISPLAY, "evaluator": mb.TYPE_EVALUATOR}
_SCREEN_REGS = 2 + mb.TEXT_REGS  # MODE, TEXT_LEN, TEXT…


class Dropped(Exception):
    """The device threw a report away before the host took it."""


class _Report:
    """A key press or score waiting in a device until the host takes it."""

    def __init__(self, code: int, digits: bytes, seq: int, taken: asyncio.Future[float]) -> None:
        self.code, self.digits, self.seq, self.taken = code, digits, seq, taken


class SimDevice:
    """One virtual device. ``online = False`` unplugs it: it neither answers nor sends."""

    kind = ""

    def __init__(self, line: VirtualBus, address: int, wire: int) -> None:
        self.line = line
        self.address = address  # as in the config
        self.wire = wire  # on the bus
        self.online = True
        self.requests = 0  # host frames this device answered
        self.shown = ""  # what a person reads on it
        self.history: list[tuple[float, str]] = []  # (loop time it was shown, text)
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._watchers: list[Callable[[SimDevice, str, float], None]] = []
        self._screen = [0] * _SCREEN_REGS

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address} at {self.wire}: {self.shown!r}>"

    # --- what tests wait on -------------------------------------------------------------------

    async def wait_until(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``check()`` holds (re-checked whenever the device changes)."""
        if check():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (check, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await future
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    async def wait_for(self, text: str, timeout: float = 5.0) -> float:
        """Wait until the device shows ``text``; return the loop time it appeared."""
        await self.wait_until(lambda: self.shown == text, timeout)
        return self.history[-1][0] if self.history else 0.0

    def watch(self, callback: Callable[[SimDevice, str, float], None]) -> None:
        """Call ``callback(device, text, at)`` whenever the device shows something."""
        self._watchers.append(callback)

    def _changed(self) -> None:
        for check, future in list(self._waiters):
            if not future.done() and check():
                future.set_result(None)

    def _show(self, text: str, at: float) -> None:
        self.shown = text
        self.history.append((at, text))
        for watcher in self._watchers:
            watcher(self, text, at)
        self._changed()

    # --- the 68-frame profile ------------------------------------------------------------------

    def on_68(self, frame: l68.Frame, at: float) -> None:
        """A frame of this device's class at its address: act on it (then it is echoed)."""

    # --- Modbus ----------------------------------------------------------------------------------

    def read(self, address: int) -> int | None:
        """A register's value; None if there is no such register."""
        if address == mb.REG_DEVICE_TYPE:
            return _TYPE[self.kind]
        if address == mb.REG_VERSION:
            return 0x0100
        if mb.REG_MODE <= address < mb.REG_MODE + _SCREEN_REGS:
            return self._screen[address - mb.REG_MODE]
        return None

    def write(self, address: int, value: int, at: float) -> bool:
        """Write one register; False if it cannot be written."""
        if mb.REG_MODE <= address < mb.REG_MODE + _SCREEN_REGS:
            self._screen[address - mb.REG_MODE] = value
            return True
        return False

    def screen_written(self, at: float) -> None:
        """A write to the screen registers ended: show what they now say."""
        mode, length = self._screen[0], min(self._screen[1], mb.MAX_TEXT)
        text = mb.unpack_text(self._screen[2:], length).decode("gb18030", errors="replace")
        self.modbus_screen(mode, text, at)

    def modbus_screen(self, mode: int, text: str, at: float) -> None:
        self._show("" if mode == mb.MODE_BLANK else text, at)


class SimDisplay(SimDevice):
    """A window display (窗口屏): six digits or a line of LED-matrix text."""

    kind = "display"

    def on_68(self, frame: l68.Frame, at: float) -> None:
        if frame.command == l68.CMD_DIGITS:
            self._show(l68.render_digits(frame.data), at)
        elif frame.command == l68.CMD_TEXT:
            self._show(frame.data.decode("gb18030", errors="replace"), at)


class _Reporter(SimDevice):
    """A device that reports things (keys, scores) and waits for the host to take them."""

    resends = 3
    ack_timeout = 0.3  # a 68-frame device resends after this long without an echo

    def __init__(self, line: VirtualBus, address: int, wire: int) -> None:
        super().__init__(line, address, wire)
        self.reports: list[_Report] = []  # Modbus FIFO, oldest first
        self.sent = 0  # 68-frame transmissions (resends included)
        self.lose_acks = 0  # the next n acknowledgements from the host get lost
        self._seq = 0
        self._echo: tuple[l68.Frame, asyncio.Future[float]] | None = None

    async def report(self, code: int, digits: bytes = b"", timeout: float = 5.0) -> float:
        """Report ``digits`` + ``code``; return the loop time the host took it."""
        if not self.online:
            raise ConnectionError(f"{self.kind} {self.address} is unplugged")
        loop = asyncio.get_running_loop()
        taken: asyncio.Future[float] = loop.create_future()
        if self.line.profile == "modbus":
            self._seq = self._seq % 0xFFFF + 1
            self.reports.append(_Report(code, bytes(digits), self._seq, taken))
            self._changed()
            async with asyncio.timeout(timeout):
                return await taken
        command = l68.CMD_KEY if self.kind == "keypad" else l68.CMD_SCORE
        frame = l68.Frame(self.wire, command, bytes(digits) + bytes((code,)))
        async with asyncio.timeout(timeout):
            return await self._send_68(frame, taken)

    async def _send_68(self, frame: l68.Frame, taken: asyncio.Future[float]) -> float:
        self._echo = (frame, taken)
        try:
            for _ in range(1 + self.resends):
                if not self.online:
                    break
                self.sent += 1
                end = self.line.send(self, frame.encode())
                wait = end - asyncio.get_running_loop().time() + self.ack_timeout
                done, _ = await asyncio.wait([taken], timeout=max(wait, 0.0))
                if done:
                    return taken.result()
            raise TimeoutError(f"{self.kind} {self.address}: the host never echoed {frame}")
        finally:
            self._echo = None

    def echoed(self, frame: l68.Frame, at: float) -> None:
        """The host echoed an upstream frame of ours."""
        if self._echo is not None and self._echo[0] == frame and not self._echo[1].done():
            if self.lose_acks:
                self.lose_acks -= 1
                return
            self._echo[1].set_result(at)

    def read(self, address: int) -> int | None:
        head = self.reports[0] if self.reports else None
        if address == mb.REG_EVENTS:
            return len(self.reports)
        if mb.REG_EVENT_CODE <= address <= mb.REG_EVENT_DIGITS + mb.EVENT_DIGIT_REGS - 1:
            if head is None:
                return 0
            digits = mb.pack_symbols(head.digits) + [0] * mb.EVENT_DIGIT_REGS
            fields = [head.code, head.seq, len(head.digits), *digits]
            return fields[address - mb.REG_EVENT_CODE]
        if address in (mb.REG_EVENT_ACK, mb.REG_BEEP):
            return 0
        return super().read(address)

    def write(self, address: int, value: int, at: float) -> bool:
        if address == mb.REG_EVENT_ACK:
            if self.lose_acks:
                self.lose_acks -= 1
                return True
            if self.reports and self.reports[0].seq == value:
                head = self.reports.pop(0)
                if not head.taken.done():
                    head.taken.set_result(at)
            return True
        return super().write(address, value, at)


class SimKeypad(_Reporter):
    """A caller keypad (呼叫器) with a small display and a beeper."""

    kind = "keypad"

    def __init__(self, line: VirtualBus, address: int, wire: int) -> None:
        super().__init__(line, address, wire)
        self.beeps = 0

    async def press(self, key: int, digits: bytes = b"", timeout: float = 5.0) -> float:
        """Type ``digits``, press ``key``; return the loop time the host took it."""
        return await self.report(key, digits, timeout)

    async def do(self, action: str, arg: str = "", password: str = "") -> float:
        """Press the keys for an action by name (see protocols/rs485/keys.py)."""
        key, digits = key_sequence(KeyAction(action, arg, password))
        return await self.press(key, digits)

    def on_68(self, frame: l68.Frame, at: float) -> None:
        if frame.command == l68.CMD_BEEP:
            self._beep(frame.data[0] if frame.data else 1)
        elif frame.command == l68.CMD_KEYPAD_DIGITS:
            self._show(l68.render_digits(frame.data), at)
        elif frame.command == l68.CMD_KEYPAD_TEXT:
            self._show(frame.data.decode("gb18030", errors="replace"), at)

    def write(self, address: int, value: int, at: float) -> bool:
        if address == mb.REG_BEEP:
            self._beep(value)
            return True
        return super().write(address, value, at)

    def _beep(self, count: int) -> None:
        self.beeps += count
        self._changed()


class SimEvaluator(_Reporter):
    """A window evaluator (评价器): score keys and a small screen.

    It takes one score per prompt (防重复评价 on the device too); ``one_per_prompt =
    False`` makes it a careless device that sends every press.
    """

    kind = "evaluator"

    def __init__(self, line: VirtualBus, address: int, wire: int) -> None:
        super().__init__(line, address, wire)
        self.mode = "idle"  # idle | prompt | thanks
        self.one_per_prompt = True
        self._scored = False

    async def rate(self, score: int, timeout: float = 5.0) -> bool:
        """Press a score key; False if the evaluator was not asking for one (or dropped it)."""
        if self.mode != "prompt" or (self._scored and self.one_per_prompt):
            return False
        self._scored = True
        try:
            await self.report(score, b"", timeout)
        except Dropped:
            return False
        return True

    def write(self, address: int, value: int, at: float) -> bool:
        if address == mb.REG_MODE and value == mb.MODE_PROMPT and self.mode != "prompt":
            for stale in self.reports:  # a new prompt: scores not yet taken are stale
                if not stale.taken.done():
                    stale.taken.set_exception(Dropped())
            self.reports.clear()
        return super().write(address, value, at)

    def on_68(self, frame: l68.Frame, at: float) -> None:
        modes = {l68.CMD_PROMPT: "prompt", l68.CMD_THANKS: "thanks", l68.CMD_IDLE: "idle"}
        if frame.command in modes:
            self._mode(modes[frame.command], frame.data.decode("gb18030", errors="replace"), at)

    def modbus_screen(self, mode: int, text: str, at: float) -> None:
        names = {mb.MODE_PROMPT: "prompt", mb.MODE_THANKS: "thanks"}
        self._mode(names.get(mode, "idle"), text, at)

    def _mode(self, mode: str, text: str, at: float) -> None:
        if mode == "prompt" and self.mode != "prompt":
            self._scored = False
        self.mode = mode
        self._show(text if mode != "idle" else "", at)


_KINDS: dict[str, type[SimDevice]] = {
    "keypad": SimKeypad, "display": SimDisplay, "evaluator": SimEvaluator,
}


class VirtualBus:
    """The line and its devices. Use as an async context manager; ``port`` is the pty."""

    def __init__(self, profile: str = "legacy68", baudrate: int = 9600, *,
                 bits_per_char: int = 10, turnaround_s: float | None = None,
                 local_echo: bool = False) -> None:
        if profile not in ("legacy68", "modbus"):
            raise ValueError(f"unknown profile {profile!r}")
        self.profile = profile
        self.wire = PtyWire(baudrate, bits_per_char=bits_per_char, receive=self._heard,
                            local_echo=local_echo)
        byte_time = self.wire.byte_time
        gap = 3.5 * byte_time if baudrate <= 19200 else 0.00175
        # A Modbus node answers after the 3.5-character silence that ends a request.
        self.turnaround = turnaround_s if turnaround_s is not None else (
            gap if profile == "modbus" else 0.001)
        self.devices: dict[tuple[str, int], SimDevice] = {}
        self.counters68 = l68.Counters()
        self.counters_mb = mb.Counters()
        self.frames_from_host = 0
        self._rx = bytearray()
        self._corrupt = 0
        self._quiet: asyncio.TimerHandle | None = None

    @classmethod
    def from_config(cls, config: Config) -> VirtualBus:
        """A bus with every window's devices at the config's addresses and profile."""
        from drivers.rs485.settings import bus_devices, load_settings

        settings = load_settings(config)
        line = cls(settings.profile, settings.baudrate, bits_per_char=settings.bits_per_char,
                   local_echo=settings.local_echo)  # the simulated adapter is the one configured
        for d in bus_devices(config, settings):
            line.add(d.kind, d.address, d.wire)
        return line

    @property
    def port(self) -> str:
        return self.wire.port

    async def __aenter__(self) -> VirtualBus:
        self.wire.open()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._quiet is not None:
            self._quiet.cancel()
        self.wire.close()

    # --- devices --------------------------------------------------------------------------------

    def add(self, kind: str, address: int, wire: int | None = None) -> SimDevice:
        """Put a device on the bus (``wire`` defaults to ``address``)."""
        device = _KINDS[kind](self, address, address if wire is None else wire)
        self.devices[(kind, address)] = device
        return device

    def keypad(self, address: int) -> SimKeypad:
        return self._get("keypad", address, SimKeypad)

    def display(self, address: int) -> SimDisplay:
        return self._get("display", address, SimDisplay)

    def evaluator(self, address: int) -> SimEvaluator:
        return self._get("evaluator", address, SimEvaluator)

    def _get(self, kind: str, address: int, cls: type[Any]) -> Any:
        device = self.devices[(kind, address)]
        assert isinstance(device, cls)
        return device

    def _at_wire(self, kind: str, wire: int) -> SimDevice | None:
        for d in self.devices.values():
            if d.wire == wire and (kind == "" or d.kind == kind):
                return d
        return None

    # --- faults -----------------------------------------------------------------------------------

    def noise(self, data: bytes) -> None:
        """Line noise: ``data`` goes over the wire, heard by the host and every device."""
        self.wire.transmit(data, to_devices=True)

    def corrupt(self, frames: int = 1) -> None:
        """Flip one bit in each of the next ``frames`` frames the devices send."""
        self._corrupt += frames

    # --- the line ---------------------------------------------------------------------------------

    def send(self, device: SimDevice, data: bytes) -> float:
        """A device puts ``data`` on the wire; returns when it has reached the host."""
        if self._corrupt:
            self._corrupt -= 1
            flipped = bytearray(data)
            flipped[len(flipped) // 2] ^= 0x10
            data = bytes(flipped)
        return self.wire.transmit(data, self.turnaround)

    def _heard(self, data: bytes, at: float) -> None:
        self._rx += data
        self._decode(at, idle=False)
        if self._rx:  # an unfinished frame: give up on it once the line is quiet
            loop = asyncio.get_running_loop()
            if self._quiet is not None:
                self._quiet.cancel()
            self._quiet = loop.call_at(at + max(30 * self.wire.byte_time, 0.05),
                                       self._decode, at, True)

    def _decode(self, at: float, idle: bool) -> None:
        while self._rx:
            message: l68.Frame | mb.ReadRequest | mb.WriteSingle | mb.WriteMultiple | None
            if self.profile == "legacy68":
                consumed, message = l68.decode(self._rx, self.counters68, idle)
            else:
                consumed, message = mb.decode_request(self._rx, self.counters_mb, idle)
            del self._rx[:consumed]
            if message is None:
                return
            self.frames_from_host += 1
            if isinstance(message, l68.Frame):
                self._frame_68(message, at)
            else:
                self._request(message, at)

    def _frame_68(self, frame: l68.Frame, at: float) -> None:
        if frame.command in l68.UPSTREAM:  # the host echoing a keypad's or evaluator's frame
            kind = "keypad" if frame.command == l68.CMD_KEY else "evaluator"
            device = self._at_wire(kind, frame.address)
            if isinstance(device, _Reporter) and device.online:
                device.echoed(frame, at)
            return
        kind = {v: k for k, v in _CLASS.items()}.get(l68.device_class(frame) or 0, "")
        device = self._at_wire(kind, frame.address) if kind else None
        if device is None or not device.online:
            return
        device.requests += 1
        device.on_68(frame, at)
        self.send(device, frame.encode())

    def _request(self, request: mb.ReadRequest | mb.WriteSingle | mb.WriteMultiple,
                 at: float) -> None:
        device = self._at_wire("", request.unit)
        if device is None or not device.online:
            return
        device.requests += 1
        reply = _answer(device, request, at)
        if request.unit != 0:
            self.send(device, mb.encode(reply))


def _answer(device: SimDevice, request: mb.ReadRequest | mb.WriteSingle | mb.WriteMultiple,
            at: float) -> mb.ReadReply | mb.WriteSingle | mb.WriteMultipleReply | mb.ExceptionReply:
    """A Modbus node's reply: values, an echo, or exception 2 (no such register)."""
    unit = request.unit
    if isinstance(request, mb.ReadRequest):
        values = [device.read(a) for a in range(request.address, request.address + request.count)]
        if any(v is None for v in values):
            return mb.ExceptionReply(unit, 0x03, 2)
        return mb.ReadReply(unit, [v or 0 for v in values])
    if isinstance(request, mb.WriteSingle):
        if not device.write(request.address, request.value, at):
            return mb.ExceptionReply(unit, 0x06, 2)
        if mb.REG_MODE <= request.address < mb.REG_MODE + _SCREEN_REGS:
            device.screen_written(at)
        return request
    for i, value in enumerate(request.values):
        if not device.write(request.address + i, value, at):
            return mb.ExceptionReply(unit, 0x10, 2)
    if mb.REG_MODE <= request.address < mb.REG_MODE + _SCREEN_REGS:
        device.screen_written(at)
    return mb.WriteMultipleReply(unit, request.address, len(request.values))


class SimulatedBus:
    """Component ``rs485.sim``: the virtual bus a ``hardware = "sim"`` box runs on.

    The RS485 driver asks :meth:`wait_port` for the pty to open. With ``control`` (the box
    puts it at ``<data-dir>/sim/rs485.sock``) other processes press keys on it
    (sim/rs485_control.py).
    """

    name = "rs485.sim"

    def __init__(self, config: Config, control: Path | None = None) -> None:
        self.config = config
        self.control = control
        self.line: VirtualBus | None = None
        self._ready = asyncio.Event()

    async def run(self, box: Box) -> None:
        async with VirtualBus.from_config(self.config) as line, self._serve_control(line):
            self.line = line
            self._ready.set()
            box.health.report(self.name, "ok", f"virtual {line.profile} bus on {line.port}")
            try:
                await asyncio.Event().wait()  # serve until cancelled
            finally:
                self._ready.clear()
                self.line = None

    def _serve_control(self, line: VirtualBus) -> contextlib.AbstractAsyncContextManager[Any]:
        if self.control is None:
            return contextlib.nullcontext()
        from .rs485_control import ControlServer

        windows: dict[str, dict[int, int]] = {"keypad": {}, "evaluator": {}}
        for w in self.config.windows:
            windows["keypad"][w.number] = w.keypad or w.number
            windows["evaluator"][w.number] = w.evaluator or w.number
        return ControlServer(self.control, line, windows)

    async def wait_port(self) -> str:
        await self._ready.wait()
        assert self.line is not None
        return self.line.port


# --- python -m sim.rs485 ---------------------------------------------------------------------


async def _serve_alone(config: Config) -> None:  # pragma: no cover - interactive
    async with VirtualBus.from_config(config) as line:
        print(f"virtual {line.profile} bus on {line.port}; run the box with "
              f"--set rs485.port={line.port}", flush=True)
        shown: dict[tuple[str, int], str] = {}
        while True:
            await asyncio.sleep(0.5)
            for key, device in line.devices.items():
                if shown.get(key) != device.shown:
                    shown[key] = device.shown
                    print(f"{key[0]} {key[1]}: {device.shown!r}", flush=True)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - interactive
    from common.errors import ConfigError
    from controller.config import load_config

    p = argparse.ArgumentParser(prog="python -m sim.rs485", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[], dest="overrides")
    args = p.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        from drivers.rs485.settings import bus_devices, load_settings

        bus_devices(config, load_settings(config))  # a bad [rs485] section stops us here
    except (ConfigError, FrameError) as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_alone(config))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
