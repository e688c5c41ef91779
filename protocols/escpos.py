"""The ESC/POS commands our tickets use: builders, a small decoder, and status bytes.

Pure: no I/O, no asyncio. The ticket layout (:mod:`protocols.ticket`) builds bytes with
the builders; the simulated printer (:mod:`sim.printer`) and the tests read them back with
:func:`decode`; the driver and the simulator share :func:`status_byte` / :func:`read_status`.

Commands (hex; ``n`` one byte, ``pL pH`` a little-endian length)::

    ESC @            1B 40            initialise (clears styles; starts a ticket)
    FS &             1C 26            Chinese character mode on (GB18030/GBK double bytes)
    FS .             1C 2E            Chinese character mode off
    FS ( C           1C 28 43 02 00 30 m   character encoding: m=1 one byte, m=2 UTF-8
    ESC a n          1B 61 n          align: 0 left, 1 centre, 2 right
    ESC E n          1B 45 n          bold on/off
    ESC ! n          1B 21 n          print mode (python-escpos sends 00 for "normal")
    GS ! n           1D 21 n          size: high nibble width-1, low nibble height-1 (1..8)
    LF               0A               print the line
    ESC d n          1B 64 n          print and feed n lines
    GS V m [n]       1D 56 m [n]      cut: m=0/48 full, 1/49 partial; 65/66 feed n then cut
    GS ( k pL pH cn fn ...            2D code (cn=0x31 QR): fn 0x41 model, 0x43 module size,
                                      0x45 error level, 0x50 store data, 0x51 print
    GS v 0 m xL xH yL yH d...         raster bit image, x bytes wide, y dots high, 1 = black
    DLE EOT n        10 04 n          real-time status (n = 1 printer, 2 offline cause,
                                      3 error cause, 4 roll paper sensor); 1 byte answer

Status answer bytes all look like ``0xx1 xx10`` (bits 1 and 4 set, bits 0 and 7 clear)::

    n=1 printer      bit 3 offline, bit 5 waiting for online recovery, bit 6 feed pressed
    n=2 offline      bit 2 cover open, bit 3 feeding by button, bit 5 stopped by paper end,
                     bit 6 error
    n=3 error        bit 3 auto-cutter error, bit 5 unrecoverable, bit 6 auto-recoverable
    n=4 roll paper   bits 2+3 paper near end, bits 5+6 paper end (no paper)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "STATUS_QUERY",
    "Cmd",
    "PrinterStatus",
    "align",
    "bold",
    "cut",
    "decode",
    "decode_all",
    "feed",
    "is_status_byte",
    "qr_native",
    "raster",
    "read_status",
    "size",
    "status_byte",
]

ESC, GS, FS, DLE, EOT, LF = 0x1B, 0x1D, 0x1C, 0x10, 0x04, 0x0A

INIT = b"\x1b@"
CHINESE_ON = b"\x1c&"
CHINESE_OFF = b"\x1c."
UTF8_ON = b"\x1c(C\x02\x000\x02"
ONE_BYTE_ON = b"\x1c(C\x02\x000\x01"
ALIGNS = {"left": 0, "center": 1, "right": 2}
QR_LEVELS = {"L": 48, "M": 49, "Q": 50, "H": 51}
# The four real-time queries the driver sends together; the printer answers four bytes.
STATUS_QUERY = b"\x10\x04\x01\x10\x04\x02\x10\x04\x03\x10\x04\x04"
MAX_RASTER_BYTES = 1 << 20  # a larger GS v 0 header is garbage, not an image


# --- builders -----------------------------------------------------------------------------


def align(where: str) -> bytes:
    """``ESC a``: ``left``, ``center`` or ``right``."""
    return bytes((ESC, 0x61, ALIGNS[where]))


def bold(on: bool) -> bytes:
    return bytes((ESC, 0x45, int(on)))


def size(width: int, height: int) -> bytes:
    """``GS !`` character magnification, 1..8 each way."""
    if not (1 <= width <= 8 and 1 <= height <= 8):
        raise ValueError(f"size {width}x{height} is outside 1..8")
    return bytes((GS, 0x21, (width - 1) << 4 | (height - 1)))


def feed(lines: int) -> bytes:
    return bytes((ESC, 0x64, max(0, min(lines, 255))))


def cut(partial: bool) -> bytes:
    """``GS V 66/65 0``: feed to the cutter and cut (partially or fully)."""
    return bytes((GS, 0x56, 0x42 if partial else 0x41, 0))


def _gs_k(fn: int, payload: bytes) -> bytes:
    n = len(payload) + 2
    return bytes((GS, 0x28, 0x6B, n & 0xFF, n >> 8, 0x31, fn)) + payload


def qr_native(data: str, module: int = 6, level: str = "M") -> bytes:
    """QR code drawn by the printer (``GS ( k``): model 2, module size, level, store, print.

    The same bytes python-escpos sends for ``qr(native=True)``.
    """
    payload = data.encode("utf-8")
    if not 1 <= module <= 16:
        raise ValueError("QR module size must be 1..16 dots")
    if len(payload) > 7089:
        raise ValueError("QR data too long")
    return (_gs_k(0x41, b"\x32\x00") + _gs_k(0x43, bytes((module,)))
            + _gs_k(0x45, bytes((QR_LEVELS[level],))) + _gs_k(0x50, b"\x30" + payload)
            + _gs_k(0x51, b"\x30"))


def raster(rows: list[bytes], width_bytes: int) -> bytes:
    """``GS v 0``: a bit image, each row ``width_bytes`` long (MSB = leftmost dot)."""
    if not 1 <= width_bytes <= 0xFFFF or not rows or len(rows) > 0xFFFF:
        raise ValueError("raster image size out of range")
    head = bytes((GS, 0x76, 0x30, 0, width_bytes & 0xFF, width_bytes >> 8,
                  len(rows) & 0xFF, len(rows) >> 8))
    return head + b"".join(r.ljust(width_bytes, b"\0")[:width_bytes] for r in rows)


# --- decoder ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cmd:
    """One decoded command.

    ``op`` is one of: ``text`` (``data``: a run of printable bytes, not yet decoded),
    ``init``, ``chinese`` (``arg`` 1 on / 0 off), ``charset`` (``arg`` 1 one byte / 2 UTF-8),
    ``align``, ``bold``, ``mode`` (ESC !), ``size`` (``arg`` = GS ! byte), ``lf``, ``feed``,
    ``cut`` (``arg`` 0 full / 1 partial), ``qr_model``, ``qr_module``, ``qr_level``,
    ``qr_store`` (``data``), ``qr_print``, ``raster`` (``width`` bytes x ``height`` rows,
    ``data``), ``status`` (``arg`` = n), ``unknown`` (``data`` = the bytes skipped).
    """

    op: str
    arg: int = 0
    data: bytes = b""
    width: int = 0
    height: int = 0


_ESC_1 = {0x61: "align", 0x45: "bold", 0x21: "mode", 0x64: "feed", 0x74: "codepage",
          0x4D: "font", 0x2D: "underline", 0x47: "double_strike", 0x33: "line_spacing",
          0x4A: "feed_dots", 0x56: "rotate", 0x7B: "upside_down", 0x20: "char_spacing"}
_GS_1 = {0x21: "size", 0x42: "invert", 0x62: "smoothing", 0x4C: "left_margin2"}
_CUTS = {0: 0, 48: 0, 1: 1, 49: 1}
_CUTS_FEED = {65: 0, 66: 1}
_QR_FN = {0x41: "qr_model", 0x43: "qr_module", 0x45: "qr_level", 0x50: "qr_store",
          0x51: "qr_print"}


def decode(buf: bytes) -> tuple[int, Cmd | None]:
    """Decode the first command in ``buf``: ``(bytes consumed, command)``.

    ``(0, None)`` means "need more bytes". Garbage is skipped as ``unknown`` commands, a
    byte or a few at a time, so no input can wedge the decoder or raise.
    """
    if not buf:
        return 0, None
    b = buf[0]
    if b >= 0x20:
        end = next((i for i, x in enumerate(buf) if x < 0x20), len(buf))
        return end, Cmd("text", data=bytes(buf[:end]))
    if b == LF:
        return 1, Cmd("lf")
    if b == ESC:
        return _decode_esc(buf)
    if b == GS:
        return _decode_gs(buf)
    if b == FS:
        return _decode_fs(buf)
    if b == DLE:
        if len(buf) < 3:
            return (0, None) if len(buf) < 2 or buf[1] == EOT else (1, Cmd("unknown", data=buf[:1]))
        if buf[1] == EOT and buf[2] in (1, 2, 3, 4):
            return 3, Cmd("status", arg=buf[2])
    return 1, Cmd("unknown", data=bytes(buf[:1]))


def _decode_esc(buf: bytes) -> tuple[int, Cmd | None]:
    if len(buf) < 2:
        return 0, None
    code = buf[1]
    if code == 0x40:
        return 2, Cmd("init")
    if code in _ESC_1:
        if len(buf) < 3:
            return 0, None
        return 3, Cmd(_ESC_1[code], arg=buf[2])
    return 2, Cmd("unknown", data=bytes(buf[:2]))


def _decode_gs(buf: bytes) -> tuple[int, Cmd | None]:
    if len(buf) < 2:
        return 0, None
    code = buf[1]
    if code in _GS_1:
        return (0, None) if len(buf) < 3 else (3, Cmd(_GS_1[code], arg=buf[2]))
    if code == 0x56:
        return _decode_cut(buf)
    if code == 0x28 and len(buf) >= 3 and buf[2] == 0x6B:
        return _decode_2d(buf)
    if code == 0x76 and len(buf) >= 3 and buf[2] == 0x30:
        return _decode_raster(buf)
    if code in (0x28, 0x76) and len(buf) < 3:
        return 0, None
    return 2, Cmd("unknown", data=bytes(buf[:2]))


def _decode_fs(buf: bytes) -> tuple[int, Cmd | None]:
    if len(buf) < 2:
        return 0, None
    if buf[1] in (0x26, 0x2E):
        return 2, Cmd("chinese", arg=int(buf[1] == 0x26))
    if buf[1] != 0x28:
        return 2, Cmd("unknown", data=bytes(buf[:2]))
    if len(buf) < 3:
        return 0, None
    if buf[2] not in b"ACELe":  # not an FS ( function: do not trust a length after it
        return 2, Cmd("unknown", data=bytes(buf[:2]))
    if len(buf) < 5:
        return 0, None
    n = buf[3] | buf[4] << 8
    if len(buf) < 5 + n:
        return 0, None
    if buf[2] == 0x43 and n == 2 and buf[5] in (0x30, 0x00) and buf[6] in (1, 2, 0x31, 0x32):
        return 7, Cmd("charset", arg=buf[6] & 0x0F)
    return 5 + n, Cmd("unknown", data=bytes(buf[:5 + n]))


def _decode_cut(buf: bytes) -> tuple[int, Cmd | None]:
    if len(buf) < 3:
        return 0, None
    m = buf[2]
    if m in _CUTS:
        return 3, Cmd("cut", arg=_CUTS[m])
    if m in _CUTS_FEED:
        return (0, None) if len(buf) < 4 else (4, Cmd("cut", arg=_CUTS_FEED[m]))
    return 3, Cmd("unknown", data=bytes(buf[:3]))


def _decode_2d(buf: bytes) -> tuple[int, Cmd | None]:
    if len(buf) < 5:
        return 0, None
    n = buf[3] | buf[4] << 8
    if n < 2:
        return 5, Cmd("unknown", data=bytes(buf[:5]))
    if len(buf) < 5 + n:
        return 0, None
    cn, fn, body = buf[5], buf[6], bytes(buf[7:5 + n])
    op = _QR_FN.get(fn) if cn == 0x31 else None
    if op is None:
        return 5 + n, Cmd("unknown", data=bytes(buf[:5 + n]))
    if op == "qr_store":
        return 5 + n, Cmd(op, data=body[1:])  # body[0] is m = 0x30
    return 5 + n, Cmd(op, arg=body[-1] if body else 0, data=body)


def _decode_raster(buf: bytes) -> tuple[int, Cmd | None]:
    if len(buf) < 8:
        return 0, None
    x, y = buf[4] | buf[5] << 8, buf[6] | buf[7] << 8
    if x == 0 or y == 0 or x * y > MAX_RASTER_BYTES:
        return 3, Cmd("unknown", data=bytes(buf[:3]))
    end = 8 + x * y
    if len(buf) < end:
        return 0, None
    return end, Cmd("raster", arg=buf[3], data=bytes(buf[8:end]), width=x, height=y)


def decode_all(buf: bytes) -> tuple[list[Cmd], bytes]:
    """Decode every complete command in ``buf``; return them and the unfinished tail."""
    out: list[Cmd] = []
    pos = 0
    while pos < len(buf):
        used, cmd = decode(buf[pos:])
        if cmd is None:
            break
        out.append(cmd)
        pos += used
    return out, buf[pos:]


# --- status -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What a printer says about itself (the four DLE EOT answers, decoded)."""

    online: bool = True
    cover_open: bool = False
    paper_out: bool = False
    paper_near_end: bool = False
    feed_button: bool = False
    cutter_error: bool = False
    unrecoverable_error: bool = False
    auto_recoverable_error: bool = False

    @property
    def condition(self) -> str:
        """The one condition that matters most, as a stable code.

        ``paper_out``, ``cover_open``, ``cutter_error``, ``error``, ``offline``,
        ``paper_near_end`` or ``ok``. All but the last two stop printing.
        """
        if self.paper_out:
            return "paper_out"
        if self.cover_open:
            return "cover_open"
        if self.cutter_error:
            return "cutter_error"
        if self.unrecoverable_error or self.auto_recoverable_error:
            return "error"
        if not self.online:
            return "offline"
        return "paper_near_end" if self.paper_near_end else "ok"

    @property
    def can_print(self) -> bool:
        return self.condition in ("ok", "paper_near_end")


def _bits(*pairs: tuple[bool, int]) -> int:
    value = 0x12
    for on, mask in pairs:
        if on:
            value |= mask
    return value


def status_byte(n: int, st: PrinterStatus) -> int:
    """The byte a printer answers to ``DLE EOT n`` in status ``st`` (for simulators)."""
    stopped = st.paper_out or st.cover_open or st.cutter_error or st.unrecoverable_error
    error = st.cutter_error or st.unrecoverable_error or st.auto_recoverable_error
    if n == 1:
        return _bits((not st.online or stopped, 0x08), (st.feed_button, 0x40))
    if n == 2:
        return _bits((st.cover_open, 0x04), (st.feed_button, 0x08), (st.paper_out, 0x20),
                     (error, 0x40))
    if n == 3:
        return _bits((st.cutter_error, 0x08), (st.unrecoverable_error, 0x20),
                     (st.auto_recoverable_error, 0x40))
    if n == 4:
        return _bits((st.paper_near_end, 0x0C), (st.paper_out, 0x60))
    raise ValueError(f"DLE EOT {n} is not a status query")


def is_status_byte(b: int) -> bool:
    return b & 0x93 == 0x12


def read_status(answers: bytes) -> PrinterStatus:
    """Decode the four answers to :data:`STATUS_QUERY` (``DLE EOT`` 1, 2, 3 and 4).

    Raises :class:`ValueError` unless they are four status bytes.
    """
    if len(answers) != 4 or not all(is_status_byte(b) for b in answers):
        raise ValueError(f"{answers.hex(' ')!r} is not four DLE EOT status bytes")
    printer, offline, error, paper = answers
    return PrinterStatus(
        online=not printer & 0x08,
        cover_open=bool(offline & 0x04),
        paper_out=bool(offline & 0x20) or paper & 0x60 == 0x60,
        paper_near_end=paper & 0x0C == 0x0C,
        feed_button=bool(printer & 0x40),
        cutter_error=bool(error & 0x08),
        unrecoverable_error=bool(error & 0x20),
        auto_recoverable_error=bool(error & 0x40),
    )
