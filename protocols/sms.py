"""Short-message commands (短信指令, SPEC H4), in the spirit of the operator's list.

The seed's fourth document lists codes like ``CXHF`` (查询话费), ``QXQL10`` (取消情侣号码),
``CXHF+空格+月份``: pinyin initials of the verb and the object, arguments after a space.
Ours follow the same pattern::

    CXPD <网点>                       查询排队   queue status of a branch
    YY <网点> <业务> <时段> [<日期>]   预约       book (时段 1–9; 日期 MMDD, default the
                                                 first day the slot is still to come)
    CXYY                              查询预约   my bookings
    QXYY <预约码>                     取消预约   cancel a booking by its code
    ZC <姓名> <身份证号>               注册       register this phone (gender from the ID)
    PJ [<号码>] <分数>                 评价       rate today's service of a ticket this phone
                                                 was told about (H6: the "called" SMS says
                                                 how); 号码 e.g. A012, default the latest
    BZ                                帮助       the command list

``<网点>`` is the branch code (e.g. ``1001010001``), ``<业务>`` a business letter (``A``).
Full-width letters, digits and spaces (全角) count as their ASCII selves; separators may be
spaces, ``+`` (as the operator's list writes "空格"), commas or ``#``; letters in any case.
Digits are ASCII ``0-9`` only (after that folding): ``١٢`` or ``፩`` are not numbers here.
Anything else parses to :class:`Help` with the problem, so it gets the short help reply;
the problem quotes the unknown verb with its control and format characters left out.

Pure: no I/O. :func:`split` cuts a reply into messages of at most ``limit`` characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "HELP",
    "Book",
    "Cancel",
    "Help",
    "MyBookings",
    "QueueStatus",
    "Rate",
    "Register",
    "SmsCommand",
    "parse",
    "shown",
    "split",
]

HELP = ("排队短信指令:CXPD 网点号 查排队;YY 网点号 业务 时段(1=8点…9=16点) 预约;"
        "CXYY 查预约;QXYY 预约码 取消;ZC 姓名 身份证号 注册;PJ 分数 评价;BZ 帮助")

_SEPARATORS = re.compile(r"[\s+,，#＃、;；]+")
_BRANCH = re.compile(r"[0-9]{4,16}")  # ASCII only, matched whole (fullmatch)
_QUEUE = re.compile(r"[A-Z0-9_]{1,16}")
_SLOT = re.compile(r"[1-9]")
_DATE = re.compile(r"([0-9]{2})([0-9]{2})")
_CODE = re.compile(r"[1-9][0-9]{5}")
_ID = re.compile(r"[0-9]{17}[0-9X]")
_NUMBER = re.compile(r"[A-Z]{0,3}[0-9]{1,6}")  # a ticket number as printed (A012)
_SCORE = re.compile(r"[1-9]")


@dataclass(frozen=True, slots=True)
class QueueStatus:
    branch: str


@dataclass(frozen=True, slots=True)
class Book:
    branch: str
    queue: str
    slot: int
    month_day: tuple[int, int] | None = None  # (month, day), None: the next such slot


@dataclass(frozen=True, slots=True)
class MyBookings:
    pass


@dataclass(frozen=True, slots=True)
class Cancel:
    code: str


@dataclass(frozen=True, slots=True)
class Register:
    name: str
    id_number: str


@dataclass(frozen=True, slots=True)
class Rate:
    """A score for today's service of ``number`` (None: the latest this phone was called
    for); the branch's rating levels decide which scores exist."""

    score: int
    number: str | None = None


@dataclass(frozen=True, slots=True)
class Help:
    """The help reply; ``problem`` says what was wrong with the message (None: asked for)."""

    problem: str | None = None


SmsCommand = QueueStatus | Book | MyBookings | Cancel | Register | Rate | Help


def normalise(text: str) -> list[str]:
    """Full-width to ASCII, upper case, split on the separators."""
    s = unicodedata.normalize("NFKC", text).upper().strip()
    return [w for w in _SEPARATORS.split(s) if w]


def parse(text: str) -> SmsCommand:
    """One received message → a command; anything unreadable → :class:`Help` (with why)."""
    words = normalise(text[:500])
    if not words:
        return Help("空短信")
    verb, args = words[0], words[1:]
    handler = _VERBS.get(verb)
    if handler is None:
        return Help(f"未知指令{shown(verb)[:10]}")
    return handler(args)


def _status(args: list[str]) -> SmsCommand:
    if len(args) != 1 or not _BRANCH.fullmatch(args[0]):
        return Help("格式:CXPD 网点号")
    return QueueStatus(args[0])


def _book(args: list[str]) -> SmsCommand:
    usage = Help("格式:YY 网点号 业务 时段(1-9) [日期MMDD]")
    if len(args) not in (3, 4) or not _BRANCH.fullmatch(args[0]) \
            or not _QUEUE.fullmatch(args[1]) or not _SLOT.fullmatch(args[2]):
        return usage
    month_day = None
    if len(args) == 4:
        m = _DATE.fullmatch(args[3])
        if m is None or not (1 <= int(m[1]) <= 12 and 1 <= int(m[2]) <= 31):
            return usage
        month_day = (int(m[1]), int(m[2]))
    return Book(args[0], args[1], int(args[2]), month_day)


def _mine(args: list[str]) -> SmsCommand:
    return MyBookings() if not args else Help("格式:CXYY")


def _cancel(args: list[str]) -> SmsCommand:
    if len(args) != 1 or not _CODE.fullmatch(args[0]):
        return Help("格式:QXYY 6位预约码")
    return Cancel(args[0])


def _register(args: list[str]) -> SmsCommand:
    if len(args) != 2 or not _ID.fullmatch(args[1]) or not 1 <= len(args[0]) <= 20:
        return Help("格式:ZC 姓名 身份证号")
    return Register(args[0], args[1])


def shown(text: str) -> str:
    """``text`` without control, format or separator characters (categories C*, Zl, Zp):
    what a reply may quote of what a stranger sent."""
    return "".join(ch for ch in text
                   if unicodedata.category(ch)[0] != "C" and unicodedata.category(ch)
                   not in ("Zl", "Zp"))


def _rate(args: list[str]) -> SmsCommand:
    usage = Help("格式:PJ 分数(如PJ 5),或PJ 号码 分数")
    if len(args) == 1 and _SCORE.fullmatch(args[0]):
        return Rate(int(args[0]))
    if len(args) == 2 and _NUMBER.fullmatch(args[0]) and _SCORE.fullmatch(args[1]):
        return Rate(int(args[1]), args[0])
    return usage


def _help(args: list[str]) -> SmsCommand:
    return Help()


_VERBS = {"CXPD": _status, "YY": _book, "CXYY": _mine, "QXYY": _cancel, "ZC": _register,
          "PJ": _rate, "BZ": _help, "HELP": _help, "?": _help}


def split(text: str, limit: int = 70) -> list[str]:
    """A reply as messages of at most ``limit`` characters, cut after punctuation where
    possible, numbered ``(1/3)`` when there are several."""
    if len(text) <= limit:
        return [text]
    room = limit - 6  # "(1/9)" and a little air
    parts, rest = [], text
    while rest:
        if len(rest) <= room:
            parts.append(rest)
            break
        cut = max(rest.rfind(p, 0, room) for p in "；;。，,\n ")
        cut = cut + 1 if cut >= room // 2 else room
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    return [f"({i}/{len(parts)}){p}" for i, p in enumerate(parts, 1)]
