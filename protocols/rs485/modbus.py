"""Modbus RTU for open RS485 nodes: keypads, window displays and evaluators.

ADU on the wire (frames are separated by at least 3.5 character times of silence)::

    ┌──────┬──────────┬──────────────┬─────────┬─────────┐
    │ unit │ function │ data …       │ CRC lo  │ CRC hi  │
    └──────┴──────────┴──────────────┴─────────┴─────────┘
    CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) over unit…data, low byte first.

Only what the nodes need: 0x03 read holding registers, 0x06 write one register,
0x10 write several, and exception replies (function | 0x80, code).

Register map (holding registers, big-endian 16-bit), the same block layout on every node::

    addr    name              access  keypad             display      evaluator
    0x0000  DEVICE_TYPE       r       1                  2            3
    0x0001  VERSION           r       firmware version
    0x0010  EVENTS            r       reports queued     0            scores queued
    0x0011  EVENT_CODE        r       key code (keys.py) —            score 1–9
    0x0012  EVENT_SEQ         r       1–65535, wraps past 0; 0 = no report
    0x0013  EVENT_LEN         r       digits typed       —            0
    0x0014  EVENT_DIGITS …    r       4 symbols/register, first in the high nibble (16 max)
    0x0018  EVENT_ACK         w       write EVENT_SEQ: the oldest report is taken
    0x0020  BEEP              w       beep n times       —            —
    0x0030  MODE              rw      0 blank  1 text    0/1          0 idle 2 prompt 3 thanks
    0x0031  TEXT_LEN          rw      bytes of text (≤ 64)
    0x0032  TEXT …            rw      GB18030, 2 bytes/register, high byte first (32 regs)

A poll is one read of the five registers 0x0010–0x0014 (8 bytes out, 15 back: about 32 ms
a node at 9600 baud with the silences, 5.5 ms at 115200). A screen is one write from
0x0030: mode, length and text. An evaluator forgets the scores not yet taken when a new
prompt starts (MODE set to 2 while not 2): a score pressed before it, or twice, is stale.

This module is pure: bytes and ``struct`` only, no I/O.
"""

from __future__ import annotations

import struct

from .errors import FrameError

__all__ = [
    "DEVICE_TYPES",
    "EVENT_DIGIT_REGS",
    "MAX_TEXT",
    "MODE_BLANK",
    "MODE_PROMPT",
    "MODE_TEXT",
    "MODE_THANKS",
    "POLL_COUNT",
    "REGISTERS",
    "REG_BEEP",
    "REG_DEVICE_TYPE",
    "REG_EVENTS",
    "REG_EVENT_ACK",
    "REG_EVENT_CODE",
    "REG_EVENT_DIGITS",
    "REG_EVENT_LEN",
    "REG_EVENT_SEQ",
    "REG_MODE",
    "REG_TEXT",
    "REG_TEXT_LEN",
    "REG_VERSION",
    "TEXT_REGS",
    "TYPE_DISPLAY",
    "TYPE_EVALUATOR",
    "TYPE_KEYPAD",
    "Counters",
    "ExceptionReply",
    "ReadReply",
    "ReadRequest",
    "WriteMultiple",
    "WriteMultipleReply",
    "WriteSingle",
    "crc16",
    "decode_request",
    "decode_response",
    "encode",
    "pack_symbols",
    "pack_text",
    "reply_length",
    "screen_registers",
    "unpack_symbols",
    "unpack_text",
]

READ = 0x03
WRITE_ONE = 0x06
WRITE_MANY = 0x10

TYPE_KEYPAD = 1
TYPE_DISPLAY = 2
TYPE_EVALUATOR = 3
DEVICE_TYPES = {TYPE_KEYPAD: "keypad", TYPE_DISPLAY: "display", TYPE_EVALUATOR: "evaluator"}

REG_DEVICE_TYPE = 0x0000
REG_VERSION = 0x0001
REG_EVENTS = 0x0010
REG_EVENT_CODE = 0x0011
REG_EVENT_SEQ = 0x0012
REG_EVENT_LEN = 0x0013
REG_EVENT_DIGITS = 0x0014
EVENT_DIGIT_REGS = 4
REG_EVENT_ACK = 0x0018
REG_BEEP = 0x0020
REG_MODE = 0x0030
REG_TEXT_LEN = 0x0031
REG_TEXT = 0x0032
TEXT_REGS = 32
MAX_TEXT = 2 * TEXT_REGS
POLL_COUNT = 5  # EVENTS, EVENT_CODE, EVENT_SEQ, EVENT_LEN, first EVENT_DIGITS register

MODE_BLANK = 0
MODE_TEXT = 1
MODE_PROMPT = 2
MODE_THANKS = 3

# (address, registers, access, name): the map above as data, for docs, nodes and simulators.
REGISTERS = (
    (REG_DEVICE_TYPE, 1, "r", "DEVICE_TYPE"),
    (REG_VERSION, 1, "r", "VERSION"),
    (REG_EVENTS, 1, "r", "EVENTS"),
    (REG_EVENT_CODE, 1, "r", "EVENT_CODE"),
    (REG_EVENT_SEQ, 1, "r", "EVENT_SEQ"),
    (REG_EVENT_LEN, 1, "r", "EVENT_LEN"),
    (REG_EVENT_DIGITS, EVENT_DIGIT_REGS, "r", "EVENT_DIGITS"),
    (REG_EVENT_ACK, 1, "w", "EVENT_ACK"),
    (REG_BEEP, 1, "w", "BEEP"),
    (REG_MODE, 1, "rw", "MODE"),
    (REG_TEXT_LEN, 1, "rw", "TEXT_LEN"),
    (REG_TEXT, TEXT_REGS, "rw", "TEXT"),
)


# --- CRC --------------------------------------------------------------------------------------


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc16(data: bytes | bytearray) -> int:
    """CRC-16/MODBUS of ``data``; it goes on the wire low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


# --- messages ---------------------------------------------------------------------------------


class _Message:
    __slots__: tuple[str, ...] = ()

    def _key(self) -> tuple[object, ...]:
        return (type(self), *tuple(getattr(self, n) for n in self.__slots__))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Message) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"


def _check_unit(unit: int, broadcast: bool = False) -> None:
    if not (0 if broadcast else 1) <= unit <= 247:
        raise FrameError(f"unit {unit!r} is not 1–247")


def _check_register(address: int, count: int = 1) -> None:
    if not 0 <= address <= 0xFFFF or address + count > 0x10000:
        raise FrameError(f"register {address!r} (+{count}) is outside 0–65535")


def _check_values(values: tuple[int, ...]) -> None:
    for v in values:
        if not 0 <= v <= 0xFFFF:
            raise FrameError(f"register value {v!r} is not 0–65535")


class ReadRequest(_Message):
    """0x03: read ``count`` holding registers from ``address``."""

    __slots__ = ("address", "count", "unit")

    def __init__(self, unit: int, address: int, count: int) -> None:
        _check_unit(unit)
        if not 1 <= count <= 125:
            raise FrameError(f"a read takes 1–125 registers, not {count!r}")
        _check_register(address, count)
        self.unit, self.address, self.count = unit, address, count

    def pdu(self) -> bytes:
        return struct.pack(">BHH", READ, self.address, self.count)


class ReadReply(_Message):
    """The answer to a 0x03 read: the register values."""

    __slots__ = ("unit", "values")

    def __init__(self, unit: int, values: tuple[int, ...] | list[int]) -> None:
        _check_unit(unit)
        values = tuple(values)
        if not 1 <= len(values) <= 125:
            raise FrameError(f"a read answers 1–125 registers, not {len(values)}")
        _check_values(values)
        self.unit, self.values = unit, values

    def pdu(self) -> bytes:
        n = len(self.values)
        return struct.pack(f">BB{n}H", READ, 2 * n, *self.values)


class WriteSingle(_Message):
    """0x06: write one register. The node answers with the same message."""

    __slots__ = ("address", "unit", "value")

    def __init__(self, unit: int, address: int, value: int) -> None:
        _check_unit(unit, broadcast=True)
        _check_register(address)
        _check_values((value,))
        self.unit, self.address, self.value = unit, address, value

    def pdu(self) -> bytes:
        return struct.pack(">BHH", WRITE_ONE, self.address, self.value)


class WriteMultiple(_Message):
    """0x10: write ``values`` from ``address`` on."""

    __slots__ = ("address", "unit", "values")

    def __init__(self, unit: int, address: int, values: tuple[int, ...] | list[int]) -> None:
        _check_unit(unit, broadcast=True)
        values = tuple(values)
        if not 1 <= len(values) <= 123:
            raise FrameError(f"a write takes 1–123 registers, not {len(values)}")
        _check_register(address, len(values))
        _check_values(values)
        self.unit, self.address, self.values = unit, address, values

    def pdu(self) -> bytes:
        n = len(self.values)
        return struct.pack(f">BHHB{n}H", WRITE_MANY, self.address, n, 2 * n, *self.values)


class WriteMultipleReply(_Message):
    """The answer to a 0x10 write: where and how many."""

    __slots__ = ("address", "count", "unit")

    def __init__(self, unit: int, address: int, count: int) -> None:
        _check_unit(unit)
        _check_register(address, count)
        self.unit, self.address, self.count = unit, address, count

    def pdu(self) -> bytes:
        return struct.pack(">BHH", WRITE_MANY, self.address, self.count)


class ExceptionReply(_Message):
    """A node refusing a request: ``function`` (without 0x80) and the exception ``code``."""

    __slots__ = ("code", "function", "unit")

    def __init__(self, unit: int, function: int, code: int) -> None:
        _check_unit(unit)
        if not 1 <= function <= 0x7F or not 0 <= code <= 0xFF:
            raise FrameError(f"bad exception reply {function!r}/{code!r}")
        self.unit, self.function, self.code = unit, function, code

    def pdu(self) -> bytes:
        return bytes((self.function | 0x80, self.code))


TYPE_CHECKING = False  # no typing module on MicroPython; mypy still reads the block below
if TYPE_CHECKING:
    Request = ReadRequest | WriteSingle | WriteMultiple
    Reply = ReadReply | WriteSingle | WriteMultipleReply | ExceptionReply


def encode(message: Request | Reply) -> bytes:
    """The ADU of ``message``: unit, PDU and CRC (low byte first)."""
    body = bytes((message.unit,)) + message.pdu()
    crc = crc16(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def reply_length(request: Request) -> int:
    """Bytes of the normal reply to ``request`` (for the host's timeout)."""
    if isinstance(request, ReadRequest):
        return 5 + 2 * request.count
    return 8


def matches(request: Request, reply: Reply) -> bool:
    """Whether ``reply`` answers ``request`` (same unit, function and registers)."""
    if reply.unit != request.unit:
        return False
    if isinstance(reply, ExceptionReply):
        return reply.function == request.pdu()[0]
    if isinstance(request, ReadRequest):
        return isinstance(reply, ReadReply) and len(reply.values) == request.count
    if isinstance(request, WriteSingle):
        return reply == request
    return (
        isinstance(reply, WriteMultipleReply)
        and (reply.address, reply.count) == (request.address, len(request.values))
    )


# --- streaming decoders -------------------------------------------------------------------------


class Counters:
    """What a decoder threw away: counted, never raised."""

    __slots__ = ("bad_crc", "frames", "garbage")

    def __init__(self) -> None:
        self.frames = 0  # good frames decoded
        self.bad_crc = 0  # frames of a plausible shape whose CRC did not match
        self.garbage = 0  # bytes skipped

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def _request_size(buf: bytes | bytearray, i: int) -> int:
    """Frame size of the request at ``i``: >0 size, 0 need more bytes, -1 not a request."""
    if buf[i] > 247:
        return -1
    if len(buf) - i < 2:
        return 0
    fc = buf[i + 1]
    if fc in (READ, WRITE_ONE):
        return 8
    if fc != WRITE_MANY:
        return -1
    if len(buf) - i < 7:
        return 0
    count, nbytes = struct.unpack(">HB", bytes(buf[i + 4 : i + 7]))
    if not 1 <= count <= 123 or nbytes != 2 * count:
        return -1
    return 9 + nbytes


def _reply_size(buf: bytes | bytearray, i: int) -> int:
    """Frame size of the reply at ``i``: >0 size, 0 need more bytes, -1 not a reply."""
    if not 1 <= buf[i] <= 247:
        return -1
    if len(buf) - i < 3:
        return 0
    fc = buf[i + 1]
    if fc in (WRITE_ONE, WRITE_MANY):
        return 8
    if fc in (READ | 0x80, WRITE_ONE | 0x80, WRITE_MANY | 0x80):
        return 5
    if fc != READ:
        return -1
    nbytes = buf[i + 2]
    if nbytes == 0 or nbytes % 2 or nbytes > 250:
        return -1
    return 5 + nbytes


def _parse_request(f: bytes) -> Request:
    unit, fc = f[0], f[1]
    if fc == READ:
        address, count = struct.unpack(">HH", f[2:6])
        return ReadRequest(unit, address, count)
    if fc == WRITE_ONE:
        address, value = struct.unpack(">HH", f[2:6])
        return WriteSingle(unit, address, value)
    address, count = struct.unpack(">HH", f[2:6])
    return WriteMultiple(unit, address, struct.unpack(f">{count}H", f[7:-2]))


def _parse_reply(f: bytes) -> Reply:
    unit, fc = f[0], f[1]
    if fc & 0x80:
        return ExceptionReply(unit, fc & 0x7F, f[2])
    if fc == READ:
        return ReadReply(unit, struct.unpack(f">{f[2] // 2}H", f[3:-2]))
    address, value = struct.unpack(">HH", f[2:6])
    if fc == WRITE_ONE:
        return WriteSingle(unit, address, value)
    return WriteMultipleReply(unit, address, value)


def _decode(
    buf: bytes | bytearray, counters: Counters | None, idle: bool, requests: bool
) -> tuple[int, Request | Reply | None]:
    count = counters if counters is not None else Counters()
    size_of = _request_size if requests else _reply_size
    n = len(buf)
    i = 0
    while i < n:
        size = size_of(buf, i)
        if size == 0 or (size > 0 and n - i < size):
            if not idle:
                return i, None
            size = -1  # the line went quiet: this start will never complete
        if size < 0:
            count.garbage += 1
            i += 1
            continue
        frame = bytes(buf[i : i + size])
        if crc16(frame[:-2]) != frame[-2] | frame[-1] << 8:
            count.bad_crc += 1
            i += 1
            continue
        try:
            message = _parse_request(frame) if requests else _parse_reply(frame)
        except FrameError:  # right shape and CRC, impossible values: treat as noise
            count.garbage += 1
            i += 1
            continue
        count.frames += 1
        return i + size, message
    return n, None


def decode_request(
    buf: bytes | bytearray, counters: Counters | None = None, idle: bool = False
) -> tuple[int, Request | None]:
    """Find the first good request in ``buf`` (what a node listens for).

    Returns ``(consumed, request)`` like :func:`protocols.rs485.legacy68.decode`: drop
    ``consumed`` bytes; ``request`` is None when none is complete yet. Broken frames are
    skipped a byte at a time and counted; ``idle=True`` gives up on an incomplete frame.
    """
    consumed, message = _decode(buf, counters, idle, requests=True)
    assert message is None or isinstance(message, (ReadRequest, WriteSingle, WriteMultiple))
    return consumed, message


def decode_response(
    buf: bytes | bytearray, counters: Counters | None = None, idle: bool = False
) -> tuple[int, Reply | None]:
    """Find the first good reply in ``buf`` (what the host listens for); see decode_request."""
    consumed, message = _decode(buf, counters, idle, requests=False)
    assert not isinstance(message, (ReadRequest, WriteMultiple))
    return consumed, message


# --- register contents ---------------------------------------------------------------------------


def pack_symbols(symbols: bytes) -> list[int]:
    """Key symbols (0x0–0xF each) into registers, four per register, first in the high nibble."""
    if len(symbols) > 4 * EVENT_DIGIT_REGS:
        raise FrameError(f"at most {4 * EVENT_DIGIT_REGS} symbols")
    regs = []
    for k in range(0, len(symbols), 4):
        chunk = bytes(symbols[k : k + 4]) + bytes(4 - len(symbols[k : k + 4]))
        value = 0
        for s in chunk:
            if s > 0x0F:
                raise FrameError(f"symbol 0x{s:02X} does not fit a nibble")
            value = value << 4 | s
        regs.append(value)
    return regs


def unpack_symbols(regs: tuple[int, ...] | list[int], n: int) -> bytes:
    """The first ``n`` symbols held in ``regs`` (see :func:`pack_symbols`)."""
    out: list[int] = []
    for value in regs:
        out.extend(((value >> 12) & 0xF, (value >> 8) & 0xF, (value >> 4) & 0xF, value & 0xF))
    if n > len(out):
        raise FrameError(f"{n} symbols asked, {len(out)} held")
    return bytes(out[:n])


def pack_text(raw: bytes) -> list[int]:
    """Text bytes into registers, two per register, high byte first, padded with 0."""
    if len(raw) > MAX_TEXT:
        raise FrameError(f"{len(raw)} bytes of text; at most {MAX_TEXT} fit")
    padded = bytes(raw) + bytes(len(raw) % 2)
    return list(struct.unpack(f">{len(padded) // 2}H", padded))


def unpack_text(regs: tuple[int, ...] | list[int], n: int) -> bytes:
    """The first ``n`` text bytes held in ``regs``."""
    raw = struct.pack(f">{len(regs)}H", *regs)
    if n > len(raw):
        raise FrameError(f"{n} text bytes asked, {len(raw)} held")
    return raw[:n]


def screen_registers(mode: int, raw: bytes) -> list[int]:
    """What one write from REG_MODE puts on a node's screen: mode, length, text."""
    return [mode, len(raw), *pack_text(raw)]
