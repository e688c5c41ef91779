"""The box's ports: what its core needs from each device, and what a device gets from it.

The core (engine, journal, box, kiosk, keypad mapping) never imports a driver. It talks to
the devices through these small typed Protocols, and the devices (``drivers/``, ``sim/``)
talk back through the same module only, with the pure engine and configuration types the
ports name. The composition root (:mod:`controller.compose`) builds the devices and hands
them over; a test hands over any fake through :class:`~controller.box.Box`'s constructor::

    drivers/*  ──implement──▶  ports  ◀──use──  box, kiosk, supervisor
                 ◀──Host (run(box))──

Value types that cross the line (:class:`PrintOutcome`, :class:`SwipeOutcome`,
:class:`Status`) live here too, so neither side imports the other for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from common.clock import Clock
from protocols.cards import CardRead
from protocols.cif import AccountManager, CustomerInfo, Kind

from .config import Config
from .engine import Engine, Event
from .engine.commands import CardCustomer

__all__ = [
    "AccountManager",
    "Announcement",
    "AnnouncementListener",
    "Announcements",
    "AudioSink",
    "CardRedeemer",
    "ClipMaker",
    "Clock",
    "CustomerDirectory",
    "CustomerInfo",
    "CustomerLookup",
    "DeviceHealth",
    "FormPrinter",
    "HealthState",
    "Host",
    "Issued",
    "KeyAnswer",
    "KeyPress",
    "KioskDevice",
    "KioskOutcome",
    "Listener",
    "ManagerNotifier",
    "PrintOutcome",
    "Status",
    "SwipeOutcome",
    "TicketDesk",
    "TicketPrinter",
    "Uplink",
    "VoiceBoard",
    "WindowKeys",
    "WindowScreen",
]

HealthState = Literal["ok", "warning", "offline", "fault"]
Listener = Callable[[list[Event]], None]  # hears each commit's events, after it is durable


# --- values crossing the line -------------------------------------------------------------


@dataclass(slots=True)
class Status:
    """One device's or link's health (SPEC D1)."""

    name: str  # e.g. "printer", "keypad.3", "uplink"
    state: HealthState
    detail: str = ""  # e.g. "paper_out", "no answer after 3 polls"
    since: float = 0.0


@dataclass(frozen=True, slots=True)
class PrintOutcome:
    """What the printer did with one ticket (the kiosk shows the number either way)."""

    ok: bool
    reason: str = ""  # a stable code, e.g. "paper_out", "offline", "timeout"
    message: str = ""  # for the screen, Chinese
    message_en: str = ""


@dataclass(frozen=True, slots=True)
class SwipeOutcome:
    """What became of one card read, for the kiosk screen and the counters.

    ``code`` is ``issued`` or ``redeemed`` when a ticket came out, else the reason:
    ``bad_checksum``, ``bad_format`` (unreadable), a refusal code of the engine
    (``unknown_card``, ``queue_paused`` …) or ``journal``. ``kiosk``: the kiosk page it
    is for (None: one kiosk page).
    """

    ok: bool
    code: str
    message: str = ""
    message_en: str = ""
    card: CardRead | None = None
    ticket: dict[str, Any] | None = None
    printed: PrintOutcome | None = None
    reader: str = ""
    kiosk: str | None = None


@dataclass(frozen=True, slots=True)
class Issued:
    """What the ticket desk answers a device: the ticket (``ok``: its
    :func:`~controller.kiosk.ticket_info` and whether it printed), or why not (``code``:
    a refusal code of the engine, or ``journal`` when the journal could not take it)."""

    ok: bool
    code: str
    message: str = ""
    message_en: str = ""
    ticket: dict[str, Any] | None = None
    printed: PrintOutcome | None = None


@dataclass(slots=True)
class Announcement:
    """One voice announcement (:class:`controller.voice.Announcer`): what it says, and
    (once played) when."""

    n: int  # 1, 2, 3 … since the announcer started
    kind: Literal["call", "recall"]
    number: str
    window: int
    clips: list[str] = field(default_factory=list)  # "chime", "zh/please", "|", …
    duration_s: float = 0.0
    started_at: float | None = None  # box clock
    ended_at: float | None = None

    @property
    def filename(self) -> str:
        return f"{self.n}-{self.number}-w{self.window}.wav"


AnnouncementListener = Callable[[str, Announcement], None]  # ("start" | "end", announcement)


@dataclass(frozen=True, slots=True)
class KeyPress:
    """A key a teller pressed on window ``window``'s keypad, as the keypad reported it: the
    key's code and the digits typed before it (protocols/rs485/keys.py). ``keypad`` names
    the keypad (``keypad.3``); ``seq`` is its own number for the press (Modbus; None on
    68-frame keypads), so a report read again after a restart is a repeat, not a press."""

    window: int
    key: int
    digits: bytes = b""
    keypad: str = "keypad"
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class KeyAnswer:
    """What the box answers a window's keypad or evaluator: done (``ok``), or why not.

    ``code``: ``done``; a refusal code of the engine (``no_waiting`` …); ``bad_keys`` (a
    key sequence that means nothing), ``ambiguous`` (digits matching several tickets) or
    ``journal`` (the journal could not take it). ``message``/``message_en`` are for the
    teller's keypad (the driver shows them), ``detail`` for the log.
    """

    ok: bool
    code: str = "done"
    message: str = ""
    message_en: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class WindowScreen:
    """What a window's display and keypad show: the number being served, 暂停服务
    (``paused``: paused or nobody logged in), or nothing (``blank``)."""

    mode: Literal["blank", "number", "paused"]
    text: str = ""


class KioskOutcome(Protocol):
    """What became of a customer's card or button press at one of the box's devices
    (:class:`SwipeOutcome`, :class:`~drivers.gpio.ButtonPress`).

    ``kiosk`` is the kiosk page it is shown on (``/kiosk?id=…``); ``None``: one kiosk
    page, the newest ``/kiosk`` one (a box with one kiosk). ``ticket`` is the
    :func:`~controller.kiosk.ticket_info`
    of the ticket that came out (``ok``), else ``code``/``message``/``message_en`` say why.
    """

    @property
    def kiosk(self) -> str | None: ...
    @property
    def ok(self) -> bool: ...
    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def message_en(self) -> str: ...
    @property
    def ticket(self) -> dict[str, Any] | None: ...
    @property
    def printed(self) -> PrintOutcome | None: ...


# --- what the core needs of a device --------------------------------------------------------


class TicketPrinter(Protocol):
    """A ticket printer (drivers/printer.py; a test's fake)."""

    async def print_ticket(self, ticket: dict[str, Any]) -> PrintOutcome: ...


@runtime_checkable
class FormPrinter(Protocol):
    """A printer that also prints a ticket's pre-filled form for the teller
    (drivers/printer.py ``EscposPrinter.print_form``; controller/forms.py uses it)."""

    async def print_form(self, form: dict[str, Any]) -> PrintOutcome: ...


class AudioSink(Protocol):
    """A speaker (drivers/audio.py ``AlsaSink``, ``SimSink``): plays one stitched WAV and
    returns when it has finished playing; raises :class:`~controller.errors.AudioError`."""

    async def play(self, wav: bytes, announcement: Announcement) -> None: ...


#: Makes a missing clip pack: (folder, languages) -> clips written (drivers/audio.py
#: ``make_clips``, espeak-ng); raises :class:`~controller.errors.AudioError`.
ClipMaker = Callable[[Path, list[str]], Awaitable[int]]


class KioskDevice(Protocol):
    """A device customers use at a kiosk (a card reader, a GPIO ticket button): its
    listeners hear each :class:`KioskOutcome` (the kiosk relay shows it on the page)."""

    @property
    def listeners(self) -> list[Callable[[Any], None]]: ...


class Uplink(Protocol):
    """The link to the centre, as the rest of the box sees it."""

    name: str

    def register_command(self, name: str, handler: Any) -> None: ...


class CardRedeemer(Protocol):
    """Appointment redemption (A6): offered every good card read first.

    ``None`` when the card holds no appointment for now (it then issues an ordinary
    ticket), else the outcome of the redemption.
    """

    async def redeem(self, card: CardRead, kiosk: str) -> SwipeOutcome | None: ...


class CustomerLookup(Protocol):
    """Who holds a card or ID number (SPEC I1): a CRM/CIF (:class:`common.cif.CifClient`),
    the local VIP table (:class:`controller.customers.LocalVipTable`). ``None``: not
    known. A remote source raises :class:`common.cif.CifUnavailable` when it cannot say;
    :class:`controller.customers.CustomerChain` bounds the wait and falls back."""

    async def lookup(self, kind: Kind, number: str) -> CustomerInfo | None: ...


class CustomerDirectory(Protocol):
    """Who holds a card, as the engine is told it (:class:`controller.customers.
    CustomerChain`): within its budget, never raising; ``box.customers`` while it runs."""

    async def find(self, card: str) -> CardCustomer: ...


class ManagerNotifier(Protocol):
    """Tells a CRM that a VIP took a ticket (``POST /notifications``, docs/integrations.md);
    raises when it could not (the caller retries, a bounded number of times)."""

    async def notify(self, notice: dict[str, Any]) -> None: ...


# --- what a device gets from the core ---------------------------------------------------------


class DeviceHealth(Protocol):
    """The box's health board as devices see it: report, and hear the others' changes."""

    @property
    def devices(self) -> Mapping[str, Status]: ...
    @property
    def listeners(self) -> list[Callable[[Status], None]]: ...

    def report(self, name: str, state: HealthState, detail: str = "") -> None: ...


class Announcements(Protocol):
    """The voice as a device following it sees it (the hall display shows a call when its
    announcement starts): its listeners hear ``("start" | "end", announcement)``."""

    @property
    def listeners(self) -> list[AnnouncementListener]: ...


class VoiceBoard(Protocol):
    """What the voice is saying, for the screens (:class:`controller.notices.Voice`)."""

    speaking: bool

    def tell(self, phase: str, said: dict[str, Any]) -> None: ...


class TicketDesk(Protocol):
    """Issue a ticket and print it, for a device (a card reader, a ticket button): the
    core keeps the mapping to engine commands, refusals and journal failures
    (:class:`controller.kiosk.Desk`); the device gets an answer, never an exception."""

    async def issue(self, *, channel: str, kiosk: str, queue: str | None = None,
                    card: str | None = None) -> Issued: ...


class WindowKeys(Protocol):
    """The windows' keypads and evaluators as the core sees them (:class:`controller.keypad.
    Keypads`): a device reports a key press or a score and shows the answer; the core keeps
    the key map (what a key sequence means, tickets typed as digits, teller codes), runs the
    engine command and turns refusals and journal failures into words. Never raises."""

    async def press(self, press: KeyPress) -> KeyAnswer: ...

    async def rate(self, window: int, score: int) -> KeyAnswer: ...

    def screen(self, window: int) -> WindowScreen: ...


class Host(Protocol):
    """The box as a device component sees it in ``run(box)``: its configuration, clock,
    state (read only), health, event listeners, voice board, ticket desk, window keys, and
    the seats a device fills or uses (the printer, or each kiosk's printer with
    ``[[kiosks]]``; the appointment redeemer)."""

    @property
    def config(self) -> Config: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def health(self) -> DeviceHealth: ...
    @property
    def listeners(self) -> list[Listener]: ...
    @property
    def voice(self) -> VoiceBoard: ...
    @property
    def tickets(self) -> TicketDesk: ...
    @property
    def keys(self) -> WindowKeys: ...

    printer: TicketPrinter | None
    printers: dict[str, TicketPrinter]  # a branch with several kiosks: kiosk id -> its printer
    appointment_redeemer: CardRedeemer | None
