"""Appointments (预约, SPEC A6, H2): codes, slots, QR payloads, lookup digests, phone numbers.

Pure: no I/O, no asyncio. The centre makes codes and digests, the box checks them; both
use these functions so that they agree to the byte.

**The code** (验证码, seed document 2.5.3): six digits, the first the time slot, then five
random digits from a CSPRNG; unique per branch and day (the centre's store enforces it)::

    slot ─┐┌──── 5 random digits
          33 9 4 0 7    → slot 3 = 10:00–11:00

**Slots**: slot *n* (1–9) is the hour starting at 07:00 + *n* hours: 1 = 08:00–09:00 …
9 = 16:00–17:00.

**QR payload**: the code with its branch and day, as a link (a phone opens it, a kiosk's
scanner reads it): ``<base>/yy/<branch>/<YYYYMMDD>/<code>``.

**Lookup digests**: ID card and bank card numbers never travel or rest readable where a
digest does the job: ``digest(key, number)`` is HMAC-SHA256. The centre keys its own
lookups with a secret; for each branch and day it derives a key (:func:`branch_day_key`)
that it sends to that branch with the day's bookings, so the box can match a swiped card
without ever receiving the number itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .cards import CardError, IdNumber, parse_id_number

__all__ = [
    "SLOTS",
    "AppointmentFormatError",
    "QrAppointment",
    "Slot",
    "branch_day_key",
    "digest",
    "make_code",
    "mask_number",
    "mask_phone",
    "parse_code",
    "parse_id",
    "parse_phone",
    "parse_qr",
    "qr_payload",
    "redeem_window",
    "slot",
    "slot_of_code",
    "wait_minutes",
]

CODE_RANDOM_DIGITS = 5
_CODE = re.compile(r"^[1-9]\d{5}$")
_QR = re.compile(r"(?:^|/)yy/(?P<branch>\d{4,16})/(?P<day>\d{8})/(?P<code>\d{6})/?$")
_PHONE = re.compile(r"^1[3-9]\d{9}$")


class AppointmentFormatError(ValueError):
    """Input that is not a code, QR payload, phone or ID number.

    ``code`` is stable (``bad_code``, ``bad_qr``, ``bad_phone``, ``bad_id_number``),
    ``message`` is for the customer (Chinese), ``message_en`` the same in English.
    """

    def __init__(self, code: str, message: str, message_en: str) -> None:
        self.code, self.message, self.message_en = code, message, message_en
        super().__init__(f"{code}: {message_en}")


# --- slots -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    """One bookable hour: ``number`` 1–9, ``start``/``end`` as ``HH:MM`` (local time)."""

    number: int
    start: str
    end: str

    @property
    def label(self) -> str:
        return f"{self.start}-{self.end}"


SLOTS: tuple[Slot, ...] = tuple(
    Slot(n, f"{7 + n:02d}:00", f"{8 + n:02d}:00") for n in range(1, 10))


def slot(number: int) -> Slot:
    """Slot ``number`` (1–9); ValueError otherwise."""
    if not 1 <= number <= len(SLOTS):
        raise ValueError(f"slot {number} is not 1..{len(SLOTS)}")
    return SLOTS[number - 1]


def redeem_window(day: str, number: int, tz: ZoneInfo, early_s: float, late_s: float
                  ) -> tuple[float, float]:
    """(first, last) epoch seconds a booking of ``day``/slot may be redeemed: the slot's
    hour widened by ``early_s`` before and ``late_s`` after (the grace)."""
    s = slot(number)
    date = dt.date.fromisoformat(day)
    start = dt.datetime.combine(date, dt.time.fromisoformat(s.start), tz).timestamp()
    end = dt.datetime.combine(date, dt.time.fromisoformat(s.end), tz).timestamp()
    return start - early_s, end + late_s


# --- codes and QR --------------------------------------------------------------------------


def make_code(slot_number: int, randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A new code for ``slot_number``: the slot digit, then five CSPRNG digits.

    Uniqueness per branch-day is the caller's (the centre retries on a clash).
    """
    slot(slot_number)
    return f"{slot_number}{randbelow(10 ** CODE_RANDOM_DIGITS):0{CODE_RANDOM_DIGITS}d}"


def parse_code(text: str) -> str:
    """A typed code, checked: six digits whose first is a slot 1–9."""
    s = text.strip()
    if not _CODE.match(s) or not s.isascii():
        raise AppointmentFormatError("bad_code", "预约码为6位数字,请重新输入。",
                                     "An appointment code is 6 digits; please retry.")
    return s


def slot_of_code(code: str) -> Slot:
    return slot(int(parse_code(code)[0]))


@dataclass(frozen=True, slots=True)
class QrAppointment:
    """What a booking's QR code says: the branch, the day (``YYYY-MM-DD``) and the code."""

    branch: str
    day: str
    code: str


def qr_payload(base_url: str, branch: str, day: str, code: str) -> str:
    """The text of a booking's QR code: ``<base>/yy/<branch>/<YYYYMMDD>/<code>``."""
    return f"{base_url.rstrip('/')}/yy/{branch}/{day.replace('-', '')}/{parse_code(code)}"


def parse_qr(text: str) -> QrAppointment:
    """Read a scanned booking QR (:func:`qr_payload`); whatever precedes ``yy/`` is ignored,
    so a centre moving to another address does not invalidate printed codes."""
    m = _QR.search(text.strip())
    if m is None:
        raise AppointmentFormatError("bad_qr", "无法识别该二维码,请输入预约码。",
                                     "This QR code is not an appointment; type the code.")
    raw = m["day"]
    try:
        day = dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:])).isoformat()
    except ValueError:
        raise AppointmentFormatError("bad_qr", "二维码日期无效。",
                                     "The QR code's date is not valid.") from None
    return QrAppointment(m["branch"], day, parse_code(m["code"]))


# --- personal numbers ----------------------------------------------------------------------


def parse_phone(text: str) -> str:
    """A mainland mobile number (11 digits, 1[3-9]…), with +86 / spaces / dashes removed."""
    s = re.sub(r"[\s\-]", "", text.strip())
    s = s.removeprefix("+86").removeprefix("0086")
    if not _PHONE.match(s) or not s.isascii():
        raise AppointmentFormatError("bad_phone", "手机号码格式不正确。",
                                     "That is not a valid mobile number.")
    return s


def parse_id(text: str) -> IdNumber:
    """A resident ID number checked with GB 11643 (:func:`protocols.cards.parse_id_number`)."""
    try:
        return parse_id_number(text)
    except CardError:
        raise AppointmentFormatError("bad_id_number", "身份证号码无效,请核对后重新输入。",
                                     "The ID number is not valid; please check it.") from None


def mask_number(number: str, head: int = 4, tail: int = 4) -> str:
    """``4101**********2311``: what pages, exports and logs may show of a card or ID."""
    if len(number) <= head + tail:
        return "*" * len(number)
    return number[:head] + "*" * (len(number) - head - tail) + number[-tail:]


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``, ``+8613812345678`` → ``+86*******5678``; a number
    shorter than 8 → ``****`` (what logs, pages and the API show of a phone number)."""
    number = phone.strip()
    if len(number) < 8:
        return "****"
    return mask_number(number, 3, 4)


def digest(key: bytes, value: str) -> str:
    """The lookup digest of a personal number (HMAC-SHA256, hex, 32 characters)."""
    return hmac.new(key, value.strip().upper().encode(), hashlib.sha256).hexdigest()[:32]


def branch_day_key(master: bytes, branch: str, day: str) -> bytes:
    """The key a branch gets for one day's card digests (derived; never the master)."""
    return hmac.new(master, f"paidui-appointments|{branch}|{day}".encode(),
                    hashlib.sha256).digest()


# --- waiting -------------------------------------------------------------------------------


def wait_minutes(ahead: int, service_minutes: float, windows_open: int) -> int:
    """"About N minutes": those ahead times the business's typical handling time, shared by
    the windows open for it (at least one: a closed business still has a wait)."""
    if ahead <= 0:
        return 0
    return math.ceil(ahead * service_minutes / max(1, windows_open))
