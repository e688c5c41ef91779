"""Out of paper mid-day, through the HTTP API, the real driver and the virtual printer.

The customer always gets a number (on screen when not on paper), the journal records why
it did not print, a reprint after the refill prints it, and no number is lost or doubled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from controller.box import Box
from controller.kiosk import KioskRelay
from controller.web import create_app
from drivers.printer import PrinterComponent
from sim.printer import SimPrinter
from tests.gpio_support import panel_on, press
from tests.printer_support import printer_running
from tests.web_events_support import take as next_message


@pytest.fixture
async def running(box: Box) -> AsyncIterator[tuple[PrinterComponent, SimPrinter]]:
    async with printer_running(box) as running:
        yield running


@pytest.fixture
async def http(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(box))
    async with httpx.AsyncClient(transport=transport, base_url="http://box") as client:
        yield client


async def take(http: httpx.AsyncClient, queue: str = "A") -> dict[str, Any]:
    r = await http.post("/api/tickets", json={"queue": queue})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_out_of_paper_mid_day(box: Box, running: tuple[PrinterComponent, SimPrinter],
                                    http: httpx.AsyncClient) -> None:
    comp, sim = running
    first = await take(http)
    assert (first["number"], first["printed"]) == ("A001", True)

    sim.set_paper("out")  # the roll runs out between two customers
    second = await take(http)
    third = await take(http, "T")
    for view, number in ((second, "A002"), (third, "T0001")):
        assert view["number"] == number  # the customer still has a number, on screen
        assert view["printed"] is False
        assert view["print_error"]["code"] == "paper_out"
        assert "缺纸" in view["print_error"]["message"]
        assert "out of paper" in view["print_error"]["message_en"]
    health = (await http.get("/api/health")).json()["devices"]
    assert {"name": "printer", "state": "fault", "detail": "paper_out"}.items() <= \
        next(d for d in health if d["name"] == "printer").items()

    records = await box.read_events(0, 1000)
    failed = [r.event for r in records if r.event["type"] == "ticket_print_failed"]
    assert [(e["number"], e["reason"]) for e in failed] == [("A002", "paper_out"),
                                                           ("T0001", "paper_out")]
    listed = (await http.get("/api/tickets/A002")).json()
    assert listed["print_error"] == "paper_out"

    sim.set_paper("ok")  # the lobby manager refills the printer
    assert comp.printer is not None
    assert await comp.printer.check() == "ok"
    for view in (second, third):  # the kiosk that issued them reprints them
        number = view["number"]
        r = await http.post(f"/api/tickets/{number}/reprint",
                            json={"token": view["reprint_token"]})
        assert r.status_code == 200, r.text
        assert (r.json()["number"], r.json()["printed"], r.json()["reprint"]) == (
            number, True, True)
    fourth = await take(http)
    assert (fourth["number"], fourth["printed"]) == ("A003", True)

    await sim.wait_tickets(4)
    assert [t.number for t in sim.tickets] == ["A001", "A002", "T0001", "A003"]
    assert ["补打" in t.lines for t in sim.tickets] == [False, True, True, False]
    numbers = [t["number"] for t in (await http.get("/api/tickets")).json()["tickets"]]
    assert sorted(numbers) == ["A001", "A002", "A003", "T0001"]  # none lost, none doubled
    assert box.health.devices["printer"].state == "ok"


async def test_printer_unplugged_the_number_still_stands(
        box: Box, running: tuple[PrinterComponent, SimPrinter], http: httpx.AsyncClient) -> None:
    _, sim = running
    sim.set_power(False)
    view = await take(http)
    assert (view["number"], view["printed"]) == ("A001", False)
    assert view["print_error"]["code"] == "no_answer"
    assert box.health.devices["printer"].state == "offline"
    sim.set_power(True)
    r = await http.post("/api/tickets/A001/reprint", json={"token": view["reprint_token"]})
    assert r.json()["printed"] is True
    [t] = await sim.wait_tickets(1)
    assert t.number == "A001"


async def test_without_a_printer_the_api_says_so(box: Box, http: httpx.AsyncClient) -> None:
    view = await take(http)
    assert view["printed"] is None  # no printer component: the kiosk shows the number only


async def test_a_ticket_button_out_of_paper_shows_the_number_the_reason_and_a_reprint(
        box: Box, running: tuple[PrinterComponent, SimPrinter]) -> None:
    """A customer presses the business's button on the box with the paper out: the kiosk
    page shows the number and why it did not print, and its reprint button prints it."""
    comp, sim = running
    app = create_app(box)
    kiosk = app.state.screens["hub"].stream("kiosk", None, "kiosk")
    await next_message(kiosk, "status")
    sim.set_paper("out")
    async with panel_on(box) as (panel, factory, _):
        relay = KioskRelay([panel.listeners])
        wiring = asyncio.create_task(relay.run(box))
        await asyncio.wait_for(relay.attached.wait(), 5)
        press(factory, 17)  # business A
        shown = (await asyncio.wait_for(next_message(kiosk, "outcome"), 5))["data"]
        wiring.cancel()
        await asyncio.gather(wiring, return_exceptions=True)
    await kiosk.aclose()
    ticket = shown["ticket"]
    assert (ticket["number"], ticket["queue_name"], ticket["ahead"]) == ("A001", "个人业务", 0)
    why = ticket["print_error"]
    assert ticket["printed"] is False and why["code"] == "paper_out"
    assert "缺纸" in why["message"] and "out of paper" in why["message_en"]

    sim.set_paper("ok")  # the lobby manager refills the printer
    assert comp.printer is not None and await comp.printer.check() == "ok"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://box") as http:
        nobody = await http.post("/api/tickets/A001/reprint", json={"token": "guessed"})
        assert nobody.status_code == 403, nobody.text
        r = await http.post("/api/tickets/A001/reprint", json={"token": ticket["reprint_token"]})
    assert r.status_code == 200 and (r.json()["number"], r.json()["printed"]) == ("A001", True)
    [printed] = await sim.wait_tickets(1)
    assert printed.number == "A001" and "补打" in printed.lines
