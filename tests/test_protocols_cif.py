"""The CIF's wire format (SPEC I1): the JSON both ways, the signature, and junk refused."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.cif import (
    SKEW_S,
    AccountManager,
    CifError,
    CustomerInfo,
    customer_json,
    display_name,
    encode_lookup,
    encode_notice,
    parse_lookup,
    parse_lookup_answer,
    parse_notice,
    sign,
    signed_headers,
    verify,
)

RECORD = {"id": "C000318", "type": "vip", "stars": 4, "name": "张伟", "gender": "M",
          "business": "V", "manager": {"id": "M12", "name": "赵磊", "phone": "13800138012",
                                       "terminal": "lobby1"}}


def test_a_lookup_request_reads_back_as_sent() -> None:
    body = encode_lookup("card", "6217000010009872", "0101")
    assert json.loads(body) == {"kind": "card", "number": "6217000010009872", "branch": "0101"}
    assert parse_lookup(body) == ("card", "6217000010009872", "0101")
    assert parse_lookup(encode_lookup("id", "41010519800101231X", "0101"))[0] == "id"


def test_an_answer_becomes_the_customer_with_a_display_name_only() -> None:
    info = parse_lookup_answer(customer_json(RECORD))
    assert info == CustomerInfo("C000318", "vip", 4, "张先生", "V",
                                AccountManager("M12", "赵磊", "13800138012", "lobby1"))
    assert "张伟" not in repr(info)  # the full name never reaches the box's objects


def test_not_found_is_none() -> None:
    assert parse_lookup_answer(customer_json(None)) is None
    assert parse_lookup_answer(b'{"found": false}') is None


def test_the_smallest_answer_is_enough() -> None:
    info = parse_lookup_answer(b'{"found": true, "customer": {"id": "C1"}}')
    assert info == CustomerInfo("C1", "normal", 0, "", None, None)


@pytest.mark.parametrize(("name", "gender", "shown"), [
    ("陈明", "M", "陈先生"), ("李娜", "F", "李女士"), ("欧阳建国", "M", "欧阳先生"),
    ("王小明", "", "王**"), ("Smith", "M", "S**"), ("", "M", ""),
])
def test_names_are_shown_as_the_kiosk_does(name: str, gender: str, shown: str) -> None:
    assert display_name(name, gender) == shown


@pytest.mark.parametrize("body", [
    b"", b"[]", b"null", b'{"found": "yes"}', b'{"found": true}',
    b'{"found": true, "customer": {"id": "C1", "stars": 8}}',
    b'{"found": true, "customer": {"id": "C1", "stars": true}}',
    b'{"found": true, "customer": {"id": "C1", "stars": 3.0}}',
    b'{"found": true, "customer": {"id": ""}}',
    b'{"found": true, "customer": {"id": "C1", "type": "VIP!"}}',
    b'{"found": true, "customer": {"id": "C1", "gender": "X"}}',
    b'{"found": true, "customer": {"id": "C1", "manager": {"id": "M1"}}}',
    b'{"found": true, "customer": {"id": "C1", "business": "<script>"}}',
    b'{"found": true, "customer": {"id": "C1", "name": "' + b"x" * 65 + b'"}}',
    b"\xff\xfe", b"[" * 100_000,
])
def test_an_answer_that_is_not_the_documented_json_is_refused(body: bytes) -> None:
    with pytest.raises(CifError):
        parse_lookup_answer(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=20,
)
CUSTOMERISH = st.fixed_dictionaries({}, optional={
    "id": st.text(max_size=70) | JSON, "type": st.sampled_from(["vip", "normal", "X"]) | JSON,
    "stars": st.integers(-2, 9) | JSON, "name": st.text(max_size=70) | JSON,
    "gender": st.sampled_from(["M", "F", "", "Q"]) | JSON, "business": st.text(max_size=5) | JSON,
    "manager": st.fixed_dictionaries({}, optional={"id": st.text(max_size=5) | JSON,
                                                   "name": st.text(max_size=5) | JSON,
                                                   "phone": JSON, "terminal": JSON}) | JSON,
})


@given(st.binary(max_size=300))
def test_junk_bytes_are_refused_clearly(body: bytes) -> None:
    with contextlib.suppress(CifError):
        parse_lookup_answer(body)


@given(st.fixed_dictionaries({"found": st.just(True) | JSON, "customer": CUSTOMERISH | JSON}))
def test_any_json_answer_is_a_customer_or_refused_clearly(obj: dict[str, object]) -> None:
    try:
        info = parse_lookup_answer(json.dumps(obj).encode())
    except CifError:
        return
    if info is not None:  # what the box then relies on
        assert 0 <= info.stars <= 7 and info.id and len(info.name) <= 64
        assert info.manager is None or info.manager.name.strip()


@given(JSON)
def test_any_lookup_request_is_read_or_refused_clearly(obj: object) -> None:
    with contextlib.suppress(CifError):
        parse_lookup(json.dumps(obj).encode())


def test_a_notice_reads_back_as_sent() -> None:
    notice = {"type": "vip_arrival", "id": "20261125-V001", "branch": "0101", "ticket": "V001",
              "manager": "M07", "name": "陈先生"}
    assert parse_notice(encode_notice(notice)) == notice
    with pytest.raises(CifError):
        parse_notice(encode_notice({**notice, "type": "other"}))


def test_a_signed_request_verifies_and_any_change_is_refused() -> None:
    keys = {"box": b"0123456789abcdef0123"}
    body = encode_lookup("card", "6217000010009872", "0101")
    h = {k.lower(): v for k, v in
         signed_headers("box", keys["box"], 1_800_000_000.7, "POST", "/customers/lookup",
                        body).items()}
    assert h["x-paidui-timestamp"] == "1800000000"
    assert h["x-paidui-signature"] == sign(keys["box"], 1_800_000_000, "POST",
                                           "/customers/lookup", body)
    assert verify(h, keys, 1_800_000_000, "POST", "/customers/lookup", body) is None
    assert verify(h, keys, 1_800_000_000, "POST", "/customers/lookup",
                  body.replace(b"9872", b"9873")) == "bad_signature"
    assert verify(h, keys, 1_800_000_000, "POST", "/notifications", body) == "bad_signature"
    assert verify(h, keys, 1_800_000_000 + SKEW_S + 1, "POST", "/customers/lookup",
                  body) == "stale"
    assert verify({**h, "x-paidui-key": "other"}, keys, 1_800_000_000, "POST",
                  "/customers/lookup", body) == "unknown_key"
    assert verify({**h, "x-paidui-timestamp": "soon"}, keys, 1_800_000_000, "POST",
                  "/customers/lookup", body) == "stale"
