"""The expected wait a ticket shows (issue 17, "Screens that help"): on the kiosk's answer
and on paper, from the business's recent handling times, the estimate the public status
uses (controller/views.py ``expected_wait``, protocols/appointment.py ``wait_minutes``)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator

import httpx
import pytest

from common.clock import ManualClock
from controller import views
from controller.box import Box
from controller.engine import IssueTicket, Login, State
from controller.engine.commands import (
    CallBack,
    CallNext,
    Command,
    Delivered,
    Finish,
    Hold,
    NoShow,
    Rate,
    Transfer,
)
from controller.errors import Refused
from controller.views import LOOK_BACK, RECENT_SERVICES, service_minutes, status_view
from controller.web import create_app
from protocols.ticket import wait_text
from sim.printer import SimPrinter
from tests.printer_support import printer_running


async def serve(box: Box, clock: ManualClock, seconds: float, n: int = 1) -> None:
    """Window 1 serves ``n`` customers of business A, ``seconds`` each."""
    for _ in range(n):
        await box.execute(IssueTicket(queue="A"))
        await box.execute(CallNext(1))
        clock.advance(seconds)
        await box.execute(Finish(1))


async def test_handling_time_is_the_mean_of_the_latest_services_else_the_configured(
        box: Box, clock: ManualClock) -> None:
    configured = box.config.queue("A")
    assert configured is not None
    assert service_minutes(box.engine.state, box.config)["A"] == configured.service_minutes
    await box.execute(Login(1, "t1", "1234"))
    await serve(box, clock, 600, n=RECENT_SERVICES)  # ten slow services early on
    await serve(box, clock, 120, n=RECENT_SERVICES)  # then ten of two minutes: these count
    state = box.engine.state
    assert service_minutes(state, box.config)["A"] == 2.0
    view = status_view(state, box.config, clock.now())  # what the public status reads
    assert {q["id"]: q["service_minutes"] for q in view["queues"]}["A"] == 2.0


async def test_the_estimate_looks_back_over_a_bounded_number_of_tickets(
        box: Box, clock: ManualClock) -> None:
    """Each ticket answer estimates the wait: it reads the day's latest LOOK_BACK tickets,
    not the whole day, so a busy day does not make every answer slower."""
    configured = box.config.queue("A")
    assert configured is not None
    await box.execute(Login(1, "t1", "1234"))
    await serve(box, clock, 120)  # one service of two minutes, early in the day
    assert service_minutes(box.engine.state, box.config)["A"] == 2.0
    await serve(box, clock, 0, n=LOOK_BACK)  # then tickets that tell no handling time
    assert service_minutes(box.engine.state, box.config)["A"] == configured.service_minutes


async def test_the_box_keeps_the_same_handling_times_as_a_scan_without_scanning(
        box: Box, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kiosk reads the handling times the box keeps from its events (a scan of the
    latest tickets on every answer made answers slower with a long queue): over a random
    day of issues, calls, services, no-shows, holds, transfers, ratings and deliveries
    (recorded after the ticket was served, as under load), they are the
    scan's after every step, and the box scanned once, at the start."""
    monkeypatch.setattr(views, "LOOK_BACK", 40)  # so that services also leave the window
    scan = views._scan
    scans: list[int] = []

    def counted(state: State) -> views.Served:
        scans.append(1)
        return scan(state)

    monkeypatch.setattr(views, "_scan", counted)
    rng = random.Random(19)
    for n in (1, 2, 3):
        await box.execute(Login(n, f"t{n}", "1234"))
    configured = box.config.queue("A")
    assert configured is not None
    # as under load: a kiosk's ticket is served before its delivery is recorded
    [issued] = await box.execute(IssueTicket(queue="A", confirm=True))
    await box.execute(CallNext(1))
    clock.advance(60)
    await box.execute(Finish(1))
    assert box.services.minutes(box.engine.state, box.config)["A"] == 1.0
    await box.execute(Delivered(issued["number"], "printed"))
    assert box.services.minutes(box.engine.state, box.config)["A"] == 1.0
    served_some = False
    for step in range(600):
        w = rng.choice((1, 2, 3))
        number = rng.choice(list(box.engine.state.by_number) or ["A001"])
        steps: list[Command] = [
            IssueTicket(queue=rng.choice("AB")), CallNext(w), Finish(w), NoShow(w), Hold(w),
            CallBack(w), Transfer(w, to_queue="B"), Transfer(w, to_queue="A", number=number),
            Rate(w, 5), IssueTicket(queue="A", confirm=True), Delivered(number, "printed")]
        cmd = rng.choices(steps, weights=[8, 6, 6, 1, 1, 1, 1, 1, 1, 3, 3])[0]
        clock.advance(rng.choice((0, 1, 5, 30, 90)))  # a morning, not past the day
        with contextlib.suppress(Refused):  # many a random step is refused: fine
            await box.execute(cmd)
        state = box.engine.state
        scanned = service_minutes(state, box.config)
        assert box.services.minutes(state, box.config) == scanned, (step, cmd)
        held = sum(len(services) for services in box.services.served.values())
        assert held <= 2 * views.LOOK_BACK * len(box.config.queues)  # bounded, not the day's
        served_some = served_some or scanned["A"] != configured.service_minutes
    assert served_some and len(box.engine.state.tickets) > 2 * views.LOOK_BACK
    assert len(scans) == 1


@pytest.fixture
async def printer(box: Box) -> AsyncIterator[SimPrinter]:
    async with printer_running(box) as (_, sim):
        yield sim


async def test_the_kiosk_answer_and_the_paper_ticket_show_the_expected_wait(
        box: Box, clock: ManualClock, printer: SimPrinter) -> None:
    await box.execute(Login(1, "t1", "1234"))
    await box.execute(Login(2, "t2", "1234"))  # two windows of business A open
    await serve(box, clock, 180, n=2)  # three minutes a customer lately
    for _ in range(4):
        await box.execute(IssueTicket(queue="A"))
    transport = httpx.ASGITransport(app=create_app(box))
    async with httpx.AsyncClient(transport=transport, base_url="http://box") as http:
        r = await http.post("/api/tickets", json={"queue": "A"})
    assert r.status_code == 201, r.text
    ticket = r.json()
    assert ticket["ahead"] == 4 and ticket["wait_minutes"] == 6  # 4 × 3 min over 2 windows
    [printed] = await printer.wait_tickets(1)  # only the kiosk's ticket is printed
    assert printed.number == ticket["number"]
    assert "预计等待约6分钟" in printed.lines


def test_the_wait_reads_the_same_in_both_languages() -> None:
    assert wait_text(6) == ("预计等待约6分钟", "Expected wait: about 6 min")
    assert wait_text(0) == ("无需等待,请留意叫号", "No wait: listen for your number")
