"""From a keypad's action to the engine command, and from a window's state to its screen.

A keypad has digits and function keys only, so two things need the branch's state:

- a ticket typed as digits (``2 3`` for ``A023``) is found among today's tickets by its
  numeric part; if several match, the one at this window, then one of this window's
  businesses, wins; if it is still ambiguous the teller is told to use the soft caller;
- the teller logging in types their ``keypad_code``, not their id.

The 暂停 key resumes a paused window (keypads with one 暂停/恢复 key); 恢复 also resumes.
"""

from __future__ import annotations

from controller.config import Config
from controller.engine import commands as c
from controller.engine.state import State, Ticket
from controller.errors import Refused
from protocols.rs485.keys import KeyAction

from .devices import Screen
from .errors import KeypadError

__all__ = ["PAUSED", "command_for", "find_ticket", "window_screen"]

PAUSED = "暂停服务"


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
    raise KeypadError("按键有误,请重新输入", f"no command for {action.name!r}")


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


def window_screen(state: State, window: int) -> Screen:
    """What ``window``'s display (and keypad) shows: its number, blank, or 暂停服务."""
    ws = state.windows.get(window)
    if ws is None or ws.teller is None or ws.paused:
        return Screen("paused", PAUSED)
    ticket = _current(state, window)
    return Screen("number", ticket.number) if ticket is not None else Screen("blank")
