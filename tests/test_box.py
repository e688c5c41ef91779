"""The box around the engine: what the event loop must never wait on."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

import controller.box
from common.clock import ManualClock
from controller.box import Box
from controller.config import Config
from controller.engine import Login
from controller.errors import Refused
from controller.ports import Issued, PrintOutcome
from drivers.card_reader import CardReader
from sim.card_swipes import SimSwipes
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


async def test_the_box_checks_every_login_itself_whatever_the_caller_claims(box: Box) -> None:
    """The verified-login fact is the box's own: a command claiming ``verified=True`` with
    a wrong password is refused, and the engine is never left holding an answer."""
    with pytest.raises(Refused, match="wrong_password"):
        await box.execute(Login(1, "t1", "0000", verified=True))
    await box.execute(Login(1, "t1", "1234", verified=False))
    assert box.engine.state.window(1).teller == "t1"


async def test_the_kiosks_sign_out_and_in_on_their_schedule_by_themselves(
        tmp_path: Path) -> None:
    """A9: the example signs its kiosks out at 17:30 and in at 08:00, nobody touching them."""
    from common.clock import ManualClock
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



class FakePrinter:
    """A ticket printer port that records what it was asked to print."""

    def __init__(self) -> None:
        self.printed: list[str] = []

    async def print_ticket(self, ticket: dict[str, Any]) -> PrintOutcome:
        self.printed.append(ticket["number"])
        return PrintOutcome(True)


class FakeDesk:
    """A ticket desk port that records what the devices asked for and refuses it."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    async def issue(self, *, channel: str, kiosk: str, queue: str | None = None,
                    card: str | None = None) -> Issued:
        self.asked.append({"channel": channel, "kiosk": kiosk, "queue": queue, "card": card})
        return Issued(False, "queue_paused", "暂停", "paused")


async def test_a_box_takes_its_devices_through_its_constructor(
        config: Config, clock: ManualClock, tmp_path: Path) -> None:
    """No monkeypatching: the printer port and the ticket desk a card reader uses are
    handed to the box; the core prints through the one, the driver asks the other."""
    printer = FakePrinter()
    async with Box(config, tmp_path / "data", clock, printer=printer) as box:
        issued = await box.tickets.issue(queue="A", channel="button", kiosk="gpio")
        assert issued.ok and issued.printed == PrintOutcome(True)
        assert issued.ticket is not None and printer.printed == [issued.ticket["number"]]
    desk = FakeDesk()
    async with Box(config, tmp_path / "data2", clock, tickets=desk) as box:
        reader = CardReader(source=SimSwipes(), name="r1", kiosk="k1")
        outcome = await reader.handle(box, ";6225880137001237=2812101?")
        assert desk.asked == [{"channel": "card", "kiosk": "k1", "queue": None,
                               "card": "6225880137001237"}]
        assert outcome.code == "queue_paused" and not box.engine.state.tickets
