"""Customers' numbers and names are masked in every page, export and log (SPEC security)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from central.masking import (
    mask_card,
    mask_config,
    mask_event,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_text,
)


def test_card_id_and_phone_keep_only_their_ends() -> None:
    assert mask_card("6225880137001237") == "622588******1237"
    assert mask_card("6217000010001234569") == "621700*********4569"
    assert mask_id_number("410105198001012311") == "4101**********2311"
    assert mask_id_number("41010519800101231X") == "4101**********231X"
    assert mask_phone("13812345678") == "138****5678"


def test_names_keep_the_first_character_and_a_title() -> None:
    assert mask_name("陈建国") == "陈**"
    assert mask_name("陈先生") == "陈先生" and mask_name("欧阳女士") == "欧*女士"
    assert mask_name("Li") == "L*" and mask_name(None) is None and mask_name("") == ""


def test_free_text_and_events_lose_their_numbers() -> None:
    text = "VIP 6225880137001237 身份证 41010519800101231X 手机 13812345678, seq 123456"
    assert mask_text(text) == ("VIP 622588******1237 身份证 4101**********231X "
                               "手机 138****5678, seq 123456")
    e = {"type": "ticket_issued", "card": "6225880137001237", "vip_name": "陈建国",
         "vip": "vip-0001", "number": "V001", "at": 1795629600.0}
    assert mask_event(e) == {**e, "card": "622588******1237", "vip_name": "陈**"}


def test_the_config_masks_numbers_and_keeps_names() -> None:
    cfg = {"vip_customers": [{"id": "vip-0001", "name": "陈先生", "cards": ["6225880137001237"],
                              "id_numbers": ["410105198001012311"]}], "queues": []}
    vip = mask_config(cfg)["vip_customers"][0]
    assert vip == {"id": "vip-0001", "name": "陈先生", "cards": ["622588******1237"],
                   "id_numbers": ["4101**********2311"]}
    assert cfg["vip_customers"][0]["cards"] == ["6225880137001237"]  # the original stays


@given(st.lists(st.one_of(st.from_regex(r"\A[0-9]{11,30}\Z"), st.from_regex(r"\A1[0-9]{10}\Z"),
                          st.text(alphabet=" ,:;abc的号", max_size=5)), max_size=6))
def test_no_long_number_survives_in_text(parts: list[str]) -> None:
    masked = mask_text(" ".join(parts))
    assert not re.search(r"[0-9]{11,}", masked)
