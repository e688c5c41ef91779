"""The 二代证 reader's frames: byte-exact against the published examples; strict decoding."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.cards import CardChecksumError
from protocols.idcard import (
    FIND_CARD,
    PREAMBLE,
    READ_BASE_INFO,
    SELECT_CARD,
    BaseInfoError,
    IdCardInfo,
    decode,
    encode_base_info,
    encode_command,
    encode_response,
    parse_base_info,
    parse_response,
)

CARD = IdCardInfo(
    number="410105198001012311", name="陈明", sex="男", nation="回",
    birth=dt.date(1980, 1, 1), address="河南省郑州市金水区花园路1号",
    authority="郑州市公安局金水分局", valid_from=dt.date(2016, 3, 8), valid_to=None)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_commands_are_the_documented_bytes() -> None:
    assert encode_command(FIND_CARD) == h("AAAAAA9669 0003 2001 22")
    assert encode_command(SELECT_CARD) == h("AAAAAA9669 0003 2002 21")
    assert encode_command(READ_BASE_INFO) == h("AAAAAA9669 0003 3001 32")


def test_published_failure_frames_decode_with_their_status() -> None:
    # captured from a reader (softs.im): read failed (41), reader refused the card (32)
    for frame, sw3, meaning in [(h("AAAAAA9669 0004 000041 45"), 0x41, "card read failed"),
                                (h("AAAAAA9669 0004 000032 36"), 0x32,
                                 "reader refused the card")]:
        got = decode(frame)
        assert got.consumed == len(frame) and got.error is None and got.payload is not None
        r = parse_response(got.payload)
        assert (r.sw1, r.sw2, r.sw3, r.ok, r.meaning) == (0, 0, sw3, False, meaning)
        assert encode_response(sw3) == frame


def test_card_found_response() -> None:
    frame = h("AAAAAA9669 0008 00009F 00000000 97")
    assert encode_response(0x9F, bytes(4)) == frame
    got = decode(frame)
    assert got.payload is not None and parse_response(got.payload).ok


def test_base_info_round_trips_without_keeping_the_photo() -> None:
    data = encode_base_info(CARD, photo=b"\x57\x4c" * 512)
    assert len(data) == 4 + 256 + 1024 and data[:4] == h("0100 0400")
    # the text is UCS-2LE in GA/T 490's fixed fields: the name first, padded with spaces
    assert data[4:8] == "陈明".encode("utf-16-le") and data[8:10] == b" \x00"
    info = parse_base_info(data)
    assert info == CARD and info.valid_to is None  # 长期
    assert info.nation == "回" and info.sex == "男"
    assert not hasattr(info, "photo")
    assert "陈" not in repr(info) and "2311" in repr(info) and "1980" not in repr(info)
    assert info.valid_on(dt.date(2030, 1, 1)) and not info.valid_on(dt.date(2016, 3, 7))


def test_whole_read_response_frame() -> None:
    frame = encode_response(0x90, encode_base_info(CARD))
    assert frame[:10] == h("AAAAAA9669 0508 000090")  # 3 + 4 + 256 + 1024 + 1 = 0x508
    got = decode(b"\x00\xff" + frame)
    assert got == type(got)(2, error="junk before the preamble")
    got = decode(frame)
    assert got.payload is not None
    assert parse_base_info(parse_response(got.payload).data).number == CARD.number


def test_split_frame_waits_for_the_rest() -> None:
    frame = encode_response(0x9F, bytes(4))
    for cut in range(len(frame)):
        got = decode(frame[:cut])
        assert got.payload is None and got.error is None and got.consumed == 0


@pytest.mark.parametrize("damage", ["checksum", "length"])
def test_bad_frame_is_dropped_and_a_good_one_after_it_found(damage: str) -> None:
    good = encode_response(0x80)
    bad = bytearray(encode_response(0x9F, bytes(4)))
    if damage == "checksum":
        bad[-1] ^= 1
    else:
        bad[5:7] = b"\xff\xff"
    buf, payloads, errors = bytes(bad) + good, [], []
    while buf:
        got = decode(buf)
        if got.consumed == 0:
            break
        buf = buf[got.consumed:]
        errors += [got.error] if got.error else []
        payloads += [got.payload] if got.payload is not None else []
    assert payloads == [h("000080")]
    assert errors[0] == ("bad checksum" if damage == "checksum" else "impossible length 65535")


def test_strict_base_info() -> None:
    data = bytearray(encode_base_info(CARD))
    with pytest.raises(BaseInfoError):
        parse_base_info(bytes(data[:-1]))  # a photo byte short
    wrong = bytearray(data)
    wrong[4 + 30 + 2 + 4 + 2 * 3] = ord("9")  # birth year 1980 → 1990: not the number's
    with pytest.raises(BaseInfoError, match="birth"):
        parse_base_info(bytes(wrong))
    number_at = 4 + 30 + 2 + 4 + 16 + 70
    bad_check = bytearray(data)
    bad_check[number_at + 34] = ord("2")  # check character 1 → 2
    with pytest.raises(CardChecksumError):
        parse_base_info(bytes(bad_check))
    nation = bytearray(data)
    nation[4 + 32:4 + 36] = "99".encode("utf-16-le")
    with pytest.raises(BaseInfoError, match="nation"):
        parse_base_info(bytes(nation))


@given(st.binary(max_size=3000))
def test_junk_never_crashes_and_always_progresses(junk: bytes) -> None:
    buf = junk
    for _ in range(len(junk) + 2):
        got = decode(buf)
        assert 0 <= got.consumed <= len(buf)
        if got.payload is not None:
            assert len(got.payload) >= 2
        if got.consumed == 0:
            break
        buf = buf[got.consumed:]
    assert len(buf) < 7 + 2400 + len(PREAMBLE)  # what is left waits for a frame's rest


@given(st.binary(max_size=1400))
def test_base_info_junk_is_a_clear_error(data: bytes) -> None:
    with contextlib.suppress(ValueError):  # BaseInfoError, CardError: ValueErrors
        parse_base_info(data)


@given(st.integers(4, 4 + 255), st.integers(0, 255))
def test_a_misread_byte_in_the_text_is_read_right_or_refused(at: int, value: int) -> None:
    data = bytearray(encode_base_info(CARD))
    data[at] = value
    try:
        info = parse_base_info(bytes(data))
    except ValueError:
        return
    assert info.number[:17].isdigit()  # what passes is still a checked card


@given(st.binary(min_size=3, max_size=40))
def test_any_payload_round_trips(payload: bytes) -> None:
    frame = encode_response(payload[2], payload[3:], payload[0], payload[1])
    got = decode(b"\x96\x69" + frame + b"\xaa")
    got = decode(b"\x96\x69" + frame)
    assert got.consumed == 2
    got = decode(frame + b"\xaa\xaa")
    assert got.payload == payload and got.consumed == len(frame)
