"""The RS485 bus as a box component: which components a config makes, config errors that
stop the box at start, and a ``hardware = "sim"`` box running end to end on its simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.__main__ import main
from controller.box import Box
from controller.clock import ManualClock
from controller.components import build_components
from controller.engine import IssueTicket
from controller.errors import ConfigError
from controller.supervisor import Supervisor
from drivers.rs485 import Rs485
from sim.rs485 import SimulatedBus

from .conftest import EXAMPLE, WEDNESDAY_10AM, example_config


def test_a_simulated_box_runs_the_virtual_bus_and_the_driver(tmp_path: Path) -> None:
    components = build_components(example_config(), tmp_path)
    assert [c.name for c in components] == ["rs485.sim", "rs485"]


def test_no_bus_without_a_port_or_the_simulator(tmp_path: Path) -> None:
    assert build_components(example_config('hardware="none"'), tmp_path) == []


def test_a_configured_port_replaces_the_simulator(tmp_path: Path) -> None:
    config = example_config('hardware="real"', "rs485.port=/dev/ttyUSB0",
                            'rs485.profile="legacy68"')
    (rs485,) = build_components(config, tmp_path)
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
    components = build_components(config, tmp_path)
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
