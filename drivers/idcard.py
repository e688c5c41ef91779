"""The second-generation ID card reader (二代证阅读器) on a serial port (SPEC A5, I3).

The reader has no "card placed" message: the box polls it, find card → select card →
read base information (:mod:`protocols.idcard` frames), and hands the card's ID number to
the kiosk's card path as one read (:class:`drivers.card_reader.CardReader`, which checks it
again, offers it to the appointment redeemer, issues the ticket). Only the number leaves
this module; the name, address and the rest of the text are dropped with the photo,
which is never decoded (wlt is proprietary) nor kept.

One card placed is one read: while the reader keeps finding a card, it is not read again;
a card found but not readable (select or read fails, or its text is not GA/T 490) is
handed on as an empty read, which the kiosk shows as 无法读取卡片,请重新刷卡。 — once.
A reader that stops answering (``offline_after`` polls in a row with no answer), or a port
that fails, raises ``OSError``: the card reader component reports it offline and the
supervisor retries.

Usage (the box's composition root does this from ``[[card_reader.readers]] kind = "id"``)::

    CardReader(source=IdCardSource("/dev/ttyUSB1", baudrate=115200), name="id")
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from protocols.cards import CardError
from protocols.idcard import (
    FIND_CARD,
    READ_BASE_INFO,
    SELECT_CARD,
    Response,
    decode,
    encode_command,
    parse_base_info,
    parse_response,
)

__all__ = ["IdCardSource", "SerialFrames"]

log = logging.getLogger(__name__)


class SerialFrames:
    """Request/response over an open pyserial port, read without threads: the event loop
    watches the port's file descriptor. Bad frames are dropped and counted in ``errors``."""

    def __init__(self, serial_port: Any) -> None:
        self.serial = serial_port
        self.errors: Counter[str] = Counter()
        self._buf = bytearray()
        self._more = asyncio.Event()
        self._failure: OSError | None = None
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(serial_port.fileno(), self._readable)

    def close(self) -> None:
        """Stop watching the port (safe twice); the caller closes the port."""
        if self.serial is not None:
            self._loop.remove_reader(self.serial.fileno())
            self.serial = None

    def _readable(self) -> None:
        try:
            data = self.serial.read(4096)
        except Exception as exc:  # pyserial wraps EIO (a vanished port) in SerialException
            self._failure = OSError(f"serial port failed: {exc}")
            self.close()
            data = b""
        self._buf += data
        self._more.set()

    async def exchange(self, frame: bytes, timeout: float) -> Response:
        """Send one command frame; the reader's response. Raises TimeoutError, OSError."""
        if self.serial is None:
            raise self._failure or OSError("port closed")
        self._buf.clear()  # a late answer to an earlier command is no answer to this one
        try:
            self.serial.write(frame)
        except Exception as exc:
            raise OSError(f"serial port failed: {exc}") from exc
        async with asyncio.timeout(timeout):
            while True:
                got = decode(bytes(self._buf))
                del self._buf[:got.consumed]
                if got.error is not None:
                    self.errors[got.error] += 1
                if got.payload is not None:
                    try:
                        return parse_response(got.payload)
                    except ValueError:
                        self.errors["short response"] += 1
                        continue
                if got.consumed == 0:
                    if self._failure is not None:
                        raise self._failure
                    self._more.clear()
                    await self._more.wait()


class IdCardSource:
    """A :class:`drivers.card_reader.SwipeSource`: the ID number of each card placed.

    Args:
        port: the reader's serial device (``/dev/ttyUSB1``) or the simulator's pty.
        baudrate: 115200 is the readers' default (9600–115200 settable on the reader).
        poll_s: seconds between finds (the reader cannot tell when a card is placed).
        timeout_s: how long the reader may take to answer one command.
        offline_after: unanswered commands in a row before the reader counts as gone.
    """

    def __init__(self, port: str, *, baudrate: int = 115200, poll_s: float = 0.3,
                 timeout_s: float = 2.0, offline_after: int = 3,
                 opened: asyncio.Event | None = None) -> None:
        self.port, self.baudrate = port, baudrate
        self.poll_s, self.timeout_s, self.offline_after = poll_s, timeout_s, offline_after
        self.opened = opened or asyncio.Event()
        self.failures: Counter[str] = Counter()  # reads that gave no number, by reason
        self.frames: SerialFrames | None = None
        self._present = False  # a card lies on the reader and was read (or tried)
        self._silent = 0

    async def lines(self) -> AsyncIterator[str]:
        import serial  # pyserial, imported when used

        try:
            ser = serial.Serial(self.port, self.baudrate, timeout=0)
        except serial.SerialException as exc:
            raise OSError(f"cannot open {self.port}: {exc}") from exc
        self.frames = SerialFrames(ser)
        self.opened.set()
        try:
            while True:
                number = await self._poll(self.frames)
                if number is not None:
                    yield number
                await asyncio.sleep(self.poll_s)  # polled: the reader sends nothing unasked
        finally:
            self.frames.close()
            ser.close()

    async def _ask(self, frames: SerialFrames, command: tuple[int, int]) -> Response | None:
        try:
            response = await frames.exchange(encode_command(command), self.timeout_s)
        except TimeoutError:
            self._silent += 1
            if self._silent >= self.offline_after:
                raise OSError(f"ID card reader on {self.port} does not answer") from None
            return None
        self._silent = 0
        return response

    async def _poll(self, frames: SerialFrames) -> str | None:
        """One find; for a newly placed card select and read: its number, "" if unreadable."""
        found = await self._ask(frames, FIND_CARD)
        if found is None or found.sw3 != 0x9F:
            self._present = False  # no card (80), or no answer: the next card is a new one
            return None
        if self._present:
            return None  # the same card still lies there: one read per card
        selected = await self._ask(frames, SELECT_CARD)
        if selected is None or not selected.ok:
            return None  # not selected yet: the next poll tries again
        self._present = True
        read = await self._ask(frames, READ_BASE_INFO)
        if read is None or not read.ok:
            return self._failed(read.meaning if read is not None else "no answer")
        try:
            return parse_base_info(read.data).number
        except CardError as exc:
            return self._failed(exc.code)

    def _failed(self, reason: str) -> str:
        self.failures[reason] += 1
        log.warning("ID card reader %s: card not read (%s)", self.port, reason)
        return ""  # an empty read: the kiosk shows 无法读取卡片
