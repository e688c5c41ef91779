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

**Day lists** (``cmd/appointments``, :func:`parse_day_list`, :func:`day_list`): a branch-day's
bookings at a revision of the centre's, either *full* (every live booking: a booking not in
it is not valid) or a *delta* since a revision ``base`` the box acknowledged (the bookings
added or changed since, and the ids of those removed)::

    full   {"day", "revision", "key", "early_s", "late_s", "bookings": [...]}
    delta  {... "base": R, "bookings": [added or changed], "removed": [ids]}   R < revision

A box that takes deltas says so in each answer (``"deltas":`` :data:`DELTAS`); the centre
sends one only to such a box. The box applies a delta only on top of a revision from
``base`` up (the changes since ``base`` include those since any later revision), else it
answers ``need_full`` with the revision it holds and the centre sends the full list.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from .cards import CardError, IdNumber, parse_id_number

__all__ = [
    "DELTAS",
    "SLOTS",
    "AppointmentFormatError",
    "DayList",
    "DayListError",
    "ListedBooking",
    "QrAppointment",
    "Slot",
    "branch_day_key",
    "day_list",
    "digest",
    "make_code",
    "mask_number",
    "mask_phone",
    "parse_code",
    "parse_day_list",
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
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_BOOKING_ID = re.compile(r"^[0-9A-Za-z_-]{1,40}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_]{1,16}$")
_CUSTOMER_TYPE = re.compile(r"^[a-z0-9_]{1,32}$")  # as the CIF's (protocols/cif.py)
DELTAS = 1  # the delta format a box takes (it says so in its answer to each list)
MAX_LISTED = 100_000  # bookings or removed ids one list may carry (the box's own bound is lower)


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


# --- day lists (cmd/appointments) ------------------------------------------------------------


class DayListError(ValueError):
    """A day list that is not one: ``where`` names the field (``bookings.3``, ``base`` …)."""

    def __init__(self, where: str, problem: str) -> None:
        self.where, self.problem = where, problem
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class ListedBooking:
    """One booking as a day list carries it: no name, no readable ID or card number.

    ``state`` is ``booked``; ``cancelled`` only in lists of centres from before deltas,
    which sent cancelled bookings along (a new centre leaves them out or lists their ids
    in a delta's ``removed``)."""

    id: str
    code: str
    queue: str
    slot: int
    state: str = "booked"
    id_digest: str | None = None
    card_digest: str | None = None
    # who the customer is, as the centre's CIF said at booking (None: not known; the box's
    # redemption then ranks the ticket as its business's customers): docs/integrations.md
    customer_type: str | None = None
    stars: int = 0

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.id, "code": self.code, "queue": self.queue,
                                "slot": self.slot, "state": self.state}
        for name in ("id_digest", "card_digest"):
            if getattr(self, name) is not None:
                item[name] = getattr(self, name)
        if self.customer_type is not None:
            item["customer"] = {"type": self.customer_type, "stars": self.stars}
        return item


@dataclass(frozen=True, slots=True)
class DayList:
    """A branch-day's bookings at ``revision``: full (``base`` None) or a delta since
    ``base`` (``bookings`` added or changed, ``removed`` ids)."""

    day: str
    revision: int
    key: bytes
    bookings: tuple[ListedBooking, ...]
    early_s: float = 30 * 60.0
    late_s: float = 15 * 60.0
    base: int | None = None
    removed: tuple[str, ...] = ()

    @property
    def delta(self) -> bool:
        return self.base is not None


def day_list(lst: DayList) -> dict[str, Any]:
    """The fields of a ``cmd/appointments`` message for ``lst`` (without ``v``/``id``)."""
    msg: dict[str, Any] = {"day": lst.day, "revision": lst.revision, "key": lst.key.hex(),
                           "bookings": [b.to_json() for b in lst.bookings],
                           "early_s": lst.early_s, "late_s": lst.late_s}
    if lst.base is not None:
        msg["base"] = lst.base
        msg["removed"] = list(lst.removed)
    return msg


def parse_day_list(msg: Mapping[str, Any]) -> DayList:
    """A ``cmd/appointments`` message → :class:`DayList`, every field checked.

    Raises :class:`DayListError` naming the first bad field (``bookings.3`` …): never
    anything else, whatever the message holds.
    """
    if not isinstance(msg, Mapping):
        raise DayListError("", "expected an object")
    day = _field(msg, "day", str)
    if not _DAY.match(day):
        raise DayListError("day", f"{day[:20]!r} is not YYYY-MM-DD")
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        raise DayListError("day", f"{day!r} is not a date") from None
    revision = _count(msg, "revision", low=1)
    key = _field(msg, "key", str)
    if not _KEY.match(key):
        raise DayListError("key", "expected 64 hex digits")
    base = _count(msg, "base", low=1) if msg.get("base") is not None else None
    if base is not None and base >= revision:
        raise DayListError("base", f"{base} is not below the revision {revision}")
    raw = _items(msg, "bookings")
    bookings = tuple(_listed(i, item) for i, item in enumerate(raw))
    removed: tuple[str, ...] = ()
    if base is not None:
        removed = tuple(_removed(i, item) for i, item in enumerate(_items(msg, "removed")))
    elif msg.get("removed"):
        raise DayListError("removed", "only a delta (with base) removes")
    if len({b.id for b in bookings}) != len(bookings):
        raise DayListError("bookings", "a booking is listed twice")
    if len({b.code for b in bookings if b.state == "booked"}) != \
            sum(1 for b in bookings if b.state == "booked"):
        raise DayListError("bookings", "two bookings share a code")
    return DayList(day, revision, bytes.fromhex(key), bookings,
                   _seconds(msg, "early_s", 30 * 60.0), _seconds(msg, "late_s", 15 * 60.0),
                   base, removed)


def _field(msg: Mapping[str, Any], name: str, kind: type) -> Any:
    value = msg.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DayListError(name, f"expected {kind.__name__}")
    return value


def _count(msg: Mapping[str, Any], name: str, low: int) -> int:
    value = _field(msg, name, int)
    if not low <= value < 2 ** 63:
        raise DayListError(name, f"{value} is out of range")
    return int(value)


def _seconds(msg: Mapping[str, Any], name: str, default: float) -> float:
    value = msg.get(name, default)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or \
            not 0 <= value <= 86400:
        raise DayListError(name, "expected seconds, 0..86400")
    return float(value)


def _items(msg: Mapping[str, Any], name: str) -> list[Any]:
    value = msg.get(name, [])
    if not isinstance(value, list):
        raise DayListError(name, "expected a list")
    if len(value) > MAX_LISTED:
        raise DayListError(name, f"more than {MAX_LISTED}")
    return value


def _removed(i: int, item: Any) -> str:
    if not isinstance(item, str) or not _BOOKING_ID.match(item):
        raise DayListError(f"removed.{i}", "not a booking id")
    return item


def _listed(i: int, raw: Any) -> ListedBooking:
    where = f"bookings.{i}"
    if not isinstance(raw, Mapping):
        raise DayListError(where, "expected an object")
    values = {}
    for name, pattern in (("id", _BOOKING_ID), ("code", _CODE), ("queue", _QUEUE)):
        value = raw.get(name)
        if not isinstance(value, str) or not value.isascii() or not pattern.match(value):
            raise DayListError(f"{where}.{name}", "missing or not well formed")
        values[name] = value
    number = raw.get("slot")
    if not isinstance(number, int) or isinstance(number, bool) or \
            number != int(values["code"][0]):
        raise DayListError(f"{where}.slot", f"not the slot of code {values['code']}")
    state = raw.get("state", "booked")
    if state not in ("booked", "cancelled"):
        raise DayListError(f"{where}.state", f"{str(state)[:20]!r}")
    digests = []
    for name in ("id_digest", "card_digest"):
        d = raw.get(name)
        if d is not None and not (isinstance(d, str) and _HEX32.match(d)):
            raise DayListError(f"{where}.{name}", "a digest is 32 hex characters")
        digests.append(d)
    ctype, stars = _customer(where, raw.get("customer"))
    return ListedBooking(values["id"], values["code"], values["queue"], number, state,
                         digests[0], digests[1], ctype, stars)


def _customer(where: str, raw: Any) -> tuple[str | None, int]:
    """A listed booking's optional ``customer``: ``{"type": "vip", "stars": 0-7}``."""
    if raw is None:
        return None, 0
    if not isinstance(raw, Mapping):
        raise DayListError(f"{where}.customer", "expected an object")
    ctype, stars = raw.get("type"), raw.get("stars", 0)
    if not isinstance(ctype, str) or not ctype.isascii() or not _CUSTOMER_TYPE.match(ctype):
        raise DayListError(f"{where}.customer.type", "a customer type id (a-z, 0-9, _)")
    if type(stars) is not int or not 0 <= stars <= 7:
        raise DayListError(f"{where}.customer.stars", "an integer 0-7")
    return ctype, stars
