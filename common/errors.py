"""Errors both the box and the centre raise. One root, :class:`PaiduiError`; leaves also
inherit a built-in. The box's own errors (controller/errors.py) derive from the same root."""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "PaiduiError"]


class PaiduiError(Exception):
    """Root of every error the box and the shared building blocks raise on purpose."""


class ConfigError(PaiduiError, ValueError):
    """A configuration value is wrong. ``key`` names it, dotted (``windows.2.queues``)."""

    def __init__(self, key: str, problem: str, source: str = "config") -> None:
        self.key, self.problem, self.source = key, problem, source
        super().__init__(f"{source}: {key}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by its fields, not by Exception's one message: it crosses process
        # boundaries intact (a simulated day's bad override, in a worker of queueing.batch).
        return type(self), (self.key, self.problem, self.source)
