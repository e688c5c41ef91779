"""Key actions to engine commands: tickets typed as digits, teller codes, the pause key;
and the window keys port's answers (controller/keypad.py)."""

from __future__ import annotations

import pytest

from controller.box import Box
from controller.config import Config
from controller.engine import Engine
from controller.engine import commands as c
from controller.errors import KeypadError, Refused
from controller.keypad import Keypads, command_for, find_ticket, window_screen
from controller.ports import KeyAnswer, KeyPress
from controller.ports import WindowScreen as Screen
from protocols.rs485.keys import KEY_TRANSFER, KeyAction, key_sequence

from .conftest import at


@pytest.fixture
def engine(config: Config) -> Engine:
    e = Engine(config)
    now = at(10)
    for q in ("A", "A", "A", "B", "T"):
        e.handle(c.IssueTicket(queue=q), now)  # A001 A002 A003 B001 T0001
    e.handle(c.Login(1, "t1", "1234"), now)
    e.handle(c.Login(3, "t3", "1234"), now)
    return e


def command(engine: Engine, name: str, arg: str = "", window: int = 1,
            password: str = "") -> c.Command:
    return command_for(KeyAction(name, arg, password), window, engine.state, engine.cfg)


def test_plain_keys(engine: Engine) -> None:
    assert command(engine, "call_next") == c.CallNext(1)
    assert command(engine, "recall") == c.Recall(1)
    assert command(engine, "no_show") == c.NoShow(1)
    assert command(engine, "hold") == c.Hold(1)
    assert command(engine, "logout") == c.Logout(1)
    assert command(engine, "rate") == c.Finish(1, ask_rating=True)
    assert command(engine, "finish") == c.Finish(1, ask_rating=False)
    assert command(engine, "transfer", "3") == c.Transfer(1, to_window=3)
    assert command(engine, "resume") == c.ResumeWindow(1)


def test_the_pause_key_toggles(engine: Engine) -> None:
    assert command(engine, "pause") == c.PauseWindow(1)
    engine.handle(c.PauseWindow(1), at(10, 1))
    assert command(engine, "pause") == c.ResumeWindow(1)


def test_a_teller_logs_in_by_keypad_code(engine: Engine) -> None:
    assert command(engine, "login", "2", window=4, password="1234") == c.Login(4, "t2", "1234")
    with pytest.raises(Refused) as err:
        command(engine, "login", "9", window=4, password="1234")
    assert err.value.code == "unknown_teller"


def test_insert_front_finds_the_waiting_ticket_by_its_digits(engine: Engine) -> None:
    assert command(engine, "insert_front", "3") == c.InsertFront("A003", by="keypad")
    assert command(engine, "insert_front", "0003") == c.InsertFront("A003", by="keypad")


def test_digits_shared_by_several_businesses_prefer_this_windows_own(engine: Engine) -> None:
    # 1 is A001, B001 and T0001. Window 1 serves A and T; window 4 serves only B.
    assert find_ticket("1", engine.state, engine.cfg, 4, ("waiting",)) == "B001"
    with pytest.raises(KeypadError) as err:
        find_ticket("1", engine.state, engine.cfg, 1, ("waiting",))  # A001 or T0001?
    assert "A001、T0001" in err.value.message
    with pytest.raises(Refused) as unknown:
        find_ticket("77", engine.state, engine.cfg, 1, ("waiting",))
    assert unknown.value.code == "unknown_ticket"


def test_call_back_prefers_this_windows_held_ticket(engine: Engine) -> None:
    engine.handle(c.CallNext(1), at(10, 2))  # T0001 (priority 9 at window 1)
    engine.handle(c.Hold(1), at(10, 3))
    engine.handle(c.CallNext(3), at(10, 4))  # B001 at window 3
    engine.handle(c.Hold(3), at(10, 5))
    assert command(engine, "call_back", "1") == c.CallBack(1, "T0001")
    assert command(engine, "call_back", "1", window=3) == c.CallBack(3, "B001")
    assert command(engine, "call_back") == c.CallBack(1, None)


def test_a_ticket_in_the_wrong_state_is_left_for_the_engine_to_refuse(engine: Engine) -> None:
    assert command(engine, "call_back", "2") == c.CallBack(1, "A002")  # waiting, not held
    with pytest.raises(Refused) as err:
        engine.handle(command(engine, "call_back", "2"), at(10, 6))
    assert err.value.code == "ticket_not_held"


def test_window_screens(engine: Engine) -> None:
    assert window_screen(engine.state, 2) == Screen("paused", "暂停服务")  # nobody logged in
    assert window_screen(engine.state, 1) == Screen("blank")
    engine.handle(c.CallNext(1), at(10, 2))
    assert window_screen(engine.state, 1) == Screen("number", "T0001")
    engine.handle(c.PauseWindow(1), at(10, 3))
    assert window_screen(engine.state, 1) == Screen("paused", "暂停服务")


# --- the WindowKeys port: raw presses in, answers out, never an exception --------------------


def press(window: int, action: KeyAction, seq: int | None = None) -> KeyPress:
    key, digits = key_sequence(action)
    return KeyPress(window, key, digits, keypad=f"keypad.{window}", seq=seq)


async def test_the_window_keys_run_a_press_and_answer_in_words(box: Box) -> None:
    keys = Keypads(box)
    await box.execute(c.IssueTicket(queue="A"))
    assert await keys.press(press(1, KeyAction("login", "1", "1234"))) == KeyAnswer(True)
    assert await keys.press(press(1, KeyAction("call_next"))) == KeyAnswer(True)
    assert keys.screen(1) == Screen("number", "A001")
    refused = await keys.press(press(1, KeyAction("call_next")))
    assert (refused.ok, refused.code) == (False, "no_waiting")
    assert refused.message and refused.message_en  # the engine's words, both languages
    bad = await keys.press(KeyPress(1, KEY_TRANSFER, b"", keypad="keypad.1"))
    assert (bad.code, bad.message) == ("bad_keys", "按键有误,请重新输入")
    unknown = await keys.press(press(2, KeyAction("login", "7", "1234")))
    assert unknown.code == "unknown_teller" and keys.screen(2) == Screen("paused", "暂停服务")


async def test_a_numbered_press_read_again_is_not_acted_on_twice(box: Box) -> None:
    """docs/rs485.md "One press, one call": the keypad's own number is the engine request."""
    keys = Keypads(box)
    for _ in range(3):
        await box.execute(c.IssueTicket(queue="A"))
    await keys.press(press(1, KeyAction("login", "1", "1234"), seq=1))
    assert await keys.press(press(1, KeyAction("call_next"), seq=2)) == KeyAnswer(True)
    assert await keys.press(press(1, KeyAction("call_next"), seq=2)) == KeyAnswer(True)
    assert keys.screen(1) == Screen("number", "A001")  # read again: a repeat, not a press
    await keys.press(press(1, KeyAction("call_next"), seq=3))
    assert keys.screen(1) == Screen("number", "A002")
    await keys.press(press(1, KeyAction("call_next")))  # 68-frame: no number, acted on
    assert keys.screen(1) == Screen("number", "A003")


async def test_an_ambiguous_number_and_a_refused_rating_are_answers(box: Box) -> None:
    keys = Keypads(box)
    for q in ("A", "T"):
        await box.execute(c.IssueTicket(queue=q))  # A001 and T0001: both typed "1"
    await keys.press(press(1, KeyAction("login", "1", "1234")))
    ambiguous = await keys.press(press(1, KeyAction("insert_front", "1")))
    assert ambiguous.code == "ambiguous" and "A001、T0001" in ambiguous.message
    assert "A001" in ambiguous.message_en and ambiguous.detail == "1 matches A001、T0001"
    rated = await keys.rate(1, 5)  # nobody served yet
    assert not rated.ok and rated.message and rated.code != "journal"
