"""GPIO: a ticket button press issues a ticket; LEDs show status; the buzzer sounds alarms."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from common.clock import ManualClock
from controller.box import Box
from controller.engine import commands as c
from tests.conftest import example_config
from tests.gpio_support import panel_on, press


class Ticks:
    """The repeat guard's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_button_press_issues_ticket(box: Box) -> None:
    async with panel_on(box, ticks=Ticks()) as (panel, factory, presses):
        press(factory, 17)
        got = await asyncio.wait_for(presses.get(), 5)
    assert (got.queue, got.ok, got.number, got.code) == ("A", True, "A001", "issued")
    assert got.ticket is not None and got.ticket["queue_name"] == "个人业务"
    assert got.printed is None and got.kiosk is None  # no printer; every kiosk page shows it
    t = box.engine.state.by_num("A001")
    assert t is not None and t.channel == "button"
    assert panel.presses == {"A": 1}


async def test_bounce_gives_one_ticket_then_next_press_another(box: Box) -> None:
    ticks = Ticks()
    async with panel_on(box, ticks=ticks) as (panel, factory, presses):
        for _ in range(4):  # a bouncing contact: four edges within a few milliseconds
            press(factory, 17)
            ticks.now += 0.005
        first = await asyncio.wait_for(presses.get(), 5)
        ticks.now += 1.0
        press(factory, 17)
        second = await asyncio.wait_for(presses.get(), 5)
    assert (first.number, second.number) == ("A001", "A002")
    assert panel.ignored == 3
    assert len(box.engine.state.tickets) == 2


async def test_press_from_gpiozero_thread_crosses_into_the_loop(box: Box) -> None:
    async with panel_on(box, ticks=Ticks()) as (_, factory, presses):
        worker = threading.Thread(target=press, args=(factory, 27))
        worker.start()
        worker.join()
        got = await asyncio.wait_for(presses.get(), 5)
    assert got.ok and got.number == "F001"


async def test_refused_press_is_counted(box: Box) -> None:
    await box.execute(c.PauseQueue("A", "系统维护"))
    async with panel_on(box, ticks=Ticks()) as (panel, factory, presses):
        press(factory, 17)
        got = await asyncio.wait_for(presses.get(), 5)
    assert not got.ok and got.code == "queue_paused" and "系统维护" in got.message
    assert panel.refusals == {"queue_paused": 1}


async def serve_one(box: Box) -> None:
    await box.execute(c.Login(1, "t1", "1234"))
    await box.execute(c.IssueTicket(queue="A"))
    await box.execute(c.CallNext(1))
    await box.execute(c.Finish(1, ask_rating=True))


async def test_bad_rating_sounds_buzzer(box: Box) -> None:
    await serve_one(box)
    async with panel_on(box) as (panel, factory, _):
        buzzer = factory.pin(26)
        buzzer.clear_states()
        await box.execute(c.Rate(1, 1))  # 很不满意: a bad rating (C2)
        assert buzzer.state is True  # sounding as soon as the rating is recorded
        await asyncio.wait_for(panel.alarm_done(), 5)
        assert buzzer.state is False
    assert [s.state for s in buzzer.states] == [False, True, False, True, False]
    assert panel.alarms == {"bad_rating": 1}


async def test_good_rating_is_silent(box: Box) -> None:
    await serve_one(box)
    async with panel_on(box) as (panel, factory, _):
        factory.pin(26).clear_states()
        await box.execute(c.Rate(1, 5))
        assert factory.pin(26).state is False
    assert panel.alarms == {}
    assert len(factory.pin(26).states) == 1


async def test_lobby_alert_sounds_buzzer(clock: ManualClock, tmp_path: Path) -> None:
    cfg = example_config("thresholds.lobby_alert_waiting=2")
    async with Box(cfg, tmp_path / "data", clock) as box, panel_on(box) as (panel, factory, _):
        for _ in range(3):
            await box.execute(c.IssueTicket(queue="A"))
        assert factory.pin(26).state is True
        await asyncio.wait_for(panel.alarm_done(), 5)
        assert panel.alarms == {"lobby_alert": 1}


async def test_status_leds(box: Box) -> None:
    box.health.report("printer", "ok")
    async with panel_on(box) as (_, factory, _):
        ready, fault, link = factory.pin(5), factory.pin(6), factory.pin(13)
        assert (ready.state, fault.state, link.state) == (True, False, False)
        box.health.report("printer", "fault", "paper_out")
        box.health.report("uplink", "ok")
        assert (fault.state, link.state) == (True, True)
        await box.execute(c.SignOut())
        assert ready.state is False
        box.health.report("uplink", "offline", "broker unreachable")
        assert link.state is False
    assert box.health.devices["gpio"].state == "ok"


async def test_the_printer_fault_led_lights_while_any_kiosks_printer_is_down(box: Box) -> None:
    box.health.report("printer.2", "fault", "paper_out")  # [[kiosks]]: one printer a kiosk
    box.health.report("printer.1", "ok")
    async with panel_on(box) as (_, factory, _):
        fault = factory.pin(6)
        assert fault.state is True  # seen at start
        box.health.report("printer.1", "offline", "no_answer")
        box.health.report("printer.2", "ok")  # kiosk 2 refilled: kiosk 1 still down
        assert fault.state is True
        box.health.report("printer.1", "ok")
        assert fault.state is False
