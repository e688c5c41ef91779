"""Modbus RTU codec: the specification's own examples, pymodbus as a second opinion,
any chunking, garbage around, and random input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.framer.rtu import FramerRTU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    WriteMultipleRegistersRequest,
)

from protocols.rs485 import FrameError
from protocols.rs485 import modbus as mb
from protocols.rs485.modbus import (
    Counters,
    ExceptionReply,
    ReadReply,
    ReadRequest,
    WriteMultiple,
    WriteMultipleReply,
    WriteSingle,
    decode_request,
    decode_response,
    encode,
)

from .rs485_chunks import Decoder, split
from .rs485_chunks import stream as feed

# Examples from the Modbus application protocol specification (V1.1b3) and the RTU guide.
REQUESTS = [
    ("read 3 from 0x006B", ReadRequest(0x11, 0x006B, 3), "11 03 00 6B 00 03 76 87"),
    ("read 1 from 0", ReadRequest(1, 0, 1), "01 03 00 00 00 01 84 0A"),
    ("the keypad poll of docs/rs485.md", ReadRequest(1, 0x0010, 5), "01 03 00 10 00 05 84 0C"),
    ("write one", WriteSingle(0x11, 0x0001, 0x0003), "11 06 00 01 00 03 9A 9B"),
    ("write two", WriteMultiple(0x11, 0x0001, [0x000A, 0x0102]),
     "11 10 00 01 00 02 04 00 0A 01 02 C6 F0"),
]
REPLIES = [
    ("three registers", ReadReply(0x11, [0xAE41, 0x5652, 0x4340]),
     "11 03 06 AE 41 56 52 43 40 49 AD"),
    ("write one echoed", WriteSingle(0x11, 0x0001, 0x0003), "11 06 00 01 00 03 9A 9B"),
    ("write two done", WriteMultipleReply(0x11, 0x0001, 2), "11 10 00 01 00 02 12 98"),
    ("illegal address", ExceptionReply(1, 3, 2), "01 83 02 C0 F1"),
]


def stream(chunks: list[bytes], decoder: Decoder, counters: Counters | None = None) -> list[Any]:
    return feed(chunks, decoder, counters, quiet=True)


@pytest.mark.parametrize(("what", "msg", "wire"), REQUESTS + REPLIES)
def test_known_messages_encode_to_their_bytes(what: str, msg: object, wire: str) -> None:
    assert encode(msg) == bytes.fromhex(wire)  # type: ignore[arg-type]


@pytest.mark.parametrize(("what", "msg", "wire"), REQUESTS)
def test_requests_decode_whole_split_byte_by_byte_and_among_garbage(
    what: str, msg: object, wire: str
) -> None:
    data = bytes.fromhex(wire)
    assert decode_request(data) == (len(data), msg)
    for cut in range(1, len(data)):
        assert stream([data[:cut], data[cut:]], decode_request) == [msg]
    assert stream([bytes([b]) for b in data], decode_request) == [msg]
    counters = Counters()
    noise = b"\xff\x00\xfe"
    got = stream([bytes([b]) for b in noise + data + noise + data + noise], decode_request,
                 counters)
    assert got == [msg, msg]
    assert counters.garbage >= 3 * len(noise)


@pytest.mark.parametrize(("what", "msg", "wire"), REPLIES)
def test_replies_decode_whole_split_byte_by_byte_and_among_garbage(
    what: str, msg: object, wire: str
) -> None:
    data = bytes.fromhex(wire)
    assert decode_response(data) == (len(data), msg)
    for cut in range(1, len(data)):
        assert stream([data[:cut], data[cut:]], decode_response) == [msg]
    assert stream([bytes([b]) for b in data], decode_response) == [msg]
    noise = b"\x00\xff\xf8"
    got = stream([noise + data + noise + data + noise], decode_response)
    assert got == [msg, msg]


def test_a_bad_crc_is_counted_and_the_next_reply_still_found() -> None:
    good = bytes.fromhex(REPLIES[0][2])
    bad = bytearray(good)
    bad[4] ^= 0x40
    counters = Counters()
    assert stream([bytes(bad) + good], decode_response, counters) == [REPLIES[0][1]]
    assert counters.bad_crc >= 1


def test_our_crc_agrees_with_pymodbus() -> None:
    for data in (b"", b"\x01", b"\x11\x03\x00\x6b\x00\x03", bytes(range(256))):
        ours = mb.crc16(data)
        assert FramerRTU.compute_CRC(data) == ((ours & 0xFF) << 8 | ours >> 8)


def test_pymodbus_requests_decode_here() -> None:
    framer = FramerRTU(None)  # type: ignore[arg-type]
    read_pdu = ReadHoldingRegistersRequest(address=0x10, count=5)
    read = framer.encode(b"\x03" + read_pdu.encode(), 7, 0)
    assert decode_request(read) == (8, ReadRequest(7, 0x10, 5))
    write_pdu = WriteMultipleRegistersRequest(address=0x30, registers=[1, 4, 0xB0A1, 0xB0A2])
    write = framer.encode(b"\x10" + write_pdu.encode(), 7, 0)
    assert decode_request(write)[1] == WriteMultiple(7, 0x30, [1, 4, 0xB0A1, 0xB0A2])


def test_replies_answer_their_requests() -> None:
    read = ReadRequest(3, 0x10, 5)
    assert mb.matches(read, ReadReply(3, [0] * 5))
    assert not mb.matches(read, ReadReply(4, [0] * 5))
    assert not mb.matches(read, ReadReply(3, [0] * 4))
    assert mb.matches(read, ExceptionReply(3, 3, 2))
    assert not mb.matches(read, ExceptionReply(3, 6, 2))
    write = WriteMultiple(3, 0x30, [1, 2])
    assert mb.matches(write, WriteMultipleReply(3, 0x30, 2))
    assert not mb.matches(write, WriteMultipleReply(3, 0x31, 2))
    one = WriteSingle(3, 0x18, 7)
    assert mb.matches(one, WriteSingle(3, 0x18, 7))
    assert not mb.matches(one, WriteSingle(3, 0x18, 8))
    assert mb.reply_length(read) == 15
    assert mb.reply_length(write) == 8


def test_messages_refuse_values_that_do_not_fit() -> None:
    for bad in (
        lambda: ReadRequest(0, 0, 1),
        lambda: ReadRequest(248, 0, 1),
        lambda: ReadRequest(1, 0, 126),
        lambda: ReadRequest(1, 0xFFFF, 2),
        lambda: WriteSingle(1, 0, 0x10000),
        lambda: WriteMultiple(1, 0, []),
        lambda: ReadReply(1, []),
        lambda: ExceptionReply(1, 0x83, 2),
    ):
        with pytest.raises(FrameError):
            bad()


def test_symbols_pack_four_to_a_register() -> None:
    symbols = bytes([1, 0x0E, 1, 2, 3, 4])
    regs = mb.pack_symbols(symbols)
    assert regs == [0x1E12, 0x3400]
    assert mb.unpack_symbols(regs, 6) == symbols
    with pytest.raises(FrameError):
        mb.pack_symbols(b"\x10")
    with pytest.raises(FrameError):
        mb.unpack_symbols(regs, 9)


def test_text_packs_two_bytes_to_a_register() -> None:
    raw = "暂停服务".encode("gb18030")
    regs = mb.screen_registers(mb.MODE_TEXT, raw)
    assert regs[:2] == [mb.MODE_TEXT, 8]
    assert mb.unpack_text(regs[2:], regs[1]).decode("gb18030") == "暂停服务"
    assert mb.pack_text(b"abc") == [0x6162, 0x6300]
    with pytest.raises(FrameError):
        mb.pack_text(bytes(mb.MAX_TEXT + 1))


def test_the_register_map_has_no_overlaps() -> None:
    taken: set[int] = set()
    for address, count, _access, _name in mb.REGISTERS:
        span = set(range(address, address + count))
        assert not span & taken
        taken |= span
    assert mb.REG_EVENTS + mb.POLL_COUNT - 1 == mb.REG_EVENT_DIGITS


# --- properties --------------------------------------------------------------------------------

units = st.integers(1, 247)
registers = st.integers(0, 0xFFFF)
values = st.lists(registers, min_size=1, max_size=123)
requests = st.one_of(
    st.builds(ReadRequest, units, st.integers(0, 0xFF00), st.integers(1, 125)),
    st.builds(WriteSingle, units, registers, registers),
    st.builds(WriteMultiple, units, st.integers(0, 0xFF00), values),
)
replies = st.one_of(
    st.builds(ReadReply, units, st.lists(registers, min_size=1, max_size=125)),
    st.builds(WriteSingle, units, registers, registers),
    st.builds(WriteMultipleReply, units, st.integers(0, 0xFF00), st.integers(1, 123)),
    st.builds(ExceptionReply, units, st.integers(1, 0x7F), st.integers(0, 255)),
)


@given(requests)
def test_requests_round_trip(msg: ReadRequest | WriteSingle | WriteMultiple) -> None:
    data = encode(msg)
    assert decode_request(data) == (len(data), msg)


@given(replies)
def test_replies_round_trip(msg: ReadReply) -> None:
    data = encode(msg)
    if isinstance(msg, ExceptionReply) and msg.function not in (3, 6, 0x10):
        assert decode_response(data, idle=True)[1] is None  # not a function we speak
        return
    assert decode_response(data) == (len(data), msg)


@given(st.lists(requests, max_size=5), st.lists(st.integers(0, 2000)))
def test_back_to_back_requests_survive_any_chunking(msgs: list, cuts: list[int]) -> None:  # type: ignore[type-arg]
    data = b"".join(encode(m) for m in msgs)
    assert stream(split(data, cuts), decode_request) == msgs


@given(st.binary(max_size=400), st.booleans(), st.booleans())
def test_never_crashes_on_random_bytes(data: bytes, idle: bool, requests_side: bool) -> None:
    decoder = decode_request if requests_side else decode_response
    buf = bytearray(data)
    while True:
        consumed, msg = decoder(buf, idle=idle)
        assert 0 <= consumed <= len(buf)
        if msg is not None:
            assert encode(msg) in bytes(buf[:consumed])
        del buf[:consumed]
        if msg is None:
            break
    if idle:
        assert not buf
