"""Errors of the RS485 driver. One root, :class:`BusError`; leaves also inherit a built-in."""

from __future__ import annotations

__all__ = ["BusError", "KeypadError", "PortError"]


class BusError(Exception):
    """Root of every error the RS485 driver raises on purpose."""


class PortError(BusError, OSError):
    """The serial port cannot be opened, configured or used (unplugged, busy, no RS485 mode)."""


class KeypadError(BusError, ValueError):
    """A key report the driver cannot turn into a command; ``message`` is for the teller."""

    def __init__(self, message: str, detail: str = "") -> None:
        self.message = message
        self.detail = detail
        super().__init__(f"{message} ({detail})" if detail else message)
