"""GPIO at the branch box (``gpiozero``): ticket buttons, status LEDs and the alarm buzzer.

* **Ticket buttons** (SPEC A1): a physical button per business. A press issues a ticket
  through the box's ticket desk (``box.tickets``, ``channel="button"``), so it prints.
  Contact bounce is filtered twice: by gpiozero's ``bounce_time`` on real pins, and by a
  repeat guard here (presses closer than ``repeat_guard_ms`` count once), so a nervous
  double press gives one ticket. What a press did (the ticket and whether it printed, or
  the refusal) is told to :attr:`GpioPanel.listeners` as a :class:`ButtonPress`, which the
  box's kiosk relay shows on the button's kiosk page (``kiosk``; unset: one kiosk page).
* **Status LEDs**: ``ready`` (the kiosks issue tickets), ``printer_fault`` (the printer's
  health is not ok; with several kiosks, any of their printers'), ``link`` (the uplink to
  the centre is ok).
* **Buzzer**: sounds the alarm on a bad rating (``ticket_rated`` with ``bad``, SPEC C2)
  and on the lobby alert (``lobby_alert``, A8).

gpiozero calls ``when_pressed`` in its own threads; the press crosses into the event loop
with ``loop.call_soon_threadsafe`` and is handled there, one at a time, in order.

The backend is gpiozero's pin factory, chosen by the ``pin_factory`` keyword or config
key: ``"mock"`` (gpiozero's :class:`~gpiozero.pins.mock.MockFactory`, what
``hardware = "sim"`` uses; tests drive its pins with ``drive_low()``), ``"lgpio"``,
``"rpigpio"``, ``"native"``, or ``None`` for gpiozero's default (``GPIOZERO_PIN_FACTORY``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from controller.ports import Host, PrintOutcome, Status

__all__ = ["AlarmConfig", "ButtonConfig", "ButtonPress", "GpioConfig", "GpioPanel",
           "LedConfig", "make_pin_factory"]

log = logging.getLogger(__name__)

Pin = int | str  # BCM number (17) or a gpiozero pin name ("GPIO17", "BOARD11")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ButtonConfig(_Model):
    pin: Pin
    queue: str
    # the kiosk page (``/kiosk?id=…``) that shows what a press did; unset: one kiosk page
    kiosk: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,32}$")


class LedConfig(_Model):
    ready: Pin | None = None
    printer_fault: Pin | None = None
    link: Pin | None = None


class AlarmConfig(_Model):
    beeps: int = Field(3, ge=1, le=50)
    on_s: float = Field(0.4, gt=0, le=10)
    off_s: float = Field(0.2, ge=0, le=10)


class GpioConfig(_Model):
    """The ``gpio`` config section."""

    enabled: bool = True
    pin_factory: str | None = None  # None: "mock" with hardware = "sim", else gpiozero's default
    buttons: list[ButtonConfig] = []
    pull_up: bool = True  # buttons wired between the pin and ground
    bounce_ms: int = Field(20, ge=0, le=1000)
    repeat_guard_ms: int = Field(800, ge=0, le=10000)
    leds: LedConfig = LedConfig()
    buzzer: Pin | None = None
    alarm: AlarmConfig = AlarmConfig()


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """What one accepted press did: the ticket (number, :func:`~controller.kiosk.ticket_info`
    and whether it printed), or the refusal's code and words. A
    :class:`controller.kiosk.KioskOutcome` for the button's ``kiosk`` page."""

    queue: str
    ok: bool
    number: str | None = None
    code: str = "issued"
    message: str = ""
    message_en: str = ""
    ticket: dict[str, Any] | None = None
    printed: PrintOutcome | None = None
    kiosk: str | None = None


def make_pin_factory(name: str | None) -> Any:
    """A gpiozero pin factory by name (``mock``, ``lgpio``, ``rpigpio``, …); None = default."""
    if name is None:
        return None  # gpiozero picks (and honours GPIOZERO_PIN_FACTORY)
    if name == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    from importlib.metadata import entry_points

    for ep in entry_points(group="gpiozero_pin_factories"):
        if ep.name == name:
            return ep.load()()
    raise ValueError(f"unknown gpiozero pin factory {name!r}")


class GpioPanel:
    """The box's GPIO: buttons in, LEDs and buzzer out. A supervisor component.

    Args:
        settings: the validated ``gpio`` section.
        pin_factory: a gpiozero pin factory, or its name (made when the pins are opened);
            overrides the config's ``pin_factory``.
        ticks: monotonic seconds for the repeat guard; default: the factory's ticks.
    """

    name = "gpio"

    def __init__(self, settings: GpioConfig, *, pin_factory: Any = None,
                 ticks: Callable[[], float] | None = None) -> None:
        self.settings = settings
        # a name is turned into a factory when the pins are opened, not at construction
        self.pin_factory: Any = pin_factory if pin_factory is not None else settings.pin_factory
        self._ticks = ticks
        self.presses: Counter[str] = Counter()  # accepted presses per queue
        self.ignored = 0  # presses inside the repeat guard
        self.refusals: Counter[str] = Counter()
        self.alarms: Counter[str] = Counter()
        self.listeners: list[Callable[[ButtonPress], None]] = []
        self.buttons: list[Any] = []
        self.leds: dict[str, Any] = {}
        self.buzzer: Any = None
        self._last_press: dict[int, float] = {}
        self._printers: dict[str, bool] = {}  # printer device -> not ok (the fault LED)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._alarm: asyncio.Task[None] | None = None
        self._beeps_left = 0
        self.opened = asyncio.Event()  # set once the pins are claimed

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self, box: Host) -> None:
        """Open the pins, serve button presses until cancelled, then release the pins."""
        self._loop = asyncio.get_running_loop()
        try:
            self._open()
            box.listeners.append(self._on_events)
            box.health.listeners.append(self._on_health)
            self._show_status(box)
            box.health.report(self.name, "ok")
            self.opened.set()
            while True:
                index = await self._queue.get()
                await self._press(box, self.settings.buttons[index])
        finally:
            _remove(box.listeners, self._on_events)
            _remove(box.health.listeners, self._on_health)
            self.opened.clear()
            await self._stop_alarm()
            self._close()

    def _open(self) -> None:
        from gpiozero import LED, Button, Buzzer

        if isinstance(self.pin_factory, str):
            self.pin_factory = make_pin_factory(self.pin_factory)
        s, f = self.settings, self.pin_factory
        bounce = s.bounce_ms / 1000 or None
        for i, b in enumerate(s.buttons):
            btn = Button(b.pin, pull_up=s.pull_up, bounce_time=bounce, pin_factory=f)
            btn.when_pressed = partial(self._pressed, i)
            self.buttons.append(btn)
        for role, pin in s.leds.model_dump().items():
            if pin is not None:
                self.leds[role] = LED(pin, pin_factory=f)
        if s.buzzer is not None:
            self.buzzer = Buzzer(s.buzzer, pin_factory=f)

    def _close(self) -> None:
        for dev in [*self.buttons, *self.leds.values(), self.buzzer]:
            if dev is not None:
                dev.close()
        self.buttons, self.leds, self.buzzer = [], {}, None

    # --- buttons ---------------------------------------------------------------------------

    def _pressed(self, index: int) -> None:
        """gpiozero's callback (any thread): guard repeats, hand the press to the loop."""
        now = self._ticks() if self._ticks else self._factory_ticks()
        last = self._last_press.get(index)
        if last is not None and now - last < self.settings.repeat_guard_ms / 1000:
            self.ignored += 1
            return
        self._last_press[index] = now
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, index)

    def _factory_ticks(self) -> float:
        factory = self.pin_factory
        if factory is None and self.buttons:
            factory = self.buttons[0].pin_factory
        return float(factory.ticks()) if factory is not None else 0.0

    async def _press(self, box: Host, button: ButtonConfig) -> None:
        self.presses[button.queue] += 1
        got = await box.tickets.issue(queue=button.queue, channel="button",
                                      kiosk=button.kiosk or "gpio")
        if not got.ok:
            self.refusals[got.code] += 1
            log.info("gpio button %s refused: %s", button.queue, got.code)
            self._tell(ButtonPress(button.queue, False, None, got.code, got.message,
                                   got.message_en, kiosk=button.kiosk))
            return
        assert got.ticket is not None
        self._tell(ButtonPress(button.queue, True, got.ticket["number"], ticket=got.ticket,
                               printed=got.printed, kiosk=button.kiosk))

    def _tell(self, press: ButtonPress) -> None:
        for listener in self.listeners:
            try:
                listener(press)
            except Exception:
                log.exception("button listener %r failed", listener)

    # --- LEDs and buzzer ---------------------------------------------------------------------

    def _on_events(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            if e["type"] == "ticket_rated" and e.get("bad"):
                self.sound_alarm("bad_rating")
            elif e["type"] == "lobby_alert":
                self.sound_alarm("lobby_alert")
            elif e["type"] in ("kiosk_signed_in", "kiosk_signed_out"):
                self._set_led("ready", e["type"] == "kiosk_signed_in")

    def _on_health(self, status: Status) -> None:
        if _is_printer(status.name):
            self._printers[status.name] = status.state != "ok"  # any printer lights it
            self._set_led("printer_fault", any(self._printers.values()))
        elif status.name == "uplink":
            self._set_led("link", status.state == "ok")

    def _show_status(self, box: Host) -> None:
        self._set_led("ready", box.engine.state.kiosk_open)
        devices = box.health.devices
        self._printers = {n: s.state != "ok" for n, s in devices.items() if _is_printer(n)}
        self._set_led("printer_fault", any(self._printers.values()))
        uplink = devices.get("uplink")
        self._set_led("link", uplink is not None and uplink.state == "ok")

    def _set_led(self, role: str, on: bool) -> None:
        led = self.leds.get(role)
        if led is not None:
            led.value = on

    def sound_alarm(self, reason: str) -> None:
        """Beep the buzzer ``alarm.beeps`` times; an alarm during one extends the pattern."""
        self.alarms[reason] += 1
        log.warning("branch alarm: %s", reason)
        if self.buzzer is None or self._loop is None:
            return
        self._beeps_left = self.settings.alarm.beeps
        if self._alarm is None or self._alarm.done():
            self.buzzer.on()  # at once, in the event's own turn of the loop
            self._alarm = self._loop.create_task(self._beep(), name="gpio-alarm")

    async def _beep(self) -> None:
        a = self.settings.alarm
        try:
            while self._beeps_left > 0:
                self._beeps_left -= 1
                self.buzzer.on()
                await asyncio.sleep(a.on_s)
                self.buzzer.off()
                await asyncio.sleep(a.off_s)
        finally:
            if self.buzzer is not None:
                self.buzzer.off()

    async def alarm_done(self) -> None:
        """Wait until the current alarm pattern has finished."""
        if self._alarm is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._alarm

    async def _stop_alarm(self) -> None:
        task, self._alarm = self._alarm, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _is_printer(device: str) -> bool:
    """The box's printer (``printer``) or one kiosk's (``printer.<kiosk>``, [[kiosks]])."""
    return device == "printer" or device.startswith("printer.")


def _remove(items: list[Any], item: Any) -> None:
    with contextlib.suppress(ValueError):
        items.remove(item)
