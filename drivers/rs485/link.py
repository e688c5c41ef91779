"""The serial port under an RS485 bus, read and written through the event loop (no threads).

pyserial opens and configures the port (baud rate, parity, exclusive lock, and the
kernel's RS485 mode where the adapter's driver has one: the kernel then switches the
transceiver to transmit around each write, ``TIOCSRS485``). Bytes then move with
non-blocking ``os.read``/``os.write`` on its file descriptor, watched by the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .errors import PortError
from .settings import Rs485Settings

__all__ = ["SerialLink"]

log = logging.getLogger(__name__)

Receiver = Callable[[bytes, float], None]


def _serial() -> Any:
    try:
        import serial
        import serial.rs485
    except ImportError as exc:  # pragma: no cover - pyserial is a dependency
        raise PortError("pyserial is not installed") from exc
    return serial


class SerialLink:
    """One open serial port. ``receive(data, when)`` is called with every chunk read.

    Use as an async context manager; :meth:`close` is safe twice. If the port fails
    (unplugged adapter, closed pty), :attr:`broken` gets the :class:`PortError`.
    """

    def __init__(self, port: str, settings: Rs485Settings, *, receive: Receiver) -> None:
        self.port = port
        self.settings = settings
        self.receive = receive
        self.kernel_rs485 = False
        self.bytes_in = 0
        self.bytes_out = 0
        self._serial: Any = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.broken: asyncio.Future[None] | None = None

    async def __aenter__(self) -> SerialLink:
        self.open()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        """Open and configure the port and start reading it."""
        serial = _serial()
        s = self.settings
        try:
            port = serial.Serial(
                port=self.port, baudrate=s.baudrate, bytesize=8, parity=s.parity,
                stopbits=s.stopbits, timeout=0, exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortError(f"cannot open {self.port}: {exc}") from exc
        self._serial = port
        try:
            self.kernel_rs485 = self._rs485_mode(serial, port)
        except PortError:
            self.close()
            raise
        self._loop = asyncio.get_running_loop()
        self.broken = self._loop.create_future()
        # When nobody waits on it any more (the box shutting down while the far end of a
        # pty goes away), the failure is still looked at: no "exception never retrieved".
        self.broken.add_done_callback(_looked_at)
        self._fd = port.fileno()
        self._loop.add_reader(self._fd, self._readable)

    def _rs485_mode(self, serial: Any, port: Any) -> bool:
        if self.settings.kernel_rs485 == "off":
            return False
        try:
            port.rs485_mode = serial.rs485.RS485Settings(
                rts_level_for_tx=True, rts_level_for_rx=False, delay_before_tx=0.0,
                delay_before_rx=0.0,
            )
        except (ValueError, OSError) as exc:
            port.rs485_mode = None  # forget it, or every later reconfigure fails again
            if self.settings.kernel_rs485 == "on":
                raise PortError(f"{self.port}: no kernel RS485 mode: {exc}") from exc
            log.info("%s: no kernel RS485 mode (%s); the adapter switches direction itself",
                     self.port, exc)
            return False
        return True

    def _readable(self) -> None:
        assert self._fd is not None and self._loop is not None
        try:
            data = os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(PortError(f"{self.port}: read failed: {exc}"))
            return
        if not data:
            self._fail(PortError(f"{self.port}: the port closed"))
            return
        self.bytes_in += len(data)
        self.receive(data, self._loop.time())

    async def write(self, data: bytes) -> None:
        """Hand ``data`` to the port (it is then on its way at the baud rate)."""
        if self._fd is None or self._loop is None:
            raise PortError(f"{self.port} is not open")
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._fd, view)
            except BlockingIOError:
                await self._writable()
                continue
            except OSError as exc:
                error = PortError(f"{self.port}: write failed: {exc}")
                self._fail(error)
                raise error from exc
            view = view[n:]
            self.bytes_out += n

    async def _writable(self) -> None:
        assert self._fd is not None and self._loop is not None
        ready = self._loop.create_future()
        self._loop.add_writer(self._fd, ready.set_result, None)
        try:
            await ready
        finally:
            self._loop.remove_writer(self._fd)

    def _fail(self, error: PortError) -> None:
        if self._loop is not None and self._fd is not None:
            self._loop.remove_reader(self._fd)
        if self.broken is not None and not self.broken.done():
            self.broken.set_exception(error)

    def close(self) -> None:
        """Stop reading and close the port. Safe to call twice."""
        if self._loop is not None and self._fd is not None:
            self._loop.remove_reader(self._fd)
        self._fd = None
        if self.broken is not None and not self.broken.done():
            self.broken.cancel()
        port, self._serial = self._serial, None
        if port is not None:
            port.close()


def _looked_at(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("serial link: %s", future.exception())
