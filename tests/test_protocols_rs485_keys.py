"""What a keypad's digits-then-key report asks for (both profiles share the key codes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.rs485 import KeySequenceError
from protocols.rs485 import keys as k
from protocols.rs485.keys import KeyAction, key_sequence, parse_keys

SEP = k.KEY_SEPARATOR

TABLE = [
    (k.KEY_CALL, b"", KeyAction("call_next")),
    (k.KEY_RECALL, b"", KeyAction("recall")),
    (k.KEY_RATE, b"", KeyAction("rate")),
    (k.KEY_PAUSE, b"", KeyAction("pause")),
    (k.KEY_RESUME, b"", KeyAction("resume")),
    (k.KEY_FINISH, b"", KeyAction("finish")),
    (k.KEY_LOGOUT, b"", KeyAction("logout")),
    (k.KEY_TRANSFER, bytes([5]), KeyAction("transfer", "5")),
    (k.KEY_TRANSFER, bytes([1, 2]), KeyAction("transfer", "12")),
    (k.KEY_CONFIRM, bytes([6]), KeyAction("no_show")),
    (k.KEY_CONFIRM, bytes([0]), KeyAction("hold")),
    (k.KEY_CONFIRM, bytes([3]), KeyAction("call_back")),
    (k.KEY_CONFIRM, bytes([3, 0, 2, 3]), KeyAction("call_back", "023")),
    (k.KEY_LOGIN, bytes([1, SEP, 1, 2, 3, 4]), KeyAction("login", "1", "1234")),
    (k.KEY_FRONT, bytes([2, 3]), KeyAction("insert_front", "23")),
]


@pytest.mark.parametrize(("key", "digits", "action"), TABLE)
def test_key_reports_mean_actions(key: int, digits: bytes, action: KeyAction) -> None:
    assert parse_keys(key, digits) == action
    assert key_sequence(action) == (key, digits)


@pytest.mark.parametrize(("key", "digits"), [
    (k.KEY_CALL, bytes([1])),  # call takes no digits
    (k.KEY_TRANSFER, b""),  # transfer to where?
    (k.KEY_TRANSFER, bytes([1, 2, 3, 4])),
    (k.KEY_CONFIRM, b""),
    (k.KEY_CONFIRM, bytes([7])),  # 7 means nothing
    (k.KEY_CONFIRM, bytes([6, 1])),  # no-show takes nothing more
    (k.KEY_CONFIRM, bytes([3, 1, 2, 3, 4, 5, 6, 7])),
    (k.KEY_LOGIN, bytes([1, 2, 3, 4])),  # no separator
    (k.KEY_LOGIN, bytes([SEP, 1, 2])),  # no code
    (k.KEY_LOGIN, bytes([1, SEP])),  # no password
    (k.KEY_LOGIN, bytes([1, SEP, 2, SEP, 3])),
    (k.KEY_FRONT, bytes([SEP])),
    (k.KEY_TRANSFER, bytes([0x0C])),
    (0x30, b""),  # not a key
    (k.KEY_CALL, bytes(17)),
])
def test_nonsense_is_refused_with_a_reason(key: int, digits: bytes) -> None:
    with pytest.raises(KeySequenceError) as err:
        parse_keys(key, digits)
    assert err.value.key == key
    assert err.value.problem


def test_passwords_do_not_show_in_logs() -> None:
    assert "1234" not in repr(KeyAction("login", "1", "1234"))


def test_every_action_has_keys() -> None:
    for name in k.ACTIONS:
        action = KeyAction(name, "12" if name in ("transfer", "insert_front", "login") else "",
                           "99" if name == "login" else "")
        key, digits = key_sequence(action)
        assert parse_keys(key, digits) == action


@given(st.integers(0, 255), st.binary(max_size=20))
def test_random_reports_either_parse_or_are_refused(key: int, digits: bytes) -> None:
    try:
        action = parse_keys(key, digits)
    except KeySequenceError:
        return
    assert action.name in k.ACTIONS
    assert parse_keys(*key_sequence(action)) == action
