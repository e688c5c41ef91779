"""The box around the engine: what the event loop must never wait on."""

from __future__ import annotations

import threading

import pytest

import controller.box
from controller.box import Box
from controller.engine import Login
from controller.errors import Refused


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
