"""Notices for the branch's screens that are not engine events: the centre's alerts.

The centre sends an alert for the lobby manager on ``qms/v1/{branch}/cmd/alert``
(central/alerts.py); the uplink's command desk posts it here, and the screens' event hub
(controller/web/events.py) sends it to every open page as an SSE ``notice``, which the
lobby-manager page shows as a pop-up with a sound. Nothing here is journaled: an alert is
the centre's record (its ``alerts`` table), not the branch's.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Notices", "Voice", "board_of", "notices", "voice"]

Notice = dict[str, Any]
B = TypeVar("B")


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


_boards: weakref.WeakKeyDictionary[Any, dict[type, Any]] = weakref.WeakKeyDictionary()


def board_of(box: Any, kind: type[B]) -> B:
    """The board of ``kind`` of ``box`` (one of each kind per box, made on first use):
    where the box's parts post what its screens show, without the box knowing of either."""
    boards = _boards.setdefault(box, {})
    board: B | None = boards.get(kind)
    if board is None:
        board = boards[kind] = kind()
    return board


def notices(box: Any) -> Notices:
    """The notice board of ``box`` (one per box, made on first use)."""
    return board_of(box, Notices)


class Voice:
    """What the box's voice is saying, for screens that show a call as it is spoken.

    The announcer (drivers/audio.py) sets :attr:`speaking` while it runs and tells
    listeners ``("start" | "end", {"number", "window", "kind"})`` for each announcement.
    """

    def __init__(self) -> None:
        self.speaking = False  # an announcer runs: calls are shown when they are spoken
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []

    def tell(self, phase: str, said: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(phase, said)


def voice(box: Any) -> Voice:
    """The voice board of ``box`` (one per box, made on first use)."""
    return board_of(box, Voice)
