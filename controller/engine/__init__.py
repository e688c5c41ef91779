"""The pure queue engine: commands in, events out, time injected (no I/O, no asyncio)."""

from . import commands
from .commands import *  # noqa: F403
from .engine import Engine, Event, Request, vip_of
from .select import ahead_of, select, serving_windows
from .state import OPEN_STATES, TERMINAL_STATES, State, Ticket, WindowState

__all__ = [
    "OPEN_STATES",
    "TERMINAL_STATES",
    "Engine",
    "Event",
    "Request",
    "State",
    "Ticket",
    "WindowState",
    "ahead_of",
    "commands",
    "select",
    "serving_windows",
    "vip_of",
    *commands.__all__,
]
