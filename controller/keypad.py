"""The windows' keypads and evaluators: from a key press to the engine command, and from
a window's state to what its display and keypad show (the :class:`~controller.ports.WindowKeys`
port; the RS485 driver delivers the presses and shows the answers).

A keypad has digits and function keys only, so two things need the branch's state:

- a ticket typed as digits (``2 3`` for ``A023``) is found among today's tickets by its
  numeric part; if several match, the one at this window, then one of this window's
  businesses, wins; if it is still ambiguous the teller is told to use the soft caller;
- the teller logging in types their ``keypad_code``, not their id.

The 暂停 key resumes a paused window (keypads with one 暂停/恢复 key); 恢复 also resumes.

A refusal, a key sequence that means nothing or a journal failure is an answer with words
for the keypad (:class:`~controller.ports.KeyAnswer`), never an exception. A press the
keypad numbered (Modbus) is the engine request ``(keypad, "seq:N")``, so the same press read
again after a restart is a repeat the engine does not act on (docs/rs485.md, "One press,
one call").
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from protocols.rs485 import KeySequenceError
from protocols.rs485.keys import KeyAction, parse_keys

from .config import Config
from .engine import Request
from .engine import commands as c
from .engine.state import State, Ticket
from .errors import JournalError, KeypadError, Refused
from .ports import KeyAnswer, KeyPress, WindowScreen

if TYPE_CHECKING:
    from .box import Box

__all__ = ["BAD_KEYS", "BUSY", "PAUSED", "Keypads", "command_for", "find_ticket",
           "window_screen"]

log = logging.getLogger(__name__)

PAUSED = "暂停服务"
BUSY = ("系统忙,请稍后再试", "The system is busy, please try again")  # the journal failed
BAD_KEYS = ("按键有误,请重新输入", "Those keys mean nothing, please type again")


class Keypads:
    """The box's :class:`~controller.ports.WindowKeys`: what a window's key press or score
    becomes (an engine command through :meth:`Box.execute`) and what the device is told."""

    def __init__(self, box: Box) -> None:
        self.box = box

    async def press(self, press: KeyPress) -> KeyAnswer:
        try:
            action = parse_keys(press.key, press.digits)
            command = command_for(action, press.window, self.box.engine.state,
                                  self.box.config, by=press.keypad)
            await self.box.execute(command, _request(press))
        except KeySequenceError as exc:
            return KeyAnswer(False, "bad_keys", *BAD_KEYS, detail=str(exc))
        except KeypadError as exc:
            return KeyAnswer(False, "ambiguous", exc.message, exc.message_en, exc.detail)
        except Refused as exc:
            return KeyAnswer(False, exc.code, exc.message, exc.message_en, exc.code)
        except JournalError as exc:
            return KeyAnswer(False, "journal", *BUSY, detail=str(exc))
        log.debug("%s: %s", press.keypad, command)
        return KeyAnswer(True)

    async def rate(self, window: int, score: int) -> KeyAnswer:
        try:
            await self.box.execute(c.Rate(window, score))
        except Refused as exc:
            return KeyAnswer(False, exc.code, exc.message, exc.message_en, exc.code)
        except JournalError as exc:
            return KeyAnswer(False, "journal", *BUSY, detail=str(exc))
        return KeyAnswer(True)

    def screen(self, window: int) -> WindowScreen:
        return window_screen(self.box.engine.state, window)


def _request(press: KeyPress) -> Request | None:
    """(keypad, its number for the press) for the engine: a Modbus report read again after
    a restart is then a repeat, not a second press. 68-frame presses have no number; their
    resends are caught by the bus (``dedupe_s``)."""
    return None if press.seq is None else (press.keypad, f"seq:{press.seq}")


def command_for(action: KeyAction, window: int, state: State, config: Config, *,
                by: str = "keypad") -> c.Command:
    """The engine command for ``action`` pressed on ``window``'s keypad.

    Raises :class:`Refused` (unknown teller or ticket) or :class:`KeypadError` (ambiguous).
    """
    simple: dict[str, type[c.CallNext | c.Recall | c.NoShow | c.Hold | c.Logout
                           | c.ResumeWindow]] = {
        "call_next": c.CallNext, "recall": c.Recall, "no_show": c.NoShow, "hold": c.Hold,
        "logout": c.Logout, "resume": c.ResumeWindow,
    }
    if action.name in simple:
        return simple[action.name](window)
    if action.name in ("rate", "finish"):
        return c.Finish(window, ask_rating=action.name == "rate")
    if action.name == "pause":
        ws = state.windows.get(window)
        return c.ResumeWindow(window) if ws is not None and ws.paused else c.PauseWindow(window)
    if action.name == "transfer":
        return c.Transfer(window, to_window=int(action.arg))
    if action.name == "call_back":
        number = find_ticket(action.arg, state, config, window, ("held", "no_show"))
        return c.CallBack(window, number if action.arg else None)
    if action.name == "insert_front":
        return c.InsertFront(find_ticket(action.arg, state, config, window, ("waiting",)), by=by)
    if action.name == "login":
        return c.Login(window, _teller(action.arg, config), action.password)
    raise KeypadError(*BAD_KEYS, f"no command for {action.name!r}")


def _teller(code: str, config: Config) -> str:
    for teller in config.tellers:
        if teller.keypad_code is not None and teller.keypad_code == int(code):
            return teller.id
    raise Refused("unknown_teller")


def find_ticket(digits: str, state: State, config: Config, window: int,
                states: tuple[str, ...]) -> str:
    """Today's ticket number whose digits are ``digits`` (see the module docstring).

    Tickets in one of ``states`` are preferred; failing those, any ticket with those digits
    is returned so the engine can say what is wrong with it.
    """
    if not digits:
        return ""
    value = int(digits)
    found = [t for t in state.tickets.values() if _numeric(t.number) == value]
    if not found:
        raise Refused("unknown_ticket", number=digits)
    found = [t for t in found if t.state in states] or found
    wc = config.window(window)
    served = set(wc.queues) if wc is not None else set()
    for narrower in (lambda t: t.window == window, lambda t: t.queue in served):
        if len(found) > 1:
            found = [t for t in found if narrower(t)] or found
    if len(found) > 1:
        numbers = "、".join(sorted(t.number for t in found))
        raise KeypadError(f"号码不唯一({numbers}),请在软呼叫器上操作",
                          f"The number is not unique ({numbers}), use the soft caller",
                          f"{digits} matches {numbers}")
    return found[0].number


def _numeric(number: str) -> int:
    digits = "".join(ch for ch in number if ch.isdigit())
    return int(digits) if digits else -1


def _current(state: State, window: int) -> Ticket | None:
    ws = state.windows.get(window)
    if ws is None or ws.current is None:
        return None
    return state.tickets.get(ws.current)


def window_screen(state: State, window: int) -> WindowScreen:
    """What ``window``'s display (and keypad) shows: its number, blank, or 暂停服务."""
    ws = state.windows.get(window)
    if ws is None or ws.teller is None or ws.paused:
        return WindowScreen("paused", PAUSED)
    ticket = _current(state, window)
    return WindowScreen("number", ticket.number) if ticket is not None else WindowScreen("blank")
