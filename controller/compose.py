"""The box's composition root: which devices and links a box runs, real or simulated.

With :mod:`controller.__main__`, the ONLY module of the box that imports ``drivers`` and
``sim``. Everything below talks to the devices through :mod:`controller.ports`; the
supervisor runs the components built here. :data:`BACKENDS` is the one table that
chooses a real or a simulated device, by device kind::

    config ──▶ build_components ──▶ [printer, lobby devices, kiosk relay, rs485,
                                     updater, uplink, appointments, customers, watchdog]
                    │
                    └── BACKENDS[(kind, simulated?)] ──▶ the driver's backend

A device is active when ``hardware = "sim"`` (on its simulated backend) or, with
``hardware = "real"``, when its config section is given; never with ``hardware = "none"``
or ``enabled = false``. A real device named explicitly wins over the simulator, like
``--set rs485.port=…``: a reader of kind ``serial``/``keyboard``, ``gpio.pin_factory``,
``audio.device``, ``hall_display.output = "framebuffer"``. Every section is validated
here, so a bad one fails the box at start (exit code 2) with the key named, e.g.
``gpio.buttons.0.queue``; building opens nothing (ports, pins, files and links are opened
when the supervisor runs a component), so this is also how a pushed configuration's
wiring is checked (:class:`controller.components.Startup`).

Simulated backends and their files (under the data directory):

* printer: :class:`sim.printer.SimPrinter` → ``sim/printer/<number>.{bin,txt,png}``
  (with ``[[kiosks]]``, each kiosk's in ``sim/printer/<kiosk>/``);
* RS485: :class:`sim.rs485.SimulatedBus` (a pty), key presses on ``sim/rs485.sock``;
* voice: :class:`~drivers.audio.SimSink` → ``sim/audio/<n>-<number>-w<window>.wav``
  (the clip pack is made with espeak-ng, :func:`drivers.audio.make_clips`, into
  ``audio/clips`` on first start if missing);
* hall display: ``sim/hall/latest.png``;
* card reader: :class:`~sim.card_swipes.SimSwipes`, fed through the pipe
  ``sim/cards/<reader>`` (``echo ';6225880137001237=2812101?' > data/sim/cards/sim``);
  a reader of kind ``id`` with no device: the 二代证 reader's twin on a pty
  (:class:`sim.idcard.SimIdReader`; ``echo 410105198001012311 > data/sim/cards/<reader>``
  places that card, ``echo remove >`` takes it away) read by the real driver; of kind
  ``pcsc`` with no device: a simulated slot (:class:`sim.emv_card.SimPcscSlot`; a card
  number written to ``sim/cards/<reader>`` inserts a PBOC debit card with it);
* GPIO: gpiozero's ``MockFactory`` (``GpioPanel.pin_factory``);
* CRM/CIF: :class:`sim.cif.SimCif` on a loopback port of this process (no ``cif.url``),
  which the customer lookup's client is pointed at once it listens.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from common.cif import CifClient, CustomerCache
from common.clock import SystemClock
from common.errors import ConfigError
from drivers.audio import AlsaSink, SimSink, make_clips
from drivers.card_reader import (
    CardReader,
    CardReaderConfig,
    KeyboardSource,
    ReaderConfig,
    SerialSource,
    SwipeSource,
)
from drivers.gpio import GpioConfig, GpioPanel
from drivers.hall_display import (
    FramebufferOutput,
    FrameOutput,
    HallDisplay,
    HallDisplayConfig,
    PngOutput,
)
from drivers.idcard import IdCardSource
from drivers.pcsc_card import PcscSource, PyscardSlot
from drivers.printer import (
    PrinterComponent,
    PrinterSettings,
    SimulatedPrinter,
    printer_settings,
)
from drivers.rs485.component import NoPort, Rs485
from drivers.rs485.settings import load_settings

from .appointments import build_appointments
from .config import Config, KioskStand, section
from .customers import CifSettings, CustomerChain, Customers, LocalVipTable, cif_settings, secret_of
from .kiosk import KioskRelay
from .ports import AudioSink
from .supervisor import Component
from .update import update_component
from .voice import Announcer, AudioConfig
from .watchdog import Watchdog
from .web_settings import web_settings

__all__ = ["BACKENDS", "build_components", "build_lobby_devices", "customers_component",
           "printer_component", "printer_components", "rs485_components"]

SIM, REAL = True, False
# (the device's settings, data dir) -> its backend; the printer's gets its tickets' folder
Backend = Callable[[Any, Any], Any]


def _sim_swipes(r: ReaderConfig, data_dir: Path) -> SwipeSource:
    from sim.card_swipes import CARDS, SimSwipes

    return SimSwipes(fifo=data_dir / CARDS / r.name)


def _real_swipes(r: ReaderConfig, data_dir: Path) -> SwipeSource:
    if r.kind == "serial":
        return SerialSource(r.device, baudrate=r.baudrate or 9600)
    return KeyboardSource(r.device, grab=r.grab)


def _sim_idcard(r: ReaderConfig, data_dir: Path) -> SwipeSource:
    from sim.card_swipes import CARDS
    from sim.idcard import SimIdSource

    return SimIdSource(baudrate=r.baudrate or 115200, fifo=data_dir / CARDS / r.name)


def _sim_pcsc(r: ReaderConfig, data_dir: Path) -> SwipeSource:
    from sim.card_swipes import CARDS
    from sim.emv_card import SimPcscSlot

    return PcscSource(slot=SimPcscSlot(data_dir / CARDS / r.name), poll_s=r.poll_ms / 1000)


def _sim_bus(config: Config, data_dir: Path | None) -> list[Any]:
    from sim.rs485 import SimulatedBus  # the simulator only when asked for
    from sim.rs485_control import CONTROL

    sim = SimulatedBus(config, data_dir / CONTROL if data_dir is not None else None)
    return [sim, Rs485(config, port_source=sim)]


def _sim_printer(s: PrinterSettings, folder: Path) -> Callable[[], SimulatedPrinter]:
    def make() -> SimulatedPrinter:
        from sim.printer import SimPrinter  # the simulator only when asked for

        profile = s.resolved_profile()
        encoding = profile.encoding if profile.encoding != "utf-8" else "gb18030"
        return SimPrinter(folder, encoding=encoding,
                          paper_mm=profile.paper_mm)
    return make  # made when the component runs: building opens nothing


def _sim_cif(s: CifSettings, data_dir: Path) -> tuple[Any, str, str, bytes]:
    from sim.cif import SIM_KEY, SimCif  # the simulator only when asked for

    peer = SimCif({SIM_KEY[0]: SIM_KEY[1]}, latency_s=s.sim_latency_ms / 1000, fail=s.sim_fail)
    return peer, "", *SIM_KEY  # its address is known once it listens (Customers.run)


def _hall_output(s: HallDisplayConfig, data_dir: Path, simulated: bool) -> FrameOutput:
    if s.output == "framebuffer":
        return FramebufferOutput(s.framebuffer)
    default = data_dir / ("sim" if simulated else "") / "hall" / "latest.png"
    return PngOutput(Path(s.path) if s.path else default)


# The one table: (device kind, simulated?) -> the backend the driver runs on.
BACKENDS: dict[tuple[str, bool], Backend] = {
    ("audio", SIM): lambda s, d: SimSink(d / "sim" / "audio", pace=s.sim_pace),
    ("audio", REAL): lambda s, d: AlsaSink(device=s.device, player=s.player),
    ("printer", SIM): _sim_printer,
    ("printer", REAL): lambda s, d: None,  # the driver opens its link from [printer]
    ("hall_display", SIM): lambda s, d: _hall_output(s, d, True),
    ("hall_display", REAL): lambda s, d: _hall_output(s, d, False),
    ("card_reader", SIM): _sim_swipes,
    ("card_reader", REAL): _real_swipes,
    ("idcard", SIM): _sim_idcard,
    ("idcard", REAL): lambda r, d: IdCardSource(r.device, baudrate=r.baudrate or 115200,
                                                poll_s=r.poll_ms / 1000),
    ("pcsc_card", SIM): _sim_pcsc,
    ("pcsc_card", REAL): lambda r, d: PcscSource(slot=PyscardSlot(r.device),
                                                 poll_s=r.poll_ms / 1000),
    ("gpio", SIM): lambda s, d: s.pin_factory or "mock",
    ("gpio", REAL): lambda s, d: s.pin_factory,
    ("rs485", SIM): _sim_bus,
    ("rs485", REAL): lambda config, d: [Rs485(config)],
    ("cif", SIM): _sim_cif,  # (peer to start, url, key id, secret)
    ("cif", REAL): lambda s, d: (None, s.url, s.key_id, secret_of(s)),
}


def build_components(config: Config, data_dir: Path) -> list[Component]:
    """The components ``config`` asks for. Raises :class:`ConfigError` naming the key."""
    components: list[Component] = []
    web_settings(config)  # the screens' [web] section: a mistake stops the start (exit 2)
    components += printer_components(config, data_dir)  # one per kiosk (docs/printer.md)
    lobby = build_lobby_devices(config, data_dir)  # voice, hall display, cards, GPIO
    components += lobby
    # what a card swipe or a ticket button did is shown on the kiosk page (docs/screens.md)
    outcomes = [d.listeners for d in lobby if isinstance(d, CardReader | GpioPanel)]
    if outcomes:
        components.append(KioskRelay(outcomes))
    components.extend(rs485_components(config, data_dir))  # keypads, displays, evaluators
    if (updater := update_component(config, data_dir)) is not None:
        components.append(updater)  # software updates from the centre (F4)
    if config.uplink:  # the link to the centre (docs/uplink.md)
        from .uplink import Uplink, UplinkSettings
        from .uplink.media import store_media

        uplink = Uplink(section(config, "uplink", UplinkSettings))
        uplink.register_command("media", store_media)  # kiosk media from the centre
        if updater is not None:
            uplink.use_updater(updater)  # cmd/update in, its reports out on reply
        components.append(uplink)
    components += build_appointments(config, data_dir, components)  # docs/appointments.md
    if (customers := customers_component(config, data_dir)) is not None:
        components.append(customers)  # who holds a card: CRM/CIF, VIP table (I1)
    components.append(Watchdog())  # sd_notify READY/WATCHDOG under systemd; else ends at once
    return components


def printer_component(config: Config, data_dir: Path, kiosk: str | None = None
                      ) -> PrinterComponent | None:
    """The printer component the config asks for (None: no printer); with ``kiosk``,
    that ``[[kiosks]]`` entry's. Raises ConfigError. Its ``sim`` backend runs
    :class:`sim.printer.SimPrinter` on a loopback port, writing into
    ``sim/printer/`` (a kiosk's: ``sim/printer/<kiosk>/``)."""
    settings = printer_settings(config, kiosk)
    if settings.backend == "none":
        return None
    folder = data_dir / "sim" / "printer" / (kiosk or "")  # the simulator's tickets
    simulator = BACKENDS["printer", settings.backend == "sim"](settings, folder)
    return PrinterComponent(settings, simulator=simulator, kiosk=kiosk)


def printer_components(config: Config, data_dir: Path) -> list[Component]:
    """The box's printers: the ``[printer]`` one, or one per ``[[kiosks]]`` entry."""
    kiosks: list[str | None] = [k.id for k in config.kiosks] or [None]
    return [p for k in kiosks if (p := printer_component(config, data_dir, k)) is not None]


def customers_component(config: Config, data_dir: Path) -> Customers | None:
    """The customer lookup ``[cif]`` asks for (docs/integrations.md): with ``hardware =
    "sim"`` and no ``cif.url``, on the simulated CIF (:class:`sim.cif.SimCif`, a loopback
    port in this process); with a ``url``, on the bank's. Raises ConfigError."""
    s = cif_settings(config)
    if not _active(config, "cif", s.enabled):
        return None
    if s.url is None and config.hardware != "sim":
        raise ConfigError("cif.url", "give the CIF's address, e.g. https://cif.bank.example/paidui")
    peer, url, key_id, secret = BACKENDS["cif", s.url is None](s, data_dir)
    client = CifClient(url, key_id=key_id, secret=secret, branch=config.branch.code,
                       clock=SystemClock(), timeout_s=s.timeout_s)  # signatures: wall time
    chain = CustomerChain(client, LocalVipTable(config),
                          cache=CustomerCache(s.cache_size, s.cache_ttl_s, SystemClock()),
                          budget_s=s.budget_ms / 1000, in_flight=s.in_flight)
    return Customers(s, chain, notifier=client if s.notify else None, client=client, peer=peer)


def rs485_components(config: Config, data_dir: Path | None = None) -> list[Any]:
    """The bus's components for this config: none, the driver on ``rs485.port``, or (with
    ``hardware = "sim"`` and no port) the virtual bus and the driver on its pty; the virtual
    bus then takes key presses from other processes on ``<data_dir>/sim/rs485.sock``.

    Raises ConfigError for a bad ``[rs485]`` section or clashing bus addresses.
    """
    settings = load_settings(config)
    if settings.port is not None:
        return list(BACKENDS["rs485", REAL](config, data_dir))
    if config.hardware == "real" and settings.kinds:
        return [NoPort()]
    if config.hardware != "sim":
        return []
    return list(BACKENDS["rs485", SIM](config, data_dir))


def _active(config: Config, name: str, enabled: bool) -> bool:
    if not enabled or config.hardware == "none":
        return False
    return config.hardware == "sim" or bool(getattr(config, name))


def build_lobby_devices(config: Config, data_dir: Path) -> list[Component]:
    """The voice, hall display, card reader and GPIO components this config asks for."""
    data_dir = Path(data_dir)
    sim = config.hardware == "sim"
    components: list[Component] = []
    announcer = _announcer(config, data_dir, sim)
    if announcer is not None:
        components.append(announcer)
    display = _hall_display(config, data_dir, sim, announcer)
    if display is not None:
        components.append(display)
    components += _card_readers(config, data_dir, sim)
    gpio = _gpio(config, sim)
    if gpio is not None:
        components.append(gpio)
    return components


def _announcer(config: Config, data_dir: Path, sim: bool) -> Announcer | None:
    s = section(config, "audio", AudioConfig)
    if not _active(config, "audio", s.enabled):
        return None
    if not s.languages:
        raise ConfigError("audio.languages", "name at least one of zh, yue, en")
    clips = Path(s.clips) if s.clips else data_dir / "audio" / "clips"
    sink: AudioSink = BACKENDS["audio", sim and not s.device](s, data_dir)
    return Announcer(s, sink=sink, clips_dir=clips, make_missing=make_clips if sim else None)


def _hall_display(config: Config, data_dir: Path, sim: bool, announcer: Announcer | None
                  ) -> HallDisplay | None:
    s = section(config, "hall_display", HallDisplayConfig)
    if not _active(config, "hall_display", s.enabled):
        return None
    output: FrameOutput = BACKENDS["hall_display", sim](s, data_dir)
    return HallDisplay(s, output=output, announcer=announcer)


def _card_readers(config: Config, data_dir: Path, sim: bool) -> list[Component]:
    """The top-level ``[card_reader]``'s readers and each ``[[kiosks]]`` entry's; a kiosk's
    reader stands at its kiosk (its swipes issue there, print on its printer and show on
    its page). With ``hardware = "sim"`` and no reader given, one simulated reader per
    kiosk: ``sim`` (one kiosk) or the kiosk's id (fed through ``sim/cards/<id>``)."""
    s = section(config, "card_reader", CardReaderConfig)
    readers: list[tuple[str, ReaderConfig]] = []
    if _active(config, "card_reader", s.enabled):
        default = [ReaderConfig(name="sim", kind="sim")] if sim and not config.kiosks else []
        readers = [(f"card_reader.readers.{i}", r) for i, r in enumerate(s.readers or default)]
    for i, stand in enumerate(config.kiosks):
        readers += _stand_readers(config, f"kiosks.{i}.card_reader", stand, sim)
    names = [r.name for _, r in readers]
    for key, r in readers:
        if names.count(r.name) > 1:
            raise ConfigError(f"{key}.name", f"{r.name!r} appears twice")
        needs_device = r.kind in ("keyboard", "serial") or (r.kind == "id" and not sim)
        if needs_device and not r.device:
            raise ConfigError(f"{key}.device",
                              "give the reader's device, e.g. /dev/ttyUSB1 or "
                              "/dev/input/by-id/…-event-kbd")
    return [CardReader(source=_swipe_source(r, data_dir, sim), name=r.name,
                       kiosk=_at_a_kiosk(config, f"{key}.kiosk", r.kiosk))
            for key, r in readers]


_FAMILY = {"id": "idcard", "pcsc": "pcsc_card"}  # reader kind → BACKENDS device kind


def _swipe_source(r: ReaderConfig, data_dir: Path, sim: bool) -> SwipeSource:
    """A reader's backend: an ID or IC reader named by its device wins over the simulator."""
    family = _FAMILY.get(r.kind, "card_reader")
    simulated = r.kind == "sim" or (family != "card_reader" and sim and not r.device)
    source: SwipeSource = BACKENDS[family, simulated](r, data_dir)
    return source


def _stand_readers(config: Config, key: str, stand: KioskStand, sim: bool
                   ) -> list[tuple[str, ReaderConfig]]:
    """One kiosk's readers (``[kiosks.card_reader]``, the ``[card_reader]`` section's
    shape), each standing at that kiosk."""
    try:
        s = CardReaderConfig.model_validate(stand.card_reader)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(".".join([key, *(str(p) for p in err["loc"])]),
                          err["msg"].removeprefix("Value error, ")) from None
    if not s.enabled or config.hardware == "none" or not (sim or stand.card_reader):
        return []
    given = s.readers or [ReaderConfig(name=stand.id, kind="sim")]
    for i, r in enumerate(given):
        if r.kiosk not in (None, stand.id):
            raise ConfigError(f"{key}.readers.{i}.kiosk",
                              f"a reader of kiosk {stand.id!r} stands at it; leave this out")
    return [(f"{key}.readers.{i}", r.model_copy(update={"kiosk": stand.id}))
            for i, r in enumerate(given)]


def _at_a_kiosk(config: Config, key: str, kiosk: str | None) -> str | None:
    """The kiosk a device stands at: its tickets print on that kiosk's printer and show on
    its page. With ``[[kiosks]]``, a device that names none stands at the first one, and
    one naming a kiosk that is not configured is refused (it would print nowhere)."""
    if not config.kiosks:
        return kiosk
    if kiosk is None:
        return config.kiosks[0].id
    if config.stand(kiosk) is None:
        known = ", ".join(k.id for k in config.kiosks)
        raise ConfigError(key, f"no kiosk {kiosk!r}; the [[kiosks]] are: {known}")
    return kiosk


def _gpio(config: Config, sim: bool) -> GpioPanel | None:
    s = section(config, "gpio", GpioConfig)
    if not _active(config, "gpio", s.enabled):
        return None
    for i, b in enumerate(s.buttons):
        if config.queue(b.queue) is None:
            raise ConfigError(f"gpio.buttons.{i}.queue", f"unknown queue {b.queue!r}")
    buttons = [b.model_copy(update={"kiosk": _at_a_kiosk(config, f"gpio.buttons.{i}.kiosk",
                                                         b.kiosk)})
               for i, b in enumerate(s.buttons)]
    s = s.model_copy(update={"buttons": buttons})
    pins: list[Any] = [b.pin for b in s.buttons] + [s.buzzer]
    pins += list(s.leds.model_dump().values())
    used = [str(p) for p in pins if p is not None]
    dup = next((p for p in used if used.count(p) > 1), None)
    if dup is not None:
        raise ConfigError("gpio", f"pin {dup} is used twice")
    return GpioPanel(s, pin_factory=BACKENDS["gpio", sim](s, Path()))
