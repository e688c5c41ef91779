"""Errors of the RS485 driver. One root, :class:`BusError`; leaves also inherit a built-in."""

from __future__ import annotations

__all__ = ["BusError", "PortError"]


class BusError(Exception):
    """Root of every error the RS485 driver raises on purpose."""


class PortError(BusError, OSError):
    """The serial port cannot be opened, configured or used (unplugged, busy, no RS485 mode)."""

