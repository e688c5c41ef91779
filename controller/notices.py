"""Notices for the branch's screens that are not engine events: the centre's alerts.

The centre sends an alert for the lobby manager on ``qms/v1/{branch}/cmd/alert``
(central/alerts.py); the uplink's command desk posts it here, and the screens' event hub
(controller/web/events.py) sends it to every open page as an SSE ``notice``, which the
lobby-manager page shows as a pop-up with a sound. Nothing here is journaled: an alert is
the centre's record (its ``alerts`` table), not the branch's.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .ports import KioskOutcome

__all__ = ["Boards", "KioskScreens", "Notices", "Voice", "notices", "voice"]

log = logging.getLogger(__name__)

Notice = dict[str, Any]


class Notices:
    """A box's notice board: listeners hear each notice; the latest few are kept."""

    def __init__(self, keep: int = 20) -> None:
        self.listeners: list[Callable[[Notice], None]] = []
        self.recent: deque[Notice] = deque(maxlen=keep)

    def post(self, notice: Notice) -> int:
        """Tell every listener (never blocking); returns how many heard it."""
        self.recent.append(notice)
        for listener in list(self.listeners):
            listener(notice)
        return len(self.listeners)


class Voice:
    """What the box's voice is saying, for screens that show a call as it is spoken.

    The announcer (controller/voice.py) sets :attr:`speaking` while it runs and tells
    listeners ``("start" | "end", {"number", "window", "kind"})`` for each announcement.
    """

    def __init__(self) -> None:
        self.speaking = False  # an announcer runs: calls are shown when they are spoken
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []

    def tell(self, phase: str, said: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(phase, said)


class KioskScreens:
    """A box's kiosk pages as its devices see them: ``listeners`` (the screens' event hub)
    hear every :class:`~controller.ports.KioskOutcome`. Nothing is journaled here: the
    ticket already is."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[KioskOutcome], None]] = []

    def show(self, outcome: KioskOutcome) -> None:
        """Tell every listener (never blocking)."""
        for listener in list(self.listeners):
            try:
                listener(outcome)
            except Exception:  # a screen bug must not undo the customer's ticket
                log.exception("kiosk outcome listener %r failed", listener)


@dataclass(slots=True)
class Boards:
    """The boards of one box, where its parts post what its screens show without the box
    knowing of either: one explicit object the box is given (``Box(boards=…)``) or makes,
    reachable as ``box.boards``."""

    notices: Notices = field(default_factory=Notices)
    voice: Voice = field(default_factory=Voice)
    kiosk: KioskScreens = field(default_factory=KioskScreens)


class _HasBoards(Protocol):
    @property
    def boards(self) -> Boards: ...


def notices(box: _HasBoards) -> Notices:
    """The notice board of ``box``."""
    return box.boards.notices


def voice(box: _HasBoards) -> Voice:
    """The voice board of ``box``."""
    return box.boards.voice
