"""The CRM/CIF customer lookup's wire format (SPEC I1): pure, no I/O.

Shared by the box's adapter (:mod:`common.cif`), the simulated CIF (:mod:`sim.cif`) and,
should it need one, the centre. Everything is JSON over HTTP, signed with HMAC-SHA256
(docs/integrations.md, "CRM / CIF customer lookup")::

    POST /customers/lookup   {"kind": "card", "number": "6225880137001237", "branch": "0101"}
      200 {"found": true, "customer": {"id": "C000123", "type": "vip", "stars": 5,
           "name": "陈明", "gender": "M", "business": "V",
           "manager": {"id": "M07", "name": "王芳", "phone": "13800138000",
                       "terminal": "lobby1"}}}
      200 {"found": false}
    POST /notifications      {"type": "vip_arrival", "id": "20261207-V003", …}
      200/202/204

Signature headers: ``X-Paidui-Key`` (the key's id), ``X-Paidui-Timestamp`` (Unix
seconds), ``X-Paidui-Signature``: hex HMAC-SHA256 under the shared secret of
``"{timestamp}\\n{METHOD}\\n{path}\\n"`` followed by the body's bytes. A receiver refuses a
timestamp more than :data:`SKEW_S` away from its clock.

The customer's name never leaves this module whole: :class:`CustomerInfo` holds only its
display form (surname + 先生/女士, as the VIP table writes it: 陈先生).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "KINDS",
    "LOOKUP_PATH",
    "MAX_BODY",
    "NOTICE_PATH",
    "SKEW_S",
    "AccountManager",
    "CifError",
    "CustomerInfo",
    "Kind",
    "customer_json",
    "display_name",
    "encode_lookup",
    "encode_notice",
    "parse_lookup",
    "parse_lookup_answer",
    "parse_notice",
    "sign",
    "signed_headers",
    "verify",
]

Kind = Literal["card", "id"]
KINDS: tuple[Kind, ...] = ("card", "id")
LOOKUP_PATH = "/customers/lookup"
NOTICE_PATH = "/notifications"
MAX_BODY = 16 * 1024  # an answer or a request longer than this is refused unread
SKEW_S = 300  # a signature's timestamp may be this far from the receiver's clock

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_TYPE = re.compile(r"^[a-z0-9_]{1,32}$")
_NUMBER = re.compile(r"^[0-9]{11,19}X?$")


class CifError(ValueError):
    """A request or an answer that is not the documented JSON (the message says what)."""


@dataclass(frozen=True, slots=True)
class AccountManager:
    """A customer's account manager (客户经理): who to tell that the customer came."""

    id: str
    name: str
    phone: str = ""  # a work phone; logged masked only
    terminal: str = ""  # the lobby terminal or screen that should show the arrival


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    """Who the customer is, as the box may use it (SPEC I1).

    ``name`` is the display form only (陈先生); ``queue`` the preferred business (None:
    the card type's); ``stars`` 0–7; ``customer_type`` the CIF's type id (the box maps an
    id it does not know to its card type's).
    """

    id: str
    customer_type: str
    stars: int
    name: str
    queue: str | None = None
    manager: AccountManager | None = None


def display_name(name: str, gender: str = "") -> str:
    """陈明, M → 陈先生; 李娜, F → 李女士; no gender → 陈** (the surname and stars)."""
    name = name.strip()
    if not name:
        return ""
    surname = name[:2] if name[:2] in _COMPOUND else name[:1]
    if not _is_han(surname):
        return name[:1] + "**"
    return surname + {"M": "先生", "F": "女士"}.get(gender, "**")


_COMPOUND = frozenset({"欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容",
                       "令狐", "夏侯", "长孙", "宇文", "司徒", "端木", "南宫"})


def _is_han(s: str) -> bool:
    return all("\u4e00" <= ch <= "\u9fff" for ch in s)


# --- requests ------------------------------------------------------------------------------


def encode_lookup(kind: Kind, number: str, branch: str) -> bytes:
    """The body of ``POST /customers/lookup``."""
    return json.dumps({"kind": kind, "number": number, "branch": branch},
                      ensure_ascii=False).encode()


def parse_lookup(body: bytes) -> tuple[Kind, str, str]:
    """(kind, number, branch) of a lookup request (the simulated CIF's side)."""
    obj = _object(body)
    kind, number, branch = obj.get("kind"), obj.get("number"), obj.get("branch", "")
    if kind not in KINDS:
        raise CifError("kind: 'card' or 'id'")
    if not isinstance(number, str) or not _NUMBER.match(number):
        raise CifError("number: 11-19 digits (an ID number may end in X)")
    if not isinstance(branch, str) or len(branch) > 32:
        raise CifError("branch: a string")
    return kind, number, branch


# --- answers -------------------------------------------------------------------------------


def customer_json(record: dict[str, Any] | None) -> bytes:
    """The answer to a lookup: ``record`` (a CIF customer as the JSON spells it) or, for
    None, not found."""
    if record is None:
        return b'{"found": false}'
    return json.dumps({"found": True, "customer": record}, ensure_ascii=False).encode()


def parse_lookup_answer(body: bytes) -> CustomerInfo | None:
    """The customer in a lookup's answer (None: not found). Raises :class:`CifError` on
    anything else, never another exception."""
    obj = _object(body)
    found = obj.get("found")
    if found is False:
        return None
    if found is not True:
        raise CifError("found: true or false")
    c = obj.get("customer")
    if not isinstance(c, dict):
        raise CifError("customer: an object")
    stars = c.get("stars", 0)
    if type(stars) is not int or not 0 <= stars <= 7:
        raise CifError("customer.stars: an integer 0-7")
    gender = c.get("gender", "")
    if gender not in ("M", "F", "", None):
        raise CifError("customer.gender: 'M', 'F' or absent")
    business = c.get("business")
    if business is not None and not (isinstance(business, str) and _ID.match(business)):
        raise CifError("customer.business: a queue id")
    m = c.get("manager")
    manager = None
    if m is not None:
        if not isinstance(m, dict):
            raise CifError("customer.manager: an object")
        manager = AccountManager(_id(m, "id", "customer.manager.id"),
                                 _text(m, "name", "customer.manager.name", required=True),
                                 _text(m, "phone", "customer.manager.phone"),
                                 _text(m, "terminal", "customer.manager.terminal"))
    ctype = c.get("type", "normal")
    if not isinstance(ctype, str) or not _TYPE.match(ctype):
        raise CifError("customer.type: a type id (a-z, 0-9, _)")
    return CustomerInfo(
        id=_id(c, "id", "customer.id"), customer_type=ctype, stars=stars,
        name=display_name(_text(c, "name", "customer.name"), gender or ""),
        queue=business, manager=manager,
    )


# --- notifications -------------------------------------------------------------------------


def encode_notice(notice: dict[str, Any]) -> bytes:
    """The body of ``POST /notifications`` (a VIP's arrival for their account manager)."""
    return json.dumps(notice, ensure_ascii=False, sort_keys=True).encode()


def parse_notice(body: bytes) -> dict[str, Any]:
    """A notification as the CRM receives it (the simulated CIF's side)."""
    obj = _object(body)
    if obj.get("type") != "vip_arrival":
        raise CifError("type: 'vip_arrival'")
    for key in ("id", "branch", "ticket", "manager"):
        _id(obj, key, key)
    return obj


# --- signatures ------------------------------------------------------------------------------


def sign(secret: bytes, timestamp: int, method: str, path: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}\\n{METHOD}\\n{path}\\n" + body``."""
    head = f"{timestamp}\n{method.upper()}\n{path}\n".encode()
    return hmac.new(secret, head + body, hashlib.sha256).hexdigest()


def signed_headers(key_id: str, secret: bytes, now: float, method: str, path: str,
                   body: bytes) -> dict[str, str]:
    """The headers a request carries (the timestamp is ``now``, whole seconds)."""
    ts = int(now)
    return {"Content-Type": "application/json; charset=utf-8", "X-Paidui-Key": key_id,
            "X-Paidui-Timestamp": str(ts),
            "X-Paidui-Signature": sign(secret, ts, method, path, body)}


def verify(headers: dict[str, str], keys: dict[str, bytes], now: float, method: str,
           path: str, body: bytes) -> str | None:
    """Why a request's signature is refused (``unknown_key``, ``stale``, ``bad_signature``),
    or None when it is good. ``headers`` with lower-case names."""
    secret = keys.get(headers.get("x-paidui-key", ""))
    if secret is None:
        return "unknown_key"
    try:
        ts = int(headers.get("x-paidui-timestamp", ""))
    except ValueError:
        return "stale"
    if abs(now - ts) > SKEW_S:
        return "stale"
    good = sign(secret, ts, method, path, body)
    if not hmac.compare_digest(good, headers.get("x-paidui-signature", "")):
        return "bad_signature"
    return None


# --- helpers ---------------------------------------------------------------------------------


def _object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise CifError(f"longer than {MAX_BODY} bytes")
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CifError("not JSON") from None
    if not isinstance(obj, dict):
        raise CifError("not a JSON object")
    return obj


def _id(obj: dict[str, Any], key: str, where: str) -> str:
    v = obj.get(key)
    if not isinstance(v, str) or not _ID.match(v):
        raise CifError(f"{where}: 1-64 letters, digits or _.:-")
    return v


def _text(obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    v = obj.get(key, "")
    if v is None and not required:
        return ""
    if not isinstance(v, str) or len(v) > 64 or (required and not v.strip()):
        raise CifError(f"{where}: a string of at most 64 characters")
    return v
