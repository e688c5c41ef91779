"""The lobby devices built from the config, and a simulated branch running them end to end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from common.clock import ManualClock
from common.errors import ConfigError
from controller.box import Box
from controller.compose import build_components, build_lobby_devices
from controller.engine import commands as c
from controller.kiosk import KioskRelay
from controller.supervisor import Supervisor
from controller.voice import Announcer
from drivers.audio import AlsaSink, SimSink
from drivers.card_reader import CardReader
from drivers.gpio import GpioPanel
from drivers.hall_display import HallDisplay, PngOutput
from drivers.idcard import IdCardSource
from drivers.pcsc_card import PcscSource, PyscardSlot
from sim.emv_card import SimPcscSlot
from sim.idcard import SimIdSource
from tests.conftest import example_config


def test_sim_builds_every_lobby_device(tmp_path: Path) -> None:
    comps = build_lobby_devices(example_config(), tmp_path)
    assert [x.name for x in comps] == ["audio", "hall_display", "card_reader.sim", "gpio"]
    audio, hall, _, gpio = comps
    assert isinstance(audio, Announcer) and isinstance(audio.sink, SimSink)
    assert audio.sink.out_dir == tmp_path / "sim" / "audio"
    assert isinstance(hall, HallDisplay) and hall.announcer is audio
    assert isinstance(hall.output, PngOutput)
    assert hall.output.path == tmp_path / "sim" / "hall" / "latest.png"
    assert isinstance(gpio, GpioPanel) and gpio.pin_factory == "mock"


def test_the_card_reader_and_ticket_buttons_are_shown_on_the_kiosk_pages(tmp_path: Path) -> None:
    comps = build_components(example_config(), tmp_path)
    (relay,) = [x for x in comps if isinstance(x, KioskRelay)]
    devices = [x for x in comps if isinstance(x, CardReader | GpioPanel)]
    assert [d.name for d in devices] == ["card_reader.sim", "gpio"]
    assert relay.sources == [d.listeners for d in devices]
    assert not any(isinstance(x, KioskRelay)
                   for x in build_components(example_config('hardware="none"'), tmp_path))


def test_no_hardware_no_devices(tmp_path: Path) -> None:
    assert build_lobby_devices(example_config('hardware="none"'), tmp_path) == []


def test_real_hardware_uses_configured_sections_only(tmp_path: Path) -> None:
    comps = build_lobby_devices(example_config('hardware="real"', 'audio.device="plughw:1,0"'),
                             tmp_path)
    assert [x.name for x in comps] == ["audio", "hall_display", "gpio"]  # no card reader given
    audio, hall, gpio = comps
    assert isinstance(audio, Announcer) and isinstance(audio.sink, AlsaSink)
    assert audio.sink.device == "plughw:1,0" and not audio.make_missing
    assert isinstance(hall, HallDisplay) and isinstance(hall.output, PngOutput)
    assert hall.output.path == tmp_path / "hall" / "latest.png"
    assert isinstance(gpio, GpioPanel) and gpio.pin_factory is None


def test_real_serial_reader(tmp_path: Path) -> None:
    cfg = example_config('hardware="real"', 'card_reader.readers=[{name="id", kind="serial", '
                         'device="/dev/ttyUSB1", baudrate=115200}]')
    (reader,) = [x for x in build_lobby_devices(cfg, tmp_path) if isinstance(x, CardReader)]
    assert reader.name == "card_reader.id"


def _sources(cfg_overrides: list[str], tmp_path: Path) -> dict[str, Any]:
    cfg = example_config(*cfg_overrides)
    return {x.reader: x.source for x in build_lobby_devices(cfg, tmp_path)
            if isinstance(x, CardReader)}


def test_id_and_ic_readers_real_or_simulated(tmp_path: Path) -> None:
    readers = ('card_reader.readers=[{name="id", kind="id"}, {name="ic", kind="pcsc"}, '
               '{name="id2", kind="id", device="/dev/ttyUSB1", poll_ms=500}, '
               '{name="ic2", kind="pcsc", device="ACR39"}]')
    sim = _sources([readers], tmp_path)
    assert isinstance(sim["id"], SimIdSource) and sim["id"].baudrate == 115200
    assert sim["id"].reader.fifo == tmp_path / "sim" / "cards" / "id"
    assert isinstance(sim["ic"], PcscSource) and isinstance(sim["ic"].slot, SimPcscSlot)
    # a device named explicitly wins over the simulator
    assert isinstance(sim["id2"], IdCardSource) and sim["id2"].port == "/dev/ttyUSB1"
    assert sim["id2"].poll_s == 0.5
    assert isinstance(sim["ic2"].slot, PyscardSlot) and sim["ic2"].slot.reader == "ACR39"
    real = _sources(['hardware="real"', 'card_reader.readers=[{name="ic", kind="pcsc"}]'],
                    tmp_path)
    assert isinstance(real["ic"].slot, PyscardSlot) and real["ic"].slot.reader == ""  # first
    with pytest.raises(ConfigError) as exc:  # a real ID reader is on a serial port
        _sources(['hardware="real"', 'card_reader.readers=[{kind="id"}]'], tmp_path)
    assert exc.value.key == "card_reader.readers.0.device"


@pytest.mark.parametrize(("override", "key"), [
    ('gpio.buttons=[{pin=17, queue="Z"}]', "gpio.buttons.0.queue"),
    ("gpio.bounce_ms=-1", "gpio.bounce_ms"),
    ('gpio.buzzer=17', "gpio"),  # the same pin as the first button
    ("gpio.colour=1", "gpio.colour"),
    ('audio.languages=["fr"]', "audio.languages.0"),
    ("audio.languages=[]", "audio.languages"),
    ("audio.volume=150", "audio.volume"),
    ("hall_display.width=10", "hall_display.width"),
    ('hall_display.output="vga"', "hall_display.output"),
    ('card_reader.readers=[{kind="serial"}]', "card_reader.readers.0.device"),
    ('card_reader.readers=[{kind="nfc"}]', "card_reader.readers.0.kind"),
    ('card_reader.readers=[{kind="id", poll_ms=10}]', "card_reader.readers.0.poll_ms"),
])
def test_bad_config_named(tmp_path: Path, override: str, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build_lobby_devices(example_config(override), tmp_path)
    assert exc.value.key == key


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
async def test_simulated_branch_end_to_end(clock: ManualClock, tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = example_config("audio.sim_pace=0", "hall_display.min_interval_s=0")
    comps = build_lobby_devices(cfg, data)
    audio, hall, reader, gpio = comps
    assert isinstance(audio, Announcer) and isinstance(hall, HallDisplay)
    assert isinstance(reader, CardReader) and isinstance(gpio, GpioPanel)
    async with Box(cfg, data, clock) as box:
        task = asyncio.create_task(Supervisor(box, comps).run())
        try:
            await asyncio.wait_for(audio.ready.wait(), 60)  # makes the clip pack first
            await asyncio.wait_for(gpio.opened.wait(), 5)
            issued = asyncio.get_running_loop().create_future()
            box.listeners.append(lambda evs: [issued.set_result(e) for e in evs
                                              if e["type"] == "ticket_issued"
                                              and not issued.done()])
            gpio.pin_factory.pin(17).drive_low()  # the 个人业务 button
            gpio.pin_factory.pin(17).drive_high()
            assert (await asyncio.wait_for(issued, 5))["number"] == "A001"

            await box.execute(c.Login(1, "t1", "1234"))
            await box.execute(c.CallNext(1))
            wav = data / "sim" / "audio" / "1-A001-w1.wav"
            async with asyncio.timeout(10):
                while not (wav.exists() and hall.last_view and hall.last_view.calls):
                    await asyncio.sleep(0.01)  # polling files another thread writes
            assert hall.last_view.calls[0].number == "A001"
            assert (data / "sim" / "hall" / "latest.png").exists()

            swiped: asyncio.Queue[object] = asyncio.Queue()
            reader.listeners.append(swiped.put_nowait)
            fd = os.open(data / "sim" / "cards" / "sim", os.O_WRONLY)
            os.write(fd, b";6225880137001237=2812101?\n")
            os.close(fd)
            outcome = await asyncio.wait_for(swiped.get(), 5)
            assert getattr(outcome, "ticket", {})["number"] == "V001"

            await box.execute(c.Finish(1, ask_rating=True))
            await box.execute(c.Rate(1, 1))
            assert gpio.pin_factory.pin(26).state is True  # the alarm sounds
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert {d["name"]: d["state"] for d in box.health.snapshot()} == {
        "audio": "ok", "card_reader.sim": "ok", "disk": "ok", "gpio": "ok", "hall_display": "ok"}
