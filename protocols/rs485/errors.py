"""Errors of the RS485 codecs. One root, :class:`Rs485Error`; leaves also inherit a built-in.

Pure Python with no imports, so a MicroPython keypad or display node can reuse them.
"""

from __future__ import annotations

__all__ = ["FrameError", "KeySequenceError", "Rs485Error"]


class Rs485Error(Exception):
    """Root of every error the RS485 codecs raise on purpose."""


class FrameError(Rs485Error, ValueError):
    """A frame cannot be built from these values (address, command or data out of range)."""


class KeySequenceError(Rs485Error, ValueError):
    """The digits typed before a key do not make sense for that key.

    ``key`` is the key code; the message says what the key expects, for the teller.
    """

    def __init__(self, key: int, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"key 0x{key:02X}: {problem}")
