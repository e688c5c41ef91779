"""Appointments from the phone to the kiosk and back (H2, A6, C3), over a real broker, a real
store (SQLite and PostgreSQL) and a real box.

Wed 2026-11-25 10:00 at the example branch: slot 3 (10:00–11:00) is on now.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from central.broker import LocalBroker
from common.clock import ManualClock
from controller.box import Box
from controller.engine import commands as c
from controller.web import create_app as box_app
from protocols.metrics import render
from tests.customer_support import (
    ID_NUMBER,
    bearer,
    bookable,
    customer_centre,
    http,
    linked_box,
    plain_centre,
    pushed,
    sign_in,
)
from tests.uplink_support import (  # noqa: F401
    BRANCH,
    broker_fixture,
    held_line,
    pg_url_fixture,
    running,
    store_url_fixture,
    wait_for,
)

TODAY = "2026-11-25"


def kiosk(box: Box) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=box_app(box)),
                             base_url="http://box")


def told(caplog: pytest.LogCaptureFixture, day: str) -> list[logging.LogRecord]:
    """What the centre logged about a branch's answer to a day's list."""
    return [r for r in caplog.records
            if r.name == "central.appointments" and f"the bookings of {day}" in r.getMessage()]


async def test_book_redeem_at_the_kiosk_ahead_of_walk_ins_then_rate_by_phone(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker), http(centre) as api, kiosk(box) as k:
        await bookable(centre)
        token = await sign_in(api, centre)
        me = (await api.get("/api/public/me", headers=bearer(token))).json()
        assert me["registered"] and me["gender"] == "M" and me["phone"] == "138****5678"
        assert me["id_number"] == ID_NUMBER[:4] + "*" * 10 + ID_NUMBER[-4:]
        slots = (await api.get(f"/api/public/branches/{BRANCH}/bookable",
                               params={"day": TODAY})).json()
        a = next(q for q in slots["queues"] if q["id"] == "A")
        assert [s["open"] for s in a["slots"]][:3] == [False, False, True]  # 8, 9: past
        r = await api.post("/api/public/bookings", headers=bearer(token),
                           json={"branch": BRANCH, "queue": "A", "day": TODAY, "slot": 3})
        assert r.status_code == 201, r.text
        booking = r.json()
        assert booking["code"][0] == "3" and booking["state"] == "booked"
        assert booking["qr"].endswith(f"/yy/{BRANCH}/20261125/{booking['code']}")
        await pushed(centre, TODAY)  # the box has it: the link may now go

        walk_in = (await k.post("/api/tickets", json={"queue": "A"})).json()["number"]
        r = await k.post("/api/appointments/redeem", json={"code": booking["code"]})
        assert r.status_code == 201, r.text
        number = r.json()["number"]
        await box.execute(c.Login(1, "t1", "1234"))
        called = await box.execute(c.CallNext(1))
        assert called[-1]["number"] == number != walk_in  # ahead of the earlier walk-in
        await box.execute(c.Finish(1))
        clock.advance(600)  # ten minutes later, on the bus home

        async def redeemed() -> dict:
            got = (await api.get(f"/api/public/bookings/{booking['id']}",
                                 headers=bearer(token))).json()
            return got if got["state"] == "redeemed" else {}

        seen = await wait_for(redeemed, 20, "the centre to see the redemption")
        assert seen["ticket_number"] == number and "<svg" in seen["qr_svg"]
        r = await api.post(f"/api/public/bookings/{booking['id']}/rate",
                           headers=bearer(token), json={"score": 5})
        assert r.status_code == 200, r.text
        assert r.json()["message"] == "谢谢您对我们工作的支持,再见"
        again = await api.post(f"/api/public/bookings/{booking['id']}/rate",
                               headers=bearer(token), json={"score": 1})
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_rated"
        t = box.engine.state.by_num(number)
        assert t is not None and t.rated == 5
        cancel = await api.post(f"/api/public/bookings/{booking['id']}/cancel",
                                headers=bearer(token))
        assert cancel.json()["error"]["code"] == "booking_used"


async def test_a_cancellation_follows_to_the_branch_and_redeeming_works_offline(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            http(centre) as api, kiosk(box) as k, linked_box(box, broker) as (uplink, _):
        await bookable(centre)
        token = await sign_in(api, centre)
        keep, drop = [(await api.post("/api/public/bookings", headers=bearer(token), json={
            "branch": BRANCH, "queue": q, "day": TODAY, "slot": 3})).json() for q in "AB"]
        await pushed(centre, TODAY)  # the box has both (one it never had is just unknown)
        r = await api.post(f"/api/public/bookings/{drop['id']}/cancel",
                           headers=bearer(token))
        assert r.json()["state"] == "cancelled"
        await pushed(centre, TODAY)
        broker.kill()  # the link is down at the moment of redemption

        async def down() -> bool:
            return not uplink.connected

        await wait_for(down, 10, "the uplink to notice")
        r = await k.post("/api/appointments/redeem", json={"code": drop["code"]})
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "appointment_cancelled"
        r = await k.post("/api/appointments/redeem", json={"id_number": ID_NUMBER})
        assert r.status_code == 201 and r.json()["queue"] == "A"
        t = box.engine.state.by_num(r.json()["number"])
        assert t is not None and t.appointment == keep["id"]


@pytest.mark.parametrize("body,code", [
    ({"queue": "A", "day": TODAY, "slot": 1}, "slot_past"),
    ({"queue": "A", "day": "2026-12-25", "slot": 3}, "too_far_ahead"),
    ({"queue": "A", "day": "2026-11-28", "slot": 9}, "outside_hours"),  # Saturday: till 16:00
    ({"queue": "Z", "day": TODAY, "slot": 3}, "unknown_queue"),
    ({"queue": "A", "day": "2026-10-01", "slot": 3}, "slot_past"),
])
async def test_booking_refusals(box: Box, clock: ManualClock, broker: LocalBroker,
                                tmp_path: Path, body: dict, code: str) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker), http(centre) as api:
        await bookable(centre)
        token = await sign_in(api, centre)
        r = await api.post("/api/public/bookings", headers=bearer(token),
                           json={"branch": BRANCH, **body})
        assert r.status_code in (404, 409), r.text
        assert r.json()["error"]["code"] == code and r.json()["error"]["message"]


async def test_one_booking_per_business_a_day_and_a_limit_on_those_to_come(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path,
                               "customers.max_active=2") as centre, \
            linked_box(box, broker), http(centre) as api:
        await bookable(centre)
        token = await sign_in(api, centre)

        async def book(queue: str, day: str = TODAY) -> httpx.Response:
            return await api.post("/api/public/bookings", headers=bearer(token), json={
                "branch": BRANCH, "queue": queue, "day": day, "slot": 4})

        assert (await book("A")).status_code == 201
        assert (await book("A")).json()["error"]["code"] == "already_booked"
        assert (await book("B")).status_code == 201
        assert (await book("F", "2026-11-26")).json()["error"]["code"] == "too_many_bookings"
        unsigned = await api.get("/api/public/bookings")
        assert unsigned.status_code == 401


async def test_sign_in_codes_expire_count_wrong_tries_and_are_not_resent_at_once(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path,
                               "customers.login_attempts=2") as centre, http(centre) as api:
        assert (await api.post("/api/public/login/code",
                               json={"phone": "13900001111"})).status_code == 200
        again = await api.post("/api/public/login/code", json={"phone": "13900001111"})
        assert again.status_code == 429 and again.json()["error"]["code"] == "code_too_soon"
        assert (await api.post("/api/public/login/code",
                               json={"phone": "1390000"})).json()["error"]["code"] == "bad_phone"
        for _ in range(2):
            wrong = await api.post("/api/public/login", json={"phone": "13900001111",
                                                              "code": "000000"})
            assert wrong.status_code == 401
        assert centre.customers is not None
        code = centre.customers.appointments.sms.sent[-1][1]  # type: ignore[attr-defined]
        right = await api.post("/api/public/login", json={
            "phone": "13900001111", "code": code.split("验证码是")[1][:6]})
        assert right.status_code == 401  # two wrong tries voided it
        clock.advance(61)
        await api.post("/api/public/login/code", json={"phone": "13900001111"})
        code = centre.customers.appointments.sms.sent[-1][1]  # type: ignore[attr-defined]
        clock.advance(301)  # five minutes: expired
        late = await api.post("/api/public/login", json={
            "phone": "13900001111", "code": code.split("验证码是")[1][:6]})
        assert late.status_code == 401


async def test_registration_checks_the_id_number_and_gender_once_per_person(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            http(centre) as api:
        await sign_in(api, centre)
        r = await api.post("/api/public/login/code", json={"phone": "13700000000"})
        assert r.status_code == 200
        assert centre.customers is not None
        code = centre.customers.appointments.sms.sent[-1][1]  # type: ignore[attr-defined]
        token = (await api.post("/api/public/login", json={
            "phone": "13700000000", "code": code.split("验证码是")[1][:6]})).json()["token"]
        for body, err in (({"name": "李", "id_number": ID_NUMBER[:17] + "0"}, "bad_id_number"),
                          ({"name": "李", "id_number": ID_NUMBER, "gender": "F"},
                           "gender_mismatch"),
                          ({"name": "", "id_number": ID_NUMBER}, "bad_name"),
                          ({"name": "李", "id_number": ID_NUMBER}, "already_registered")):
            r = await api.post("/api/public/register", headers=bearer(token), json=body)
            assert r.json()["error"]["code"] == err, r.text


async def test_a_card_registered_at_the_centre_redeems_by_swipe_at_the_kiosk(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    from drivers.card_reader import CardReader, SwipeOutcome
    from protocols.cards import luhn_check_digit
    from sim.card_swipes import SimSwipes

    card = "621700000012345" + luhn_check_digit("621700000012345")
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker), http(centre) as api:
        await bookable(centre)
        r = await api.post("/api/public/login/code", json={"phone": "13600000000"})
        assert r.status_code == 200
        assert centre.customers is not None
        text = centre.customers.appointments.sms.sent[-1][1]  # type: ignore[attr-defined]
        token = (await api.post("/api/public/login", json={
            "phone": "13600000000", "code": text.split("验证码是")[1][:6]})).json()["token"]
        r = await api.post("/api/public/register", headers=bearer(token),
                           json={"name": "钱七", "id_number": ID_NUMBER, "card": card})
        assert r.status_code == 201 and r.json()["card"] == card[:4] + "********" + card[-4:]
        booking = (await api.post("/api/public/bookings", headers=bearer(token), json={
            "branch": BRANCH, "queue": "B", "day": TODAY, "slot": 3})).json()
        await pushed(centre, TODAY)
        swipes = SimSwipes()
        reader = CardReader(source=swipes, kiosk="kiosk1")
        outcomes: asyncio.Queue[SwipeOutcome] = asyncio.Queue()
        reader.listeners.append(outcomes.put_nowait)
        async with running(reader.run(box)):
            swipes.swipe_card(card)
            got = await asyncio.wait_for(outcomes.get(), 10)
        assert got.ok and got.code == "redeemed" and got.ticket is not None
        t = box.engine.state.by_num(got.ticket["number"])
        assert t is not None and t.appointment == booking["id"] and t.queue == "B"


async def test_the_booking_push_stops_on_a_stop_even_when_a_publish_turns_it_into_an_error(
        tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGTERM cancels the push loop; the MQTT client may answer a publish cut short with
    its own error instead of the cancellation. The loop must end all the same (it once went
    on, and the centre never exited)."""
    async with plain_centre(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path, clock) as (
            centre, _):
        assert centre.customers is not None
        a = centre.customers.appointments
        publishing = asyncio.Event()

        async def push() -> int:
            publishing.set()
            try:
                await asyncio.sleep(30)  # a publish that hangs until cancelled
            except asyncio.CancelledError:
                raise ConnectionError("disconnected during publish") from None
            return 0

        monkeypatch.setattr(a, "push", push)
        task = asyncio.create_task(a.run())
        a._wake.set()
        await asyncio.wait_for(publishing.wait(), 5)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done, "the push loop went on after it was cancelled"
        assert task.cancelled()


async def test_a_booking_the_busy_box_could_not_take_reaches_its_kiosk_once_the_line_clears(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """A box whose command line is full answers the day's new list ``busy`` ("send it again
    later"). That is no refusal: the centre sends the list again after ``resend_s`` (it used
    to give the day up until its next booking, and the customer's code was unknown at the
    kiosk)."""
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker, command_queue=1) as (uplink, _), http(centre) as api, \
            kiosk(box) as k:
        assert centre.customers is not None
        await bookable(centre)
        token = await sign_in(api, centre)
        async with held_line(centre, uplink, waiting=1):  # one running, the line full
            r = await api.post("/api/public/bookings", headers=bearer(token),
                               json={"branch": BRANCH, "queue": "A", "day": TODAY, "slot": 3})
            assert r.status_code == 201, r.text
            await wait_for(lambda: told(caplog, TODAY), 20, "the centre to read the busy answer")
        clock.advance(2)  # customers.resend_s in these tests
        await pushed(centre, TODAY)
        r = await k.post("/api/appointments/redeem", json={"code": r.json()["code"]})
        assert r.status_code == 201, r.text
        assert uplink.inbox.refused["busy"] == 1
        [warning] = told(caplog, TODAY)  # once, though the answer was read on every pass
        assert warning.levelno == logging.WARNING and "busy" in warning.getMessage()
        assert centre.customers.appointments.not_run == {"busy": 1}
        shown = render(await centre.metrics()).splitlines()
        assert 'paidui_centre_appointment_lists_not_run_total{code="busy"} 1' in shown


async def test_a_list_overtaken_in_the_box_line_by_an_older_one_goes_again_as_a_new_revision(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Two centre processes push the same branch-day; the one that read it before the second
    booking is late, and its older list takes the place of the newer one still waiting in the
    box's line, which the box answers ``superseded`` (and would answer so again if re-sent).
    The centre sends the day again under a new revision instead of leaving the second
    booking off the box."""
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker) as (uplink, _), http(centre) as api, kiosk(box) as k:
        assert centre.customers is not None
        a = centre.customers.appointments
        await bookable(centre)
        token = await sign_in(api, centre)
        r = await api.post("/api/public/bookings", headers=bearer(token),
                           json={"branch": BRANCH, "queue": "A", "day": TODAY, "slot": 3})
        assert r.status_code == 201, r.text
        await pushed(centre, TODAY)
        before = await a.push_state(BRANCH, TODAY)
        assert before is not None
        # the list as the other process built it, before the second booking
        late = await a.pool.run(a._day_message, BRANCH, TODAY, before["revision"])
        del late["branch"]
        async with held_line(centre, uplink):
            r = await api.post("/api/public/bookings", headers=bearer(token),
                               json={"branch": BRANCH, "queue": "B", "day": TODAY, "slot": 3})
            assert r.status_code == 201, r.text
            await wait_for(lambda: len(uplink.inbox) == 1, 20, "the new list in the box's line")
            await centre.send_command(BRANCH, "appointments", late)
            await wait_for(lambda: told(caplog, TODAY), 20, "the centre to read the answer")
        await pushed(centre, TODAY)
        r = await k.post("/api/appointments/redeem", json={"code": r.json()["code"]})
        assert r.status_code == 201, r.text
        assert r.json()["queue"] == "B"
        assert a.not_run == {"superseded": 1}  # (the late list's own answer is not awaited)
        [warning] = told(caplog, TODAY)
        assert warning.levelno == logging.WARNING
