"""The 68-frame codec: known bytes, any chunking, garbage around, and random input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.rs485 import FrameError
from protocols.rs485 import legacy68 as l68
from protocols.rs485.keys import KEY_CALL, KEY_CONFIRM, KEY_TRANSFER
from protocols.rs485.legacy68 import Counters, Frame, decode

from .rs485_chunks import split
from .rs485_chunks import stream as feed

# (what, frame, bytes on the wire) — checksums worked by hand: S = (A + C + ΣD) mod 256.
TABLE = [
    ("keypad 3: call next", Frame(3, l68.CMD_KEY, bytes([KEY_CALL])),
     "FF 68 03 03 68 03 01 0C 10 16"),
    ("keypad 2: transfer to window 5", Frame(2, l68.CMD_KEY, bytes([5, KEY_TRANSFER])),
     "FF 68 04 04 68 02 01 05 13 1B 16"),
    ("keypad 1: 6 confirm = no-show", Frame(1, l68.CMD_KEY, bytes([6, KEY_CONFIRM])),
     "FF 68 04 04 68 01 01 06 0F 17 16"),
    ("display 3 shows A023 as '   023'", Frame(3, l68.CMD_DIGITS, l68.digits_for("A023")),
     "FF 68 08 08 68 03 02 0A 0A 0A 00 02 03 28 16"),
    ("keypad 7 beeps", Frame(7, l68.CMD_BEEP), "FF 68 02 02 68 07 03 0A 16"),
    ("checksum wraps past 255", Frame(0xFE, l68.CMD_DIGITS, l68.blanks()),
     "FF 68 08 08 68 FE 02 0A 0A 0A 0A 0A 0A 3C 16"),
    ("poll the evaluator at 9", Frame(9, l68.CMD_POLL, bytes([l68.EVALUATOR])),
     "FF 68 03 03 68 09 00 03 0C 16"),
]


def stream(chunks: list[bytes], counters: Counters | None = None) -> list[Frame]:
    return feed(chunks, decode, counters)


@pytest.mark.parametrize(("what", "frame", "wire"), TABLE, ids=[t[0] for t in TABLE])
def test_known_frames_encode_to_their_bytes(what: str, frame: Frame, wire: str) -> None:
    assert frame.encode() == bytes.fromhex(wire)


@pytest.mark.parametrize(("what", "frame", "wire"), TABLE, ids=[t[0] for t in TABLE])
def test_known_frames_decode_whole_split_and_byte_by_byte(
    what: str, frame: Frame, wire: str
) -> None:
    data = bytes.fromhex(wire)
    assert decode(data) == (len(data), frame)
    for cut in range(1, len(data)):
        assert stream([data[:cut], data[cut:]]) == [frame]
    assert stream([bytes([b]) for b in data]) == [frame]


@pytest.mark.parametrize(("what", "frame", "wire"), TABLE, ids=[t[0] for t in TABLE])
def test_garbage_before_and_after_is_skipped_and_counted(
    what: str, frame: Frame, wire: str
) -> None:
    data = bytes.fromhex(wire)
    noise = b"\x00\x68\x05\x12\x68\x68\x16"  # includes stray start bytes
    counters = Counters()
    assert stream([bytes([b]) for b in noise + data + noise + data], counters) == [frame, frame]
    assert counters.frames == 2
    assert counters.garbage >= len(noise)


def test_the_wake_up_byte_is_optional_and_not_garbage() -> None:
    frame = TABLE[0][1]
    counters = Counters()
    assert stream([frame.encode()[1:], b"\xff\xff\xff" + frame.encode()], counters) == [
        frame, frame]
    assert counters.garbage == 0


def test_a_bad_checksum_is_counted_and_the_next_frame_still_found() -> None:
    good = TABLE[1][1].encode()
    bad = bytearray(good)
    bad[-2] ^= 0x01
    counters = Counters()
    assert stream([bytes(bad) + good], counters) == [TABLE[1][1]]
    assert counters.bad_checksum == 1


def test_a_bad_end_byte_is_counted() -> None:
    bad = bytearray(TABLE[0][1].encode())
    bad[-1] = 0x17
    counters = Counters()
    assert stream([bytes(bad) + TABLE[0][1].encode()], counters) == [TABLE[0][1]]
    assert counters.bad_end == 1


def test_a_frame_cut_short_does_not_hide_the_next_one() -> None:
    first, second = TABLE[3][1].encode(), TABLE[0][1].encode()
    counters = Counters()
    assert stream([first[:9] + second], counters) == [TABLE[0][1]]


def test_a_false_header_waits_only_until_the_line_goes_quiet() -> None:
    fake_then_real = b"\x68\xf0\xf0\x68" + TABLE[0][1].encode()
    consumed, frame = decode(fake_then_real)
    assert (consumed, frame) == (0, None)  # could be a long frame still arriving
    consumed, frame = decode(fake_then_real, idle=True)
    assert frame == TABLE[0][1]
    assert consumed == len(fake_then_real)


def test_idle_drops_an_unfinished_tail() -> None:
    counters = Counters()
    data = TABLE[0][1].encode()[:6]
    assert decode(data, counters, idle=True) == (len(data), None)
    assert counters.garbage == 5  # everything but the wake-up byte


def test_frames_refuse_values_that_do_not_fit() -> None:
    with pytest.raises(FrameError):
        Frame(256, 1)
    with pytest.raises(FrameError):
        Frame(1, -1)
    with pytest.raises(FrameError):
        Frame(1, 1, bytes(254))
    assert len(Frame(1, 1, bytes(253)).encode()) == l68.frame_length(253)


def test_device_class_says_who_answers() -> None:
    assert l68.device_class(Frame(3, l68.CMD_KEY, b"\x0c")) == l68.KEYPAD
    assert l68.device_class(Frame(3, l68.CMD_DIGITS, l68.blanks())) == l68.DISPLAY
    assert l68.device_class(Frame(3, l68.CMD_PROMPT)) == l68.EVALUATOR
    assert l68.device_class(Frame(3, l68.CMD_POLL, bytes([l68.DISPLAY]))) == l68.DISPLAY
    assert l68.device_class(Frame(3, l68.CMD_POLL)) is None
    assert l68.device_class(Frame(3, 0x55)) is None


@pytest.mark.parametrize(("number", "shown"), [
    ("A023", "   023"), ("T0001", "  0001"), ("V999", "   999"), ("1234567", "234567"),
    ("", "      "),
])
def test_numbers_show_right_aligned_digits(number: str, shown: str) -> None:
    assert l68.render_digits(l68.digits_for(number)) == shown


def test_paused_and_blank_displays() -> None:
    assert l68.render_digits(l68.dashes()) == "------"
    assert l68.render_digits(l68.blanks()) == "      "
    assert l68.render_digits(b"\x0c") == "?"


# --- properties --------------------------------------------------------------------------------

frames = st.builds(
    Frame, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=l68.MAX_DATA)
)
clean_noise = st.binary(max_size=20).map(lambda b: b.replace(b"\x68", b""))


@given(frames)
def test_round_trip(frame: Frame) -> None:
    data = frame.encode()
    assert decode(data) == (len(data), frame)


@given(st.lists(st.tuples(clean_noise, frames), max_size=6), st.lists(st.integers(0, 2000)))
def test_every_frame_survives_noise_and_any_chunking(
    pairs: list[tuple[bytes, Frame]], cuts: list[int]
) -> None:
    data = b"".join(noise + frame.encode() for noise, frame in pairs)
    assert stream(split(data, cuts)) == [frame for _, frame in pairs]


@given(st.binary(max_size=600), st.booleans())
def test_never_crashes_on_random_bytes(data: bytes, idle: bool) -> None:
    buf = bytearray(data)
    while True:
        consumed, frame = decode(buf, idle=idle)
        assert 0 <= consumed <= len(buf)
        if frame is not None:
            assert consumed > 0
            assert frame.encode()[1:] in bytes(buf[:consumed])
        del buf[:consumed]
        if frame is None:
            break
    if idle:
        assert not buf  # a quiet line leaves nothing behind
