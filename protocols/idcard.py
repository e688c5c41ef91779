"""The second-generation resident ID card reader (二代证阅读器, "SAM" module) frame protocol.

Readers built around the Ministry of Public Security's SAM module (most desktop 二代证
readers with a serial or USB-serial port) speak the same frames, both ways::

    AA AA AA 96 69 | LEN_H LEN_L | payload ...................... | CHK
    \\__ preamble _/  \\ length /   command:  CMD PARA DATA…
    (AA AA AA sync,   of payload   response: SW1 SW2 SW3 DATA…
     96 69 = start)   + CHK

``LEN`` (2 bytes, big-endian) counts every byte after itself: the payload and the
checksum. ``CHK`` is the XOR of the length bytes and the payload (every byte but the
preamble and itself). In a response SW1 SW2 are the card's status word as the module
relays it and SW3 the module's own status: ``90`` done, ``9F`` card found (find card),
``80`` no card found, ``81`` select failed, ``41`` read failed, ``10`` checksum error at
the module… (:data:`STATUS`).

The commands the box uses: find card ``20 01``, select card ``20 02``, read base
information ``30 01``. The read's data is two big-endian lengths (text, photo) then the
text (256 bytes, UCS-2 little-endian, fixed fields of GA/T 490, :func:`parse_base_info`)
and the photo (1024 bytes of "wlt", a proprietary compressed image that only the
licensed decoder library turns into a picture). The photo is not decoded here and is
never kept: :func:`parse_base_info` checks its length and drops it.

Sources (public, third-party; checked against each other):

* frame layout, command table and status table: "身份证阅读器通信协议",
  https://softs.im/%E8%BA%AB%E4%BB%BD%E8%AF%81%E9%98%85%E8%AF%BB%E5%99%A8%E9%80%9A%E4%BF%A1%E5%8D%8F%E8%AE%AE
  (after 公安部第一研究所's "身份证阅读器接口使用说明"), whose captured failure frames
  ``AA AA AA 96 69 00 04 00 00 41 45`` and ``… 00 04 00 00 32 36`` are test vectors in
  tests/test_protocols_idcard.py;
* the 256-byte text layout (姓名 30, 性别 2, 民族 4, 出生 16, 住址 70, 公民身份号码 36,
  签发机关 30, 有效期起始 16, 有效期截止 16, 预留 36 bytes) and the 1024-byte wlt photo:
  GA/T 490 as tabled at https://wiki.nfc.im/books/智能卡手册/page/二代居民身份证.

Pure code: no I/O. :func:`decode` is a stream framer (``decode(buf) -> Decoded``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from protocols.cards import CardError, parse_id_number

__all__ = [
    "FIND_CARD",
    "MAX_LENGTH",
    "NATIONS",
    "PREAMBLE",
    "READ_BASE_INFO",
    "SELECT_CARD",
    "STATUS",
    "BaseInfoError",
    "Decoded",
    "IdCardInfo",
    "Response",
    "checksum",
    "decode",
    "encode_base_info",
    "encode_command",
    "encode_response",
    "parse_base_info",
    "parse_command",
    "parse_response",
]

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
# The longest frame the module sends is a read with fingerprints (30 10: 256 + 1024 + 1024
# bytes + 7); anything longer is line noise, not a length to wait for.
MAX_LENGTH = 2400

FIND_CARD = (0x20, 0x01)
SELECT_CARD = (0x20, 0x02)
READ_BASE_INFO = (0x30, 0x01)

TEXT_LEN, PHOTO_LEN = 256, 1024

STATUS: dict[int, str] = {  # SW3, the module's status
    0x90: "ok",
    0x9F: "card found",
    0x10: "checksum error at the reader",
    0x11: "length error at the reader",
    0x21: "command error",
    0x23: "unauthorised",
    0x24: "unknown error",
    0x31: "card refused the reader",
    0x32: "reader refused the card",
    0x33: "information check failed",
    0x40: "wrong card",
    0x41: "card read failed",
    0x47: "random number failed",
    0x60: "reader self-test failed",
    0x66: "reader not authorised",
    0x80: "no card found",
    0x81: "card select failed",
    0x91: "no such content on the card",
}

_NATION_NAMES = ("汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 "
                 "佤 畲 高山 拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 "
                 "仡佬 锡伯 阿昌 普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 "
                 "独龙 鄂伦春 赫哲 门巴 珞巴 基诺")
# GB/T 3304 民族代码 (the ID card's 2-digit nation field), 01 汉 … 56 基诺
NATIONS: dict[str, str] = {
    f"{i:02d}": name for i, name in enumerate(_NATION_NAMES.split(), 1)
} | {"97": "其他", "98": "外国血统中国籍人士"}

SEXES = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}  # GB/T 2261.1
LONG_TERM = "长期"  # the validity end of a card that does not expire

# (name, bytes) of the 256-byte text, in order (GA/T 490)
_FIELDS = (("name", 30), ("sex", 2), ("nation", 4), ("birth", 16), ("address", 70),
           ("number", 36), ("authority", 30), ("valid_from", 16), ("valid_to", 16),
           ("reserved", 36))


def checksum(body: bytes) -> int:
    """XOR of ``body`` (the length bytes and the payload)."""
    x = 0
    for b in body:
        x ^= b
    return x


def _frame(payload: bytes) -> bytes:
    body = (len(payload) + 1).to_bytes(2, "big") + payload
    return PREAMBLE + body + bytes([checksum(body)])


def encode_command(command: tuple[int, int], data: bytes = b"") -> bytes:
    """A command frame to the reader, e.g. ``encode_command(FIND_CARD)``."""
    return _frame(bytes(command) + data)


def encode_response(sw3: int, data: bytes = b"", sw1: int = 0, sw2: int = 0) -> bytes:
    """A response frame from the reader (the simulated reader sends these)."""
    return _frame(bytes([sw1, sw2, sw3]) + data)


@dataclass(frozen=True, slots=True)
class Decoded:
    """What :func:`decode` found: drop ``consumed`` bytes; ``payload`` is a good frame's
    payload (None: need more bytes, or junk/a bad frame, then ``error`` says which)."""

    consumed: int
    payload: bytes | None = None
    error: str | None = None


def decode(buf: bytes) -> Decoded:
    """Find the next frame in ``buf``; junk before a preamble is skipped and reported.

    A bad length or checksum drops one byte so that a real frame starting inside the bad
    one is still found. Never raises.
    """
    start = buf.find(PREAMBLE)
    if start < 0:
        keep = next((k for k in range(min(len(PREAMBLE) - 1, len(buf)), 0, -1)
                     if PREAMBLE.startswith(buf[-k:])), 0)  # a preamble cut in two
        junk = len(buf) - keep
        return Decoded(junk, error="junk before the preamble" if junk else None)
    if start > 0:
        return Decoded(start, error="junk before the preamble")
    if len(buf) < 7:
        return Decoded(0)
    length = int.from_bytes(buf[5:7], "big")
    if not 3 <= length <= MAX_LENGTH:
        return Decoded(1, error=f"impossible length {length}")
    if len(buf) < 7 + length:
        return Decoded(0)
    body, chk = buf[5:6 + length], buf[6 + length]
    if checksum(body) != chk:
        return Decoded(1, error="bad checksum")
    return Decoded(7 + length, payload=bytes(body[2:]))


@dataclass(frozen=True, slots=True)
class Response:
    """A reader's response: the module's status SW3 (with the card's SW1 SW2) and data."""

    sw1: int
    sw2: int
    sw3: int
    data: bytes

    @property
    def ok(self) -> bool:
        return self.sw3 in (0x90, 0x9F)

    @property
    def meaning(self) -> str:
        return STATUS.get(self.sw3, f"status {self.sw3:02X}")


def parse_response(payload: bytes) -> Response:
    """A response payload (SW1 SW2 SW3 DATA). Raises ValueError when shorter than 3 bytes."""
    if len(payload) < 3:
        raise ValueError(f"a response has SW1 SW2 SW3, got {len(payload)} bytes")
    return Response(payload[0], payload[1], payload[2], payload[3:])


def parse_command(payload: bytes) -> tuple[tuple[int, int], bytes]:
    """A command payload (CMD PARA DATA) → ((CMD, PARA), DATA). Raises ValueError."""
    if len(payload) < 2:
        raise ValueError(f"a command has CMD PARA, got {len(payload)} bytes")
    return (payload[0], payload[1]), payload[2:]


class BaseInfoError(CardError):
    """The card's base information is not what GA/T 490 lays down (a misread)."""

    code = "bad_format"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, "无法读取身份证,请重新放置。",
                         "The ID card could not be read. Please place it again.")


@dataclass(frozen=True, slots=True)
class IdCardInfo:
    """The text of an ID card. Personal data: never logged, printed or shown whole; its
    ``repr`` shows the masked number only. The photo is never part of it."""

    number: str
    name: str = field(repr=False)
    sex: str = field(repr=False)  # 男, 女, 未知, 未说明
    nation: str = field(repr=False)  # 汉, 回 … (from the 2-digit code)
    birth: dt.date = field(repr=False)
    address: str = field(repr=False)
    authority: str = field(repr=False)
    valid_from: dt.date = field(repr=False)
    valid_to: dt.date | None = field(repr=False)  # None: 长期 (does not expire)

    def __repr__(self) -> str:
        return f"IdCardInfo(number={self.masked!r})"

    @property
    def masked(self) -> str:
        return self.number[:4] + "*" * 10 + self.number[-4:]

    def valid_on(self, day: dt.date) -> bool:
        """True if the card is in its validity period on ``day``."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


def _date(text: str, what: str) -> dt.date:
    if len(text) != 8 or not text.isdigit() or not text.isascii():
        raise BaseInfoError(f"{what} is not YYYYMMDD")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise BaseInfoError(f"{what} is not a date") from None


def _text_fields(text: bytes) -> dict[str, str]:
    out, at = {}, 0
    for name, size in _FIELDS:
        try:
            value = text[at:at + size].decode("utf-16-le")
        except UnicodeDecodeError:
            raise BaseInfoError(f"{name} is not UCS-2") from None
        out[name] = value.rstrip(" \x00")
        at += size
    return out


def parse_base_info(data: bytes) -> IdCardInfo:
    """The data of a read-base-information response → the card's text. Strict: lengths,
    dates, codes and the ID number's check character are checked; the photo is dropped.

    Raises:
        BaseInfoError: anything not as GA/T 490 lays it down.
        protocols.cards.CardChecksumError / CardFormatError: a bad ID number.
    """
    if len(data) < 4:
        raise BaseInfoError("no text and photo lengths")
    text_len, photo_len = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big")
    if text_len != TEXT_LEN or photo_len != PHOTO_LEN or len(data) != 4 + text_len + photo_len:
        raise BaseInfoError(f"text/photo of {text_len}/{photo_len} bytes in {len(data)}, "
                            f"expected {TEXT_LEN}/{PHOTO_LEN}")
    f = _text_fields(data[4:4 + TEXT_LEN])  # the photo (data[4 + TEXT_LEN:]) is not kept
    number = parse_id_number(f["number"])
    birth = _date(f["birth"], "birth date")
    if birth != number.birth:
        raise BaseInfoError("birth date differs from the one in the ID number")
    if f["sex"] not in SEXES or f["nation"] not in NATIONS:
        raise BaseInfoError("unknown sex or nation code")
    if not f["name"] or not f["address"] or not f["authority"]:
        raise BaseInfoError("name, address or issuing authority is empty")
    valid_to = None if f["valid_to"] == LONG_TERM else _date(f["valid_to"], "validity end")
    valid_from = _date(f["valid_from"], "validity start")
    if valid_to is not None and valid_to < valid_from:
        raise BaseInfoError("validity ends before it starts")
    return IdCardInfo(number.number, f["name"], SEXES[f["sex"]], NATIONS[f["nation"]], birth,
                      f["address"], f["authority"], valid_from, valid_to)


def _code(value: str, table: dict[str, str]) -> str:
    return next((k for k, v in table.items() if v == value), value)


def encode_base_info(info: IdCardInfo, photo: bytes = bytes(PHOTO_LEN)) -> bytes:
    """The read-base-information data of ``info`` (what a reader sends; the simulator's)."""
    values = {
        "name": info.name, "sex": _code(info.sex, SEXES), "nation": _code(info.nation, NATIONS),
        "birth": info.birth.strftime("%Y%m%d"), "address": info.address,
        "number": info.number, "authority": info.authority,
        "valid_from": info.valid_from.strftime("%Y%m%d"),
        "valid_to": LONG_TERM if info.valid_to is None else info.valid_to.strftime("%Y%m%d"),
        "reserved": "",
    }
    text = b""
    for name, size in _FIELDS:
        raw = values[name].encode("utf-16-le")
        if len(raw) > size:
            raise ValueError(f"{name} is longer than {size // 2} characters")
        text += raw + " ".encode("utf-16-le") * ((size - len(raw)) // 2)
    if len(photo) != PHOTO_LEN:
        raise ValueError(f"the photo is {PHOTO_LEN} bytes")
    return TEXT_LEN.to_bytes(2, "big") + PHOTO_LEN.to_bytes(2, "big") + text + photo
