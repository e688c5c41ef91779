"""Keypads, window displays and evaluators over a real pty, for both bus profiles.

The box's RS485 driver runs against the virtual bus (sim/rs485.py) with its baud timing;
each test presses keys like a teller and reads the displays like a customer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.engine import IssueTicket
from controller.ports import KeyAnswer, KeyPress, WindowScreen
from protocols.rs485.keys import KEY_CALL, KEY_RATE, KEY_TRANSFER

from .rs485_branch import Branch, running_branch

PROFILES = ["legacy68", "modbus"]


@pytest.fixture(params=PROFILES)
async def branch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Branch]:
    async with running_branch(tmp_path, request.param) as b:
        yield b


async def issue(branch: Branch, *queues: str) -> list[str]:
    numbers = []
    for q in queues:
        events = await branch.box.execute(IssueTicket(queue=q))
        numbers.append(events[-1]["number"])
    return numbers


async def log_in(branch: Branch, window: int, code: str) -> None:
    await branch.line.keypad(window).do("login", code, "1234")
    await branch.line.display(window).wait_for(branch.blank)


async def test_displays_say_paused_until_a_teller_logs_in(branch: Branch) -> None:
    for window in range(1, 7):
        await branch.line.display(window).wait_for(branch.paused)
    await log_in(branch, 1, "1")
    assert branch.box.engine.state.windows[1].teller == "t1"
    assert branch.line.display(2).shown == branch.paused


async def test_call_next_shows_the_number_on_the_display_and_the_keypad(branch: Branch) -> None:
    await issue(branch, "A", "A")
    await log_in(branch, 1, "1")
    await branch.line.keypad(1).press(KEY_CALL)
    await branch.line.display(1).wait_for(branch.number("A001"))
    await branch.line.keypad(1).wait_for(branch.number("A001"))
    await branch.line.keypad(1).do("recall")  # (the same key twice within dedupe_s is one press)
    await branch.line.keypad(1).press(KEY_CALL)
    await branch.line.display(1).wait_for(branch.number("A002"))
    finished = await branch.events("ticket_finished")
    assert [e["number"] for e in finished] == ["A001"]


async def test_recall_shows_the_number_again(branch: Branch) -> None:
    await issue(branch, "A")
    await log_in(branch, 1, "1")
    await branch.line.keypad(1).do("call_next")
    display = branch.line.display(1)
    await display.wait_for(branch.number("A001"))
    shown_before = len(display.history)
    await branch.line.keypad(1).do("recall")
    await display.wait_until(lambda: len(display.history) > shown_before)
    assert display.shown == branch.number("A001")
    recalls = await branch.events("ticket_recalled")
    assert [(e["number"], e["recalls"]) for e in recalls] == [("A001", 1)]


async def test_six_confirm_discards_a_no_show(branch: Branch) -> None:
    await issue(branch, "A")
    await log_in(branch, 1, "1")
    await branch.line.keypad(1).do("call_next")
    await branch.line.display(1).wait_for(branch.number("A001"))
    await branch.line.keypad(1).do("no_show")
    await branch.line.display(1).wait_for(branch.blank)
    assert branch.box.engine.state.by_num("A001").state == "no_show"  # type: ignore[union-attr]


async def test_transfer_sends_the_ticket_to_the_typed_window(branch: Branch) -> None:
    await issue(branch, "A", "A")
    await log_in(branch, 1, "1")
    await log_in(branch, 3, "3")
    await branch.line.keypad(1).do("call_next")
    await branch.line.display(1).wait_for(branch.number("A001"))
    await branch.line.keypad(1).press(KEY_TRANSFER, bytes([3]))
    await branch.line.display(1).wait_for(branch.blank)
    ticket = branch.box.engine.state.by_num("A001")
    assert ticket is not None and ticket.directed == 3
    await branch.line.keypad(3).do("call_next")  # window 3 gets it before A002
    await branch.line.display(3).wait_for(branch.number("A001"))


async def test_pause_refuses_calls_and_pause_again_resumes(branch: Branch) -> None:
    await issue(branch, "A")
    await log_in(branch, 1, "1")
    keypad = branch.line.keypad(1)
    await keypad.do("pause")
    await branch.line.display(1).wait_for(branch.paused)
    await keypad.do("call_next")  # refused: the window is paused
    await keypad.wait_until(lambda: keypad.beeps >= 2)
    assert branch.box.engine.state.by_num("A001").state == "waiting"  # type: ignore[union-attr]
    await keypad.do("pause")  # the 暂停 key resumes a paused window
    await branch.line.display(1).wait_for(branch.blank)
    await keypad.do("call_next")
    await branch.line.display(1).wait_for(branch.number("A001"))


async def test_hold_and_call_back(branch: Branch) -> None:
    await issue(branch, "A", "A", "A")
    await log_in(branch, 1, "1")
    keypad, display = branch.line.keypad(1), branch.line.display(1)
    await keypad.do("call_next")
    await display.wait_for(branch.number("A001"))
    await keypad.do("hold")  # 0 confirm
    await display.wait_for(branch.blank)
    await keypad.do("call_next")
    await display.wait_for(branch.number("A002"))
    await keypad.do("hold")
    await keypad.do("call_back", "1")  # 3 1 confirm: A001 by its digits
    await display.wait_for(branch.number("A001"))
    await keypad.do("call_back")  # 3 confirm: the last one held (A002)
    await display.wait_for(branch.number("A002"))
    called = await branch.events("ticket_called")
    assert [(e["number"], e["callback"]) for e in called] == [
        ("A001", False), ("A002", False), ("A001", True), ("A002", True)]


async def test_insert_front_by_digits(branch: Branch) -> None:
    await issue(branch, "A", "A", "A")
    await log_in(branch, 1, "1")
    await branch.line.keypad(1).do("insert_front", "3")
    await branch.line.keypad(1).do("call_next")
    await branch.line.display(1).wait_for(branch.number("A003"))


async def test_logout_shows_paused(branch: Branch) -> None:
    await issue(branch, "A")
    await log_in(branch, 1, "1")
    await branch.line.keypad(1).do("call_next")
    await branch.line.display(1).wait_for(branch.number("A001"))
    await branch.line.keypad(1).do("logout")
    await branch.line.display(1).wait_for(branch.paused)
    assert branch.box.engine.state.windows[1].teller is None


async def test_a_wrong_password_beeps_and_logs_nobody_in(branch: Branch) -> None:
    keypad = branch.line.keypad(1)
    await keypad.do("login", "1", "9999")
    await keypad.wait_until(lambda: keypad.beeps >= 2)
    assert branch.box.engine.state.windows.get(1) is None or \
        branch.box.engine.state.windows[1].teller is None
    await keypad.do("login", "7", "1234")  # no teller has keypad code 7
    await keypad.wait_until(lambda: keypad.beeps >= 4)
    await keypad.press(KEY_TRANSFER)  # transfer to nowhere: keys that mean nothing
    await keypad.wait_until(lambda: keypad.beeps >= 6)
    assert branch.rs485.windows is not None
    assert branch.rs485.windows.stats["refused"] == 3


async def test_the_evaluator_prompts_after_service_and_takes_one_rating(branch: Branch) -> None:
    await issue(branch, "A", "A")
    await log_in(branch, 1, "1")
    keypad, evaluator = branch.line.keypad(1), branch.line.evaluator(1)
    await keypad.do("call_next")
    await branch.line.display(1).wait_for(branch.number("A001"))
    await keypad.press(KEY_RATE)  # 评价: finish and ask for a rating
    await evaluator.wait_until(lambda: evaluator.mode == "prompt")
    assert evaluator.shown == "请您对本次服务做出评价"
    assert await evaluator.rate(4)
    await evaluator.wait_for("谢谢您对我们工作的支持,再见")
    assert not await evaluator.rate(1)  # one rating per service: the device takes no more
    rated = await branch.events("ticket_rated")
    assert [(e["number"], e["score"], e["teller"]) for e in rated] == [("A001", 4, "t1")]


async def test_a_careless_evaluator_still_records_one_rating(branch: Branch) -> None:
    await issue(branch, "A")
    await log_in(branch, 1, "1")
    evaluator = branch.line.evaluator(1)
    evaluator.one_per_prompt = False  # sends every press
    await branch.line.keypad(1).do("call_next")
    await branch.line.keypad(1).do("finish")  # every finish prompts (evaluator_prompt=always)
    await evaluator.wait_until(lambda: evaluator.mode == "prompt")
    assert await evaluator.rate(5)
    await evaluator.rate(1)  # dropped if the thanks came first, else refused (already rated)
    await evaluator.wait_until(lambda: evaluator.mode == "thanks")
    rated = await branch.events("ticket_rated")
    assert [(e["number"], e["score"]) for e in rated] == [("A001", 5)]


async def test_a_bad_rating_is_recorded_as_bad(branch: Branch) -> None:
    await issue(branch, "A")
    await log_in(branch, 1, "1")
    evaluator = branch.line.evaluator(1)
    await branch.line.keypad(1).do("call_next")
    await branch.line.keypad(1).do("rate")
    await evaluator.wait_until(lambda: evaluator.mode == "prompt")
    await evaluator.rate(1)
    await evaluator.wait_until(lambda: evaluator.mode == "thanks")
    rated = await branch.events("ticket_rated")
    assert rated[-1]["bad"] is True  # C2: the alarm side reads this


async def test_each_window_drives_only_its_own_devices(branch: Branch) -> None:
    await issue(branch, "A", "B")
    await log_in(branch, 1, "1")
    await log_in(branch, 4, "2")
    await branch.line.keypad(4).do("call_next")
    await branch.line.display(4).wait_for(branch.number("B001"))
    await branch.line.keypad(1).do("call_next")
    await branch.line.display(1).wait_for(branch.number("A001"))
    assert branch.line.display(4).shown == branch.number("B001")
    assert branch.counters()["checksum_errors"] == 0


@pytest.mark.parametrize("profile", PROFILES)
async def test_text_displays_show_letters_and_chinese(tmp_path: Path, profile: str) -> None:
    async with running_branch(tmp_path, profile, 'rs485.display="text"',
                              'rs485.keypad_display="text"') as b:
        await b.line.display(1).wait_for("暂停服务")
        await issue(b, "A")
        await log_in(b, 1, "1")
        keypad = b.line.keypad(1)
        await keypad.do("call_next")
        await b.line.display(1).wait_for("A001")
        await keypad.do("finish")
        await keypad.do("call_next")  # nobody waiting: the refusal shows on the keypad
        await keypad.wait_for("当前没有等待的客户。")
        assert keypad.beeps >= 2


class ScriptedKeys:
    """A fake of the box's window keys port: records what the driver hands over."""

    def __init__(self) -> None:
        self.presses: list[KeyPress] = []
        self.scores: list[tuple[int, int]] = []

    async def press(self, press: KeyPress) -> KeyAnswer:
        self.presses.append(press)
        return KeyAnswer(False, "no_waiting", "没有客户", "Nobody waiting", "no_waiting")

    async def rate(self, window: int, score: int) -> KeyAnswer:
        self.scores.append((window, score))
        return KeyAnswer(True)

    def screen(self, window: int) -> WindowScreen:
        return WindowScreen("number", f"W{window}")


@pytest.mark.parametrize("profile", PROFILES)
async def test_the_driver_hands_raw_presses_to_the_window_keys_port(tmp_path: Path,
                                                                    profile: str) -> None:
    """The mapping to engine commands is the core's: the driver delivers the key and digits
    as pressed (with the keypad's number for the press, on Modbus) and shows the answer."""
    keys = ScriptedKeys()
    async with running_branch(tmp_path, profile, 'rs485.display="text"',
                              'rs485.keypad_display="text"', keys=keys) as b:
        await b.line.display(2).wait_for("W2")  # the port says what each window shows
        keypad = b.line.keypad(2)
        await keypad.press(KEY_TRANSFER, b"\x03")
        await keypad.wait_for("没有客户")  # the answer's words, with two beeps
        assert keypad.beeps >= 2
        [press] = keys.presses
        assert (press.window, press.key, press.digits, press.keypad) == (
            2, KEY_TRANSFER, b"\x03", "keypad.2")
        assert (press.seq is None) == (profile == "legacy68")
        assert not b.box.engine.state.windows  # the driver ran no engine command itself
        assert b.rs485.windows is not None  # a finish at window 2 (as the box would tell)
        b.rs485.windows.on_events([{"type": "ticket_finished", "window": 2,
                                    "ask_rating": True}])
        evaluator = b.line.evaluator(2)
        await evaluator.wait_until(lambda: evaluator.mode == "prompt")
        assert await evaluator.rate(4)
        await evaluator.wait_until(lambda: keys.scores == [(2, 4)])
