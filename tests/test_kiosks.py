"""A branch with two kiosks on one box (``[[kiosks]]``, SPEC I4, A2), through the HTTP API,
the real printer driver and two virtual printers: one numbering, each ticket on its own
kiosk's paper, a kiosk whose printer is out of paper out of service while the other goes
on, and a number nobody holds voided at its own kiosk only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.clock import ManualClock
from common.errors import ConfigError
from controller.box import Box
from controller.compose import build_components, printer_components
from controller.config import Config
from controller.kiosk import PrintOutcome
from controller.uplink.commands import merge_pushed
from drivers.card_reader import CardReader
from drivers.gpio import GpioPanel
from drivers.printer import PrinterComponent
from sim.printer import SimPrinter
from tests.conftest import example_config
from tests.kiosks_support import TWO_KIOSKS, kiosk_api, printers_running, two_kiosks


@pytest.fixture
def config() -> Config:
    return two_kiosks()


@pytest.fixture
async def sims(box: Box) -> AsyncIterator[dict[str, SimPrinter]]:
    async with printers_running(box) as sims:
        yield sims


@pytest.fixture
async def http(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    async with kiosk_api(box) as api:
        yield api


async def take(http: httpx.AsyncClient, kiosk: str, queue: str = "A") -> httpx.Response:
    return await http.post("/api/tickets", json={"queue": queue, "kiosk": kiosk})


def printed_at(sim: SimPrinter) -> list[str]:
    """The numbers a virtual printer printed (the big line of each ticket)."""
    return sorted(t.number for t in sim.tickets if t.number)


async def test_two_kiosks_issuing_at_once_share_one_numbering(
        box: Box, sims: dict[str, SimPrinter], http: httpx.AsyncClient) -> None:
    kiosks = ["1", "2"] * 12
    answers = await asyncio.gather(*(take(http, k) for k in kiosks))
    assert all(r.status_code == 201 for r in answers), [r.text for r in answers]
    numbers = [r.json()["number"] for r in answers]
    # one sequence for the business: no duplicate, no gap, whichever kiosk asked
    assert sorted(numbers) == [f"A{n:03d}" for n in range(1, 25)]
    assert all(r.json()["printed"] is True for r in answers)
    # each ticket came out of the printer of the kiosk it was taken at, and only there
    for kiosk in ("1", "2"):
        mine = sorted(n for n, k in zip(numbers, kiosks, strict=True) if k == kiosk)
        await sims[kiosk].wait_tickets(len(mine))
        assert printed_at(sims[kiosk]) == mine
    assert (box.data_dir / "sim" / "printer" / "2" / f"{numbers[1]}.txt").exists()
    issued = [r.event for r in await box.read_events(0, 1000)
              if r.event["type"] == "ticket_issued"]
    assert {e["kiosk"] for e in issued} == {"1", "2"}


async def test_out_of_paper_takes_only_its_own_kiosk_out_of_service(
        box: Box, sims: dict[str, SimPrinter], http: httpx.AsyncClient) -> None:
    assert (await take(http, "1")).json()["number"] == "A001"
    sims["1"].set_paper("out")  # kiosk 1's roll runs out between two customers

    # the customer already at kiosk 1 keeps the number taken, on the screen, as on a box
    # with one kiosk; the printer now reports paper_out
    held = (await take(http, "1")).json()
    assert (held["number"], held["printed"]) == ("A002", False)
    assert held["print_error"]["code"] == "paper_out"

    # from now on kiosk 1 sends its customers to kiosk 2 and takes no number itself
    r = await take(http, "1")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "kiosk_out_of_service"
    assert "二号取号机" in r.json()["error"]["message"]
    assert "Kiosk 2" in r.json()["error"]["message_en"]
    # kiosk 2 is unaffected: its tickets print, the numbering goes on with no gap
    for expected in ("A003", "A004"):
        got = (await take(http, "2")).json()
        assert (got["number"], got["printed"]) == (expected, True)

    health = (await http.get("/api/health")).json()
    by_id = {k["id"]: k for k in health["kiosks"]}
    assert by_id["1"]["in_service"] is False
    assert by_id["1"]["refusal"]["code"] == "kiosk_out_of_service"
    assert {"name": "printer.1", "state": "fault", "detail": "paper_out"}.items() <= \
        by_id["1"]["devices"][0].items()
    assert by_id["2"]["in_service"] is True
    assert [d["name"] for d in by_id["2"]["devices"]] == ["printer.2"]

    # the refill: kiosk 1's page lets the customer reprint the held ticket on its printer
    sims["1"].set_paper("ok")
    r = await http.post("/api/tickets/A002/reprint",
                        json={"token": held["reprint_token"], "kiosk": "1"})
    assert (r.status_code, r.json()["printed"]) == (200, True)
    await sims["1"].wait_tickets(2)
    assert printed_at(sims["1"]) == ["A001", "A002"]
    assert (await take(http, "1")).json()["number"] == "A005"  # in service again


async def test_when_every_printer_is_down_each_kiosk_still_gives_numbers_on_screen(
        box: Box, sims: dict[str, SimPrinter], http: httpx.AsyncClient) -> None:
    for sim in sims.values():
        sim.set_paper("out")
    for kiosk in ("1", "2", "1", "2"):  # nowhere to send the customer: as with one kiosk
        r = await take(http, kiosk)
        assert (r.status_code, r.json()["printed"]) == (201, False)
    assert [k["in_service"] for k in (await http.get("/api/health")).json()["kiosks"]] == \
        [True, True]


class StuckPrinter:
    """A printer that never answers: the box stops while kiosk 1 prints."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()

    async def print_ticket(self, ticket: dict[str, Any]) -> PrintOutcome:
        self.asked.set()
        await asyncio.get_running_loop().create_future()  # until the box stops
        raise AssertionError("never reached")


async def test_a_number_nobody_holds_is_voided_at_its_own_kiosk_only(
        config: Config, clock: ManualClock, tmp_path: Path) -> None:
    data = tmp_path / "data"
    stuck = StuckPrinter()
    async with Box(config, data, clock) as box, printers_running(box), kiosk_api(box) as http:
        assert (await take(http, "2")).json()["number"] == "A001"
        box.printers["1"] = stuck  # kiosk 1's printer hangs mid-ticket
        hung = asyncio.create_task(take(http, "1"))
        await asyncio.wait_for(stuck.asked.wait(), 5)
        assert (await take(http, "2")).json()["number"] == "A003"
        hung.cancel()  # the box dies before kiosk 1 could answer
        with contextlib.suppress(asyncio.CancelledError):
            await hung
    async with Box(config, data, clock) as box:  # the restart
        state = box.engine.state
        assert {n: state.by_num(n).state for n in ("A001", "A002", "A003")} == {
            "A001": "waiting", "A002": "voided", "A003": "waiting"}
        voided = [r.event for r in await box.read_events(0, 1000)
                  if r.event["type"] == "ticket_voided"]
        assert [e["number"] for e in voided] == ["A002"]


async def test_a_swipe_at_kiosk_2_prints_there_and_shows_on_its_page(
        box: Box, sims: dict[str, SimPrinter]) -> None:
    readers = [c for c in build_components(box.config, box.data_dir)
               if isinstance(c, CardReader)]
    assert {(r.name, r.kiosk) for r in readers} == {("card_reader.1", "1"),
                                                   ("card_reader.2", "2")}
    at_2 = next(r for r in readers if r.kiosk == "2")
    outcome = await at_2.handle(box, ";6225880137001237=2812101?")
    assert outcome.ok and outcome.kiosk == "2"  # the kiosk relay shows it on /kiosk?id=2
    await sims["2"].wait_tickets(1)
    assert printed_at(sims["2"]) == [outcome.ticket["number"]]
    assert printed_at(sims["1"]) == []


async def test_an_unknown_kiosk_is_refused_and_one_named_by_none_is_the_first(
        box: Box, sims: dict[str, SimPrinter], http: httpx.AsyncClient) -> None:
    r = await take(http, "9")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_kiosk")
    assert (await http.get("/kiosk?id=9")).status_code == 404
    assert (await http.get("/kiosk?id=2")).status_code == 200
    # a client that names no kiosk (as before [[kiosks]]) takes its ticket at the first
    r = await http.post("/api/tickets", json={"queue": "A"})
    assert (r.status_code, r.json()["number"], r.json()["printed"]) == (201, "A001", True)
    await sims["1"].wait_tickets(1)
    assert printed_at(sims["1"]) == ["A001"]
    assert '"kiosk": "1"' in (await http.get("/kiosk")).text  # the page without ?id=


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kiosk=st.text(max_size=40))
async def test_any_kiosk_id_is_issued_at_a_configured_kiosk_or_refused(
        box: Box, http: httpx.AsyncClient, kiosk: str) -> None:
    before = len(box.engine.state.tickets)
    r = await take(http, kiosk)
    if kiosk in ("1", "2", "kiosk"):  # "kiosk": the id of a request naming none
        assert r.status_code == 201
    else:
        assert r.status_code in (404, 422), r.text  # never a 500, never a number
        assert len(box.engine.state.tickets) == before


def test_devices_that_name_no_kiosk_stand_at_the_first(tmp_path: Path) -> None:
    config = two_kiosks('card_reader.readers=[{name = "door", kind = "sim"}]')
    built = build_components(config, tmp_path)
    readers = {r.name: r.kiosk for r in built if isinstance(r, CardReader)}
    assert readers == {"card_reader.door": "1", "card_reader.1": "1", "card_reader.2": "2"}
    [panel] = [c for c in built if isinstance(c, GpioPanel)]
    assert {b.kiosk for b in panel.settings.buttons} == {"1"}


def test_without_kiosks_the_box_has_its_one_printer_as_before(tmp_path: Path) -> None:
    config = example_config()
    [printer] = printer_components(config, tmp_path)
    assert isinstance(printer, PrinterComponent)
    assert (printer.name, printer.kiosk) == ("printer", None)
    readers = [c for c in build_components(config, tmp_path) if isinstance(c, CardReader)]
    assert [(r.name, r.kiosk) for r in readers] == [("card_reader.sim", None)]


@pytest.mark.parametrize(("overrides", "key"), [
    (('kiosks=[{id = "1", name = "一号"}, {id = "1", name = "又一个"}]',), "kiosks"),
    ((TWO_KIOSKS, 'kiosks.1.printer={backend = "network"}'), "kiosks.1.printer.host"),
    ((TWO_KIOSKS, 'kiosks.0.printer={paper = 80}'), "kiosks.0.printer.paper"),
    ((TWO_KIOSKS, 'gpio.buttons=[{pin = 17, queue = "A", kiosk = "9"}]'),
     "gpio.buttons.0.kiosk"),  # a ticket button at a kiosk the branch does not have
    ((TWO_KIOSKS, 'card_reader.readers=[{name = "door", kind = "sim", kiosk = "9"}]'),
     "card_reader.readers.0.kiosk"),
    ((TWO_KIOSKS, 'kiosks.1.card_reader={readers = [{name = "r", kind = "sim", kiosk = "1"}]}'),
     "kiosks.1.card_reader.readers.0.kiosk"),
    ((TWO_KIOSKS, 'kiosks.0.card_reader={readers = [{name = "2", kind = "sim"}]}'),
     "kiosks.0.card_reader.readers.0.name"),  # kiosk 2's simulated reader has that name
])
def test_a_bad_kiosks_section_names_its_key(overrides: tuple[str, ...], key: str,
                                            tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        build_components(example_config(*overrides), tmp_path)
    assert err.value.key == key


def test_a_centre_push_keeps_the_boxs_own_kiosks() -> None:
    local = two_kiosks().model_dump(mode="json")
    pushed = {k: v for k, v in local.items() if k != "kiosks"}  # the centre knows no kiosks
    pushed["kiosks"] = [{"id": "9", "name": "别处的取号机"}]  # nor may it wire them
    merged = merge_pushed(pushed, local)
    assert [k["id"] for k in merged["kiosks"]] == ["1", "2"]
