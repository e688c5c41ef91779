"""The box around the engine: what the event loop must never wait on."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import controller.box
from controller.box import Box
from controller.engine import Login
from controller.errors import Refused
from tests.uplink_support import wait_for


async def test_a_teller_login_checks_the_password_off_the_event_loop(
        box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt is slow on purpose; on the loop it would stall the RS485 bus and every page."""
    threads: list[threading.Thread] = []
    real = controller.box.verify_password

    def spy(stored: str, password: str) -> bool:
        threads.append(threading.current_thread())
        return real(stored, password)

    monkeypatch.setattr(controller.box, "verify_password", spy)
    await box.execute(Login(1, "t1", "1234"))
    with pytest.raises(Refused, match="wrong_password"):
        await box.execute(Login(2, "t2", "0000"))
    assert len(threads) == 2
    assert all(t is not threading.main_thread() for t in threads)
    assert box.engine.state.window(1).teller == "t1"
    assert box.engine.state.window(2).teller is None


async def test_the_kiosks_sign_out_and_in_on_their_schedule_by_themselves(
        tmp_path: Path) -> None:
    """A9: the example signs its kiosks out at 17:30 and in at 08:00, nobody touching them."""
    from controller.clock import ManualClock
    from controller.engine import IssueTicket

    from .conftest import example_config

    clock = ManualClock(1795599000.0)  # Wed 2026-11-25 17:30:00 +08:00, less 10 minutes
    clock.advance(-600)
    async with Box(example_config(), tmp_path / "data", clock, tick_s=0.01) as box:
        assert box.engine.state.kiosk_open  # starting the box signs its kiosks in
        await asyncio.sleep(0.05)  # the ticker's first look at the schedule: 17:20, open
        clock.advance(601)  # 17:30:01
        await wait_for(lambda: not box.engine.state.kiosk_open, 5, "signed out at 17:30")
        with pytest.raises(Refused) as refused:
            await box.execute(IssueTicket(queue="A"))
        assert refused.value.code == "kiosk_signed_out"
        clock.advance(14.5 * 3600)  # Thursday 08:00:01
        await wait_for(lambda: box.engine.state.kiosk_open, 5, "signed in at 08:00")

