"""The RS485 bus as a box component: which components a config makes, config errors that
stop the box at start, and a ``hardware = "sim"`` box running end to end on its simulator."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from common.clock import ManualClock
from common.errors import ConfigError
from controller.__main__ import main
from controller.box import Box
from controller.compose import build_components
from controller.config import Config
from controller.engine import IssueTicket
from controller.supervisor import Supervisor
from drivers.rs485 import Rs485
from sim.rs485 import SimulatedBus

from .conftest import EXAMPLE, ROOT, WEDNESDAY_10AM, example_config
from .uplink_support import wait_for


def bus_components(config: Config, tmp_path: Path) -> list[Any]:
    return [c for c in build_components(config, tmp_path) if c.name.startswith("rs485")]


def test_a_simulated_box_runs_the_virtual_bus_and_the_driver(tmp_path: Path) -> None:
    components = bus_components(example_config(), tmp_path)
    assert [c.name for c in components] == ["rs485.sim", "rs485"]


def test_no_bus_without_a_port_or_the_simulator(tmp_path: Path) -> None:
    assert bus_components(example_config('hardware="none"'), tmp_path) == []


async def test_real_hardware_without_a_port_says_so_in_the_health(tmp_path: Path) -> None:
    """Keypads that cannot work are a fault on the lobby screen, not a silent box."""
    config = example_config('hardware="real"')
    [comp] = bus_components(config, tmp_path)
    async with Box(config, tmp_path / "data", ManualClock(WEDNESDAY_10AM)) as box:
        task = asyncio.create_task(comp.run(box))
        await wait_for(lambda: "rs485" in box.health.devices, 5, "the bus's health entry")
        status = box.health.devices["rs485"]
        assert status.state == "fault" and "rs485.port" in status.detail
        task.cancel()
    # soft callers only: nothing on the bus, nothing to report
    assert bus_components(example_config('hardware="real"', "rs485.kinds=[]"), tmp_path) == []


def test_a_configured_port_replaces_the_simulator(tmp_path: Path) -> None:
    config = example_config('hardware="real"', "rs485.port=/dev/ttyUSB0",
                            'rs485.profile="legacy68"')
    (rs485,) = bus_components(config, tmp_path)
    assert isinstance(rs485, Rs485) and rs485.port == "/dev/ttyUSB0"
    assert [d.name for d in rs485.devices[:3]] == ["keypad.1", "display.1", "evaluator.1"]


@pytest.mark.parametrize(("overrides", "key", "words"), [
    (['rs485.profile="can"'], "rs485.profile", "legacy68"),
    (["rs485.baudrate=12"], "rs485.baudrate", "300"),
    (["rs485.bogus=1"], "rs485.bogus", "Extra inputs"),
    (['rs485.kinds=["keypad", "keypad"]'], "rs485.kinds", "twice"),
    (['rs485.device_answer_ms={"printer.1" = 5}'], "rs485.device_answer_ms", "display.3"),
    (['rs485.profile="modbus"', "rs485.offsets={keypad=0, display=0, evaluator=0}"],
     "windows.0.display", "also keypad.1's"),
    (['rs485.profile="modbus"', "windows.5.evaluator=60"], "windows.5.evaluator", "1–247"),
    (["windows.1.keypad=1"], "windows.1.keypad", "also keypad.1's"),
])
def test_bad_rs485_config_names_the_key(
    tmp_path: Path, overrides: list[str], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        build_components(example_config(*overrides), tmp_path)
    assert err.value.key == key
    assert words in err.value.problem


def test_the_box_refuses_to_start_on_a_bad_rs485_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(EXAMPLE), "--data-dir", str(tmp_path),
                 "--set", "rs485.baudrate=12"])
    assert code == 2
    assert "rs485.baudrate" in capsys.readouterr().err


@pytest.mark.parametrize("profile", ["legacy68", "modbus"])
async def test_a_simulated_branch_calls_over_the_virtual_bus(tmp_path: Path, profile: str) -> None:
    config = example_config(f'rs485.profile="{profile}"')
    components = bus_components(config, tmp_path)
    sim, rs485 = components
    assert isinstance(sim, SimulatedBus) and isinstance(rs485, Rs485)
    async with Box(config, tmp_path / "data", ManualClock(WEDNESDAY_10AM)) as box:
        await box.execute(IssueTicket(queue="A"))
        running = asyncio.create_task(Supervisor(box, components).run())
        try:
            await asyncio.wait_for(rs485.running.wait(), 5)
            assert sim.line is not None
            keypad, display = sim.line.keypad(1), sim.line.display(1)
            await keypad.do("login", "1", "1234")
            await keypad.do("call_next")
            await display.wait_for("   001" if profile == "legacy68" else "A001")
            assert box.health.devices["rs485.sim"].state == "ok"
            assert box.health.devices["rs485"].detail.startswith(profile)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


async def test_another_process_presses_keys_on_a_simulated_box(tmp_path: Path) -> None:
    config = example_config()
    data_dir = tmp_path / "data"
    components = bus_components(config, data_dir)
    async with Box(config, data_dir, ManualClock(WEDNESDAY_10AM)) as box:
        await box.execute(IssueTicket(queue="A"))
        running = asyncio.create_task(Supervisor(box, components).run())
        script = (
            "import sys; from sim.rs485_control import press, shown, rate\n"
            "d = sys.argv[1]\n"
            "press(d, window=1, keys=['login', '1', '1234', 'call_next'])\n"
            "print(rate(d, window=1, score=5, wait=0.3))\n"
            "press(d, window=1, keys=['rate'])\n"
            "print(rate(d, window=1, score=5))\n"
            "print(repr(shown(d, 'display', 1)))\n"
        )
        try:
            await asyncio.wait_for(components[1].running.wait(), 5)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", script, str(data_dir), cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err.decode()
            # no prompt yet, then a rating after 评价; the display was blank after the finish
            assert out.decode().split() == ["False", "True", "'", "'"]
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    rated = [e for e in (r.event for r in await _events(config, data_dir))
             if e["type"] == "ticket_rated"]
    assert [(e["number"], e["score"]) for e in rated] == [("A001", 5)]
    assert not (data_dir / "sim" / "rs485.sock").exists()  # cleaned up on the way out


async def _events(config: Config, data_dir: Path) -> list[Any]:
    async with Box(config, data_dir, ManualClock(WEDNESDAY_10AM)) as box:
        return await box.read_events(0, 1000)
