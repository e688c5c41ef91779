"""The 68-frame profile: the framing of widely installed Chinese caller keypads and displays.

One frame, on a half-duplex RS485 line at 9600 8N1 (any baud rate works)::

    ┌────┬────┬────┬────┬────┬────┬────┬────────────┬────┬────┐
    │ FF │ 68 │ L  │ L  │ 68 │ A  │ C  │ D0 … Dn-1  │ S  │ 16 │
    └────┴────┴────┴────┴────┴────┴────┴────────────┴────┴────┘
     wake start  length  start addr cmd    data       sum  end

    L = 2 + n          (A and C count, the length is sent twice)
    S = (A + C + ΣD) mod 256

``FF`` wakes the receivers; it is optional on input (any number of ``FF`` may come first).
Device-originated frames (a key report, an evaluator's score) are acknowledged by the host
echoing them unchanged; host frames are acknowledged by the addressed device echoing them.

Commands (``*`` marks what this project adds to the installed base's set; see docs/rs485.md)::

    C     direction        device     data
    0x00* host → device    any        [class]: poll; the device of that class echoes it
    0x01  keypad → host    keypad     digits typed (0x00–0x09), then the key code
    0x02  host → device    display    six digit codes, 0x0A blank (0x0B dash*)
    0x03  host → device    keypad     beep ([count]*; no data = once)
    0x04* host → device    display    text, GB18030, for dot-matrix window displays
    0x05* host → device    keypad     six digit codes on the keypad's own LED
    0x06* host → device    keypad     text, GB18030, on the keypad's LCD
    0x07* evaluator → host evaluator  [score]
    0x08* host → device    evaluator  prompt for a rating ([text])
    0x09* host → device    evaluator  thank-you ([text])
    0x0A* host → device    evaluator  idle (stop prompting)

A keypad, a display and an evaluator may share one address: the command says which of
them a frame is for (its *class*), and only that one answers.

This module is pure: bytes in, frames out, no I/O. It uses nothing beyond the language, so a
MicroPython node can run it.
"""

from __future__ import annotations

from .errors import FrameError

__all__ = [
    "BLANK",
    "CMD_BEEP",
    "CMD_DIGITS",
    "CMD_IDLE",
    "CMD_KEY",
    "CMD_KEYPAD_DIGITS",
    "CMD_KEYPAD_TEXT",
    "CMD_POLL",
    "CMD_PROMPT",
    "CMD_SCORE",
    "CMD_TEXT",
    "CMD_THANKS",
    "DASH",
    "DISPLAY",
    "END",
    "EVALUATOR",
    "KEYPAD",
    "MAX_DATA",
    "MAX_TEXT",
    "PREAMBLE",
    "START",
    "UPSTREAM",
    "WIDTH",
    "Counters",
    "Frame",
    "blanks",
    "dashes",
    "decode",
    "device_class",
    "digits_for",
    "encode",
    "frame_length",
    "render_digits",
]

PREAMBLE = 0xFF
START = 0x68
END = 0x16
MAX_DATA = 253  # L is one byte and counts A and C
MAX_TEXT = 64  # bytes of text a display, keypad or evaluator accepts

CMD_POLL = 0x00
CMD_KEY = 0x01
CMD_DIGITS = 0x02
CMD_BEEP = 0x03
CMD_TEXT = 0x04
CMD_KEYPAD_DIGITS = 0x05
CMD_KEYPAD_TEXT = 0x06
CMD_SCORE = 0x07
CMD_PROMPT = 0x08
CMD_THANKS = 0x09
CMD_IDLE = 0x0A

# Device classes: which kind of device a frame is for.
KEYPAD = 1
DISPLAY = 2
EVALUATOR = 3

_CLASS_OF = {
    CMD_KEY: KEYPAD,
    CMD_DIGITS: DISPLAY,
    CMD_BEEP: KEYPAD,
    CMD_TEXT: DISPLAY,
    CMD_KEYPAD_DIGITS: KEYPAD,
    CMD_KEYPAD_TEXT: KEYPAD,
    CMD_SCORE: EVALUATOR,
    CMD_PROMPT: EVALUATOR,
    CMD_THANKS: EVALUATOR,
    CMD_IDLE: EVALUATOR,
}

UPSTREAM = (CMD_KEY, CMD_SCORE)  # sent by devices unprompted; the host echoes them

# Digit codes on a six-digit display.
WIDTH = 6
BLANK = 0x0A
DASH = 0x0B


class Frame:
    """One 68-frame: an address, a command and its data bytes."""

    __slots__ = ("address", "command", "data")

    def __init__(self, address: int, command: int, data: bytes = b"") -> None:
        if not 0 <= address <= 0xFF:
            raise FrameError(f"address {address!r} is not a byte")
        if not 0 <= command <= 0xFF:
            raise FrameError(f"command {command!r} is not a byte")
        if len(data) > MAX_DATA:
            raise FrameError(f"{len(data)} data bytes; at most {MAX_DATA} fit")
        self.address = address
        self.command = command
        self.data = bytes(data)

    def encode(self) -> bytes:
        """The frame's bytes on the wire, wake-up byte included."""
        return encode(self)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Frame)
            and self.address == other.address
            and self.command == other.command
            and self.data == other.data
        )

    def __hash__(self) -> int:
        return hash((self.address, self.command, self.data))

    def __repr__(self) -> str:
        data = " ".join(f"{b:02X}" for b in self.data)
        return f"Frame(address={self.address}, command=0x{self.command:02X}, data=[{data}])"


class Counters:
    """What a decoder threw away, for the bus's statistics (a fault is counted, never raised)."""

    __slots__ = ("bad_checksum", "bad_end", "frames", "garbage")

    def __init__(self) -> None:
        self.frames = 0  # good frames decoded
        self.bad_checksum = 0  # well-formed frames whose S did not match
        self.bad_end = 0  # frames whose last byte was not 0x16
        self.garbage = 0  # bytes skipped outside any frame (0xFF wake-up bytes excluded)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def encode(frame: Frame) -> bytes:
    """``FF 68 L L 68 A C D… S 16`` for ``frame``."""
    length = 2 + len(frame.data)
    checksum = (frame.address + frame.command + sum(frame.data)) & 0xFF
    head = bytes((PREAMBLE, START, length, length, START, frame.address, frame.command))
    return head + frame.data + bytes((checksum, END))


def frame_length(data_len: int) -> int:
    """Bytes on the wire of a frame carrying ``data_len`` data bytes (wake-up byte included)."""
    return 9 + data_len


def device_class(frame: Frame) -> int | None:
    """The kind of device a frame is for (KEYPAD, DISPLAY, EVALUATOR), None if unknown."""
    if frame.command == CMD_POLL:
        return frame.data[0] if len(frame.data) == 1 else None
    return _CLASS_OF.get(frame.command)


def decode(
    buf: bytes | bytearray, counters: Counters | None = None, idle: bool = False
) -> tuple[int, Frame | None]:
    """Find the first good frame in ``buf``.

    Returns ``(consumed, frame)``: drop ``consumed`` bytes from the front of ``buf``, then
    handle ``frame``. ``frame`` is None when no complete frame is there yet; the bytes kept
    are the start of a frame still arriving. Garbage, broken headers, bad checksums and bad
    end bytes are skipped one byte at a time (so a frame that starts inside a broken one is
    still found) and counted in ``counters``.

    ``idle=True`` says the line has gone quiet: a frame still incomplete will never be
    completed, so it is skipped as garbage instead of waited for.
    """
    count = counters if counters is not None else Counters()
    n = len(buf)
    i = 0
    while True:
        j = buf.find(b"\x68", i)
        if j < 0:
            _skip(count, buf, i, n)
            return n, None
        _skip(count, buf, i, j)
        if n - j < 4:
            if idle:
                _skip(count, buf, j, n)
                return n, None
            return j, None
        length = buf[j + 1]
        if buf[j + 2] != length or buf[j + 3] != START or length < 2:
            count.garbage += 1  # a stray 0x68, not a header
            i = j + 1
            continue
        end = j + length + 6
        if n < end:
            if idle:
                count.garbage += 1
                i = j + 1
                continue
            return j, None
        frame = _check(buf, j + 4, end, count)
        if frame is None:
            i = j + 1
            continue
        count.frames += 1
        return end, frame


def _check(buf: bytes | bytearray, body: int, end: int, count: Counters) -> Frame | None:
    if buf[end - 1] != END:
        count.bad_end += 1
        return None
    if sum(buf[body : end - 2]) & 0xFF != buf[end - 2]:
        count.bad_checksum += 1
        return None
    return Frame(buf[body], buf[body + 1], bytes(buf[body + 2 : end - 2]))


def _skip(count: Counters, buf: bytes | bytearray, start: int, stop: int) -> None:
    for k in range(start, stop):
        if buf[k] != PREAMBLE:
            count.garbage += 1


# --- what a six-digit display shows --------------------------------------------------------


def digits_for(number: str, width: int = WIDTH) -> bytes:
    """The digit codes showing a ticket number, right-aligned: ``A023`` → ``   023``.

    Letters are dropped (a seven-segment display has none); the last ``width`` digits stay.
    """
    digits = [ord(ch) - 48 for ch in number if "0" <= ch <= "9"][-width:]
    return bytes([BLANK] * (width - len(digits)) + digits)


def blanks(width: int = WIDTH) -> bytes:
    """An empty display."""
    return bytes([BLANK] * width)


def dashes(width: int = WIDTH) -> bytes:
    """``------``: the window is not serving (暂停服务 on a display without characters)."""
    return bytes([DASH] * width)


def render_digits(codes: bytes) -> str:
    """What a person reads on the display: ``0A 0A 0A 00 02 03`` → ``'   023'``."""
    out = []
    for code in codes:
        if code <= 9:
            out.append(chr(48 + code))
        elif code == BLANK:
            out.append(" ")
        elif code == DASH:
            out.append("-")
        else:
            out.append("?")
    return "".join(out)
