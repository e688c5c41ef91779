"""Every parser facing the outside, fed anything (hypothesis) through the real app: inbound
SMS text and sender, phone numbers, sign-in codes, names, remote-ticket tokens, the QR
paths /b/{branch}/t/{ticket} and /yy/…, and the public status's query parameters. No 500,
ever, and no control or format character in any answer."""

from __future__ import annotations

import json
import unicodedata
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.config import load_centre_config
from central.customers import CustomerChannels
from central.names import HIDDEN_CATEGORIES
from central.service import Centre
from central.sms import LogSms
from central.templating import customer_shell
from central.web import create_app
from common.clock import ManualClock
from tests.conftest import WEDNESDAY_10AM
from tests.customer_support import ID_NUMBER, PHONE, put_catalogue
from tests.office_support import ADMIN_SEED
from tests.uplink_support import BRANCH

GATEWAY = "gateway-token"
SHELL = customer_shell()
NASTY = ["", "\x00", "\x1b[31m", "\u202e", "\u2066\u2069", "\u200b", "\u2028", "\x85", "\ud800",
         "፩", "١٢٣", "１３８", "0" * 200, "../..", "%00", "' OR 1=1 --", "=cmd|'/c calc'!A1",
         "13812345678", "+86 138 1234 5678", BRANCH, "20261125-A001", "2026-11-25", "NaN",
         "-1", "1e999", "\uffff", "\U0010ffff"]
ANY = st.one_of(st.sampled_from(NASTY), st.text(st.characters(exclude_categories=()),
                                                max_size=40),
                st.lists(st.sampled_from(NASTY), max_size=4).map("".join))
DIGITISH = st.text(st.sampled_from("0123456789١٣፩１３ +-\u202e\x00"), max_size=20)
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def hidden(text: str) -> set[str]:
    return {c for c in text if unicodedata.category(c) in HIDDEN_CATEGORIES}


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def clean(r: Any) -> Any:
    """A 2xx or 4xx answer with no control or format character in it (the pages: the shell)."""
    assert r.status_code < 500, r.text
    if r.headers.get("content-type", "").startswith("text/html"):
        assert r.text == SHELL
        return None
    body = r.json()
    for text in strings(body):
        assert not hidden(text), (r.status_code, body)
    return body


def post(client: TestClient, path: str, body: Any = None, token: str | None = None) -> Any:
    """POST ``body`` as JSON text with escapes (a lone surrogate travels as ``\\ud800``)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(path, content=json.dumps(body), headers=headers)


def seg(text: str) -> str:
    """One path segment, percent-encoded (lone surrogates as the bytes they would be)."""
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """The centre's app on SQLite with a signed-in, unregistered customer's token."""
    cfg = load_centre_config(None, [f"store.url=sqlite:///{tmp_path / 'c.sqlite3'}",
                                    "http.enabled=false", ADMIN_SEED,
                                    f"customers.secret_file={tmp_path / 'customers.key'}",
                                    f"customers.sms.inbound_token={GATEWAY}",
                                    "customers.codes_per_address=100000",
                                    # the parsers, not the edge's per-address limits
                                    # (tests/test_central_edge.py): hypothesis sends fast
                                    "http.public.enabled=false"])
    centre = Centre(cfg)
    clock = ManualClock(WEDNESDAY_10AM)
    centre.customers = CustomerChannels(centre, clock=clock.now, sms=LogSms())
    a = centre.customers.appointments
    with TestClient(create_app(centre)) as client:
        client.portal.call(put_catalogue, a, clock)
        assert client.post("/api/public/login/code", json={"phone": PHONE}).status_code == 200
        sms = a.sms
        assert isinstance(sms, LogSms)
        code = sms.sent[-1][1].split("验证码是")[1][:6]
        r = client.post("/api/public/login", json={"phone": PHONE, "code": code})
        yield client, r.json()["token"]
        client.portal.call(centre.customers.link.close)
        client.portal.call(a.pool.close)
        client.portal.call(centre.close)


@FAST
@given(phone=st.one_of(ANY, DIGITISH), code=st.one_of(ANY, DIGITISH))
def test_sign_in_takes_any_phone_and_code(app: tuple[TestClient, str], phone: str,
                                          code: str) -> None:
    client, _ = app
    clean(post(client, "/api/public/login/code", {"phone": phone}))
    clean(post(client, "/api/public/login", {"phone": phone, "code": code}))
    clean(post(client, "/api/public/login", {"phone": PHONE, "code": code}))


@FAST
@given(name=ANY, id_number=st.one_of(ANY, st.just(ID_NUMBER)), gender=ANY, card=ANY)
def test_registration_takes_any_name_and_refuses_hidden_characters(
        app: tuple[TestClient, str], name: str, id_number: str, gender: str,
        card: str) -> None:
    client, token = app
    r = post(client, "/api/public/register", {"name": name, "id_number": id_number,
                                              "gender": gender, "card": card}, token)
    body = clean(r)
    if hidden(name) and r.status_code != 422:
        raise AssertionError(f"a name with {hidden(name)!r} was taken: {body}")


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u200b", "\u200d",
                                  "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066",
                                  "\u2067", "\u2068", "\u2069", "\ufeff", "\u2028", "\u2029"])
def test_a_name_with_a_control_or_bidi_character_is_refused(
        app: tuple[TestClient, str], char: str) -> None:
    client, token = app
    r = client.post("/api/public/register", headers={"Authorization": f"Bearer {token}"},
                    json={"name": f"陈{char}明", "id_number": ID_NUMBER})
    error = clean(r)["error"]
    assert r.status_code == 422 and error["code"] == "bad_name_chars"
    assert f"U+{ord(char):04X}" in error["message"] and error["message_en"]
    assert client.get("/api/public/me", headers={
        "Authorization": f"Bearer {token}"}).json()["registered"] is False


@FAST
@given(sender=st.one_of(ANY, DIGITISH, st.just(PHONE)), text=ANY,
       verb=st.sampled_from(["CXPD", "YY", "CXYY", "QXYY", "ZC", "BZ", "yy+1001010001+a+"]))
def test_an_inbound_sms_of_any_text_is_answered_cleanly(
        app: tuple[TestClient, str], sender: str, text: str, verb: str) -> None:
    client, _ = app
    for message in (text, f"{verb} {text}", f"ZC {text} {ID_NUMBER}"):
        clean(post(client, "/api/sms/inbound", {"from": sender, "text": message}, GATEWAY))


def test_an_ethiopic_digit_gets_the_help_not_a_500(app: tuple[TestClient, str]) -> None:
    client, _ = app
    for text in (f"YY {BRANCH} A ፩", f"YY {BRANCH} A ٣", "CXPD ١٠٠١٠١٠٠٠١",
                 f"ZC 陈\u202e明 {ID_NUMBER}", "\x00\u202eHELLO"):
        r = client.post("/api/sms/inbound", json={"from": PHONE, "text": text},
                        headers={"Authorization": f"Bearer {GATEWAY}"})
        replies = "".join(clean(r)["replies"])
        assert "格式" in replies or "不可见" in replies or "未知指令HELLO" in replies


@FAST
@given(a=ANY, b=ANY, c=ANY)
def test_public_paths_take_any_segment(app: tuple[TestClient, str], a: str, b: str,
                                       c: str) -> None:
    client, _ = app
    for path in (f"/api/public/branches/{seg(a)}", f"/api/public/branches/{seg(a)}/bookable",
                 f"/api/public/branches/{BRANCH}/tickets/{seg(b)}",
                 f"/api/public/branches/{seg(a)}/tickets/{seg(b)}",
                 f"/api/public/tickets/{seg(a)}", f"/b/{seg(a)}/t/{seg(b)}",
                 f"/yy/{seg(a)}/{seg(b)}/{seg(c)}", f"/m/{seg(a)}"):
        clean(client.get(path))
    clean(post(client, f"/api/public/tickets/{seg(a)}/rate", {"score": b}))


@FAST
@given(params=st.dictionaries(st.sampled_from(["lat", "lon", "queue", "radius_km", "limit",
                                               "day"]),
                              st.one_of(ANY, st.floats().map(str), st.integers().map(str)),
                              max_size=6))
def test_public_query_parameters_take_any_value(app: tuple[TestClient, str],
                                                params: dict[str, str]) -> None:
    client, _ = app
    encoded = urllib.parse.urlencode({k: v.encode("utf-8", "surrogatepass")
                                      for k, v in params.items()})
    clean(client.get(f"/api/public/nearby?{encoded}"))
    clean(client.get(f"/api/public/branches/{BRANCH}/bookable?{encoded}"))
    clean(client.get(f"/api/public/branches?{encoded}"))


@FAST
@given(body=st.fixed_dictionaries({}, optional={
    "branch": st.one_of(ANY, st.just(BRANCH)), "queue": ANY, "slot": st.one_of(ANY, st.integers()),
    "day": ANY}), booking=ANY)
def test_bookings_take_any_body_and_path(app: tuple[TestClient, str], body: dict[str, Any],
                                         booking: str) -> None:
    client, token = app
    clean(post(client, "/api/public/bookings", body, token))
    clean(post(client, "/api/public/tickets", body, token))
    clean(client.get(f"/api/public/bookings/{seg(booking)}",
                     headers={"Authorization": f"Bearer {token}"}))
    clean(post(client, f"/api/public/bookings/{seg(booking)}/cancel", None, token))


@FAST
@given(a=ANY, b=ANY, c=ANY, fields=st.one_of(ANY, st.dictionaries(ANY, ANY, max_size=4),
                                          st.lists(ANY, max_size=3)))
def test_the_form_routes_take_any_input(app: tuple[TestClient, str], a: str, b: str, c: str,
                                        fields: Any) -> None:
    """Pre-filled forms (central/forms.py): junk in, a clear 4xx out, never a 500."""
    client, token = app
    clean(client.get(f"/api/public/forms?queue={seg(a)}"))
    clean(post(client, f"/api/public/tickets/{seg(a)}/form", {"form": b, "fields": fields}))
    clean(post(client, f"/api/public/tickets/{'x' * 32}/form", {"form": b, "fields": fields}))
    clean(post(client, f"/api/public/bookings/{seg(c)}/form", {"form": b, "fields": fields},
               token))
