"""Bank IC card reading (EMV/PBOC): APDUs byte-exact, BER-TLV strict, and the number read
from a simulated PBOC debit card with no more commands than needed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.cards import parse_ic
from protocols.emv import (
    EmvError,
    Tlv,
    TlvError,
    afl_records,
    encode_tlv,
    find,
    get_processing_options,
    parse_tlv,
    pdol_data,
    ppse_aids,
    read_card_number,
    read_record,
    select,
)
from sim.emv_card import EmvCard

PAN = "6225880137001237"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_apdus_are_the_documented_bytes() -> None:
    # EMV Book 1 §11.3 SELECT, Book 3 §6.5 GPO / READ RECORD
    assert select(b"2PAY.SYS.DDF01") == h("00A404000E325041592E5359532E444446303100")
    assert select(h("A000000333010101")) == h("00A4040008A00000033301010100")
    assert get_processing_options(b"") == h("80A8000002830000")
    assert read_record(1, 1) == h("00B2010C00")
    assert read_record(2, 3) == h("00B2031400")


def test_ppse_directory_lists_aids_by_priority() -> None:
    def entry(aid: str, prio: int) -> bytes:
        return encode_tlv(0x61, encode_tlv(0x4F, h(aid)) + encode_tlv(0x87, bytes([prio])))
    fci = encode_tlv(0x6F, encode_tlv(0x84, b"2PAY.SYS.DDF01") + encode_tlv(
        0xA5, encode_tlv(0xBF0C, entry("A000000333010102", 2) + entry("A000000333010101", 1))))
    assert ppse_aids(fci) == [h("A000000333010101"), h("A000000333010102")]


def test_tlv_nested_multibyte_tags_and_long_lengths() -> None:
    long = bytes(200)
    data = encode_tlv(0x70, encode_tlv(0x9F38, h("9F6604")) + encode_tlv(0x90, long))
    assert data[:4] == h("7081D19F")  # 0x81: one length byte follows
    (rec,) = parse_tlv(data)
    assert rec.tag == 0x70 and [c.tag for c in rec.children] == [0x9F38, 0x90]
    assert find((rec,), 0x90) == long
    assert parse_tlv(h("00 5A021234 FF")) == (Tlv(0x5A, h("1234")),)  # padding skipped


@pytest.mark.parametrize("junk", ["5A05 1234", "9F", "9F38", "5A84 00000001 00", "5F FF FF 01 00"])
def test_tlv_strict_errors(junk: str) -> None:
    with pytest.raises(TlvError):
        parse_tlv(h(junk))


def test_pdol_answered_with_terminal_data_and_zeros() -> None:
    # TTQ 4, amount 6, unpredictable number 4, currency 2
    assert pdol_data(h("9F6604 9F0206 9F3704 5F2A02")) == h("26000000 000000000000 00000000 0156")
    assert pdol_data(None) == b""


def test_afl_records_and_bad_afl() -> None:
    assert afl_records(h("08010100 10010300")) == [(1, 1), (2, 1), (2, 2), (2, 3)]
    for bad in ["080101", "00010100", "08020100"]:
        with pytest.raises(EmvError):
            afl_records(h(bad))


def test_debit_card_number_read_stops_at_the_first_record_with_it() -> None:
    card = EmvCard(PAN)
    number = read_card_number(card.transmit)
    assert parse_ic(number).number == PAN and parse_ic(number).expiry == "2812"
    # PPSE, AID, GPO, SFI 1 record 1: the records of SFI 2 are never read
    assert [a[:2] for a in card.apdus] == [h("00A4"), h("00A4"), h("80A8"), h("00B2")]


def test_number_in_the_pan_tag_of_a_later_file() -> None:
    card = EmvCard(PAN, number_in="5A")
    assert read_card_number(card.transmit) == PAN
    assert card.apdus[-1] == read_record(2, 1)  # read up to it, then stopped


def test_number_with_the_processing_options() -> None:
    card = EmvCard(PAN, number_in="gpo")
    assert parse_ic(read_card_number(card.transmit)).number == PAN
    assert not any(a[:2] == h("00B2") for a in card.apdus)


def test_t0_card_and_contact_card_without_ppse() -> None:
    card = EmvCard(PAN, t0=True, ppse=False)
    assert parse_ic(read_card_number(card.transmit)).number == PAN
    assert h("00C0") in {a[:2] for a in card.apdus}  # data fetched with GET RESPONSE


def test_card_without_a_payment_application() -> None:
    card = EmvCard(PAN, aid=h("A000000999999999"), ppse=False)
    with pytest.raises(EmvError) as err:
        read_card_number(card.transmit)
    assert err.value.code == "no_application"


@given(st.binary(max_size=300))
def test_tlv_junk_never_crashes(junk: bytes) -> None:
    try:
        tlvs = parse_tlv(junk)
    except TlvError:
        return
    assert all(isinstance(t, Tlv) for t in tlvs)


@given(st.lists(st.tuples(st.sampled_from([0x5A, 0x57, 0x9F38, 0x5F20, 0x8C, 0x94]),
                          st.binary(max_size=300)), max_size=5))
def test_tlv_round_trips(objects: list[tuple[int, bytes]]) -> None:
    data = b"".join(encode_tlv(t, v) for t, v in objects)
    assert [(t.tag, t.value) for t in parse_tlv(data)] == objects


@given(st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=12))
def test_a_card_answering_junk_gives_a_clear_error(answers: list[bytes]) -> None:
    replies = iter(answers)

    def transmit(apdu: bytes) -> bytes:
        return next(replies, b"\x6A\x82")

    try:
        number = read_card_number(transmit)
    except (EmvError, TlvError):
        return
    assert number  # whatever came back is handed to parse_ic, which checks it
