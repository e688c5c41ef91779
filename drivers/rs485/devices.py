"""The devices on a bus and what each should be showing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["KINDS", "Device", "Kind", "Screen"]

Kind = Literal["keypad", "display", "evaluator"]
KINDS: tuple[Kind, ...] = ("keypad", "display", "evaluator")

ScreenMode = Literal["blank", "number", "paused", "message", "prompt", "thanks", "idle"]


@dataclass(frozen=True, slots=True)
class Screen:
    """What a device should show.

    ``number``: a ticket number being served (``text`` = ``A023``); ``paused``: 暂停服务;
    ``message``: words for the teller or customer (a refusal); ``prompt`` / ``thanks`` /
    ``idle``: an evaluator asking for a rating, thanking, or resting; ``blank``: nothing.
    """

    mode: ScreenMode
    text: str = ""


BLANK = Screen("blank")


@dataclass(eq=False, slots=True)
class Device:
    """One keypad, display or evaluator and what the bus knows about it."""

    kind: Kind
    address: int  # in the config (per kind)
    wire: int  # on the bus: address + the kind's offset
    window: int
    answer_s: float  # time it takes to answer, past the wire time
    online: bool | None = None  # None until it first answers or misses
    misses: int = 0  # consecutive unanswered requests
    garbled: int = 0  # consecutive answers that came broken
    answered: int = 0
    timeouts: int = 0
    screen: Screen = BLANK  # what it should show
    shown: Screen | None = None  # what it acknowledged showing (None: unknown)
    beeps: int = 0  # beeps still to send
    next_check: float = 0.0  # loop time of its next heartbeat poll
    last_seq: int | None = None  # Modbus: the last report taken
    last_upstream: tuple[bytes, float] | None = field(default=None)  # 68-frame: resend check
    pending_ack: list[Any] = field(default_factory=list)  # frames (68) / sequence numbers to ack

    @property
    def name(self) -> str:
        """Its health name, e.g. ``keypad.3``."""
        return f"{self.kind}.{self.address}"

    @property
    def dirty(self) -> bool:
        return self.shown != self.screen
