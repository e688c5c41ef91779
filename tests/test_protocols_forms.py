"""The pre-filled forms' definitions, validator and masks (protocols/forms.py): what a
customer may type is checked one way at the box and at the centre, and never crashes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import ConfigError
from protocols import forms as f
from protocols import uplink as proto
from protocols.cards import id_check_char
from tests.conftest import example_config
from tests.forms_support import centre_forms

FORMS = centre_forms()
SPECS = list(FORMS.forms.values())
AN_ID = "41010519900307123"
AN_ID += id_check_char(AN_ID)

# --- what each type takes, and how it comes out -------------------------------------------


@pytest.mark.parametrize(("form", "name", "typed", "kept"), [
    ("deposit", "account", "6225 8801-2345 1237", "6225880123451237"),
    ("deposit", "amount", "5,000.5", "5000.50"),
    ("deposit", "amount", "0.01", "0.01"),
    ("deposit", "currency", "美元", "美元"),
    ("withdrawal", "phone", "138 0013 8000", "13800138000"),
    ("withdrawal", "phone", "0371-65551234", "037165551234"),
    ("card_application", "id_number", AN_ID.lower(), AN_ID.upper()),
    ("card_application", "id_number", "410105900307123", "410105900307123"),
    ("transfer", "payee", "  李四 ", "李四"),
])
def test_good_values_are_kept_normalised(form: str, name: str, typed: str, kept: str) -> None:
    spec = FORMS.forms[form]
    required = {x.name: _good(x) for x in spec.fields if x.required}
    assert f.validate(spec, {**required, name: typed})[name] == kept


@pytest.mark.parametrize(("form", "name", "typed", "reason"), [
    ("deposit", "account", "12345", "not_an_account"),
    ("deposit", "account", "6225８801２345１237", "not_an_account"),  # full-width digits
    ("deposit", "amount", "0", "not_an_amount"),
    ("deposit", "amount", "-5", "not_an_amount"),
    ("deposit", "amount", "1.005", "not_an_amount"),
    ("deposit", "amount", "1e3", "not_an_amount"),
    ("deposit", "amount", "NaN", "not_an_amount"),
    ("deposit", "amount", "1000000000000", "not_an_amount"),
    ("deposit", "currency", "日元", "not_a_choice"),
    ("withdrawal", "phone", "12345678901", "not_a_phone"),
    ("card_application", "id_number", AN_ID[:17] + ("0" if AN_ID[17] != "0" else "1"),
     "not_an_id"),
    ("card_application", "name", "张\x1b[2J三", "not_printable"),
    ("card_application", "name", "张" * 31, "too_long"),
    ("deposit", "holder", "", "required"),
])
def test_bad_values_are_refused_naming_the_field(form: str, name: str, typed: str,
                                                  reason: str) -> None:
    spec = FORMS.forms[form]
    required = {x.name: _good(x) for x in spec.fields if x.required}
    with pytest.raises(f.FormError) as caught:
        f.validate(spec, {**required, name: typed})
    assert (caught.value.field, caught.value.reason) == (name, reason)
    label = next(x.label for x in spec.fields if x.name == name)
    assert caught.value.message.startswith(label)  # the customer sees which field


def test_unknown_fields_and_non_text_are_refused() -> None:
    spec = FORMS.forms["deposit"]
    good = {x.name: _good(x) for x in spec.fields if x.required}
    for bad, reason in (({**good, "pin": "1234"}, "unknown_field"),
                        ({**good, "amount": 5000}, "not_text"), ([good], "not_an_object")):
        with pytest.raises(f.FormError) as caught:
            f.validate(spec, bad)
        assert caught.value.reason == reason


def test_masks_keep_only_what_identifies_nobody() -> None:
    assert f.mask_value("card", "6225880123451237") == "622588******1237"
    assert f.mask_value("id", AN_ID) == "4101**********" + AN_ID[-4:]
    assert f.mask_value("phone", "13800138000") == "138****8000"
    assert f.mask_value("name", "欧阳娜娜") == "欧***"
    assert f.mask_value("all", "河南省郑州市") == "******"
    assert f.mask_value("none", "5000.00") == "5000.00"
    assert f.mask_value("card", "12345") == "*****"  # too short to keep any of it
    assert f.mask_value("anything else", "x1") == "**"


def test_a_form_cannot_ask_for_less_masking_than_its_numbers_need() -> None:
    fields = [{"name": "a", "type": "account", "mask": "none", "value": "6225880123451237"},
              {"name": "p", "type": "text", "mask": "none", "value": "转6225880123451237"},
              {"name": "m", "type": "amount", "mask": "none", "value": "12345678901.00"},
              {"name": "x", "type": "text", "value": "no mask given"}, "junk", {"value": 5}]
    assert [x["value"] for x in f.masked(fields)] == [
        "622588******1237", "转622*********1237", "12345678901.00", "*************"]


# --- definitions --------------------------------------------------------------------------


def test_the_examples_define_the_four_forms_of_the_seed() -> None:
    assert [(s.id, s.title) for s in SPECS] == [
        ("deposit", "存款预填单"), ("withdrawal", "取款预填单"), ("transfer", "转账预填单"),
        ("card_application", "开卡申请预填单")]
    assert example_config().form_settings == FORMS  # the branch and the centre agree
    assert FORMS.pick("A", None) is None  # four forms for A: the customer must choose
    assert FORMS.pick("A", "deposit") is FORMS.forms["deposit"]
    assert FORMS.pick("B", "deposit") is None  # not a form of business B


@pytest.mark.parametrize(("override", "problem"), [
    ("forms.keep_days=0", "forms.keep_days"),
    ("forms.business.0.fields.0.type=date", "forms.business.0.fields.0.type"),
    ("forms.business.0.fields.0.mask=half", "forms.business.0.fields.0.mask"),
    ("forms.business.0.fields.0.max_len=201", "forms.business.0.fields.0.max_len"),
    ("forms.business.1.id=deposit", "forms.business.1.id"),
    ("forms.business.0.fields.1.name=account", "forms.business.0.fields"),
    ("forms.business.0.fields.3.choices=[]", "forms.business.0.fields.3.choices"),
])
def test_a_bad_forms_section_stops_the_box_at_load(override: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        example_config(override)
    assert problem in str(caught.value)


# --- properties ---------------------------------------------------------------------------


def _good(field: f.FieldSpec) -> str:
    return {"text": "张三", "amount": "100", "account": "6225880123451237", "id": AN_ID,
            "phone": "13800138000", "choice": field.choices[0] if field.choices else ""
            }[field.type]


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=40), inner,
                                                                 max_size=6),
    max_leaves=20)


@given(spec=st.sampled_from(SPECS), values=junk)
def test_junk_is_refused_with_a_form_error_never_a_crash(spec: f.FormSpec, values: Any) -> None:
    try:
        kept = f.validate(spec, values)
    except f.FormError as exc:
        assert exc.reason and exc.message and exc.message_en
        return
    assert set(kept) <= {x.name for x in spec.fields}


@given(spec=st.sampled_from(SPECS),
       values=st.dictionaries(st.sampled_from(["account", "amount", "holder", "phone", "name",
                                               "id_number", "payee", "currency", "purpose"]),
                              st.text(max_size=60), max_size=8))
def test_what_is_kept_is_bounded_printable_and_checks_again_the_same(
        spec: f.FormSpec, values: dict[str, str]) -> None:
    try:
        kept = f.validate(spec, values)
    except f.FormError:
        return
    limits = {x.name: x.max_len for x in spec.fields}
    for name, value in kept.items():
        assert 0 < len(value) <= min(limits[name], f.MAX_VALUE_LEN)
        assert value.isprintable() or not any(ord(c) < 32 for c in value)
    assert f.validate(spec, kept) == kept  # normalised values are a fixed point


@given(spec=st.sampled_from(SPECS), data=st.data())
def test_a_masked_form_never_shows_a_whole_number(spec: f.FormSpec, data: st.DataObject
                                                  ) -> None:
    values = {x.name: _good(x) for x in spec.fields}
    kept = f.validate(spec, values)
    shown = f.masked(f.filled(spec, kept))
    text = json.dumps(shown, ensure_ascii=False)
    for x in spec.fields:
        if x.mask in ("card", "id", "phone", "all"):
            assert kept[x.name] not in text
    assert f.masked(data.draw(junk)) is not None  # junk in: a list out, no crash


@given(fields=junk, number=st.text(max_size=10), expires=st.floats(allow_nan=True) | junk)
def test_a_form_command_is_checked_by_the_uplink_schema(fields: Any, number: str,
                                                        expires: Any) -> None:
    topic = proto.parse_topic(proto.topic("1001010001", "cmd", "form"))
    msg = proto.command("form-1", number=number, fields=fields, expires_at=expires)
    try:
        proto.validate(topic, msg)
    except proto.ProtocolError:
        return
    assert isinstance(msg["fields"], dict) and len(msg["fields"]) <= 20
    assert all(isinstance(v, str) and len(v) <= 200 for v in msg["fields"].values())
