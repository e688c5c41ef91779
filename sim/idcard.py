"""A simulated second-generation ID card reader: the twin of a 二代证 reader on a serial port.

It holds the master side of a pty (:class:`sim.wire.PtyWire`, at the configured baud
rate) and answers the frames of :mod:`protocols.idcard` as a SAM reader does: find card
(``9F`` with a card on it, else ``80``), select card (``90``, or ``81`` with none), read
base information (``90`` with the card's 256-byte text and a 1024-byte photo of zeros,
``41`` when the card was not selected), ``10`` for a frame with a bad checksum, ``21`` for
a command it does not know. The driver (:class:`drivers.idcard.IdCardSource`) opens
:attr:`SimIdReader.port`.

Cards are placed in-process (:meth:`SimIdReader.place`, :meth:`SimIdReader.remove`) or,
from a shell or another process, through a named pipe, one line each::

    echo 410105198001012311 > data/sim/cards/id     # that card is placed (sample text)
    echo remove > data/sim/cards/id                 # and taken away

Failure modes for tests: ``fail_reads`` (the next reads answer ``41``), ``silent`` (the
reader does not answer at all), ``corrupt_next`` (the next response's checksum is wrong).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

from drivers.card_reader import LineBuffer
from drivers.idcard import IdCardSource
from protocols.cards import parse_id_number
from protocols.idcard import (
    FIND_CARD,
    READ_BASE_INFO,
    SELECT_CARD,
    IdCardInfo,
    decode,
    encode_base_info,
    encode_response,
    parse_command,
)

from .wire import PtyWire

__all__ = ["SimIdReader", "SimIdSource", "sample_card"]


def sample_card(number: str, *, name: str = "陈明", valid_to: dt.date | None = None
                ) -> IdCardInfo:
    """A card with the given ID number and made-up, well-formed text."""
    parsed = parse_id_number(number)
    return IdCardInfo(
        number=parsed.number, name=name, sex="男" if parsed.male else "女", nation="汉",
        birth=parsed.birth, address="河南省郑州市金水区花园路1号",
        authority="郑州市公安局金水分局", valid_from=dt.date(2020, 1, 1),
        valid_to=valid_to or dt.date(2040, 1, 1))


class SimIdReader:
    """The reader's twin. Use as an async context manager; the driver opens ``port``."""

    def __init__(self, *, baudrate: int = 115200, fifo: Path | None = None) -> None:
        self.wire = PtyWire(baudrate, receive=self._heard)
        self.fifo = fifo
        self.card: IdCardInfo | None = None
        self.commands: Counter[tuple[int, int]] = Counter()  # what the host asked
        self.bad_frames = 0
        self.fail_reads = 0
        self.silent = False
        self.corrupt_next = False
        self._selected = False
        self._rx = bytearray()
        self._fifo_fd: int | None = None
        self._lines = LineBuffer()

    @property
    def port(self) -> str:
        return self.wire.port

    def place(self, card: IdCardInfo | str) -> None:
        """A card laid on the reader (an ID number: :func:`sample_card` of it)."""
        self.card = sample_card(card) if isinstance(card, str) else card
        self._selected = False

    def remove(self) -> None:
        """The card taken away."""
        self.card = None
        self._selected = False

    async def __aenter__(self) -> SimIdReader:
        self.wire.open()
        if self.fifo is not None:
            self.fifo.parent.mkdir(parents=True, exist_ok=True)
            if not self.fifo.exists():
                os.mkfifo(self.fifo)
            # O_RDWR holds a writer open ourselves: the pipe never reads EOF between cards
            self._fifo_fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
            asyncio.get_running_loop().add_reader(self._fifo_fd, self._read_fifo)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fifo_fd is not None:
            asyncio.get_running_loop().remove_reader(self._fifo_fd)
            os.close(self._fifo_fd)
            self._fifo_fd = None
        self.wire.close()

    def _read_fifo(self) -> None:
        assert self._fifo_fd is not None
        try:
            data = os.read(self._fifo_fd, 4096)
        except BlockingIOError:
            return
        for line in self._lines.feed(data.decode("utf-8", "replace")):
            if line == "remove":
                self.remove()
                continue
            try:
                self.place(line)
            except ValueError:  # not an ID number: no card a reader could find
                self.bad_frames += 1

    def _heard(self, data: bytes, at: float) -> None:
        self._rx += data
        while self._rx:
            got = decode(bytes(self._rx))
            del self._rx[:got.consumed]
            if got.error == "bad checksum":
                self.bad_frames += 1
                self._send(0x10)
            if got.payload is not None:
                self._answer(got.payload)
            elif got.consumed == 0:
                return

    def _answer(self, payload: bytes) -> None:
        try:
            command, _ = parse_command(payload)
        except ValueError:
            self._send(0x11)
            return
        self.commands[command] += 1
        if command == FIND_CARD:
            if self.card is not None:
                self._send(0x9F, bytes(4))
            else:
                self._send(0x80)
        elif command == SELECT_CARD:
            self._selected = self.card is not None
            if self._selected:
                self._send(0x90, bytes(8))
            else:
                self._send(0x81)
        elif command == READ_BASE_INFO:
            self._read()
        else:
            self._send(0x21)

    def _read(self) -> None:
        if self.card is None or not self._selected or self.fail_reads:
            self.fail_reads = max(0, self.fail_reads - 1)
            self._send(0x41)
            return
        self._send(0x90, encode_base_info(self.card))

    def _send(self, sw3: int, data: bytes = b"") -> None:
        if self.silent:
            return
        frame = bytearray(encode_response(sw3, data))
        if self.corrupt_next:
            self.corrupt_next = False
            frame[-1] ^= 0xFF
        self.wire.transmit(bytes(frame), 0.001)


class SimIdSource:
    """The simulated ID reader as a card source: the twin and the real driver on its pty."""

    def __init__(self, *, baudrate: int = 115200, fifo: Path | None = None) -> None:
        self.reader = SimIdReader(baudrate=baudrate, fifo=fifo)
        self.baudrate = baudrate
        self.opened = asyncio.Event()

    async def lines(self) -> AsyncIterator[str]:
        async with self.reader as twin:
            driver = IdCardSource(twin.port, baudrate=self.baudrate, opened=self.opened)
            async for line in driver.lines():
                yield line
