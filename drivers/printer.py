"""ESC/POS ticket printer driver: USB, serial or network, real or simulated.

:class:`EscposPrinter` implements the box's ``TicketPrinter`` port (``controller.ports``):
``await print_ticket(info)`` asks the printer how it is (``DLE EOT``), sends the ticket
of :func:`protocols.ticket.render_ticket` only if it can print, asks again, and answers a
:class:`~controller.ports.PrintOutcome`. A printer out of paper, with its cover open, in
error or not answering gives a failed outcome with words for the screen; the kiosk then
shows the number and offers a reprint. Status is also polled every ``poll_s`` seconds and
reported as the ``printer`` device's health (SPEC D1).

Links (the backend, keyword-only; hardware libraries imported when opened):

- ``network``: TCP to the printer's raw port (9100), asyncio streams.
- ``serial``: a serial port configured with pyserial, then read and written
  non-blocking from the event loop.
- ``usb``: the Linux ``usblp`` device file (``/dev/usb/lp0``), non-blocking.
- ``sim``: a simulated printer the component runs beside itself (the composition root
  hands it :mod:`sim.printer`'s, :class:`SimulatedPrinter`), reached over a loopback TCP
  port through the ``network`` link, so the code under test is the real one.

Nothing here blocks the event loop: I/O is non-blocking, image-QR tickets are drawn in a
worker thread, every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common.errors import ConfigError
from controller.config import Config, section
from controller.ports import HealthState as State
from controller.ports import PrintOutcome
from protocols import escpos
from protocols.ticket import PROFILES, PrinterProfile, get_profile, render_form, render_ticket

if TYPE_CHECKING:
    from controller.ports import Host

__all__ = [
    "FAILURES",
    "EscposPrinter",
    "FdLink",
    "Link",
    "NetworkLink",
    "PrinterComponent",
    "PrinterSettings",
    "SimulatedPrinter",
    "printer_settings",
]

log = logging.getLogger(__name__)

Backend = Literal["sim", "usb", "serial", "network", "none"]
Report = Callable[[State, str], None]  # (health state, detail)

# Why a ticket did not print, in the words the kiosk shows (Chinese first).
_NOTE = ("请记下屏幕上的号码,或请大堂经理处理后补打。",
         "Please note the number on the screen, or ask the lobby manager for a reprint.")
FAILURES: dict[str, tuple[str, str]] = {
    "paper_out": ("打印机缺纸,号票未能打印。", "The printer is out of paper: the ticket was "
                  "not printed."),
    "cover_open": ("打印机纸仓盖未关好,号票未能打印。", "The printer cover is open: the ticket "
                   "was not printed."),
    "cutter_error": ("打印机切纸故障,号票未能打印。", "The printer's cutter is jammed: the "
                     "ticket was not printed."),
    "error": ("打印机故障,号票未能打印。", "The printer reports an error: the ticket was not "
              "printed."),
    "offline": ("打印机离线,号票未能打印。", "The printer is offline: the ticket was not "
                "printed."),
    "no_answer": ("打印机无响应,号票未能打印。", "The printer does not answer: the ticket was "
                  "not printed."),
    "not_connected": ("打印机未连接,号票未能打印。", "The printer is not connected: the "
                      "ticket was not printed."),
}
# condition -> health state
_HEALTH: dict[str, State] = {"ok": "ok", "paper_near_end": "warning", "paper_out": "fault",
           "cover_open": "fault", "cutter_error": "fault", "error": "fault",
           "offline": "offline", "no_answer": "offline", "not_connected": "offline"}


# --- configuration --------------------------------------------------------------------


class PrinterSettings(BaseModel):
    """The ``[printer]`` section of a branch config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Backend | None = None  # None: "sim" if hardware = "sim", "usb" if "real"
    device: str = ""  # serial port (/dev/ttyUSB0) or usblp device (/dev/usb/lp0)
    host: str = ""  # network printer
    port: int = Field(9100, ge=1, le=65535)
    baudrate: int = Field(9600, ge=1200, le=921600)
    flow: Literal["none", "rtscts", "dsrdtr", "xonxoff"] = "none"
    profile: str = "kiosk80"
    encoding: Literal["gb18030", "gbk", "utf-8"] | None = None  # None: the profile's
    qr: Literal["native", "image"] | None = None
    paper_mm: Literal[58, 80] | None = None
    cut: Literal["none", "full", "partial"] | None = None
    qr_base_url: str | None = None  # None: http://<this box>:<http.port>
    english: bool = False  # an English line under each Chinese one
    poll_s: float = Field(5.0, gt=0)
    status_timeout_s: float = Field(0.5, gt=0)
    write_timeout_s: float = Field(5.0, gt=0)
    sim_port: int = Field(0, ge=0, le=65535)  # sim: loopback port (0: any free one)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in PROFILES:
            raise ValueError(f"unknown profile {value!r}; known: {sorted(PROFILES)}")
        return value

    @field_validator("qr_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    def resolved_profile(self) -> PrinterProfile:
        """The named profile with this box's overrides applied."""
        return get_profile(self.profile).adjust(
            paper_mm=self.paper_mm, encoding=self.encoding, qr=self.qr, cutter=self.cut)


def printer_settings(config: Config, kiosk: str | None = None) -> PrinterSettings:
    """Validate ``[printer]`` and fill in the backend from ``hardware``; with ``kiosk``,
    that ``[[kiosks]]`` entry's ``printer`` table over the top-level section.

    Raises :class:`ConfigError` naming the key (``printer.host``, ``kiosks.1.printer.host``).
    """
    key = "printer"
    if kiosk is None:
        s = section(config, "printer", PrinterSettings)
    else:
        i, stand = next((i, k) for i, k in enumerate(config.kiosks) if k.id == kiosk)
        key = f"kiosks.{i}.printer"
        try:
            s = PrinterSettings.model_validate({**config.printer, **stand.printer})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(".".join([key, *(str(p) for p in err["loc"])]),
                              err["msg"].removeprefix("Value error, ")) from None
    backend = s.backend or {"sim": "sim", "real": "usb"}.get(config.hardware, "none")
    if backend == "usb" and not s.device:
        s = s.model_copy(update={"device": "/dev/usb/lp0"})
    if backend == "serial" and not s.device:
        raise ConfigError(f"{key}.device", "the serial port is required (e.g. /dev/ttyUSB0)")
    if backend == "network" and not s.host:
        raise ConfigError(f"{key}.host", "the printer's address is required")
    if s.qr_base_url is None:
        s = s.model_copy(update={"qr_base_url": _box_url(config)})
    return s.model_copy(update={"backend": backend})


def _box_url(config: Config) -> str:
    host = config.http.host
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://{host}:{config.http.port}"


# --- links ----------------------------------------------------------------------------


class Link(Protocol):
    """A byte stream to a printer."""

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> None: ...

    async def write(self, data: bytes, timeout: float) -> None: ...

    async def read(self, n: int, timeout: float) -> bytes: ...

    def discard_input(self) -> None: ...

    async def close(self) -> None: ...


class _Inbox:
    """Bytes from the printer, waited for with a timeout."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.error: Exception | None = None
        self.arrived = asyncio.Event()

    def feed(self, data: bytes) -> None:
        self.buf += data
        self.arrived.set()

    def fail(self, exc: Exception) -> None:
        self.error = exc
        self.arrived.set()

    async def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes: all ``n``, or what came before ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self.buf) < n and self.error is None:
                    self.arrived.clear()
                    await self.arrived.wait()
        if len(self.buf) < n and self.error is not None:
            raise ConnectionError(f"printer link lost: {self.error}")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


class _TcpClient(asyncio.Protocol):
    def __init__(self, inbox: _Inbox) -> None:
        self.inbox = inbox
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.inbox.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.inbox.fail(exc or ConnectionResetError("closed by the printer"))
        self.resume_writing()

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    async def drain(self) -> None:
        if self._writable is not None:
            await asyncio.shield(self._writable)


class NetworkLink:
    """TCP to a network printer (raw port 9100) or to the simulated printer."""

    def __init__(self, host: str, port: int = 9100, *, connect_timeout: float = 3.0) -> None:
        self.host, self.port, self.connect_timeout = host, port, connect_timeout
        self._proto: _TcpClient | None = None
        self._inbox = _Inbox()

    def __repr__(self) -> str:
        return f"NetworkLink({self.host}:{self.port})"

    @property
    def is_open(self) -> bool:
        return self._proto is not None and not self._proto.lost

    async def open(self) -> None:
        await self.close()
        self._inbox = inbox = _Inbox()
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            _, self._proto = await loop.create_connection(
                lambda: _TcpClient(inbox), self.host, self.port)

    async def write(self, data: bytes, timeout: float) -> None:
        proto = self._proto
        if proto is None or proto.lost or proto.transport is None:
            raise ConnectionError("printer link is not open")
        proto.transport.write(data)
        async with asyncio.timeout(timeout):
            await proto.drain()
        if proto.lost:
            raise ConnectionError("printer link lost while writing")

    async def read(self, n: int, timeout: float) -> bytes:
        return await self._inbox.read(n, timeout)

    def discard_input(self) -> None:
        self._inbox.buf.clear()

    async def close(self) -> None:
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()


class FdLink:
    """A device file: a serial port (configured with pyserial) or ``/dev/usb/lp0``.

    Args:
        path: the device.
        serial: pyserial settings (``baudrate``, ``rtscts``...) for a serial port;
            None for a plain device file such as the usblp printer class device.
    """

    def __init__(self, path: str, *, serial: dict[str, Any] | None = None) -> None:
        self.path, self.serial = path, serial
        self._port: Any = None  # the pyserial object, which owns the fd
        self._fd: int | None = None
        self._inbox = _Inbox()

    def __repr__(self) -> str:
        return f"FdLink({self.path})"

    @property
    def is_open(self) -> bool:
        return self._fd is not None and self._inbox.error is None

    async def open(self) -> None:
        await self.close()
        self._inbox = _Inbox()
        if self.serial is not None:
            import serial  # pyserial: only when a serial printer is configured

            self._port = serial.Serial(self.path, timeout=0, write_timeout=0, **self.serial)
            fd = self._port.fileno()
        else:
            fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        os.set_blocking(fd, False)
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        assert self._fd is not None
        error: Exception = EOFError("device closed")
        try:
            data = os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            data, error = b"", exc
        if data:
            self._inbox.feed(data)
            return
        asyncio.get_running_loop().remove_reader(self._fd)
        self._inbox.fail(error)

    async def write(self, data: bytes, timeout: float) -> None:
        if self._fd is None:
            raise ConnectionError("printer device is not open")
        view = memoryview(data)
        async with asyncio.timeout(timeout):
            while view:
                try:
                    view = view[os.write(self._fd, view):]
                except (BlockingIOError, InterruptedError):
                    await self._writable()

    async def _writable(self) -> None:
        assert self._fd is not None
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(self._fd, wake)
        try:
            await ready
        finally:
            loop.remove_writer(self._fd)

    async def read(self, n: int, timeout: float) -> bytes:
        return await self._inbox.read(n, timeout)

    def discard_input(self) -> None:
        self._inbox.buf.clear()

    async def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(fd)
        loop.remove_writer(fd)
        port, self._port = self._port, None
        if port is not None:
            port.close()
        else:
            os.close(fd)


# --- the printer ----------------------------------------------------------------------


class EscposPrinter:
    """A ticket printer on a :class:`Link` (implements ``controller.kiosk.TicketPrinter``).

    Args:
        profile: what the printer can do (paper, encoding, QR, cutter).
        link: keyword-only: the byte stream to the printer.
        qr_base_url: tickets' QR codes point at ``<qr_base_url>/t/<ticket id>``.
        english: print an English line under each Chinese one.
        report: called with ``(health state, detail)`` whenever the status is learnt.
    """

    def __init__(self, profile: PrinterProfile, *, link: Link, qr_base_url: str,
                 english: bool = False, report: Report | None = None,
                 status_timeout: float = 0.5, write_timeout: float = 5.0) -> None:
        self.profile, self.link = profile, link
        self.qr_base_url, self.english = qr_base_url, english
        self.report = report
        self.status_timeout, self.write_timeout = status_timeout, write_timeout
        self.status: escpos.PrinterStatus | None = None
        self.condition = "unknown"
        self.printed = 0
        self.failed = 0
        self._lock = asyncio.Lock()

    async def print_ticket(self, ticket: dict[str, Any]) -> PrintOutcome:
        """Print one ticket; a failed outcome says why, in words for the screen."""
        return await self._send(await self._render(ticket), ticket)

    async def print_form(self, form: dict[str, Any]) -> PrintOutcome:
        """Print a ticket's pre-filled form (预填单, I2) for the teller: the
        ``controller.forms.print_view`` dict (``number``, ``title``, ``fields`` …)."""
        return await self._send(render_form(form, self.profile, english=self.english), form)

    async def _send(self, data: bytes, ticket: dict[str, Any]) -> PrintOutcome:
        async with self._lock:
            before = await self._check()
            if before not in ("ok", "paper_near_end"):
                return self._failed(before, ticket)
            try:
                await self.link.write(data, self.write_timeout)
            except (OSError, TimeoutError) as exc:
                log.warning("printer: writing ticket %s failed: %s", ticket["number"], exc)
                await self.link.close()
                return self._failed(self._learn("not_connected"), ticket)
            after = await self._check()  # answered after the ticket: the bytes are in
            if after not in ("ok", "paper_near_end"):
                return self._failed(after, ticket)
        self.printed += 1
        return PrintOutcome(True)

    async def check(self) -> str:
        """Ask the printer how it is; report and return its condition code."""
        async with self._lock:
            return await self._check()

    async def close(self) -> None:
        await self.link.close()

    async def _render(self, ticket: dict[str, Any]) -> bytes:
        draw = functools.partial(render_ticket, ticket, self.profile,
                                 qr_base_url=self.qr_base_url, english=self.english)
        if self.profile.qr == "image":  # a few ms of QR drawing: keep it off the loop
            return await asyncio.to_thread(draw)
        return draw()

    async def _check(self) -> str:
        if not self.link.is_open:
            try:
                await self.link.open()
            except (OSError, TimeoutError) as exc:
                return self._learn("not_connected", exc)
        self.link.discard_input()  # a late answer to an earlier query
        try:
            await self.link.write(escpos.STATUS_QUERY, self.status_timeout)
            answers = await self.link.read(4, self.status_timeout)
        except (OSError, TimeoutError) as exc:
            await self.link.close()
            return self._learn("not_connected", exc)
        try:
            self.status = escpos.read_status(answers)
        except ValueError:
            return self._learn("no_answer", f"answered {answers.hex(' ') or 'nothing'}")
        return self._learn(self.status.condition)

    def _learn(self, condition: str, why: object = None) -> str:
        if condition != self.condition:
            log.info("printer: %s%s", condition, f" ({why})" if why else "")
        self.condition = condition
        if self.report is not None:
            self.report(_HEALTH[condition], "" if condition == "ok" else condition)
        return condition

    def _failed(self, reason: str, ticket: dict[str, Any]) -> PrintOutcome:
        self.failed += 1
        zh, en = FAILURES.get(reason, FAILURES["error"])
        log.warning("printer: ticket %s not printed: %s", ticket["number"], reason)
        return PrintOutcome(False, reason, zh + _NOTE[0], f"{en} {_NOTE[1]}")


# --- the component --------------------------------------------------------------------


class SimulatedPrinter(Protocol):
    """A printer the component runs beside itself, reached over loopback TCP
    (:class:`sim.printer.SimPrinter`, chosen in controller/compose.py's ``BACKENDS``)."""

    out_dir: Path | None
    font_note: str

    async def __aenter__(self) -> Any: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int: ...


class PrinterComponent:
    """Runs the ticket printer: sets ``box.printer`` (with ``kiosk``: that kiosk's seat,
    ``box.printers[kiosk]``) while it runs, polls its status.

    Args:
        settings: the validated ``[printer]`` section (:func:`printer_settings`).
        simulator: with ``backend = "sim"``, makes the simulated printer the component
            runs while it runs (:attr:`sim`; the simulator writes each ticket to
            ``<data-dir>/sim/printer/<number>.bin``, ``.txt`` and ``.png``). It is made
            when the component starts, not when it is built.
        kiosk: the ``[[kiosks]]`` id it prints for (None: the box's one kiosk); its
            health is then the device ``printer.<kiosk>``.
    """

    name = "printer"

    def __init__(self, settings: PrinterSettings, *,
                 simulator: Callable[[], SimulatedPrinter] | None = None,
                 kiosk: str | None = None) -> None:
        if settings.backend == "sim" and simulator is None:
            raise ConfigError("printer.backend", "sim: no simulated printer was given")
        self.kiosk = kiosk
        if kiosk is not None:
            self.name = f"printer.{kiosk}"
        self.settings = settings
        self.simulator = simulator
        self.profile = settings.resolved_profile()
        self.sim: SimulatedPrinter | None = None
        self.printer: EscposPrinter | None = None

    def _link(self, sim_port: int | None) -> Link:
        s = self.settings
        if sim_port is not None:
            return NetworkLink("127.0.0.1", sim_port)
        if s.backend == "network":
            return NetworkLink(s.host, s.port)
        if s.backend == "serial":
            flow = {"rtscts": s.flow == "rtscts", "dsrdtr": s.flow == "dsrdtr",
                    "xonxoff": s.flow == "xonxoff"}
            return FdLink(s.device, serial={"baudrate": s.baudrate, **flow})
        return FdLink(s.device)

    async def run(self, box: Host) -> None:
        s = self.settings
        async with contextlib.AsyncExitStack() as stack:
            sim_port = None
            if s.backend == "sim":
                sim_port = await self._start_sim(stack)
            printer = EscposPrinter(
                self.profile, link=self._link(sim_port), qr_base_url=s.qr_base_url or "",
                english=s.english, status_timeout=s.status_timeout_s,
                write_timeout=s.write_timeout_s,
                report=lambda state, detail: box.health.report(self.name, state, detail),
            )
            stack.push_async_callback(printer.close)
            self.printer = printer
            self._seat(box, printer)
            try:
                while True:
                    await printer.check()
                    await asyncio.sleep(s.poll_s)
            finally:
                self._seat(box, None, leaving=printer)
                self.printer = None

    def _seat(self, box: Host, printer: EscposPrinter | None,
              leaving: EscposPrinter | None = None) -> None:
        """Take (or, ``leaving``, give up) the box's printer seat of this kiosk."""
        if self.kiosk is None:
            if printer is not None or box.printer is leaving:
                box.printer = printer
        elif printer is not None:
            box.printers[self.kiosk] = printer
        elif box.printers.get(self.kiosk) is leaving:
            del box.printers[self.kiosk]

    async def _start_sim(self, stack: contextlib.AsyncExitStack) -> int:
        assert self.simulator is not None
        sim = self.simulator()
        await stack.enter_async_context(sim)
        self.sim = sim
        port = await sim.serve_tcp("127.0.0.1", self.settings.sim_port)
        log.info("simulated printer on 127.0.0.1:%d, tickets in %s (font: %s)", port, sim.out_dir,
                 sim.font_note)
        return port
