"""Appointments at the box (A6): the day's bookings kept, redeemed at the kiosk or by card,
ahead of walk-ins, once; every refusal; the centre's remote ticket/rating/track commands.

The box runs on the example branch at Wed 2026-11-25 10:00 (slot 3 = 10:00–11:00).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.clock import ManualClock
from common.throttle import Throttle
from controller.appointments import Appointments, CommandRefused
from controller.box import Box
from controller.config import Config
from controller.engine import commands as c
from controller.errors import Refused
from controller.web import create_app
from drivers.card_reader import CardReader, SwipeOutcome
from protocols import appointment as ap
from protocols.cards import luhn_check_digit
from sim.card_swipes import SimSwipes
from tests.appointments_support import (
    BANK_CARD,
    BRANCH,
    ID_NUMBER,
    TODAY,
    TODAYS,
    TOMORROW,
    booking,
    day_message,
    desk,
)
from tests.card_reader_support import PaperPrinter


@pytest.fixture
async def appts(box: Box) -> AsyncIterator[Appointments]:
    box.printer = PaperPrinter()
    async with desk(box) as comp:
        await comp.on_appointments(box, day_message(TODAYS))
        await comp.on_appointments(box, day_message([booking("bk-tmrw", "322222",
                                                             day=TOMORROW)], TOMORROW))
        yield comp


@pytest.fixture
async def api(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(box), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://box") as client:
        yield client


async def redeem(api: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await api.post("/api/appointments/redeem", json={"kiosk": "kiosk1", **body})


def refused(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and err["message_en"]
    return str(err["message"])


# --- redemption ----------------------------------------------------------------------------


async def test_a_code_redeems_once_and_the_ticket_goes_before_earlier_walk_ins(
        box: Box, appts: Appointments, api: httpx.AsyncClient) -> None:
    walk_in = await api.post("/api/tickets", json={"queue": "A"})
    assert walk_in.status_code == 201
    r = await redeem(api, code="312345")
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["number"] == "A002" and got["printed"] is True and got["queue_name"] == "个人业务"
    assert set(got) >= set(walk_in.json())  # the same answer as POST /api/tickets
    t = box.engine.state.by_num("A002")
    assert t is not None and t.appointment == "bk-now" and t.channel == "appointment"
    assert box.printer.printed[-1]["number"] == "A002"  # type: ignore[union-attr]
    await box.execute(c.Login(1, "t1", "1234"))
    called = await box.execute(c.CallNext(1))
    assert called[-1]["number"] == "A002"  # the appointment before the walk-in A001
    assert "已兑号" in refused(await redeem(api, code="312345"), 409, "appointment_used")
    summary = (await api.get("/api/appointments/summary")).json()
    assert summary == {"enabled": True, "day": TODAY, "revision": 1, "booked": 4,
                       "redeemed": 1, "days_kept": [TODAY, TOMORROW]}


@pytest.mark.parametrize("body,status,code,words", [
    ({"code": "398765"}, 409, "appointment_cancelled", "已取消"),
    ({"code": "512345"}, 409, "appointment_early", "12:00-13:00"),
    ({"code": "112345"}, 409, "appointment_late", "08:00-09:00"),
    ({"code": "322222"}, 409, "appointment_other_day", "2026-11-26"),
    ({"code": "377777"}, 404, "appointment_unknown", "预约码无效"),
    ({"qr": "https://q.example.cn/yy/1001010009/20261125/312345"}, 409,
     "appointment_other_branch", "1001010009"),
    ({"qr": "https://q.example.cn/yy/1001010001/20261124/312345"}, 409,
     "appointment_other_day", "2026-11-24"),
    ({"code": "31234"}, 422, "bad_code", "6位数字"),
    ({"qr": "https://q.example.cn/t/20261125-A001"}, 422, "bad_qr", "二维码"),
    ({"id_number": "410105199003071239"}, 404, "appointment_unknown", "预约码无效"),
])
async def test_each_refusal_is_clear_and_issues_nothing(
        box: Box, appts: Appointments, api: httpx.AsyncClient, body: dict[str, Any],
        status: int, code: str, words: str) -> None:
    assert words in refused(await redeem(api, **body), status, code)
    assert not box.engine.state.tickets


async def test_the_grace_widens_the_slot_on_both_sides(
        box: Box, clock: ManualClock, appts: Appointments, api: httpx.AsyncClient) -> None:
    clock.set(clock.now() + 89 * 60)  # 11:29: slot 5 (12:00) opens at 11:30
    refused(await redeem(api, code="512345"), 409, "appointment_early")
    clock.advance(60)
    assert (await redeem(api, code="512345")).status_code == 201
    clock.set(clock.now() + 104 * 60)  # 13:14: slot 3 (10:00-11:00) closed at 11:15
    refused(await redeem(api, code="312345"), 409, "appointment_late")


async def test_a_qr_scan_and_an_id_number_redeem_too(
        box: Box, appts: Appointments, api: httpx.AsyncClient) -> None:
    qr = ap.qr_payload("https://q.example.cn", BRANCH, TODAY, "354321")
    assert (await redeem(api, qr=qr)).json()["number"] == "V001"
    r = await redeem(api, id_number=ID_NUMBER.lower())
    assert r.status_code == 201 and r.json()["number"] == "A001"
    refused(await redeem(api, card=BANK_CARD), 409, "appointment_used")  # same booking


async def test_the_engine_still_decides_a_paused_business_is_refused(
        box: Box, appts: Appointments, api: httpx.AsyncClient) -> None:
    await box.execute(c.PauseQueue("A", "系统升级"))
    assert "系统升级" in refused(await redeem(api, code="312345"), 409, "queue_paused")
    await box.execute(c.ResumeQueue("A"))
    assert (await redeem(api, code="312345")).status_code == 201  # not used up by the refusal


async def test_guessing_codes_is_throttled_and_counted(box: Box, api: httpx.AsyncClient) -> None:
    async with desk(box, throttle=Throttle(per_source=3, per_box=100, window_s=60)) as comp:
        await comp.on_appointments(box, day_message(TODAYS))
        for guess in ("300001", "300002", "300003"):
            refused(await redeem(api, code=guess), 404, "appointment_unknown")
        r = await redeem(api, code="312345")  # even the right code waits now
        assert "尝试次数过多" in refused(r, 429, "too_many_attempts")
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        renamed = await api.post("/api/appointments/redeem",
                                 json={"code": "312345", "kiosk": "kiosk2"})
        refused(renamed, 429, "too_many_attempts")  # a made-up kiosk id changes nothing
        transport = httpx.ASGITransport(app=api._transport.app,  # type: ignore[attr-defined]
                                        client=("192.168.1.22", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://box") as kiosk2:
            other = await kiosk2.post("/api/appointments/redeem",
                                      json={"code": "312345", "kiosk": "kiosk2"})
        assert other.status_code == 201  # another kiosk (its own address) is not blocked
        text = (await api.get("/metrics")).text
    assert 'paidui_appointment_redemptions_total{outcome="refused_appointment_unknown"} 3' \
        in text
    assert comp.counts["redeemed"] == 1


async def test_cards_without_a_booking_do_not_throttle_the_kiosk(
        box: Box, api: httpx.AsyncClient) -> None:
    """The kiosk asks about every card a reader types before taking an ordinary ticket:
    a busy morning of walk-in cards must not lock its bookings out."""
    async with desk(box, throttle=Throttle(per_source=3, per_box=100, window_s=60)) as comp:
        await comp.on_appointments(box, day_message(TODAYS))
        for seq in range(5):
            walk_in = "62258801370" + f"{seq:04d}"
            walk_in += luhn_check_digit(walk_in)
            refused(await redeem(api, card=walk_in), 404, "appointment_unknown")
        r = await redeem(api, id_number=ID_NUMBER)
        assert r.status_code == 201, r.text
        assert comp.counts["refused_appointment_unknown"] == 5


async def test_no_appointment_component_means_the_kiosk_says_not_available(
        api: httpx.AsyncClient) -> None:
    assert "暂未开通" in refused(await redeem(api, code="312345"), 404, "not_found")
    assert (await api.get("/api/appointments/summary")).json() == {"enabled": False}


# --- durability and the link being down ----------------------------------------------------


async def test_bookings_and_redemptions_survive_a_restart_without_the_centre(
        config: Config, clock: ManualClock, tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with Box(config, data, clock) as box, desk(box) as comp:
        await comp.on_appointments(box, day_message(TODAYS))
        info, _ = await comp.redeem_by(box, kiosk="k", source="t", code="312345")
        assert info["number"] == "A001"
    async with Box(config, data, clock) as box, desk(box) as comp:  # nothing received now
        with pytest.raises(Refused) as err:
            await comp.redeem_by(box, kiosk="k", source="t", code="312345")
        assert err.value.code == "appointment_used"
        info, _ = await comp.redeem_by(box, kiosk="k", source="t", code="354321")
        assert info["number"] == "V001"


async def test_a_newer_revision_replaces_the_day_and_an_older_one_is_ignored(
        box: Box, appts: Appointments) -> None:
    cancelled = [dict(b, state="cancelled") if b["id"] == "bk-now" else b for b in TODAYS]
    got = await appts.on_appointments(box, day_message(cancelled, revision=2))
    assert got["revision"] == 2 and not got["stale"] and got["bookings"] == 5
    assert {q["id"] for q in got["catalogue"]["queues"]} == {"A", "B", "V", "T", "F"}
    assert got["catalogue"]["branch"]["latitude"] == pytest.approx(34.7736)
    old = await appts.on_appointments(box, day_message(TODAYS, revision=1))
    assert old["stale"] and old["revision"] == 2
    with pytest.raises(Refused) as err:
        await appts.redeem_by(box, kiosk="k", source="t", code="312345")
    assert err.value.code == "appointment_cancelled"


@pytest.mark.parametrize("bad", [
    {"id": "x", "code": "312345", "queue": "A", "slot": 4},  # code of another slot
    {"id": "x y", "code": "312345", "queue": "A", "slot": 3},
    {"id": "x", "code": "31234", "queue": "A", "slot": 3},
    {"id": "x", "code": "312345", "queue": "A", "slot": 3, "state": "maybe"},
    {"id": "x", "code": "312345", "queue": "A", "slot": 3, "id_digest": "nothex"},
    "not an object",
])
async def test_a_malformed_booking_list_is_refused_and_the_old_one_stays(
        box: Box, appts: Appointments, bad: Any) -> None:
    with pytest.raises(CommandRefused) as err:
        await appts.on_appointments(box, day_message([bad], revision=9))
    assert err.value.code == "bad_bookings"
    assert appts.book.days[TODAY].revision == 1


# --- card swipes ---------------------------------------------------------------------------


async def test_an_id_card_or_bank_card_swipe_redeems_and_other_cards_issue_as_before(
        box: Box, appts: Appointments) -> None:
    swipes = SimSwipes()
    reader = CardReader(source=swipes, kiosk="kiosk1")
    outcomes: asyncio.Queue[SwipeOutcome] = asyncio.Queue()
    reader.listeners.append(outcomes.put_nowait)
    task = asyncio.create_task(reader.run(box))
    try:
        swipes.swipe_id(ID_NUMBER)
        first = await asyncio.wait_for(outcomes.get(), 5)
        swipes.swipe_card(BANK_CARD)
        again = await asyncio.wait_for(outcomes.get(), 5)
        swipes.swipe_card("6225880137001237")  # a VIP card with no booking: ordinary path
        vip = await asyncio.wait_for(outcomes.get(), 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert first.ok and first.code == "redeemed" and first.ticket is not None
    t = box.engine.state.by_num(first.ticket["number"])
    assert t is not None and t.appointment == "bk-now"
    assert not again.ok and again.code == "appointment_used" and "已兑号" in again.message
    assert vip.ok and vip.code == "issued" and vip.ticket is not None
    assert vip.ticket["number"] == "V001"


# --- the centre's customer commands ---------------------------------------------------------


async def test_a_remote_ticket_shares_the_numbering_and_the_rules(
        box: Box, clock: ManualClock, appts: Appointments) -> None:
    await box.execute(c.IssueTicket(queue="A"))
    msg = {"id": "t-1", "queue": "A", "expires_at": clock.now() + 30}
    got = await appts.on_ticket(box, msg)
    assert got["number"] == "A002" and got["ahead"] == 1 and got["service_minutes"] == 4
    t = box.engine.state.by_num("A002")
    assert t is not None and t.channel == "remote"
    with pytest.raises(CommandRefused) as late:
        await appts.on_ticket(box, {**msg, "expires_at": clock.now() - 1})
    assert late.value.code == "request_expired"
    await box.execute(c.SignOut())
    with pytest.raises(Refused) as shut:
        await appts.on_ticket(box, msg)
    assert shut.value.code == "kiosk_signed_out"
    await box.execute(c.SignIn())
    with pytest.raises(Refused) as unknown:
        await appts.on_ticket(box, {**msg, "id": "t-2", "queue": "Z"})  # a new command
    assert unknown.value.code == "unknown_queue"


async def test_a_remote_ticket_sent_again_after_a_crash_is_issued_once(
        config: Config, clock: ManualClock, tmp_path: Path) -> None:
    """The command desk remembers an answer only after acting: a box killed in between
    forgets it, and the centre sends the command again. The engine knows the command's id,
    so the customer gets the same number, also after the restart, and nobody a second."""
    msg = {"id": "remote-7", "queue": "A", "expires_at": clock.now() + 60}
    data = tmp_path / "data"
    async with Box(config, data, clock) as box, desk(box) as comp:
        first = await comp.on_ticket(box, msg)
        again = await comp.on_ticket(box, msg)  # commands.json lost: run a second time
    async with Box(config, data, clock) as box, desk(box) as comp:
        after_restart = await comp.on_ticket(box, msg)
        other = await comp.on_ticket(box, {**msg, "id": "remote-8"})
        remote = [t.number for t in box.engine.state.tickets.values() if t.channel == "remote"]
    assert first["number"] == again["number"] == after_restart["number"] == "A001"
    assert first["issued_at"] == after_restart["issued_at"]
    assert other["number"] == "A002" and remote == ["A001", "A002"]


async def test_track_then_rate_a_remote_ticket_once(
        box: Box, clock: ManualClock, appts: Appointments) -> None:
    ticket = await appts.on_ticket(box, {"id": "t", "queue": "A", "expires_at": 1e12})
    await box.execute(c.IssueTicket(queue="A"))
    n = ticket["number"]
    seen = await appts.on_track(box, {"id": "k", "numbers": [n, "A002", "A999"]})
    assert seen["tickets"][n]["ahead"] == 0 and seen["tickets"]["A002"]["ahead"] == 1
    assert "A999" not in seen["tickets"] and seen["queues"]["A"]["waiting"] == 2
    await box.execute(c.Login(1, "t1", "1234"))
    await box.execute(c.CallNext(1))
    assert (await appts.on_track(box, {"id": "k2", "numbers": [n]}))["tickets"][n] == {
        "state": "called", "ahead": None, "window": 1, "queue": "A", "rated": False,
        "windows_open": None}
    with pytest.raises(Refused) as early:
        await appts.on_rate(box, {"id": "r0", "number": n, "score": 5, "expires_at": 1e12})
    assert early.value.code == "no_service_to_rate"
    await box.execute(c.Finish(1))
    clock.advance(3600)  # long after the evaluator's two minutes
    got = await appts.on_rate(box, {"id": "r1", "number": n, "score": 5, "expires_at": 1e12})
    assert got == {"number": n, "score": 5, "bad": False, "level": "非常满意"}
    with pytest.raises(Refused) as twice:
        await appts.on_rate(box, {"id": "r2", "number": n, "score": 1, "expires_at": 1e12})
    assert twice.value.code == "already_rated"


def test_the_package_splits_book_redemption_and_commands() -> None:
    """The day book is storage (no engine, kiosk or box); redemption does not know the
    uplink's commands; only the component wires the parts to the box and the uplink."""
    import controller.appointments as package

    def imported(name: str) -> set[str]:
        tree = ast.parse((Path(package.__file__).parent / f"{name}.py").read_text("utf-8"))
        return {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}

    assert not imported("book") & {"engine", "engine.select", "kiosk", "box", "ports"}
    assert not imported("redeem") & {"uplink", "uplink.commands", "component"}
    assert not imported("catalogue") & {"book", "redeem", "component", "kiosk", "engine"}
    assert package.Appointments.__module__ == "controller.appointments.component"


VIP_ID = "410105198001012311"  # the example branch's VIP table: 陈先生, vip-0001, five stars


async def test_the_centres_customer_ranks_a_code_redemption_and_the_boxs_own_lookup_wins_by_id(
        box: Box, api: httpx.AsyncClient) -> None:
    """The centre's CIF said "corporate, two stars" at booking: a code redemption ranks so
    (source ``centre``). Redeemed by the ID card, the box's own lookup (here its VIP table)
    knows the holder better and is the authority (docs/integrations.md, "The centre")."""
    from controller.customers import CustomerChain, LocalVipTable

    box.printer = PaperPrinter()
    told = {"customer": {"type": "corporate", "stars": 2}}
    issued: list[dict[str, Any]] = []
    box.listeners.append(lambda events: issued.extend(
        e for e in events if e["type"] == "ticket_issued"))
    async with desk(box) as comp:
        await comp.on_appointments(box, day_message([
            {**booking("bk-code", "312345"), **told},
            {**booking("bk-card", "323456", queue="B", id_number=VIP_ID), **told}]))
        by_code = await redeem(api, code="312345")
        assert by_code.status_code == 201
        t = box.engine.state.by_num(by_code.json()["number"])
        assert t is not None and (t.customer_type, t.stars) == ("corporate", 2)
        box.customers = CustomerChain(None, LocalVipTable(box.config))
        try:
            by_id = await redeem(api, id_number=VIP_ID)
        finally:
            box.customers = None
        assert by_id.status_code == 201 and by_id.json()["queue"] == "B"  # the booked business
        t = box.engine.state.by_num(by_id.json()["number"])
        assert t is not None and (t.customer_type, t.stars) == ("vip", 5)
        assert [e["customer_source"] for e in issued] == ["centre", "local"]
