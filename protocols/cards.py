"""Card and ID numbers as card readers deliver them (SPEC A5, A6): parsing and checksums.

A reader hands the box one line of text per swipe or tap. :func:`parse_swipe` tells what
it is and checks it:

* **Magnetic stripe, track 2** (ISO/IEC 7813): ``;PAN=YYMMSSS<discretionary>?`` with an
  optional LRC character after the end sentinel. Readers that send track 1 as well
  (``%B…^NAME^…?;…?``) are accepted: track 2 is taken from the line.
* **IC (chip) card**: the reader sends the card number (PAN), or the chip's
  "track 2 equivalent" data (EMV tag 57) as hex digits with ``D`` as the separator.
* **Resident ID card (二代身份证)**: 18 characters, GB 11643-1999: 6-digit region,
  8-digit birth date, 3-digit sequence (odd = male), and an ISO 7064 MOD 11-2 check
  character ``0``–``9`` or ``X``.

Bank card numbers (12–19 digits) are checked with the Luhn formula. Anything else
raises a :class:`CardError` whose ``code`` is stable and whose messages (Chinese first)
can be shown on the kiosk. Pure code: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CardChecksumError",
    "CardError",
    "CardFormatError",
    "CardRead",
    "IdNumber",
    "Track2",
    "format_track2",
    "id_check_char",
    "luhn_check_digit",
    "luhn_ok",
    "parse_ic",
    "parse_id_number",
    "parse_swipe",
    "parse_track2",
]

CardKind = Literal["magstripe", "ic", "id_card"]

PAN_MIN, PAN_MAX = 12, 19
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"  # indexed by (Σ digit × weight) mod 11
_TRACK2 = re.compile(r";(?P<pan>\d{1,19})=(?P<rest>\d*)\?(?P<lrc>.?)$")
_EMV_TRACK2 = re.compile(r"^(?P<pan>\d{12,19})D(?P<rest>\d*)F?$")


class CardError(ValueError):
    """A reader's line is not a card or ID number the box can use.

    Attributes:
        code: stable reason, e.g. ``bad_checksum``, ``bad_format``.
        message: for the kiosk screen, Chinese. message_en: the same in English.
    """

    code = "bad_card"

    def __init__(self, detail: str, message: str, message_en: str) -> None:
        self.detail, self.message, self.message_en = detail, message, message_en
        super().__init__(detail)


class CardFormatError(CardError):
    """The line is not in any format a card reader sends."""

    code = "bad_format"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, "无法读取卡片,请重新刷卡。",
                         "The card could not be read. Please swipe again.")


class CardChecksumError(CardError):
    """The number has the right shape but its check digit is wrong (a misread or a fake)."""

    code = "bad_checksum"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, "卡号校验错误,请重新刷卡。",
                         "The card number failed its check. Please swipe again.")


@dataclass(frozen=True, slots=True)
class Track2:
    """Track 2 of a magnetic stripe: card number, expiry (YYMM), service code, the rest."""

    pan: str
    expiry: str | None
    service_code: str | None
    discretionary: str


@dataclass(frozen=True, slots=True)
class IdNumber:
    """A resident ID number (公民身份号码), checked."""

    number: str
    region: str  # 6-digit administrative division code, e.g. 410105 (郑州市金水区)
    birth: dt.date
    male: bool


@dataclass(frozen=True, slots=True)
class CardRead:
    """One successful read: what kind of card, and the number the box looks up."""

    kind: CardKind
    number: str  # the PAN, or the 18-character ID number (upper-case X)
    expiry: str | None = None  # YYMM, when the card carries it

    @property
    def masked(self) -> str:
        """The number as logs may show it: first 4 and last 4 characters."""
        n = self.number
        return n[:4] + "*" * (len(n) - 8) + n[-4:] if len(n) > 8 else "****"


# --- checksums --------------------------------------------------------------------------


def luhn_ok(number: str) -> bool:
    """True if the digit string passes the Luhn (mod 10) check of bank card numbers."""
    if not number.isdigit() or not number.isascii():
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def luhn_check_digit(partial: str) -> str:
    """The Luhn check digit to append to ``partial`` (digits only)."""
    if not partial.isdigit() or not partial.isascii():
        raise CardFormatError(f"{partial!r} is not a digit string")
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # every second digit from the right, starting next to the check digit
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str(-total % 10)


def id_check_char(first17: str) -> str:
    """The GB 11643 check character (``0``–``9`` or ``X``) of the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit() or not first17.isascii():
        raise CardFormatError(f"{first17!r} is not 17 digits")
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


# --- parsers ----------------------------------------------------------------------------


def parse_id_number(text: str) -> IdNumber:
    """Check an 18-character resident ID number and split it into its parts.

    Raises:
        CardFormatError: not 17 digits + digit/X, or an impossible birth date.
        CardChecksumError: the check character is wrong.
    """
    s = text.strip().upper()
    if len(s) != 18 or not s[:17].isdigit() or not s.isascii() or s[17] not in "0123456789X":
        raise CardFormatError(f"an ID number is 17 digits and a digit or X, got {len(s)} chars")
    try:
        birth = dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise CardFormatError(f"ID number has no valid birth date ({s[6:14]})") from None
    if birth.year < 1900 or s[:2] == "00":
        raise CardFormatError(f"ID number has an impossible region or year ({s[:6]}, {s[6:10]})")
    expected = id_check_char(s[:17])
    if s[17] != expected:
        raise CardChecksumError(f"ID check character is {s[17]}, expected {expected}")
    return IdNumber(s, s[:6], birth, int(s[16]) % 2 == 1)


def _check_pan(pan: str) -> str:
    if not PAN_MIN <= len(pan) <= PAN_MAX:
        raise CardFormatError(f"a card number has {PAN_MIN}-{PAN_MAX} digits, got {len(pan)}")
    if not luhn_ok(pan):
        raise CardChecksumError(f"card number fails the Luhn check (last digit {pan[-1]})")
    return pan


def _split_rest(pan: str, rest: str) -> Track2:
    expiry = rest[:4] if len(rest) >= 4 else None
    if expiry is not None and not 1 <= int(expiry[2:]) <= 12:
        raise CardFormatError(f"expiry {expiry} is not YYMM")
    service = rest[4:7] if len(rest) >= 7 else None
    return Track2(_check_pan(pan), expiry, service, rest[7:])


def parse_track2(text: str) -> Track2:
    """Parse magnetic-stripe track 2 (``;PAN=YYMMSSS…?``), checking the card number.

    A line holding track 1 before track 2 is accepted; track 2 is the part from ``;``.
    """
    s = text.strip()
    start = s.find(";")
    if start < 0:
        raise CardFormatError("no track 2 start sentinel ';'")
    m = _TRACK2.match(s[start:])
    if m is None:
        raise CardFormatError("track 2 is not ';PAN=YYMM…?'")
    return _split_rest(m["pan"], m["rest"])


def format_track2(pan: str, expiry: str = "", service_code: str = "", discretionary: str = ""
                  ) -> str:
    """Track 2 as a keyboard-emulating reader types it (no LRC)."""
    return f";{pan}={expiry}{service_code}{discretionary}?"


def parse_ic(text: str) -> CardRead:
    """An IC card read: a bare card number, or EMV track-2-equivalent data (``PAN D YYMM…``)."""
    s = text.strip().upper()
    m = _EMV_TRACK2.match(s)
    if m is not None:
        t2 = _split_rest(m["pan"], m["rest"])
        return CardRead("ic", t2.pan, t2.expiry)
    if not s.isdigit() or not s.isascii():
        raise CardFormatError("an IC card number is digits only")
    return CardRead("ic", _check_pan(s))


def parse_swipe(text: str) -> CardRead:
    """Tell what one reader line is and check it.

    Raises:
        CardFormatError: the line is no card or ID number.
        CardChecksumError: a well-formed number whose check digit is wrong.
    """
    s = text.strip()
    if not s:
        raise CardFormatError("empty read")
    if ";" in s or s.startswith("%"):
        t2 = parse_track2(s)
        return CardRead("magstripe", t2.pan, t2.expiry)
    if len(s) == 18 and (s[-1] in "xX" or _looks_like_id(s)):
        return CardRead("id_card", parse_id_number(s).number)
    return parse_ic(s)


def _looks_like_id(s: str) -> bool:
    """An 18-digit line that is a plausible ID (valid birth date) rather than a PAN.

    18-digit bank cards exist too; a line that parses as an ID with a good check
    character, or that fails Luhn but has an ID's shape, is read as an ID.
    """
    try:
        parse_id_number(s)
    except CardChecksumError:
        return not luhn_ok(s)
    except CardFormatError:
        return False
    return True
