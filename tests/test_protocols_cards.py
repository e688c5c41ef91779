"""Card and ID number parsing: track 2, IC numbers, GB 11643 ID numbers, Luhn."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.cards import (
    CardChecksumError,
    CardError,
    CardFormatError,
    CardRead,
    format_track2,
    id_check_char,
    luhn_check_digit,
    luhn_ok,
    parse_ic,
    parse_id_number,
    parse_swipe,
    parse_track2,
)

VIP_CARD = "6225880137001237"
VIP_ID = "410105198001012311"


@pytest.mark.parametrize("number", [VIP_CARD, "6217000010001234569", "4111111111111111",
                                    "79927398713"])
def test_luhn_accepts_valid_numbers(number: str) -> None:
    assert luhn_ok(number)


@pytest.mark.parametrize("number", ["6225880137001238", "4111111111111112", "79927398710",
                                    "", "62258801370012a7", "６２２５"])
def test_luhn_rejects_wrong_or_non_digit(number: str) -> None:
    assert not luhn_ok(number)


def test_id_number_good() -> None:
    idn = parse_id_number(VIP_ID)
    assert idn.region == "410105"
    assert idn.birth == dt.date(1980, 1, 1)
    assert idn.male  # 17th digit 1 is odd


def test_id_number_with_x_check_char() -> None:
    first17 = "11010519491231002"
    assert id_check_char(first17) == "X"
    assert parse_id_number(first17 + "x").number == first17 + "X"  # lower-case x accepted


@pytest.mark.parametrize("wrong", "023456789X")
def test_id_number_bad_checksum(wrong: str) -> None:
    with pytest.raises(CardChecksumError) as exc:
        parse_id_number(VIP_ID[:17] + wrong)
    assert exc.value.code == "bad_checksum"
    assert "校验" in exc.value.message


@pytest.mark.parametrize("text", ["41010519800101231", "4101051980010123111", "41010519801301231X",
                                  "4101051980013223X1", "41010518000101231A"])
def test_id_number_bad_format(text: str) -> None:
    with pytest.raises(CardFormatError):
        parse_id_number(text)


@pytest.mark.parametrize(("line", "pan", "expiry", "service"), [
    (";6225880137001237=28121010000?", VIP_CARD, "2812", "101"),
    (";6225880137001237=2812?", VIP_CARD, "2812", None),
    (";6225880137001237=?", VIP_CARD, None, None),
    (";6225880137001237=28121010000?7", VIP_CARD, "2812", "101"),  # LRC after the sentinel
    ("%B6225880137001237^CHEN/MR^2812101?;6225880137001237=2812101?", VIP_CARD, "2812", "101"),
])
def test_track2(line: str, pan: str, expiry: str | None, service: str | None) -> None:
    t2 = parse_track2(line)
    assert (t2.pan, t2.expiry, t2.service_code) == (pan, expiry, service)


@pytest.mark.parametrize(("line", "error"), [
    (";6225880137001238=2812101?", CardChecksumError),
    (";6225880137001237=2812101", CardFormatError),  # no end sentinel: a partial swipe
    ("6225880137001237=2812101?", CardFormatError),
    (";6225880137001237=2813101?", CardFormatError),  # month 13
    (";123=2812?", CardFormatError),
    (";6225880137001237D2812?", CardFormatError),
])
def test_track2_errors(line: str, error: type[CardError]) -> None:
    with pytest.raises(error):
        parse_track2(line)


def test_swipe_kinds() -> None:
    assert parse_swipe(";6225880137001237=2812101?\r\n") == CardRead("magstripe", VIP_CARD, "2812")
    assert parse_swipe(VIP_CARD) == CardRead("ic", VIP_CARD)
    assert parse_swipe(VIP_CARD + "D28122010000F") == CardRead("ic", VIP_CARD, "2812")
    assert parse_swipe(VIP_ID) == CardRead("id_card", VIP_ID)
    assert parse_swipe("6217000010001234569").kind == "ic"  # 19 digits, Luhn good


def test_eighteen_digits_tell_bank_card_from_id() -> None:
    pan = "621700001000123" + "45"
    pan += luhn_check_digit(pan)
    assert len(pan) == 18
    assert parse_swipe(pan).kind == "ic"
    bad_id = VIP_ID[:17] + "7"
    with pytest.raises(CardChecksumError):
        parse_swipe(bad_id)


@pytest.mark.parametrize("line", ["", "   ", "hello", "62258801370012", "6225880137001238",
                                  "A023", "%B^^?"])
def test_swipe_refuses_with_clear_message(line: str) -> None:
    with pytest.raises(CardError) as exc:
        parse_swipe(line)
    assert exc.value.code in ("bad_format", "bad_checksum")
    assert exc.value.message and exc.value.message_en


def test_masked() -> None:
    assert CardRead("ic", VIP_CARD).masked == "6225********1237"
    assert CardRead("id_card", VIP_ID).masked == "4101**********2311"


@given(st.text(max_size=80))
def test_swipe_never_crashes(text: str) -> None:
    try:
        read = parse_swipe(text)
    except CardError as exc:
        assert exc.code in ("bad_format", "bad_checksum")
    else:
        assert read.number.isascii() and read.kind in ("magstripe", "ic", "id_card")


@given(st.text(alphabet="0123456789", min_size=11, max_size=18),
       st.from_regex(r"\A[0-9]{2}(0[1-9]|1[0-2])\Z"), st.text(alphabet="0123456789", max_size=10))
def test_track2_round_trip(partial: str, expiry: str, rest: str) -> None:
    pan = partial + luhn_check_digit(partial)
    line = format_track2(pan, expiry, rest[:3], rest[3:])
    t2 = parse_track2(line)
    assert (t2.pan, t2.expiry) == (pan, expiry)
    assert parse_ic(pan).number == pan
    wrong = pan[:-1] + str((int(pan[-1]) + 1) % 10)
    with pytest.raises(CardChecksumError):
        parse_track2(format_track2(wrong, expiry))


@given(st.from_regex(r"\A[1-8][0-9]{5}\Z"), st.dates(dt.date(1900, 1, 1), dt.date(2026, 12, 31)),
       st.from_regex(r"\A[0-9]{3}\Z"))
def test_id_round_trip(region: str, birth: dt.date, seq: str) -> None:
    first17 = f"{region}{birth:%Y%m%d}{seq}"
    number = first17 + id_check_char(first17)
    assert parse_swipe(number) == CardRead("id_card", number)
    wrong = "X" if number[-1] != "X" else "0"
    with pytest.raises(CardChecksumError):
        parse_id_number(first17 + wrong)
