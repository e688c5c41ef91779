"""Pre-filled forms (预填单, I2) at the box: the kiosk fills one for its ticket, the teller
who calls that ticket sees it on the soft caller and prints it; nobody else reads or
writes it; it is in the journal before anybody is answered; old forms are blanked."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.clock import ManualClock
from controller.box import Box
from controller.config import Config
from controller.engine import Engine
from controller.engine import commands as c
from controller.errors import Refused
from controller.web import create_app
from controller.web.events import public_event
from tests.conftest import at, example_config
from tests.printer_support import printer_running

DEPOSIT = {"account": "6225 8801 2345 1237", "holder": "陈小明", "amount": "5000",
           "currency": "人民币"}


@pytest.fixture
async def http(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(box))
    async with httpx.AsyncClient(transport=transport, base_url="http://box") as client:
        yield client


async def take(http: httpx.AsyncClient, queue: str = "A") -> dict[str, Any]:
    r = await http.post("/api/tickets", json={"queue": queue})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def teller(http: httpx.AsyncClient, window: int = 1, who: str = "t1") -> dict[str, str]:
    r = await http.post(f"/api/windows/{window}/login", json={"teller": who, "password": "1234"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def fill(http: httpx.AsyncClient, ticket: dict[str, Any], fields: dict[str, str],
               form: str = "deposit", token: str | None = "") -> httpx.Response:
    body: dict[str, Any] = {"form": form, "fields": fields}
    if token is not None:
        body["token"] = token or ticket["reprint_token"]
    return await http.post(f"/api/tickets/{ticket['number']}/form", json=body)


async def test_the_kiosk_lists_the_forms_of_each_business(http: httpx.AsyncClient) -> None:
    forms = (await http.get("/api/forms")).json()["forms"]
    assert [(f["id"], f["queue"], f["title"]) for f in forms] == [
        ("deposit", "A", "存款预填单"), ("withdrawal", "A", "取款预填单"),
        ("transfer", "A", "转账预填单"), ("card_application", "A", "开卡申请预填单")]
    assert forms[0]["fields"][0] == {
        "name": "account", "label": "账号", "label_en": "Account number", "type": "account",
        "required": True, "max_len": 19, "choices": [], "choices_en": []}


async def test_a_form_filled_at_the_kiosk_shows_on_the_caller_of_that_ticket(
        box: Box, http: httpx.AsyncClient) -> None:
    ticket = await take(http)
    r = await fill(http, ticket, DEPOSIT)
    assert r.status_code == 200, r.text
    shown = {f["name"]: f["value"] for f in r.json()["fields"]}
    # the kiosk's screen is in the hall: the answer is masked
    assert shown == {"account": "622588******1237", "holder": "陈**", "amount": "5000.00",
                     "currency": "人民币"}
    # durable before the answer: in the journal, whole
    events = [r.event for r in await box.read_events(0, 100)]
    filled = [e for e in events if e["type"] == "form_filled"]
    assert [(e["number"], e["form"], e["channel"]) for e in filled] == [
        ("A001", "deposit", "kiosk")]
    assert filled[0]["fields"][0]["value"] == "6225880123451237"

    window = await teller(http, 1, "t1")
    empty = (await http.get("/api/windows/1/form", headers=window)).json()
    assert empty == {"window": 1, "number": None, "form": None}  # nobody called yet
    called = await http.post("/api/windows/1/call-next", headers=window)
    assert called.json()["current"]["number"] == "A001"
    form = (await http.get("/api/windows/1/form", headers=window)).json()
    assert form["number"] == "A001" and form["form"]["title"] == "存款预填单"
    assert [(f["label"], f["value"]) for f in form["form"]["fields"]] == [
        ("账号", "6225880123451237"), ("户名", "陈小明"), ("金额", "5000.00"),
        ("币种", "人民币")]


async def test_a_second_form_replaces_the_first_and_a_wrong_one_is_refused(
        box: Box, http: httpx.AsyncClient) -> None:
    ticket = await take(http)
    bad = await fill(http, ticket, {**DEPOSIT, "account": "12345"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "form_invalid"
    assert "账号" in bad.json()["error"]["message"]
    assert (await fill(http, ticket, {"account": "6225880123451237"}, "withdrawal")
            ).status_code == 422  # the amount is required
    assert (await fill(http, ticket, {"x": "1"}, "nope")).json()["error"]["code"] == "no_form"
    assert (await fill(http, ticket, DEPOSIT)).status_code == 200
    again = await fill(http, ticket, {"account": "6217000012345678", "amount": "200"},
                       "withdrawal")
    assert again.status_code == 200
    form = box.engine.state.forms[ticket["id"]]
    assert form["form"] == "withdrawal" and form["title"] == "取款预填单"
    other = await take(http, "T")  # 挂失改密 has no form
    r = await fill(http, other, {"account": "6217000012345678"}, "deposit")
    assert r.json()["error"]["code"] == "no_form"


async def test_only_the_issuing_kiosk_staff_and_the_serving_teller_touch_a_form(
        box: Box, http: httpx.AsyncClient) -> None:
    ticket = await take(http)
    for token in (None, "forged"):
        r = await fill(http, ticket, DEPOSIT, token=token)
        assert r.status_code == 403 and r.json()["error"]["code"] == "form_refused"
    assert (await fill(http, ticket, DEPOSIT)).status_code == 200
    # reading and printing are window routes: without that window's teller, nothing
    assert (await http.get("/api/windows/1/form")).status_code == 401
    assert (await http.post("/api/windows/1/print-form")).status_code == 401
    other = await teller(http, 2, "t2")
    assert (await http.get("/api/windows/1/form", headers=other)).status_code == 403
    assert (await http.post("/api/windows/1/print-form", headers=other)).status_code == 403
    # staff may fill one in for a customer (without the kiosk's token)
    r = await http.post("/api/tickets/A001/form", headers=other,
                        json={"form": "withdrawal", "fields": {"account": "6217000012345678",
                                                               "amount": "300"}})
    assert r.status_code == 200, r.text
    assert box.engine.state.forms[ticket["id"]]["channel"] == "staff"
    # the public ticket views and the screens' event stream say nothing of the values
    assert "form" not in (await http.get("/api/tickets/A001")).json()
    assert "6225880123451237" not in (await http.get("/api/tickets")).text
    events = [r.event for r in await box.read_events(0, 100)]
    shown = [public_event(e) for e in events if e["type"] == "form_filled"]
    assert shown and "6225880123451237" not in str(shown) and "陈小明" not in str(shown)
    assert shown[0]["number"] == "A001"  # that it has a form is no secret


async def test_a_form_cannot_be_filled_for_a_closed_ticket(http: httpx.AsyncClient) -> None:
    ticket = await take(http)
    window = await teller(http)
    await http.post("/api/windows/1/call-next", headers=window)
    await http.post("/api/windows/1/finish", headers=window)
    r = await fill(http, ticket, DEPOSIT)
    assert r.status_code == 409 and r.json()["error"]["code"] == "form_closed"


async def test_the_teller_prints_the_form_of_the_customer_at_the_window(
        box: Box, http: httpx.AsyncClient) -> None:
    async with printer_running(box) as (_, sim):
        ticket = await take(http)
        await fill(http, ticket, DEPOSIT)
        window = await teller(http)
        await http.post("/api/windows/1/call-next", headers=window)
        r = await http.post("/api/windows/1/print-form", headers=window)
        assert r.json() == {"window": 1, "number": "A001", "printed": True}
        slip = sim.tickets[-1]
        assert "存款预填单" in slip.lines and "A001" in slip.lines
        assert "账号:6225880123451237" in slip.lines  # the teller's copy: whole
        assert "金额:5000.00" in slip.lines
        assert any(line.startswith("填单时间 2026-11-25 10:00") for line in slip.lines)
        await http.post("/api/windows/1/finish", headers=window)
        r = await http.post("/api/windows/1/print-form", headers=window)
        assert r.json()["error"]["code"] == "no_current"


async def test_the_form_outlives_a_restart_and_the_log_shows_no_number(
        config: Config, clock: ManualClock, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with Box(config, tmp_path / "data", clock) as box:
        transport = httpx.ASGITransport(app=create_app(box))
        async with httpx.AsyncClient(transport=transport, base_url="http://box") as http:
            ticket = await take(http)
            assert (await fill(http, ticket, DEPOSIT)).status_code == 200
    async with Box(config, tmp_path / "data", clock) as box:
        form = box.engine.state.forms[ticket["id"]]
        assert form["fields"][0]["value"] == "6225880123451237"
    assert "6225880123451237" not in caplog.text and "陈小明" not in caplog.text


async def test_forms_are_blanked_after_their_retention_once_the_centre_has_them(
        config: Config, clock: ManualClock, tmp_path: Path) -> None:
    async with Box(config, tmp_path / "data", clock) as box:
        transport = httpx.ASGITransport(app=create_app(box))
        async with httpx.AsyncClient(transport=transport, base_url="http://box") as http:
            sent = await take(http)
            await fill(http, sent, DEPOSIT)
            await box.acknowledge(box.last_seq)  # the centre has everything so far
            unsent = await take(http)
            await fill(http, unsent, DEPOSIT)
        day = box.engine.state.day
        clock.advance(29 * 86400)  # 29 days on: still kept (forms.keep_days = 30)
        await box.execute(c.Tick())  # the day rolls over
        assert await box.blank_forms() == 0
        clock.advance(2 * 86400)  # 31 days on
        await box.execute(c.Tick())  # the day rolls over
        assert await box.blank_forms() == 1  # the acknowledged one; the unsent one waits
        old = await box.read_day(day)
        assert old.forms[sent["id"]]["fields"][0]["value"] == ""
        assert old.forms[sent["id"]]["fields"][0]["label"] == "账号"
        assert old.forms[unsent["id"]]["fields"][0]["value"] == "6225880123451237"
        await box.acknowledge(box.last_seq)
        assert await box.blank_forms() == 1
        assert await box.blank_forms() == 0  # once
        assert box.journal is not None
        raw = box.journal.db.execute("SELECT body FROM events WHERE type = 'form_filled'")
        assert all("6225880123451237" not in body for (body,) in raw.fetchall())


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["account", "holder", "amount", "currency", "x"]) | st.text(max_size=8),
        inner, max_size=6),
    max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(values=junk, form=st.sampled_from([None, "deposit", "withdrawal", "nope"]))
def test_the_engine_takes_any_form_as_a_form_or_a_refusal(values: Any, form: str | None
                                                          ) -> None:
    engine = Engine(example_config())
    now = at(10)
    engine.handle(c.IssueTicket(queue="A"), now)
    try:
        events = engine.handle(c.FillForm("A001", values, "kiosk", form), now)
    except Refused as refusal:
        assert refusal.code in ("form_invalid", "no_form") and refusal.message
        assert not engine.state.forms
        return
    (e,) = events
    assert e["type"] == "form_filled" and engine.state.forms[e["ticket"]]["form"] == e["form"]
    assert all(isinstance(f["value"], str) and len(f["value"]) <= 200 for f in e["fields"])
