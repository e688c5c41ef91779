"""The lobby devices of a branch box, built from its config: voice, hall display, card
readers and GPIO (buttons, LEDs, buzzer).

Each is active when ``hardware = "sim"`` (on its simulated backend) or, with
``hardware = "real"``, when its config section is given; never with ``hardware = "none"``
or ``enabled = false``. A real device named explicitly wins over the simulator, like
``--set rs485.port=…``: a reader of kind ``serial``/``keyboard``, ``gpio.pin_factory``,
``audio.device``, ``hall_display.output = "framebuffer"``.
Every section is validated here, so a bad one fails the box at start (exit code 2) with
the key named, e.g. ``gpio.buttons.0.queue``.

Simulated backends and their files (under the data directory):

* voice: :class:`~drivers.audio.SimSink` → ``sim/audio/<n>-<number>-w<window>.wav``
  (the clip pack is made with espeak-ng into ``audio/clips`` on first start if missing);
* hall display: ``sim/hall/latest.png``;
* card reader: :class:`~sim.card_swipes.SimSwipes`, fed through the pipe
  ``sim/cards/<reader>`` (``echo ';6225880137001237=2812101?' > data/sim/cards/sim``);
* GPIO: gpiozero's ``MockFactory`` (``GpioPanel.pin_factory``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.config import Config, section
from controller.errors import ConfigError
from controller.supervisor import Component

from .audio import AlsaSink, Announcer, AudioConfig, AudioSink, SimSink
from .card_reader import (
    CardReader,
    CardReaderConfig,
    KeyboardSource,
    ReaderConfig,
    SerialSource,
    SwipeSource,
)
from .gpio import GpioConfig, GpioPanel
from .hall_display import FramebufferOutput, FrameOutput, HallDisplay, HallDisplayConfig, PngOutput

__all__ = ["build_lobby_devices"]


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
    sink: AudioSink = (SimSink(data_dir / "sim" / "audio", pace=s.sim_pace)
                       if sim and not s.device else AlsaSink(device=s.device, player=s.player))
    return Announcer(s, sink=sink, clips_dir=clips, make_missing=sim)


def _hall_display(config: Config, data_dir: Path, sim: bool, announcer: Announcer | None
                  ) -> HallDisplay | None:
    s = section(config, "hall_display", HallDisplayConfig)
    if not _active(config, "hall_display", s.enabled):
        return None
    output: FrameOutput
    if s.output == "framebuffer":
        output = FramebufferOutput(s.framebuffer)
    else:
        default = data_dir / ("sim" if sim else "") / "hall" / "latest.png"
        output = PngOutput(Path(s.path) if s.path else default)
    return HallDisplay(s, output=output, announcer=announcer)


def _card_readers(config: Config, data_dir: Path, sim: bool) -> list[Component]:
    s = section(config, "card_reader", CardReaderConfig)
    if not _active(config, "card_reader", s.enabled):
        return []
    readers = s.readers or ([ReaderConfig(name="sim", kind="sim")] if sim else [])
    names = [r.name for r in readers]
    for i, r in enumerate(readers):
        if names.count(r.name) > 1:
            raise ConfigError(f"card_reader.readers.{i}.name", f"{r.name!r} appears twice")
        if r.kind != "sim" and not r.device:
            raise ConfigError(f"card_reader.readers.{i}.device",
                              "give the reader's device, e.g. /dev/ttyUSB1 or "
                              "/dev/input/by-id/…-event-kbd")
    return [CardReader(source=_source(r, data_dir), name=r.name, kiosk=r.kiosk)
            for r in readers]


def _source(r: ReaderConfig, data_dir: Path) -> SwipeSource:
    if r.kind == "sim":
        from sim.card_swipes import CARDS, SimSwipes

        return SimSwipes(fifo=data_dir / CARDS / r.name)
    if r.kind == "serial":
        return SerialSource(r.device, baudrate=r.baudrate)
    return KeyboardSource(r.device, grab=r.grab)


def _gpio(config: Config, sim: bool) -> GpioPanel | None:
    s = section(config, "gpio", GpioConfig)
    if not _active(config, "gpio", s.enabled):
        return None
    for i, b in enumerate(s.buttons):
        if config.queue(b.queue) is None:
            raise ConfigError(f"gpio.buttons.{i}.queue", f"unknown queue {b.queue!r}")
    pins: list[Any] = [b.pin for b in s.buttons] + [s.buzzer]
    pins += list(s.leds.model_dump().values())
    used = [str(p) for p in pins if p is not None]
    dup = next((p for p in used if used.count(p) > 1), None)
    if dup is not None:
        raise ConfigError("gpio", f"pin {dup} is used twice")
    return GpioPanel(s, pin_factory=s.pin_factory or ("mock" if sim else None))
