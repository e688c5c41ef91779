"""A pty pair that behaves like a half-duplex serial line at a given baud rate.

The driver opens the pty's slave side (``port``) as a serial port; the simulator holds the
master side. A pty moves bytes instantly, so this puts them on a virtual wire instead:

- bytes the host writes reach the simulated devices only when they would have finished
  arriving at the baud rate (``bits_per_char / baud`` seconds each, after whatever is on
  the wire already);
- bytes a device sends wait for the wire to be free (plus the device's turnaround time),
  then reach the host at the same rate.

One wire carries one thing at a time (the devices listen before talking), so collisions
are not modelled; line noise can be injected instead. Bytes are delivered in slices of
about a millisecond (one byte at 9600 baud, eleven at 115200): the event loop's timers
are no finer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
from collections.abc import Callable

__all__ = ["PtyWire"]

Receiver = Callable[[bytes, float], None]


class PtyWire:
    """The virtual line. ``receive(data, at)`` gets the host's bytes at their wire time."""

    def __init__(self, baudrate: int, *, bits_per_char: int = 10, receive: Receiver,
                 local_echo: bool = False) -> None:
        self.baudrate = baudrate
        self.local_echo = local_echo  # like adapters that hear their own transmissions
        self.byte_time = bits_per_char / baudrate
        self.slice = max(1, int(0.001 / self.byte_time))
        self.receive = receive
        self.port = ""
        self.bytes_from_host = 0
        self.bytes_to_host = 0
        self.overruns = 0  # bytes the host did not read in time (its buffer was full)
        self._master: int | None = None
        self._slave: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free_at = 0.0
        self._timers: set[asyncio.TimerHandle] = set()

    def open(self) -> str:
        """Create the pty pair; return the port the host should open."""
        self._loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)  # no echo, no line editing: a plain byte pipe
        os.set_blocking(master, False)
        self._master, self._slave = master, slave  # our slave fd keeps the pty alive
        self.port = os.ttyname(slave)
        self._loop.add_reader(master, self._readable)
        return self.port

    def close(self) -> None:
        """Close both sides; the host's port then fails. Safe to call twice."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._master is not None and self._loop is not None:
            self._loop.remove_reader(self._master)
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    @property
    def free_at(self) -> float:
        """Loop time at which the wire is free."""
        return self._free_at

    def _reserve(self, n: int, earliest: float) -> float:
        start = max(earliest, self._free_at)
        self._free_at = start + n * self.byte_time
        return start

    def _at(self, when: float, callback: Callable[..., None], *args: object) -> None:
        assert self._loop is not None
        timer: asyncio.TimerHandle | None = None

        def fire() -> None:
            if timer is not None:
                self._timers.discard(timer)
            callback(*args)

        timer = self._loop.call_at(when, fire)
        self._timers.add(timer)

    def _slices(self, data: bytes, start: float) -> list[tuple[float, bytes]]:
        out = []
        for i in range(0, len(data), self.slice):
            piece = data[i : i + self.slice]
            out.append((start + (i + len(piece)) * self.byte_time, piece))
        return out

    def _readable(self) -> None:
        assert self._master is not None and self._loop is not None
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the host closed its side for good
            self._loop.remove_reader(self._master)
            return
        self.bytes_from_host += len(data)
        start = self._reserve(len(data), self._loop.time())
        for when, piece in self._slices(data, start):
            self._at(when, self._deliver, piece, when)
            if self.local_echo:
                self._at(when, self._write, piece)

    def _deliver(self, piece: bytes, when: float) -> None:
        self.receive(piece, when)

    def transmit(self, data: bytes, turnaround: float = 0.0, *, to_devices: bool = False) -> float:
        """Send ``data`` to the host once the wire is free; return when it has all arrived.

        ``to_devices`` also lets the devices hear it (line noise is heard by everyone).
        """
        assert self._loop is not None
        start = self._reserve(len(data), self._loop.time() + turnaround)
        for when, piece in self._slices(data, start):
            self._at(when, self._write, piece)
            if to_devices:
                self._at(when, self._deliver, piece, when)
        return start + len(data) * self.byte_time

    def _write(self, piece: bytes) -> None:
        if self._master is None:
            return
        try:
            n = os.write(self._master, piece)
        except BlockingIOError:
            n = 0
        except OSError:
            return
        self.bytes_to_host += n
        self.overruns += len(piece) - n
