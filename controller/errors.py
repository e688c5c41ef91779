"""Errors of the branch box. One root, :class:`PaiduiError` (common/errors.py, with
:class:`ConfigError`, which the centre shares); leaves also inherit a built-in."""

from __future__ import annotations

from typing import Any

from common.errors import ConfigError, PaiduiError
from protocols.refusals import MESSAGES, render

__all__ = ["AudioError", "ConfigError", "JournalError", "KeypadError", "PaiduiError", "Refused"]


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


class KeypadError(PaiduiError, ValueError):
    """A keypad's key sequence the box cannot turn into a command (an ambiguous ticket
    number, a key with no command): ``message`` (Chinese) and ``message_en`` are for the
    teller, ``detail`` for the log."""

    def __init__(self, message: str, message_en: str, detail: str = "") -> None:
        self.message, self.message_en, self.detail = message, message_en, detail
        super().__init__(f"{message_en} ({detail})" if detail else message_en)


class AudioError(PaiduiError, OSError):
    """A clip pack is missing or malformed, or the player failed (controller/voice.py; the
    sinks and the clip maker in drivers/audio.py raise it too)."""
