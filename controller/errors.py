"""Errors of the branch box. One root, :class:`PaiduiError`; leaves also inherit a built-in."""

from __future__ import annotations

from typing import Any

from protocols.refusals import MESSAGES, render

__all__ = ["ConfigError", "JournalError", "PaiduiError", "Refused"]


class PaiduiError(Exception):
    """Root of every error the box raises on purpose."""


class ConfigError(PaiduiError, ValueError):
    """A configuration value is wrong. ``key`` names it, dotted (``windows.2.queues``)."""

    def __init__(self, key: str, problem: str, source: str = "config") -> None:
        self.key, self.problem, self.source = key, problem, source
        super().__init__(f"{source}: {key}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by its fields, not by Exception's one message: it crosses process
        # boundaries intact (a simulated day's bad override, in a worker of sim.des.batch).
        return type(self), (self.key, self.problem, self.source)


class Refused(PaiduiError):
    """The engine refuses a command, with a stable code and words for the user (SPEC A7).

    Refusals are ordinary outcomes, not faults: the state is unchanged and nothing is
    journaled; the caller shows :attr:`message` (Chinese) or :attr:`message_en`.
    """

    def __init__(self, code: str, **params: Any) -> None:
        if code not in MESSAGES:
            raise ValueError(f"unknown refusal code {code!r}")
        self.code, self.params = code, params
        self.message, self.message_en = render(code, params)
        super().__init__(f"{code}: {self.message_en}")

    def __reduce__(self) -> tuple[Any, ...]:  # (as ConfigError's)
        return _refused, (self.code, self.params)

    @property
    def status(self) -> int:
        return MESSAGES[self.code].status

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "message_en": self.message_en}


def _refused(code: str, params: dict[str, Any]) -> Refused:
    return Refused(code, **params)


class JournalError(PaiduiError, OSError):
    """The journal could not make events durable (disk full, I/O error, corrupt file)."""
