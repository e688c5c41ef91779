"""Who the customer at the card reader is (SPEC I1): the CIF within its budget, the cache,
the local VIP table when the CIF is slow, broken or absent — said in the ticket's event —
and the account manager told of a VIP's arrival, never in the ticket's way."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from common.cif import CifClient, CifUnavailable, CustomerCache
from common.clock import ManualClock, SystemClock
from common.errors import ConfigError
from controller.box import Box
from controller.compose import customers_component
from controller.config import Config
from controller.customers import (
    CifSettings,
    CustomerChain,
    Customers,
    LocalVipTable,
    cif_settings,
)
from controller.engine import Event
from controller.web.events import public_event
from controller.web.staff import lobby_overview
from protocols.cif import CustomerInfo
from sim.cif import SIM_KEY, SimCif
from tests.uplink_support import running

VIP_CARD = "6225880137001237"  # 陈先生: in the VIP table and the CIF (manager 王芳)
VIP_ID = "410105198001012311"  # his ID card
CIF_ONLY = "6217000010009872"  # 张先生: a debit card (queue A) the CIF knows as a 4-star VIP
NOBODY = "6217000010001119"  # a debit card nobody knows (Luhn-valid)
KEYS = {SIM_KEY[0]: SIM_KEY[1]}


@contextlib.asynccontextmanager
async def sim_cif(**kw: Any) -> AsyncIterator[SimCif]:
    async with SimCif(KEYS, **kw) as cif:
        yield cif


def client(url: str, *, secret: bytes = SIM_KEY[1], timeout_s: float = 3.0) -> CifClient:
    return CifClient(url, key_id=SIM_KEY[0], secret=secret, branch="0101", clock=SystemClock(),
                     timeout_s=timeout_s)


# A long budget unless a test is about the budget: a loaded CI machine took 0.3 s to answer.
def chain(config: Config, remote: CifClient | None, *, budget_s: float = 3.0,
          cache: CustomerCache | None = None, in_flight: int = 16) -> CustomerChain:
    return CustomerChain(remote, LocalVipTable(config), budget_s=budget_s, in_flight=in_flight,
                         cache=cache if cache is not None
                         else CustomerCache(100, 600, SystemClock()))


@contextlib.asynccontextmanager
async def customers_at(box: Box, c: CustomerChain, *, notifier: Any = None,
                       **settings: Any) -> AsyncIterator[Customers]:
    comp = Customers(CifSettings(**settings), c, notifier=notifier)
    async with running(comp.run(box)):
        await asyncio.wait_for(comp.ready.wait(), 10)
        yield comp


def issued_events(box: Box) -> list[Event]:
    events: list[Event] = []
    box.listeners.append(lambda evs: events.extend(e for e in evs
                                                   if e["type"] == "ticket_issued"))
    return events


async def until(condition: Any, timeout: float = 10.0) -> None:
    """Wait for ``condition()`` (a notice posted, a late answer cached), up to ``timeout``."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)  # polling a counter the component's task updates


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def card_ticket(box: Box, card: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    answer = await box.tickets.issue(channel="card", kiosk="kiosk", card=card)
    assert answer.ok and answer.ticket is not None, answer
    return answer.ticket, time.monotonic() - started


# --- the CIF answers ----------------------------------------------------------------------


async def test_a_customer_only_the_cif_knows_gets_the_vip_ticket_it_says(box: Box) -> None:
    events = issued_events(box)
    async with sim_cif() as cif, customers_at(box, chain(box.config, client(cif.url))):
        ticket, _ = await card_ticket(box, CIF_ONLY)
        assert box.health.devices["cif"].state == "ok"
    # without the CIF this debit card is an ordinary A ticket; the CIF says VIP, 4 stars, V
    assert (ticket["number"], ticket["stars"], ticket["vip_name"]) == ("V001", 4, "张先生")
    assert ticket["customer_type"] == "vip"
    e = events[-1]
    assert (e["customer_source"], e["customer_reason"]) == ("cif", "")
    assert e["vip"] == "C000318" and e["manager"] == {"id": "M12", "name": "赵磊",
                                                      "terminal": "lobby1"}
    assert e["card"] == "6217********9872"  # the event never holds the number in clear
    assert cif.lookups == 1


async def test_an_id_card_is_asked_as_an_id(box: Box) -> None:
    async with sim_cif() as cif:
        c = chain(box.config, client(cif.url))
        who = await c.find(VIP_ID)
        assert (who.source, who.id, who.name, who.stars) == ("cif", "vip-0001", "陈先生", 5)
        await c.close()


async def test_nobody_known_anywhere_is_an_ordinary_ticket_saying_so(box: Box) -> None:
    events = issued_events(box)
    async with sim_cif() as cif, customers_at(box, chain(box.config, client(cif.url))):
        ticket, _ = await card_ticket(box, NOBODY)
    assert ticket["number"] == "A001" and ticket["stars"] == 0
    assert (events[-1]["customer_source"], events[-1]["customer_reason"]) == ("none",
                                                                              "not_found")


# --- a slow, broken or absent CIF -----------------------------------------------------------


async def test_a_cif_asleep_for_10_s_costs_a_ticket_no_more_than_the_budget(box: Box) -> None:
    events = issued_events(box)
    async with (sim_cif(latency_s=10) as cif,
                customers_at(box, chain(box.config, client(cif.url), budget_s=0.3))):
        vip, took_vip = await card_ticket(box, VIP_CARD)
        other, took_other = await card_ticket(box, CIF_ONLY)
    assert took_vip < 2 and took_other < 2  # the budget (0.3 s), far from the CIF's 10 s
    # the VIP table still knows 陈先生; the CIF-only VIP is an ordinary customer today
    assert (vip["number"], vip["stars"], vip["vip_name"]) == ("V001", 5, "陈先生")
    assert (other["number"], other["stars"]) == ("A001", 0)
    assert [(e["customer_source"], e["customer_reason"]) for e in events] == [
        ("local", "timeout"), ("none", "timeout")]


async def test_a_cif_that_is_down_falls_back_to_the_vip_table(box: Box) -> None:
    events = issued_events(box)
    dead = client(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    async with customers_at(box, chain(box.config, dead)):
        ticket, took = await card_ticket(box, VIP_CARD)
        assert box.health.devices["cif"].state == "warning"  # on the lobby's device list
        assert box.health.devices["cif"].detail.startswith("error: 客户信息系统故障")
    assert took < 2 and ticket["vip_name"] == "陈先生" and ticket["stars"] == 5
    assert (events[-1]["customer_source"], events[-1]["customer_reason"]) == ("local", "error")


@pytest.mark.parametrize("fail", ["error", "down"])
async def test_a_failing_cif_is_an_error_not_a_lost_ticket(box: Box, fail: str) -> None:
    async with sim_cif(fail=fail) as cif:
        c = chain(box.config, client(cif.url))
        who = await c.find(VIP_CARD)
        await c.close()
    assert (who.source, who.reason, who.name) == ("local", "error", "陈先生")


async def test_a_wrongly_signed_request_is_refused_by_the_cif(box: Box) -> None:
    async with sim_cif() as cif:
        c = chain(box.config, client(cif.url, secret=b"not-the-shared-secret"))
        who = await c.find(CIF_ONLY)
        await c.close()
    assert (who.source, who.reason) == ("none", "error")
    assert cif.refused == {"bad_signature": 1} and cif.lookups == 0


async def test_no_cif_configured_is_the_vip_table_alone(box: Box) -> None:
    who = await chain(box.config, None).find(VIP_CARD)
    assert (who.source, who.reason, who.id) == ("local", "off", "vip-0001")


async def test_at_most_in_flight_late_requests_run_then_the_cif_is_not_asked(box: Box) -> None:
    async with sim_cif(latency_s=10) as cif:
        c = chain(box.config, client(cif.url), budget_s=0.05, in_flight=1)
        first = await c.find(CIF_ONLY)
        second = await c.find(CIF_ONLY)
        await c.close()
    assert (first.reason, second.reason) == ("timeout", "busy")
    assert c.answers[("none", "timeout")] == c.answers[("none", "busy")] == 1


# --- the cache -----------------------------------------------------------------------------


async def test_a_cif_answer_is_cached_and_serves_while_the_cif_is_slow(box: Box) -> None:
    clock = ManualClock(1_000_000.0)
    cache = CustomerCache(10, ttl_s=600, clock=clock)
    async with sim_cif() as cif:
        c = chain(box.config, client(cif.url), cache=cache)
        assert (await c.find(CIF_ONLY)).source == "cif"
        cif.latency_s = 10
        again = await c.find(CIF_ONLY)
        assert (again.source, again.name, again.stars) == ("cache", "张先生", 4)
        clock.advance(601)  # past its time to live: asked again (and too slow now)
        assert (await c.find(CIF_ONLY)).reason == "timeout"
        await c.close()
    assert cif.lookups == 1  # the cache was used, the slow CIF did not answer yet


async def test_an_answer_after_the_budget_fills_the_cache_for_next_time(box: Box) -> None:
    async with sim_cif(latency_s=0.5) as cif:
        c = chain(box.config, client(cif.url), budget_s=0.05)
        assert (await c.find(CIF_ONLY)).reason == "timeout"
        assert c.cache is not None
        await until(lambda: len(c.cache))  # the late answer lands after about 0.5 s
        assert (await c.find(CIF_ONLY)).source == "cache"
        await c.close()


def test_the_cache_is_bounded_least_recently_used_out_first() -> None:
    clock = ManualClock(0.0)
    cache = CustomerCache(3, ttl_s=60, clock=clock)
    info = [CustomerInfo(f"C{i}", "vip", i, "") for i in range(5)]
    for i in range(3):
        cache.put("card", f"62{i}", info[i])
    assert cache.get("card", "620") == info[0]  # used: the newest now
    cache.put("card", "623", info[3])
    cache.put("card", "624", info[4])
    assert len(cache) == 3
    assert cache.get("card", "621") is None and cache.get("card", "622") is None
    assert [cache.get("card", n) for n in ("620", "623", "624")] == [info[0], info[3], info[4]]
    assert cache.get("id", "620") is None  # a card and an ID number are different keys
    assert all(b"62" not in k for k in cache._items)  # hashes, not numbers
    assert CustomerCache(0, 60, clock).put("card", "620", info[0]) is None


# --- the account manager -------------------------------------------------------------------


async def test_a_vip_ticket_tells_the_account_manager_at_the_crm_and_the_lobby(
        box: Box) -> None:
    async with sim_cif() as cif:
        cl = client(cif.url)
        async with customers_at(box, chain(box.config, cl), notifier=cl) as comp:
            ticket, _ = await card_ticket(box, VIP_CARD)
            await until(lambda: comp.sent)
    notice = cif.notices[-1]
    assert notice["type"] == "vip_arrival" and notice["ticket"] == ticket["number"] == "V001"
    assert (notice["manager"], notice["manager_name"], notice["terminal"]) == (
        "M07", "王芳", "lobby1")
    assert (notice["customer"], notice["name"], notice["branch"]) == ("vip-0001", "陈先生",
                                                                     box.config.branch.code)
    assert notice["id"] == ticket["id"]  # the CRM can tell a retry from a second visit
    assert comp.sent == 1 and comp.failed == 0
    lobby = lobby_overview(box.engine.state, box.config, box.clock.now())
    assert [(v["number"], v["vip_name"], v["manager"]) for v in lobby["vips"]] == [
        ("V001", "陈先生", "王芳")]


async def test_the_manager_is_not_on_the_public_screens(box: Box) -> None:
    events = issued_events(box)
    async with sim_cif() as cif, customers_at(box, chain(box.config, client(cif.url))):
        await card_ticket(box, VIP_CARD)
    shown = public_event(events[-1])
    assert "manager" not in shown and "vip_name" not in shown and "card" not in shown


class Flaky:
    """A CRM that fails ``failures`` times, then takes the notices."""

    def __init__(self, failures: int, gate: asyncio.Event | None = None) -> None:
        self.failures, self.gate = failures, gate
        self.tries = 0
        self.got: list[dict[str, Any]] = []

    async def notify(self, notice: dict[str, Any]) -> None:
        self.tries += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.tries <= self.failures:
            raise CifUnavailable("error", "HTTP 503")
        self.got.append(notice)


async def test_notices_are_retried_a_bounded_number_of_times(box: Box) -> None:
    down = Flaky(failures=100)
    async with customers_at(box, chain(box.config, None), notifier=down, notify_retries=2,
                            notify_retry_s=0.01) as comp:
        ticket, took = await card_ticket(box, VIP_CARD)
        await until(lambda: comp.failed)  # three tries, 0.01 and 0.02 s apart
    assert took < 2 and ticket["number"] == "V001"  # the ticket never waited for the CRM
    assert (down.tries, comp.failed, comp.sent) == (3, 1, 0)

    back = Flaky(failures=1)
    async with customers_at(box, chain(box.config, None), notifier=back,
                            notify_retry_s=0.01) as comp:
        await card_ticket(box, VIP_CARD)
        await until(lambda: comp.sent)
    assert (back.tries, comp.sent, [n["ticket"] for n in back.got]) == (2, 1, ["V002"])


async def test_the_notice_queue_is_bounded_the_oldest_dropped_and_counted(box: Box) -> None:
    stuck = Flaky(failures=0, gate=asyncio.Event())
    async with customers_at(box, chain(box.config, None), notifier=stuck,
                            notify_queue=2) as comp:
        for _ in range(5):
            await card_ticket(box, VIP_CARD)
        # one in the CRM's hands (stuck), two waiting, two dropped
        assert comp.queue.qsize() == 2 and comp.dropped == 2
        stuck.gate.set()
        await until(lambda: comp.sent == 3)
    assert [n["ticket"] for n in stuck.got] == ["V001", "V004", "V005"]


async def test_numbers_are_never_logged_in_clear(box: Box,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with sim_cif(fail="error") as cif:
        cl = client(cif.url)
        async with customers_at(box, chain(box.config, cl), notifier=cl,
                                notify_retries=0) as comp:
            await card_ticket(box, VIP_CARD)
            await card_ticket(box, VIP_ID)
            await until(lambda: comp.failed == 2)
    assert "6225********1237" in caplog.text
    for secret in (VIP_CARD, VIP_ID, "13800138007", "陈明"):
        assert secret not in caplog.text


# --- configuration ---------------------------------------------------------------------------


def test_a_sim_box_runs_the_simulated_cif(config: Config, tmp_path: Path) -> None:
    comp = customers_component(config, tmp_path)  # examples/branch.toml: hardware = "sim"
    assert comp is not None and isinstance(comp.peer, SimCif)
    assert comp.notifier is comp.client and comp.chain.budget_s == 0.3


async def test_the_sim_box_s_cif_answers_its_card_tickets(config: Config, clock: ManualClock,
                                                          tmp_path: Path) -> None:
    comp = customers_component(config, tmp_path)
    assert comp is not None and comp.peer is not None
    async with Box(config, tmp_path / "data", clock) as box:
        events = issued_events(box)
        async with running(comp.run(box)):
            await asyncio.wait_for(comp.ready.wait(), 10)
            await card_ticket(box, CIF_ONLY)
            await asyncio.wait_for(comp.peer.heard.wait(), 10)  # type: ignore[attr-defined]
    assert events[-1]["customer_source"] == "cif" and events[-1]["number"] == "V001"


def test_a_real_box_needs_the_cif_s_address_and_secret(config: Config, tmp_path: Path) -> None:
    real = config.model_copy(update={"hardware": "real", "cif": {"budget_ms": 200}})
    with pytest.raises(ConfigError, match=r"cif\.url"):
        customers_component(real, tmp_path)
    with_url = config.model_copy(update={"hardware": "real",
                                         "cif": {"url": "https://cif.bank.example/paidui"}})
    with pytest.raises(ConfigError, match=r"cif\.secret"):
        customers_component(with_url, tmp_path)
    (tmp_path / "cif.key").write_text("a-shared-secret-of-the-bank\n")
    good = config.model_copy(update={"hardware": "real", "cif": {
        "url": "https://cif.bank.example/paidui", "secret_file": str(tmp_path / "cif.key")}})
    comp = customers_component(good, tmp_path)
    assert comp is not None and comp.peer is None
    assert comp.client is not None and comp.client.url == "https://cif.bank.example/paidui"
    assert customers_component(config.model_copy(update={"hardware": "real"}), tmp_path) is None
    off = config.model_copy(update={"cif": {"enabled": False}})
    assert customers_component(off, tmp_path) is None
    with pytest.raises(ConfigError, match=r"cif\.budget_ms"):
        cif_settings(config.model_copy(update={"cif": {"budget_ms": 60_000}}))


class Broken:
    async def lookup(self, kind: str, number: str) -> CustomerInfo | None:
        raise RuntimeError("a bug in a lookup")


async def test_a_broken_source_still_gives_the_customer_a_ticket(box: Box) -> None:
    events = issued_events(box)
    c = CustomerChain(None, Broken())
    async with customers_at(box, c):
        ticket, _ = await card_ticket(box, VIP_CARD)
    # nobody could say who he is: the card type (gold card: V, 3 stars) decides
    assert (ticket["number"], ticket["stars"]) == ("V001", 3)
    assert (events[-1]["customer_source"], events[-1]["customer_reason"]) == ("none", "error")


async def test_the_simulated_cif_refuses_whoever_does_not_sign(box: Box) -> None:
    import httpx

    from protocols.cif import encode_lookup, signed_headers

    async with sim_cif() as cif, httpx.AsyncClient(base_url=cif.url) as http:
        body = encode_lookup("card", CIF_ONLY, "0101")
        r = await http.post("/customers/lookup", content=body)  # no signature
        assert r.status_code == 401 and r.json() == {"error": "unknown_key"}
        good = signed_headers(*SIM_KEY, time.time(), "POST", "/customers/lookup", body)
        r = await http.post("/customers/lookup", content=body, headers=good)
        assert r.status_code == 200 and r.json()["customer"]["id"] == "C000318"
        junk = b'{"kind": "card"}'
        r = await http.post("/customers/lookup", content=junk, headers=signed_headers(
            *SIM_KEY, time.time(), "POST", "/customers/lookup", junk))
        assert r.status_code == 400
        assert (await http.get("/customers/lookup")).status_code == 404
        # a request that is not HTTP at all closes its connection; the next one is served
        _, writer = await asyncio.open_connection("127.0.0.1", int(cif.url.rsplit(":", 1)[1]))
        writer.write(b"\x00garbage\r\n\r\n")
        await writer.drain()
        writer.close()
        r = await http.post("/customers/lookup", content=body, headers=good)
        assert r.status_code == 200
    assert cif.lookups == 2 and cif.refused == {"unknown_key": 1, "bad_request": 1}
