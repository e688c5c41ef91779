"""Simulated card swipes: the virtual twin of a kiosk's card reader.

:class:`SimSwipes` is a :class:`drivers.card_reader.SwipeSource`. Feed it in-process
(:meth:`SimSwipes.swipe_card`, :meth:`SimSwipes.swipe_id`, :meth:`SimSwipes.swipe`) or,
from another process or a shell, through its named pipe::

    echo ';6225880137001237=2812101?' > data/sim/cards/swipe

or from Python in another process (a test driving a box subprocess)::

    swipe_into(data_dir, ';6225880137001237=2812101?')        # the reader named "sim"

The lines are exactly what a keyboard-emulating reader types, so the whole reader path
(parsing, checksums, card → queue, printing, the kiosk page's screen) runs as on a real
kiosk.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from drivers.card_reader import LineBuffer
from protocols.cards import format_track2

__all__ = ["CARDS", "SimSwipes", "swipe_into"]

CARDS = Path("sim") / "cards"  # under the box's data directory: one pipe per reader


def swipe_into(data_dir: Path, line: str, reader: str = "sim") -> None:
    """One read on the simulated reader of a running box, through its pipe.

    Raises FileNotFoundError while the box has not opened the reader yet, and OSError
    (ENXIO) when the pipe is there but nobody reads it (the box is not running).
    """
    fd = os.open(Path(data_dir) / CARDS / reader, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class SimSwipes:
    """A simulated reader. ``fifo``: a named pipe other processes may write lines into."""

    def __init__(self, *, fifo: Path | None = None) -> None:
        self.fifo = fifo
        self.buffer = LineBuffer()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self.opened = asyncio.Event()

    def swipe(self, line: str) -> None:
        """Whatever the reader would type, one line (e.g. a misread)."""
        for ln in self.buffer.feed(line + "\r"):
            self._queue.put_nowait(ln)

    def swipe_card(self, pan: str, expiry: str = "2812", service_code: str = "101") -> None:
        """A magnetic-stripe swipe: track 2 of a card."""
        self.swipe(format_track2(pan, expiry, service_code, "0000"))

    def tap_ic(self, pan: str) -> None:
        """An IC card read: the reader sends the card number."""
        self.swipe(pan)

    def swipe_id(self, number: str) -> None:
        """A resident ID card on the ID reader: the 18-character number."""
        self.swipe(number)

    async def lines(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        fd = self._open_fifo() if self.fifo is not None else None
        if fd is not None:
            loop.add_reader(fd, self._read_fifo, fd)
        self.opened.set()
        try:
            while True:
                yield await self._queue.get()
        finally:
            if fd is not None:
                loop.remove_reader(fd)
                os.close(fd)

    def _open_fifo(self) -> int:
        assert self.fifo is not None
        self.fifo.parent.mkdir(parents=True, exist_ok=True)
        if not self.fifo.exists():
            os.mkfifo(self.fifo)
        # O_RDWR holds a writer open ourselves: the pipe never reads EOF between swipes.
        return os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)

    def _read_fifo(self, fd: int) -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        for line in self.buffer.feed(data.decode("utf-8", "replace")):
            self._queue.put_nowait(line)
