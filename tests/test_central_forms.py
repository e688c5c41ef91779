"""Pre-filled forms (预填单, I2) between the phone, the centre and the box: a form filled on
the phone for a remote ticket shows, whole, on the caller of the teller who calls that
ticket; the centre keeps only masked values, and blanks them after the retention.

Wed 2026-11-25 10:00 at the example branch; a real broker, a real centre, a real box.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.booking_forms import blank_booking_forms
from central.broker import LocalBroker
from central.customers import CustomerChannels
from central.forms import RemoteForms, blank_old_forms
from central.service import Centre
from central.store import Store, open_store
from common.clock import ManualClock
from controller.box import Box
from controller.web import create_app as box_app
from tests.customer_support import (
    an_id,
    bearer,
    bookable,
    customer_centre,
    http,
    linked_box,
    plain_centre,
    pushed,
    put_catalogue,
    sign_in,
    staff,
)
from tests.forms_support import TRANSFER, centre_forms
from tests.uplink_support import (  # noqa: F401
    BRANCH,
    broker_fixture,
    pg_url_fixture,
    store_url_fixture,
    wait_for,
)

WHOLE = ("6225880123451237", "6217000012345678", "李四")


def with_forms(centre: Centre) -> None:
    """The centre's phone page offers the forms of examples/centre.toml."""
    ch = centre.customers
    assert ch is not None
    ch.forms = ch.booking_forms.forms = RemoteForms(ch.remote, centre_forms())


async def remote_ticket(api: httpx.AsyncClient, centre: Centre) -> str:
    token = await sign_in(api, centre)
    r = await api.post("/api/public/tickets", headers=bearer(token),
                       json={"branch": BRANCH, "queue": "A"})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


async def stored_forms(centre: Centre) -> list[tuple[str, Any]]:
    rows = await centre.read(lambda st: st.execute(
        "SELECT type, body FROM events WHERE type IN ('form_filled', 'form_blanked') "
        "ORDER BY seq").fetchall())
    return [(t, body if isinstance(body, dict) else json.loads(body)) for t, body in rows]


async def test_a_form_filled_on_the_phone_shows_on_the_caller_at_the_branch(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker), http(centre) as api:
        with_forms(centre)
        await bookable(centre)
        link = await remote_ticket(api, centre)
        offered = (await api.get("/api/public/forms", params={"queue": "A"})).json()["forms"]
        assert [f["id"] for f in offered] == ["deposit", "withdrawal", "transfer",
                                              "card_application"]

        r = await api.post(f"/api/public/tickets/{link}/form",
                           json={"form": "transfer", "fields": TRANSFER})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["number"] == "A001" and answer["title"] == "转账预填单"
        assert {f["name"]: f["value"] for f in answer["fields"]} == {
            "account": "622588******1237", "payee": "李*", "payee_account": "621700******5678",
            "amount": "1200.50", "purpose": "房租"}

        # at the branch: the teller who calls A001 sees the form whole
        transport = httpx.ASGITransport(app=box_app(box))
        async with httpx.AsyncClient(transport=transport, base_url="http://box") as local:
            r = await local.post("/api/windows/1/login", json={"teller": "t1", "password": "1234"})
            window = {"Authorization": f"Bearer {r.json()['token']}"}
            await local.post("/api/windows/1/call-next", headers=window)
            form = (await local.get("/api/windows/1/form", headers=window)).json()
        assert form["number"] == "A001"
        assert form["form"]["channel"] == "remote" and form["form"]["title"] == "转账预填单"
        assert [(f["label"], f["value"]) for f in form["form"]["fields"]][:3] == [
            ("付款账号", "6225880123451237"), ("收款人", "李四"), ("收款账号", "6217000012345678")]

        # the centre has the branch's form_filled, masked; nothing whole anywhere in its store
        stored = await wait_for(lambda: stored_forms(centre), 20, "the form at the centre")
        kind, body = stored[0]
        assert kind == "form_filled" and body["number"] == "A001" and body["form"] == "transfer"
        assert body["fields"][0]["value"] == "622588******1237"
        dump = await centre.read(lambda st: [json.dumps(r, ensure_ascii=False, default=str)
                                             for t in ("events", "replies")
                                             for r in st.execute(f"SELECT * FROM {t}")])
        for whole in WHOLE:
            assert not any(whole in row for row in dump), whole


async def call_and_show_form(box: Box) -> dict[str, Any]:
    """A teller signs in at window 1, calls the next customer and opens their form."""
    transport = httpx.ASGITransport(app=box_app(box))
    async with httpx.AsyncClient(transport=transport, base_url="http://box") as local:
        r = await local.post("/api/windows/1/login", json={"teller": "t1", "password": "1234"})
        window = {"Authorization": f"Bearer {r.json()['token']}"}
        await local.post("/api/windows/1/call-next", headers=window)
        return dict((await local.get("/api/windows/1/form", headers=window)).json())


async def redeem(box: Box, code: str) -> str:
    transport = httpx.ASGITransport(app=box_app(box))
    async with httpx.AsyncClient(transport=transport, base_url="http://box") as kiosk:
        r = await kiosk.post("/api/appointments/redeem", json={"code": code})
    assert r.status_code == 201, r.text
    return str(r.json()["number"])


async def test_a_form_filled_before_the_booking_is_redeemed_shows_on_the_caller_when_called(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker), http(centre) as api:
        with_forms(centre)
        await bookable(centre)
        token = await sign_in(api, centre)
        r = await api.post("/api/public/bookings", headers=bearer(token),
                           json={"branch": BRANCH, "queue": "A", "day": "2026-11-25", "slot": 3})
        booking = r.json()
        await pushed(centre, "2026-11-25")
        path = f"/api/public/bookings/{booking['id']}/form"
        assert (await api.post(path, json={"form": "transfer", "fields": TRANSFER})
                ).status_code == 401  # signed in only
        # filled on the phone before the ticket exists: kept, masked, waiting for the ticket
        first = await api.post(path, headers=bearer(token), json={
            "form": "transfer", "fields": {**TRANSFER, "amount": "10"}})
        assert first.status_code == 200, first.text
        assert first.json()["state"] == "waiting"
        # changed before the redemption: the new one replaces it
        r = await api.post(path, headers=bearer(token), json={"form": "transfer",
                                                              "fields": TRANSFER})
        assert r.status_code == 200 and r.json()["fields"][0]["value"] == "622588******1237"
        shown = (await api.get(f"/api/public/bookings/{booking['id']}",
                               headers=bearer(token))).json()["form"]
        assert shown["state"] == "waiting" and shown["title"] == "转账预填单"
        assert not box.engine.state.forms  # nothing at the branch before the ticket

        number = await redeem(box, booking["code"])  # at the kiosk, by its code

        async def delivered() -> bool:
            got = (await api.get(f"/api/public/bookings/{booking['id']}",
                                 headers=bearer(token))).json()
            return got["form"]["state"] == "delivered"

        await wait_for(delivered, 20, "the form delivered to the branch")
        form = await call_and_show_form(box)
        assert form["number"] == number
        assert form["form"]["channel"] == "remote" and form["form"]["title"] == "转账预填单"
        assert [(f["label"], f["value"]) for f in form["form"]["fields"]] == [
            ("付款账号", "6225880123451237"), ("收款人", "李四"), ("收款账号", "6217000012345678"),
            ("金额", "1200.50"), ("用途", "房租")]

        # once: more looks send nothing more, the branch journaled one form
        assert centre.customers is not None
        forms = centre.customers.booking_forms
        assert await forms.step() == 0 and await forms.step() == 0
        stored = await wait_for(lambda: stored_forms(centre), 20, "the form at the centre")
        assert [(t, b["number"]) for t, b in stored] == [("form_filled", number)]
        assert forms.sent["delivered"] == 1 and forms.sent["sent"] == 1
        # the whole values are gone from the centre's store once delivered
        dump = await centre.read(lambda st: [json.dumps(r, ensure_ascii=False, default=str)
                                             for t in ("events", "replies", "booking_forms")
                                             for r in st.execute(f"SELECT * FROM {t}")])
        for whole in WHOLE:
            assert not any(whole in row for row in dump), whole
        sealed = await centre.read(lambda st: st.execute(
            "SELECT fields_sealed FROM booking_forms").fetchall())
        assert sealed == [(None,)]


async def test_after_the_redemption_the_booking_form_goes_to_the_ticket_at_once(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker), http(centre) as api:
        with_forms(centre)
        await bookable(centre)
        token = await sign_in(api, centre)
        r = await api.post("/api/public/bookings", headers=bearer(token),
                           json={"branch": BRANCH, "queue": "A", "day": "2026-11-25", "slot": 3})
        booking = r.json()
        await pushed(centre, "2026-11-25")
        number = await redeem(box, booking["code"])

        async def has_number() -> bool:
            got = (await api.get(f"/api/public/bookings/{booking['id']}",
                                 headers=bearer(token))).json()
            return got.get("ticket_number") == number

        await wait_for(has_number, 20, "the centre to see the redemption")
        r = await api.post(f"/api/public/bookings/{booking['id']}/form", headers=bearer(token),
                           json={"form": "transfer", "fields": TRANSFER})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "delivered" and r.json()["number"] == number
        t = box.engine.state.by_num(number)
        assert t is not None
        form = box.engine.state.forms[t.id]
        assert form["channel"] == "remote" and form["fields"][0]["value"] == "6225880123451237"


async def booked_alone(centre: Centre, api: httpx.AsyncClient, clock: ManualClock, day: str
                       ) -> tuple[CustomerChannels, str, dict[str, Any]]:
    """A centre without a branch online (its catalogue stored), with the example forms: a
    customer signed in, and their booking of business A on ``day``, slot 3."""
    ch = centre.customers
    assert ch is not None
    with_forms(centre)
    await put_catalogue(ch.appointments, clock)
    token = await sign_in(api, centre)
    r = await api.post("/api/public/bookings", headers=bearer(token),
                       json={"branch": BRANCH, "queue": "A", "day": day, "slot": 3})
    assert r.status_code == 201, r.text
    return ch, token, dict(r.json())


async def test_a_booking_form_is_refused_when_wrong_and_dropped_when_the_booking_is_cancelled(
        store_url: str, tmp_path: Path, clock: ManualClock) -> None:
    async with plain_centre(store_url, tmp_path, clock) as (centre, api):
        ch, token, booking = await booked_alone(centre, api, clock, "2026-11-26")
        path = f"/api/public/bookings/{booking['id']}/form"
        bad = await api.post(path, headers=bearer(token),
                             json={"form": "transfer", "fields": {**TRANSFER, "amount": "-1"}})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "form_invalid"
        other = await api.post(f"/api/public/bookings/{'b' + '0' * 16}/form",
                               headers=bearer(token), json={"form": "transfer",
                                                            "fields": TRANSFER})
        assert other.status_code == 404
        someone = await sign_in(api, centre, phone="13900001111", id_number=an_id(7))
        theirs = await api.post(path, headers=bearer(someone),
                                json={"form": "transfer", "fields": TRANSFER})
        assert theirs.status_code == 404  # another customer's booking is not theirs to fill
        ok = await api.post(path, headers=bearer(token),
                            json={"form": "transfer", "fields": TRANSFER})
        assert ok.status_code == 200 and ok.json()["state"] == "waiting"
        sealed = await centre.read(lambda st: st.execute(
            "SELECT fields_sealed, fields_masked FROM booking_forms").fetchall())
        assert sealed[0][0] and not any(w in sealed[0][0] + sealed[0][1] for w in WHOLE)
        await api.post(f"/api/public/bookings/{booking['id']}/cancel", headers=bearer(token))
        clock.advance(86400)  # the booked day: cancelled, so nothing goes
        await ch.booking_forms.step()
        left = await centre.read(lambda st: st.execute(
            "SELECT state, fields_sealed FROM booking_forms").fetchall())
        assert left == [("expired", None)]
        late = await api.post(path, headers=bearer(token),
                              json={"form": "transfer", "fields": TRANSFER})
        assert late.status_code == 409 and late.json()["error"]["code"] == "booking_cancelled"
        # past forms.keep_days (the cutoff: keep_days before today): the masked values go
        # too, once
        pool = ch.appointments.pool
        assert await pool.run(blank_booking_forms, "2026-11-26", 100) == 0
        assert await pool.run(blank_booking_forms, "2026-11-27", 100) == 1
        assert await pool.run(blank_booking_forms, "2026-11-27", 100) == 0
        state, shown = await centre.read(lambda st: st.execute(
            "SELECT state, fields_masked FROM booking_forms").fetchone())
        fields = json.loads(shown)
        assert state == "blanked" and fields[0]["label"] == "付款账号"
        assert all(f["value"] == "" for f in fields)


async def test_a_wrong_form_is_refused_at_the_centre_and_nobody_else_fills_one(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    async with customer_centre(broker, store_url, clock, tmp_path) as centre, \
            linked_box(box, broker), http(centre) as api:
        with_forms(centre)
        await bookable(centre)
        link = await remote_ticket(api, centre)
        bad = await api.post(f"/api/public/tickets/{link}/form",
                             json={"form": "transfer", "fields": {**TRANSFER, "amount": "-1"}})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "form_invalid"
        assert "金额" in bad.json()["error"]["message"]
        unknown = await api.post(f"/api/public/tickets/{'x' * 32}/form",
                                 json={"form": "transfer", "fields": TRANSFER})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "remote_unknown"
        none = await api.post(f"/api/public/tickets/{link}/form",
                              json={"form": "nope", "fields": TRANSFER})
        assert none.status_code == 404 and none.json()["error"]["code"] == "no_form"
        junk = await api.post(f"/api/public/tickets/{link}/form",
                              json={"form": "transfer", "fields": {"a": ["x"]}})
        assert junk.status_code == 422
        assert not box.engine.state.forms  # nothing reached the branch


async def test_head_office_staff_cannot_send_a_form_command(
        store_url: str, tmp_path: Path, clock: ManualClock) -> None:
    async with plain_centre(store_url, tmp_path, clock) as (_, api):
        headers = await staff(api)
        r = await api.post(f"/api/branches/{BRANCH}/commands/form", headers=headers,
                           json={"number": "A001", "fields": {"account": "6225880123451237"},
                                 "expires_at": 2e9})
        assert r.status_code == 403


def _event(seq: int, day: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"seq": seq, "type": "form_filled", "at": 1.0 * seq, "day": day, "ticket": f"t{seq}",
            "number": f"A00{seq}", "queue": "A", "form": "deposit", "fields": fields}


def test_the_centre_blanks_forms_past_their_retention(store_url: str) -> None:
    from central.store.records import EventBatch, Inbound

    fields = [{"name": "account", "label": "账号", "label_en": "Account", "type": "account",
               "mask": "card", "value": "6225880123451237"}]
    st: Store = open_store(store_url)
    try:
        st.ingest(Inbound(batches=[EventBatch(BRANCH, "e1", [
            _event(1, "2026-10-01", fields), _event(2, "2026-11-20", fields)])]))
        rows = st.execute("SELECT seq, body FROM events ORDER BY seq").fetchall()
        assert all("6225880123451237" not in str(body) for _, body in rows)  # masked on entry
        assert blank_old_forms(st, "2026-10-26") == 1  # 30 days before 2026-11-25
        assert blank_old_forms(st, "2026-10-26") == 0  # once
        rows = st.execute("SELECT seq, type, body FROM events ORDER BY seq").fetchall()
        bodies = [b if isinstance(b, dict) else json.loads(b) for _, _, b in rows]
        assert [t for _, t, _ in rows] == ["form_blanked", "form_filled"]
        assert bodies[0]["blanked"] and bodies[0]["fields"][0] == {
            "name": "account", "label": "账号", "label_en": "Account", "type": "account",
            "mask": "card", "value": ""}
        assert bodies[1]["fields"][0]["value"] == "622588******1237"
    finally:
        st.close()


async def test_a_booking_form_goes_once_resent_under_its_id_and_again_only_when_not_run(
        store_url: str, tmp_path: Path, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The delivery's bookkeeping, the broker's publish recorded: not sent (the broker is
    away) → the same id at the next look; sent → nothing more while in flight; no answer
    in ``resend_s`` → the same id again; the box did not run it (busy) → a new try;
    delivered → values gone."""
    from central.store.records import EventBatch, Inbound

    async with plain_centre(store_url, tmp_path, clock) as (centre, api):
        ch, token, booking = await booked_alone(centre, api, clock, "2026-11-25")
        bid = booking["id"]
        r = await api.post(f"/api/public/bookings/{bid}/form", headers=bearer(token),
                           json={"form": "transfer", "fields": TRANSFER})
        assert r.json()["state"] == "waiting"
        forms = ch.booking_forms
        assert await forms.step() == 0  # no ticket yet: nothing goes

        def stored(st: Store, inbound: Inbound) -> None:
            st.ingest(inbound)

        issued = {"seq": 1, "type": "ticket_issued", "at": clock.now(), "day": "2026-11-25",
                  "ticket": "20261125-A001", "number": "A001", "queue": "A", "n": 1,
                  "customer_type": "normal", "type_priority": 0, "stars": 0,
                  "channel": "appointment", "kiosk": "kiosk", "appointment": bid,
                  "ahead": 0, "waiting": 0}
        await ch.appointments.pool.read(stored, Inbound(batches=[EventBatch(BRANCH, "e1",
                                                                           [issued])]))
        with pytest.raises(ConnectionError):  # the broker is away: not sent, goes next look
            await forms.step()
        sent: list[dict[str, Any]] = []

        async def publish(branch: str, name: str, args: dict[str, Any]) -> str:
            sent.append({"branch": branch, "name": name, **args})
            return str(args["id"])

        monkeypatch.setattr(centre, "send_command", publish)
        assert await forms.step() == 1
        first = sent[-1]
        assert first["name"] == "form" and first["number"] == "A001"
        assert first["id"] == f"form-{bid}-r1-1" and first["fields"]["payee"] == "李四"
        assert await forms.step() == 0  # in flight, within resend_s
        clock.advance(3)  # customers.resend_s = 2 in these tests: no answer, the same id
        assert await forms.step() == 1 and sent[-1]["id"] == first["id"]
        assert sent[-1]["expires_at"] == first["expires_at"]

        async def answered(ok: bool, code: str = "") -> None:
            reply = {"id": sent[-1]["id"], "cmd": "form", "ok": ok,
                     **({"result": {"number": "A001"}} if ok else
                        {"error": {"code": code, "message": "", "message_en": ""}})}
            await ch.appointments.pool.read(stored, Inbound(replies=[(BRANCH, reply)]))

        await answered(False, "busy")  # not run: a new try, at once
        assert await forms.step() == 1 and sent[-1]["id"] == f"form-{bid}-r1-2"
        await answered(True)
        assert await forms.step() == 0
        row = await centre.read(lambda st: st.execute(
            "SELECT state, fields_sealed, ticket_number FROM booking_forms").fetchone())
        assert tuple(row) == ("delivered", None, "A001")
        assert await forms.step() == 0 and len(sent) == 3
        assert forms.sent["delivered"] == 1 and forms.sent["again"] == 1
