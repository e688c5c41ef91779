"""Faults on the RS485 bus: dead devices, line noise, corrupt frames, lost acknowledgements,
strangers on the line and a port that goes away. The bus keeps serving the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.engine import IssueTicket
from drivers.rs485 import PortError, Rs485, Rs485Settings
from drivers.rs485.link import SerialLink
from protocols.rs485.keys import KEY_CALL
from sim.rs485 import VirtualBus

from .rs485_branch import Branch, running_branch

PROFILES = ["legacy68", "modbus"]
FAST = ("rs485.heartbeat_s=0.3", "rs485.offline_after=3")


async def ready(branch: Branch, *windows: int) -> None:
    """Tickets A001… waiting and the windows' tellers logged in."""
    for _ in range(4):
        await branch.box.execute(IssueTicket(queue="A"))
    for w in windows:
        await branch.line.keypad(w).do("login", {1: "1", 2: "2", 3: "3"}[w], "1234")
        await branch.line.display(w).wait_for(branch.blank)


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_keypad_that_stops_answering_goes_offline_and_the_others_keep_working(
    tmp_path: Path, profile: str
) -> None:
    async with running_branch(tmp_path, profile, *FAST) as b:
        await ready(b, 1, 2)
        b.line.keypad(2).online = False  # unplugged
        offline = await b.health("keypad.2", "offline")
        assert "no answer" in offline.detail
        await b.line.keypad(1).press(KEY_CALL)
        await b.line.display(1).wait_for(b.number("A001"))
        assert b.box.health.devices["keypad.1"].state == "ok"
        b.line.keypad(2).online = True
        back = await b.health("keypad.2", "ok")
        assert back.detail == "answering again"
        await b.line.keypad(2).press(KEY_CALL)
        await b.line.display(2).wait_for(b.number("A002"))


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_display_that_was_away_gets_its_screen_when_it_returns(
    tmp_path: Path, profile: str
) -> None:
    async with running_branch(tmp_path, profile, *FAST) as b:
        await ready(b, 1)
        b.line.display(1).online = False
        await b.line.keypad(1).press(KEY_CALL)
        await b.health("display.1", "offline")
        await b.line.keypad(1).wait_for(b.number("A001"))  # its keypad still shows it
        b.line.display(1).online = True
        await b.health("display.1", "ok")
        await b.line.display(1).wait_for(b.number("A001"))


@pytest.mark.parametrize("profile", PROFILES)
async def test_line_noise_is_counted_and_changes_nothing(tmp_path: Path, profile: str) -> None:
    async with running_branch(tmp_path, profile) as b:
        await ready(b, 1)
        noise = bytes(range(256)) + b"\x68\xf0\xf0\x68" + b"\x16\xff" * 20
        for number in ("A001", "A002", "A003"):
            b.line.noise(noise)
            await b.line.keypad(1).do("finish")
            b.line.noise(noise[::-1])
            await b.line.keypad(1).press(KEY_CALL)
            await b.line.display(1).wait_for(b.number(number))
        counters = b.counters()
        assert counters["garbage_bytes"] > 0
        called = await b.events("ticket_called")
        assert [e["number"] for e in called] == ["A001", "A002", "A003"]


@pytest.mark.parametrize("profile", PROFILES)
async def test_corrupt_frames_are_counted_and_retried(tmp_path: Path, profile: str) -> None:
    async with running_branch(tmp_path, profile) as b:
        await ready(b, 1)
        b.line.corrupt(3)
        await b.line.keypad(1).press(KEY_CALL)
        await b.line.display(1).wait_for(b.number("A001"))
        assert b.counters()["checksum_errors"] >= 1
        called = await b.events("ticket_called")
        assert [e["number"] for e in called] == ["A001"]


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_lost_acknowledgement_does_not_call_twice(tmp_path: Path, profile: str) -> None:
    async with running_branch(tmp_path, profile) as b:
        await ready(b, 1)
        keypad = b.line.keypad(1)
        keypad.lose_acks = 1  # the keypad does not hear the host take its key: it asks again
        await keypad.press(KEY_CALL)
        await b.line.display(1).wait_for(b.number("A001"))
        assert b.counters()["duplicates"] >= 1
        called = await b.events("ticket_called")
        assert [e["number"] for e in called] == ["A001"]


async def test_a_stranger_on_the_line_is_counted_not_obeyed(tmp_path: Path) -> None:
    async with running_branch(tmp_path, "legacy68") as b:
        await ready(b, 1)
        stranger = b.line.add("keypad", 42)  # no window has keypad 42
        assert stranger.kind == "keypad"
        with pytest.raises(TimeoutError):
            await b.line.keypad(42).press(KEY_CALL, timeout=1.5)
        assert b.counters()["unknown_device"] >= 1
        assert await b.events("ticket_called") == []


@pytest.mark.parametrize("profile", PROFILES)
async def test_the_port_going_away_raises_for_the_supervisor(
    tmp_path: Path, profile: str
) -> None:
    async with running_branch(tmp_path, profile) as b:
        rs485 = Rs485(b.box.config, port=b.line.port)
        # A second driver cannot share the port (it is locked), and the running one fails
        # cleanly when the line is gone.
        with pytest.raises(PortError):
            await asyncio.wait_for(rs485.run(b.box), 5)
        task = next(t for t in asyncio.all_tasks() if t.get_name() == "rs485-under-test")
        b.line.close()
        with pytest.raises(PortError):
            await asyncio.wait_for(task, 5)


@pytest.mark.parametrize("profile", PROFILES)
async def test_an_adapter_that_hears_itself_works_when_configured(
    tmp_path: Path, profile: str
) -> None:
    async with running_branch(tmp_path, profile, "rs485.local_echo=true") as b:
        assert b.line.wire.local_echo
        await ready(b, 1)
        await b.line.keypad(1).press(KEY_CALL)
        await b.line.display(1).wait_for(b.number("A001"))
        c = b.counters()
        # Taken for answers, our own bytes would leave a stray echo or garbage per exchange;
        # a late answer on a loaded machine leaves the odd one.
        assert c["unexpected"] + c["garbage_bytes"] < c["frames"] / 4


@pytest.mark.parametrize(("mode", "opens"), [("auto", True), ("off", True), ("on", False)])
async def test_kernel_rs485_mode_where_the_port_has_it(mode: str, opens: bool) -> None:
    settings = Rs485Settings(kernel_rs485=mode)  # type: ignore[arg-type]
    async with VirtualBus() as line:  # a pty has no RS485 mode, like many USB adapters
        link = SerialLink(line.port, settings, receive=lambda data, at: None)
        if opens:
            async with link:
                assert link.kernel_rs485 is False
        else:
            with pytest.raises(PortError, match="no kernel RS485 mode"):
                link.open()
        link.close()  # safe twice
