"""The virtual RS485 bus itself: wire timing, device behaviour, and a second opinion
(pymodbus's own client) on its Modbus nodes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusSerialClient

from protocols.rs485 import legacy68 as l68
from protocols.rs485 import modbus as mb
from protocols.rs485.keys import KEY_CALL
from sim.rs485 import VirtualBus


class RawPort:
    """The host end of the pty, with no driver in the way."""

    def __init__(self, port: str) -> None:
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.buf = bytearray()
        self.changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(self.fd, self._read)

    def _read(self) -> None:
        self.buf += os.read(self.fd, 4096)
        self.changed.set()

    def write(self, data: bytes) -> float:
        os.write(self.fd, data)
        return asyncio.get_running_loop().time()

    async def frame(self, timeout: float = 3.0) -> tuple[l68.Frame, float]:
        async with asyncio.timeout(timeout):
            while True:
                consumed, frame = l68.decode(self.buf)
                del self.buf[:consumed]
                if frame is not None:
                    return frame, asyncio.get_running_loop().time()
                self.changed.clear()
                await self.changed.wait()

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


@pytest.fixture
async def slow_line() -> AsyncIterator[tuple[VirtualBus, RawPort]]:
    async with VirtualBus("legacy68", 1200) as line:  # 8.3 ms a byte: easy to measure
        line.add("display", 3)
        line.add("keypad", 3)
        port = RawPort(line.port)
        try:
            yield line, port
        finally:
            port.close()


async def test_bytes_take_their_wire_time_both_ways(
    slow_line: tuple[VirtualBus, RawPort]
) -> None:
    line, port = slow_line
    frame = l68.Frame(3, l68.CMD_DIGITS, l68.digits_for("A023"))
    wire_time = len(frame.encode()) * line.wire.byte_time  # 15 bytes: 125 ms
    sent = port.write(frame.encode())
    shown_at = await line.display(3).wait_for("   023")
    assert shown_at - sent >= wire_time - 0.002
    echo, echoed_at = await port.frame()
    assert echo == frame
    assert echoed_at - sent >= 2 * wire_time  # request then echo, one after the other
    assert echoed_at - sent < 2 * wire_time + 0.2


async def test_a_keypad_resends_until_the_host_echoes(
    slow_line: tuple[VirtualBus, RawPort]
) -> None:
    line, port = slow_line
    keypad = line.keypad(3)
    keypad.ack_timeout = 0.1
    press = asyncio.create_task(keypad.press(KEY_CALL))
    first, _ = await port.frame()
    second, _ = await port.frame()  # nobody echoed: it comes again
    assert first == second == l68.Frame(3, l68.CMD_KEY, bytes([KEY_CALL]))
    port.write(first.encode())
    await asyncio.wait_for(press, 3)
    assert keypad.sent >= 2


async def test_an_unechoed_key_gives_up(slow_line: tuple[VirtualBus, RawPort]) -> None:
    line, _ = slow_line
    keypad = line.keypad(3)
    keypad.ack_timeout, keypad.resends = 0.05, 1
    with pytest.raises(TimeoutError):
        await keypad.press(KEY_CALL)
    assert keypad.sent == 2


async def test_devices_ignore_noise_and_frames_for_others(
    slow_line: tuple[VirtualBus, RawPort]
) -> None:
    line, port = slow_line
    port.write(b"\x68\x07\x07\x68\x00garbage")
    port.write(l68.Frame(9, l68.CMD_DIGITS, l68.digits_for("9")).encode())  # nobody at 9
    port.write(l68.Frame(3, l68.CMD_DIGITS, l68.digits_for("B7")).encode())
    await line.display(3).wait_for("     7", timeout=5)
    assert line.display(3).requests == 1


async def test_pymodbus_agrees_with_the_simulated_nodes() -> None:
    async with VirtualBus("modbus", 19200) as line:
        line.add("display", 3, 103)
        client = AsyncModbusSerialClient(line.port, baudrate=19200, timeout=1, retries=0)
        try:
            assert await client.connect()
            kind = await client.read_holding_registers(mb.REG_DEVICE_TYPE, count=1,
                                                       device_id=103)
            assert kind.registers == [mb.TYPE_DISPLAY]
            screen = mb.screen_registers(mb.MODE_TEXT, "请A001号".encode("gb18030"))
            await client.write_registers(mb.REG_MODE, screen, device_id=103)
            assert line.display(3).shown == "请A001号"
            missing = await client.read_holding_registers(0x0099, count=1, device_id=103)
            assert missing.isError() and missing.exception_code == 2
        finally:
            client.close()


async def test_an_evaluator_forgets_unread_scores_when_a_new_prompt_starts() -> None:
    async with VirtualBus("modbus", 115200) as line:
        evaluator = line.add("evaluator", 1, 201)
        assert evaluator.kind == "evaluator"
        ev = line.evaluator(1)
        ev.modbus_screen(mb.MODE_PROMPT, "请评价", 0.0)
        rating = asyncio.create_task(ev.rate(5))
        await ev.wait_until(lambda: bool(ev.reports))
        assert ev.read(mb.REG_EVENTS) == 1 and ev.read(mb.REG_EVENT_CODE) == 5
        assert ev.write(mb.REG_MODE, mb.MODE_PROMPT, 0.0)  # the same prompt again: kept
        assert ev.read(mb.REG_EVENTS) == 1
        assert ev.write(mb.REG_MODE, mb.MODE_THANKS, 0.0)
        ev.screen_written(0.0)
        assert ev.write(mb.REG_MODE, mb.MODE_PROMPT, 0.0)  # the next customer's prompt
        assert await rating is False
        assert ev.read(mb.REG_EVENTS) == 0
