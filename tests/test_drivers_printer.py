"""The printer driver against the virtual printer, over a real TCP socket and a real pty."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from common.errors import ConfigError
from controller.box import Box
from controller.compose import build_components, printer_component
from controller.config import Config
from controller.engine import commands as c
from controller.kiosk import issue_and_print
from drivers.printer import (
    EscposPrinter,
    FdLink,
    Link,
    NetworkLink,
    PrinterComponent,
    printer_settings,
)
from protocols.ticket import get_profile
from sim.printer import SimPrinter
from tests.conftest import example_config
from tests.printer_support import wait_health
from tests.ticket_support import T_TICKET, ticket

BASE = "http://10.0.0.5:8080"


class Reports(list[tuple[str, str]]):
    def __call__(self, state: str, detail: str) -> None:
        self.append((state, detail))


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimPrinter]:
    async with SimPrinter(tmp_path / "sim", png=False) as s:
        yield s


async def link_to(sim: SimPrinter, how: str) -> Link:
    if how == "network":
        return NetworkLink("127.0.0.1", await sim.serve_tcp())
    path = sim.attach_pty()
    return FdLink(path, serial={"baudrate": 115200} if how == "serial" else None)


@contextlib.asynccontextmanager
async def driver(sim: SimPrinter, how: str = "network", profile: str = "kiosk80",
                 **kw: Any) -> AsyncIterator[tuple[EscposPrinter, Reports]]:
    reports = Reports()
    printer = EscposPrinter(get_profile(profile), link=await link_to(sim, how),
                            qr_base_url=BASE, report=reports, status_timeout=0.3, **kw)
    try:
        yield printer, reports
    finally:
        await printer.close()


@pytest.mark.parametrize("how", ["network", "serial", "usb"])
async def test_prints_a_ticket_over_each_link(sim: SimPrinter, how: str) -> None:
    async with driver(sim, how) as (printer, reports):
        outcome = await printer.print_ticket(ticket())
        assert outcome.ok
        [t] = await sim.wait_tickets(1)
    assert t.number == "A023"
    assert "您前面还有7位客户在等待办理业务" in t.lines
    assert t.qr == [("native", f"{BASE}/t/20261125-A023")]
    assert reports[-1] == ("ok", "")
    assert sim.status_queries == 8  # four before the ticket, four after


async def test_image_qr_on_a_58mm_printer(sim: SimPrinter) -> None:
    sim.encoding = sim._interp.firmware_encoding = "gbk"
    async with driver(sim, "serial", "pos58") as (printer, _):
        assert (await printer.print_ticket(T_TICKET)).ok
        [t] = await sim.wait_tickets(1)
    assert t.number == "T0001"
    assert "该叫号纸只能办理挂失改密业务" in t.lines
    assert t.qr == [("image", f"{BASE}/t/20261125-T0001")]


async def test_out_of_paper_fails_clearly_and_nothing_waits_to_print(sim: SimPrinter) -> None:
    sim.set_paper("out")
    async with driver(sim) as (printer, reports):
        outcome = await printer.print_ticket(ticket())
        assert not outcome.ok
        assert outcome.reason == "paper_out"
        assert "缺纸" in outcome.message and "补打" in outcome.message
        assert "out of paper" in outcome.message_en
        assert reports[-1] == ("fault", "paper_out")
        assert sim.tickets == [] and sim._held == b""  # no stale ticket after the refill
        sim.set_paper("ok")
        assert sim.tickets == []
        assert (await printer.print_ticket(ticket(reprint=True))).ok
        [t] = await sim.wait_tickets(1)
    assert t.number == "A023" and "补打" in t.lines
    assert reports[-1] == ("ok", "")


async def test_paper_near_end_prints_and_warns(sim: SimPrinter) -> None:
    sim.set_paper("near_end")
    async with driver(sim) as (printer, reports):
        assert (await printer.print_ticket(ticket())).ok
    assert reports[-1] == ("warning", "paper_near_end")


async def test_cover_open(sim: SimPrinter) -> None:
    sim.set_cover(True)
    async with driver(sim) as (printer, reports):
        outcome = await printer.print_ticket(ticket())
        assert (outcome.ok, outcome.reason) == (False, "cover_open")
        assert "纸仓盖" in outcome.message
        assert reports[-1] == ("fault", "cover_open")
        sim.set_cover(False)
        assert await printer.check() == "ok"


@pytest.mark.parametrize("how", ["network", "serial"])
async def test_switched_off_printer_is_offline(sim: SimPrinter, how: str) -> None:
    sim.set_power(False)
    async with driver(sim, how) as (printer, reports):
        outcome = await printer.print_ticket(ticket())
        assert (outcome.ok, outcome.reason) == (False, "no_answer")
        assert reports[-1] == ("offline", "no_answer")
        sim.set_power(True)
        assert (await printer.print_ticket(ticket())).ok
    assert len(sim.tickets) == 1


async def test_nobody_listening_is_not_connected(unused_tcp_port: int) -> None:
    reports = Reports()
    printer = EscposPrinter(get_profile("kiosk80"), link=NetworkLink("127.0.0.1", unused_tcp_port),
                            qr_base_url=BASE, report=reports)
    outcome = await printer.print_ticket(ticket())
    assert (outcome.ok, outcome.reason) == (False, "not_connected")
    assert "未连接" in outcome.message
    assert reports == [("offline", "not_connected")]
    await printer.close()


async def test_reconnects_after_the_link_drops(sim: SimPrinter) -> None:
    async with driver(sim) as (printer, _):
        assert (await printer.print_ticket(ticket())).ok
        sim.drop_connections()
        outcome = await printer.print_ticket(ticket(number="A024", id="20261125-A024"))
        if not outcome.ok:  # the loss may be noticed by this ticket: the next one reconnects
            assert outcome.reason == "not_connected"
            outcome = await printer.print_ticket(ticket(number="A024", id="20261125-A024"))
        assert outcome.ok
        await sim.wait_tickets(2)
    assert [t.number for t in sim.tickets] == ["A023", "A024"]


async def test_paper_running_out_mid_ticket_is_a_failure(sim: SimPrinter) -> None:
    sim.run_out_after(40)
    async with driver(sim) as (printer, reports):
        outcome = await printer.print_ticket(ticket())
        assert (outcome.ok, outcome.reason) == (False, "paper_out")
        assert reports[-1] == ("fault", "paper_out")
        sim.set_paper("ok")  # the rest of that ticket comes out: the same number, not a new one
        assert (await printer.print_ticket(ticket(reprint=True))).ok
        await sim.wait_tickets(2)
    assert [t.number for t in sim.tickets] == ["A023", "A023"]


async def test_tickets_printed_at_once_come_out_whole_and_in_turn(sim: SimPrinter) -> None:
    async with driver(sim) as (printer, _):
        infos = [ticket(number=f"A{n:03d}", id=f"20261125-A{n:03d}") for n in range(1, 6)]
        outcomes = await asyncio.gather(*(printer.print_ticket(i) for i in infos))
        assert all(o.ok for o in outcomes)
        await sim.wait_tickets(5)
    assert [t.number for t in sim.tickets] == ["A001", "A002", "A003", "A004", "A005"]
    assert sim.rejected == 0


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "key"), [
    (["printer.backend=\"network\""], "printer.host"),
    (["printer.backend=\"serial\""], "printer.device"),
    (["printer.profile=\"tm-nope\""], "printer.profile"),
    (["printer.encoding=\"big5\""], "printer.encoding"),
    (["printer.qr_base_url=\"queue.example\""], "printer.qr_base_url"),
    (["printer.paper_mm=76"], "printer.paper_mm"),
    (["printer.colour=\"red\""], "printer.colour"),
])
def test_bad_printer_config_names_the_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        printer_settings(example_config(*overrides))
    assert err.value.key == key


def test_backend_follows_hardware(config: Config) -> None:
    assert printer_settings(config).backend == "sim"
    assert printer_component(example_config("hardware=\"none\""), Path()) is None
    real = printer_settings(example_config("hardware=\"real\""))
    assert (real.backend, real.device) == ("usb", "/dev/usb/lp0")
    net = printer_settings(example_config("printer.backend=\"network\"",
                                          "printer.host=\"10.1.2.3\""))
    assert (net.backend, net.host, net.port) == ("network", "10.1.2.3", 9100)
    assert printer_settings(config).qr_base_url == "http://127.0.0.1:8080"


def test_profile_overrides_from_config() -> None:
    s = printer_settings(example_config("printer.profile=\"kiosk80\"", "printer.paper_mm=58",
                                        "printer.encoding=\"utf-8\"", "printer.qr=\"image\"",
                                        "printer.cut=\"none\""))
    p = s.resolved_profile()
    assert (p.paper_mm, p.dots, p.columns, p.encoding, p.qr, p.cutter) == (
        58, 384, 32, "utf-8", "image", "none")


def test_the_example_branch_gets_a_printer(config: Config, tmp_path: Path) -> None:
    comps = build_components(config, tmp_path)
    assert [type(x) for x in comps if x.name == "printer"] == [PrinterComponent]


# --- the component -----------------------------------------------------------------------


async def test_the_component_runs_the_simulated_printer_it_is_handed(box: Box) -> None:
    """The driver does not import the simulator: the composition root hands it a maker,
    called when the component runs (building opens nothing)."""
    made: list[SimPrinter] = []

    def simulator() -> SimPrinter:
        made.append(SimPrinter(png=False))
        return made[-1]

    settings = printer_settings(box.config)
    comp = PrinterComponent(settings, simulator=simulator)
    assert made == [] and comp.sim is None
    task = asyncio.create_task(comp.run(box))
    try:
        await wait_health(box, "printer", "ok")
        await issue_and_print(box, c.IssueTicket(queue="T"))
        [sim] = made
        assert comp.sim is sim and [t.number for t in await sim.wait_tickets(1)] == ["T0001"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with pytest.raises(ConfigError, match=r"printer\.backend"):
        PrinterComponent(settings)  # backend "sim" and nothing to run


async def test_component_runs_the_sim_and_writes_bin_txt_png(box: Box, tmp_path: Path) -> None:
    comp = printer_component(box.config, box.data_dir)
    assert comp is not None
    task = asyncio.create_task(comp.run(box))
    try:
        await wait_health(box, "printer", "ok")
        assert box.printer is comp.printer is not None
        info, outcome = await issue_and_print(box, c.IssueTicket(queue="T"))
        assert outcome is not None and outcome.ok
        assert isinstance(comp.sim, SimPrinter)
        [t] = await comp.sim.wait_tickets(1)
        assert t.number == info["number"] == "T0001"
        out = box.data_dir / "sim" / "printer"
        assert (out / "T0001.bin").read_bytes() == t.raw
        assert "[5x] T0001" in (out / "T0001.txt").read_text(encoding="utf-8")
        from PIL import Image

        with Image.open(out / "T0001.png") as png:
            assert png.width == 576 and png.height > 600
        comp.sim.set_paper("out")
        assert comp.printer is not None
        await comp.printer.check()
        assert box.health.devices["printer"].state == "fault"
        assert box.health.devices["printer"].detail == "paper_out"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert box.printer is None
