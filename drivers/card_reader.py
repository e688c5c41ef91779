"""Card readers at the kiosk: a swipe or tap becomes a ticket (SPEC A5) or redeems an
appointment (A6).

Readers deliver one line of text per card. Two real kinds exist in branches:

* **keyboard-emulating** readers (USB HID "keyboard wedge": mag-stripe, IC and ID card
  readers alike) read through Linux input events (``evdev``, imported when used), with
  the device grabbed so swipes do not type into the kiosk browser;
* **serial** readers (RS232 or USB-serial, ``pyserial``), a line per card;
* the **二代证 reader** (:mod:`drivers.idcard`, framed commands, polled) and **bank IC
  cards in a PC/SC reader** (:mod:`drivers.pcsc_card`, EMV/PBOC), whose sources yield the
  number they read as one line.

The simulator's reader (:class:`sim.card_swipes.SimSwipes`) is fed in-process or through
a named pipe. Every line goes the same way (:meth:`CardReader.handle`):

1. :func:`protocols.cards.parse_swipe` checks it; a misread or bad checksum is refused,
   counted in :attr:`CardReader.rejections` and logged, and nothing is issued.
2. An appointment redeemer, if one is registered (``CardReader(redeemer=…)`` or
   ``box.appointment_redeemer``, set by the appointments component), is offered the
   card first (A6).
3. Otherwise the card issues a ticket through the box's ticket desk (``box.tickets``, a
   :class:`controller.ports.TicketDesk`: ``IssueTicket(card=…, channel="card")``): the
   engine maps card → queue, VIP stars.

Listeners (:attr:`CardReader.listeners`) hear every :class:`SwipeOutcome` (a
:class:`controller.ports.KioskOutcome`): the box's kiosk relay shows it on the kiosk page
the reader stands at (``kiosk``; unset: one kiosk page), the ticket number or the reason
it was refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from controller.ports import CardRedeemer, Host, SwipeOutcome
from protocols.cards import CardError, CardRead, parse_swipe

__all__ = [
    "CardReader",
    "CardReaderConfig",
    "CardRedeemer",  # re-exported from controller.ports
    "KeyDecoder",
    "KeyboardSource",
    "LineBuffer",
    "ReaderConfig",
    "SerialSource",
    "SwipeOutcome",  # re-exported from controller.ports
    "SwipeSource",
]

log = logging.getLogger(__name__)

MAX_LINE = 512  # longer than any track or number: a stuck key or line noise


# --- configuration ----------------------------------------------------------------------


class ReaderConfig(BaseModel):
    """One reader at a kiosk (``[[card_reader.readers]]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("reader", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    # keyboard / serial: a line per card; id: 二代证 reader (drivers/idcard.py);
    # pcsc: bank IC cards in a PC/SC reader (drivers/pcsc_card.py); sim: the named pipe
    kind: Literal["keyboard", "serial", "id", "pcsc", "sim"]
    # keyboard: /dev/input/by-id/…-event-kbd; serial, id: /dev/ttyUSB1; pcsc: part of the
    # PC/SC reader's name ("" = the first reader); id, pcsc with hardware = "sim" and no
    # device: the simulated reader
    device: str = ""
    baudrate: int | None = Field(None, gt=0)  # serial: 9600; id: 115200 (the readers' default)
    poll_ms: int = Field(300, ge=50, le=5000)  # id, pcsc: how often the reader is asked
    grab: bool = True  # keyboard: take the device so swipes do not type into the browser
    # the kiosk page (``/kiosk?id=…``) the reader stands at; unset: one kiosk page
    kiosk: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,32}$")


class CardReaderConfig(BaseModel):
    """The ``card_reader`` config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    readers: list[ReaderConfig] = []


# --- line sources -------------------------------------------------------------------------


class SwipeSource(Protocol):
    """Where lines come from: a keyboard reader, a serial reader or the simulator.

    ``opened`` is set once the device is open and reads are not lost (a serial port
    flushes its input when opened).
    """

    opened: asyncio.Event

    def lines(self) -> AsyncIterator[str]:
        """Yield one line per card until cancelled; raise OSError when the device is gone."""
        ...


class LineBuffer:
    """Splits a byte or character stream into lines at CR or LF; drops overlong junk."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self.dropped = 0
        self._buf: list[str] = []
        self._skipping = False

    def feed(self, text: str) -> list[str]:
        out = []
        for ch in text:
            if ch in "\r\n":
                line = "".join(self._buf).strip()
                self._buf.clear()
                if line and not self._skipping:
                    out.append(line)
                self._skipping = False
            elif self._skipping:
                continue
            elif len(self._buf) < self.max_line:
                self._buf.append(ch)
            else:  # no reader sends this much: drop the whole line, up to its end
                self._buf.clear()
                self._skipping = True
                self.dropped += 1
        return out


_PLAIN = {
    **{f"KEY_{d}": d for d in "0123456789"},
    **{f"KEY_KP{d}": d for d in "0123456789"},
    **{f"KEY_{a}": a.lower() for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    "KEY_SEMICOLON": ";", "KEY_EQUAL": "=", "KEY_SLASH": "/", "KEY_MINUS": "-",
    "KEY_SPACE": " ", "KEY_DOT": ".", "KEY_COMMA": ",", "KEY_APOSTROPHE": "'",
    "KEY_KPMINUS": "-", "KEY_KPPLUS": "+", "KEY_KPDOT": ".", "KEY_KPSLASH": "/",
    "KEY_KPASTERISK": "*",
}
_SHIFTED = {
    **{f"KEY_{a}": a for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    "KEY_1": "!", "KEY_2": "@", "KEY_3": "#", "KEY_4": "$", "KEY_5": "%", "KEY_6": "^",
    "KEY_7": "&", "KEY_8": "*", "KEY_9": "(", "KEY_0": ")", "KEY_SEMICOLON": ":",
    "KEY_EQUAL": "+", "KEY_SLASH": "?", "KEY_MINUS": "_", "KEY_APOSTROPHE": '"',
}
_SHIFTS = {"KEY_LEFTSHIFT", "KEY_RIGHTSHIFT"}
_ENTERS = {"KEY_ENTER", "KEY_KPENTER"}


class KeyDecoder:
    """Key events of a keyboard-emulating reader (US layout) → lines. Pure.

    Feed it evdev key names and values (1 down, 0 up, 2 auto-repeat); it returns a line
    when Enter goes down. Unknown keys are counted and ignored.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.shift = False
        self.unknown = 0
        self._line = LineBuffer(max_line)

    def feed(self, key: str, value: int) -> str | None:
        if key in _SHIFTS:
            self.shift = value != 0
            return None
        if value != 1:
            return None
        if key in _ENTERS:
            lines = self._line.feed("\n")
            return lines[0] if lines else None
        ch = (_SHIFTED if self.shift else _PLAIN).get(key) or _PLAIN.get(key)
        if ch is None:
            self.unknown += 1
            return None
        self._line.feed(ch)
        return None


class KeyboardSource:
    """A keyboard-emulating reader read through ``evdev`` (Linux input events)."""

    def __init__(self, device: str, *, grab: bool = True) -> None:
        self.device, self.grab = device, grab
        self.decoder = KeyDecoder()
        self.opened = asyncio.Event()

    async def lines(self) -> AsyncIterator[str]:
        try:
            import evdev
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise OSError("keyboard card readers need the 'evdev' package "
                          "(pip install evdev)") from exc
        dev = evdev.InputDevice(self.device)
        try:
            if self.grab:
                dev.grab()
            self.opened.set()
            async for ev in dev.async_read_loop():
                if ev.type != evdev.ecodes.EV_KEY:
                    continue
                name = evdev.ecodes.KEY.get(ev.code, "")
                line = self.decoder.feed(name[0] if isinstance(name, list) else name, ev.value)
                if line is not None:
                    yield line
        finally:
            dev.close()


class SerialSource:
    """A serial card reader: one line per card, CR and/or LF terminated.

    The port is read without threads: the event loop watches its file descriptor.
    """

    def __init__(self, port: str, *, baudrate: int = 9600) -> None:
        self.port, self.baudrate = port, baudrate
        self.buffer = LineBuffer()
        self.opened = asyncio.Event()

    async def lines(self) -> AsyncIterator[str]:
        import serial  # pyserial, imported when used

        try:
            ser = serial.Serial(self.port, self.baudrate, timeout=0)
        except serial.SerialException as exc:
            raise OSError(f"cannot open {self.port}: {exc}") from exc
        self.opened.set()
        try:
            async for chunk in _fd_chunks(ser.fileno(), lambda: ser.read(4096)):
                for line in self.buffer.feed(chunk.decode("ascii", "replace")):
                    yield line
        finally:
            ser.close()


async def _fd_chunks(fd: int, read: Callable[[], bytes]) -> AsyncIterator[bytes]:
    """Yield what ``read`` returns whenever ``fd`` is readable (no threads)."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(fd, ready.set)
    try:
        while True:
            await ready.wait()
            ready.clear()
            try:
                data = read()
            except OSError:
                raise
            except Exception as exc:  # pyserial wraps EIO in SerialException
                raise OSError(str(exc)) from exc
            if data:
                yield data
    finally:
        loop.remove_reader(fd)


# --- the reader component -----------------------------------------------------------------


class CardReader:
    """One card reader at a kiosk: reads, checks, redeems or issues, and counts.

    Args:
        source: where the lines come from (keyword-only backend choice is the caller's).
        name: reader name; its health is reported as ``card_reader.<name>``.
        kiosk: the kiosk page the reader stands at (``/kiosk?id=…``), which shows its
            outcomes; None: one kiosk page. Tickets are journaled at ``kiosk`` then.
        redeemer: appointment redemption, offered each good read first (A6).
    """

    def __init__(self, *, source: SwipeSource, name: str = "reader", kiosk: str | None = None,
                 redeemer: CardRedeemer | None = None) -> None:
        self.source = source
        self.reader = name
        self.name = f"card_reader.{name}"
        self.kiosk = kiosk
        self.redeemer = redeemer
        self.reads = 0
        self.rejections: Counter[str] = Counter()
        self.listeners: list[Callable[[SwipeOutcome], None]] = []
        self.last: SwipeOutcome | None = None

    async def run(self, box: Host) -> None:
        """Read until cancelled; a vanished device is reported offline and raised."""
        box.health.report(self.name, "ok")
        try:
            async with contextlib.aclosing(self.source.lines()) as lines:  # type: ignore[type-var]
                async for line in lines:
                    await self.handle(box, line)
        except OSError as exc:
            box.health.report(self.name, "offline", str(exc))
            raise

    async def handle(self, box: Host, line: str) -> SwipeOutcome:
        """Turn one read into a ticket, a redemption, or a counted refusal."""
        self.reads += 1
        try:
            card = parse_swipe(line)
        except CardError as exc:
            log.warning("%s: refused read (%s): %s", self.name, exc.code, exc.detail)
            return self._done(SwipeOutcome(False, exc.code, exc.message, exc.message_en,
                                           reader=self.reader))
        outcome = await self._redeem(box, card) or await self._issue(box, card)
        return self._done(outcome)

    async def _redeem(self, box: Host, card: CardRead) -> SwipeOutcome | None:
        redeemer = self.redeemer or box.appointment_redeemer
        if redeemer is None:
            return None
        return await redeemer.redeem(card, self.kiosk or "kiosk")

    async def _issue(self, box: Host, card: CardRead) -> SwipeOutcome:
        got = await box.tickets.issue(card=card.number, channel="card",
                                      kiosk=self.kiosk or "kiosk")
        if got.ok:
            assert got.ticket is not None
            log.info("%s: card %s -> %s", self.name, card.masked, got.ticket["number"])
        else:
            log.info("%s: card %s refused: %s", self.name, card.masked, got.code)
        return SwipeOutcome(got.ok, got.code, got.message, got.message_en, card, got.ticket,
                            got.printed, self.reader)

    def _done(self, outcome: SwipeOutcome) -> SwipeOutcome:
        outcome = replace(outcome, reader=self.reader, kiosk=self.kiosk)  # a redeemer's too
        if not outcome.ok:
            self.rejections[outcome.code] += 1
        self.last = outcome
        for listener in self.listeners:
            try:
                listener(outcome)
            except Exception:
                log.exception("card outcome listener %r failed", listener)
        return outcome
