"""Caller keypad keys (呼叫器按键) and what a key report means, for both bus profiles.

A keypad reports one thing at a time: the digits the teller typed, then the key that
ends them. A 68-frame keypad sends them as a ``0x01`` frame, a Modbus keypad holds them in
its key registers; both use these codes. ``*`` marks the keys this project adds to the
installed base's set (docs/rs485.md explains why)::

    key    code  digits typed first            meaning
    评价    0x0B  —                             finish and ask the customer to rate
    呼叫    0x0C  —                             call next (finishes the current customer)
    重呼    0x0D  —                             recall the current number
    *      0x0E  (separator inside digits)     between teller code and password
    确认    0x0F  6                             no-show (弃号)
                 0                             hold (挂起)
                 3 [number]                    call back the held ticket, or that number
    登入*   0x10  teller code, 0x0E, password   log in
    登出*   0x11  —                             log out (display shows 暂停服务)
    暂停    0x12  —                             pause; pressed when paused: resume
    转移    0x13  target window                 transfer the current ticket there
    恢复*   0x14  —                             resume after a pause
    办结*   0x15  —                             finish without asking for a rating
    插前*   0x16  ticket number digits          insert that waiting ticket at the front

Ticket numbers are typed as their digits only (a keypad has no letters): ``A023`` is typed
``0 2 3`` or ``2 3``; the box resolves the digits to today's ticket.

Pure: no I/O, nothing beyond the language.
"""

from __future__ import annotations

from .errors import KeySequenceError

__all__ = [
    "ACTIONS",
    "CONFIRM_CALL_BACK",
    "CONFIRM_HOLD",
    "CONFIRM_NO_SHOW",
    "KEY_CALL",
    "KEY_CONFIRM",
    "KEY_FINISH",
    "KEY_FRONT",
    "KEY_LOGIN",
    "KEY_LOGOUT",
    "KEY_NAMES",
    "KEY_PAUSE",
    "KEY_RATE",
    "KEY_RECALL",
    "KEY_RESUME",
    "KEY_SEPARATOR",
    "KEY_TRANSFER",
    "MAX_DIGITS",
    "KeyAction",
    "key_sequence",
    "parse_keys",
]

KEY_RATE = 0x0B
KEY_CALL = 0x0C
KEY_RECALL = 0x0D
KEY_SEPARATOR = 0x0E
KEY_CONFIRM = 0x0F
KEY_LOGIN = 0x10
KEY_LOGOUT = 0x11
KEY_PAUSE = 0x12
KEY_TRANSFER = 0x13
KEY_RESUME = 0x14
KEY_FINISH = 0x15
KEY_FRONT = 0x16

KEY_NAMES = {
    KEY_RATE: "评价",
    KEY_CALL: "呼叫",
    KEY_RECALL: "重呼",
    KEY_CONFIRM: "确认",
    KEY_LOGIN: "登入",
    KEY_LOGOUT: "登出",
    KEY_PAUSE: "暂停",
    KEY_TRANSFER: "转移",
    KEY_RESUME: "恢复",
    KEY_FINISH: "办结",
    KEY_FRONT: "插前",
}

CONFIRM_NO_SHOW = 6
CONFIRM_HOLD = 0
CONFIRM_CALL_BACK = 3

MAX_DIGITS = 16  # symbols a keypad keeps before a key (also what Modbus key registers hold)

_PLAIN = {
    KEY_RATE: "rate",
    KEY_CALL: "call_next",
    KEY_RECALL: "recall",
    KEY_LOGOUT: "logout",
    KEY_PAUSE: "pause",
    KEY_RESUME: "resume",
    KEY_FINISH: "finish",
}
_CONFIRM = {CONFIRM_NO_SHOW: "no_show", CONFIRM_HOLD: "hold", CONFIRM_CALL_BACK: "call_back"}

ACTIONS = (
    "call_next", "recall", "rate", "finish", "pause", "resume", "transfer", "no_show",
    "hold", "call_back", "login", "logout", "insert_front",
)


class KeyAction:
    """What the teller asked for: ``name`` (one of :data:`ACTIONS`) and its typed digits.

    ``arg`` is the target window (transfer), the teller code (login) or a ticket number's
    digits (call back, insert front), as typed; ``password`` only for login.
    """

    __slots__ = ("arg", "name", "password")

    def __init__(self, name: str, arg: str = "", password: str = "") -> None:
        self.name = name
        self.arg = arg
        self.password = password

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, KeyAction)
            and (self.name, self.arg, self.password) == (other.name, other.arg, other.password)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.arg, self.password))

    def __repr__(self) -> str:
        secret = ", password=***" if self.password else ""
        return f"KeyAction({self.name!r}, arg={self.arg!r}{secret})"


def parse_keys(key: int, digits: bytes) -> KeyAction:
    """The action a key report asks for. Raises :class:`KeySequenceError` if it makes none."""
    if len(digits) > MAX_DIGITS:
        raise KeySequenceError(key, f"more than {MAX_DIGITS} digits")
    if key in _PLAIN:
        if digits:
            raise KeySequenceError(key, "takes no digits")
        return KeyAction(_PLAIN[key])
    if key == KEY_TRANSFER:
        return KeyAction("transfer", _number(key, digits, 3, "target window"))
    if key == KEY_CONFIRM:
        return _confirm(digits)
    if key == KEY_LOGIN:
        return _login(digits)
    if key == KEY_FRONT:
        return KeyAction("insert_front", _number(key, digits, 6, "ticket number"))
    raise KeySequenceError(key, "unknown key")


def key_sequence(action: KeyAction) -> tuple[int, bytes]:
    """The key and digits a teller types for ``action`` (the inverse of :func:`parse_keys`)."""
    for key, name in _PLAIN.items():
        if name == action.name:
            return key, b""
    typed = _typed(action.arg)
    if action.name == "transfer":
        return KEY_TRANSFER, typed
    if action.name == "insert_front":
        return KEY_FRONT, typed
    if action.name == "login":
        return KEY_LOGIN, typed + bytes([KEY_SEPARATOR]) + _typed(action.password)
    for selector, name in _CONFIRM.items():
        if name == action.name:
            return KEY_CONFIRM, bytes([selector]) + typed
    raise KeySequenceError(0, f"no keys for action {action.name!r}")


def _typed(text: str) -> bytes:
    return bytes(ord(ch) - 48 for ch in text)


def _text(key: int, digits: bytes) -> str:
    for d in digits:
        if d > 9:
            raise KeySequenceError(key, f"0x{d:02X} is not a digit")
    return "".join(chr(48 + d) for d in digits)


def _number(key: int, digits: bytes, most: int, what: str) -> str:
    if not digits:
        raise KeySequenceError(key, f"type the {what} first")
    if len(digits) > most:
        raise KeySequenceError(key, f"a {what} has at most {most} digits")
    return _text(key, digits)


def _confirm(digits: bytes) -> KeyAction:
    if not digits or digits[0] not in _CONFIRM:
        raise KeySequenceError(KEY_CONFIRM, "type 6 (no-show), 0 (hold) or 3 (call back) first")
    name = _CONFIRM[digits[0]]
    rest = digits[1:]
    if name != "call_back" and rest:
        raise KeySequenceError(KEY_CONFIRM, f"{name} takes no further digits")
    if len(rest) > 6:
        raise KeySequenceError(KEY_CONFIRM, "a ticket number has at most 6 digits")
    return KeyAction(name, _text(KEY_CONFIRM, rest))


def _login(digits: bytes) -> KeyAction:
    parts = bytes(digits).split(bytes([KEY_SEPARATOR]))
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise KeySequenceError(KEY_LOGIN, "type teller code, *, password")
    code = _number(KEY_LOGIN, parts[0], 6, "teller code")
    return KeyAction("login", code, _text(KEY_LOGIN, parts[1]))
