"""What the store takes in and gives back at ingest: plain records, no I/O.

Kept apart from :class:`~central.store.Store` so that the modules the store calls inside
its ingest transaction (:mod:`central.store.summary`) can name them without importing the
store itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DeadLetter", "EventBatch", "Inbound", "Ingested", "Mark"]


@dataclass(slots=True)
class EventBatch:
    """One received ``events`` message, already validated."""

    branch: str
    epoch: str
    events: list[dict[str, Any]]
    topic: str = ""
    payload: bytes = b""


@dataclass(slots=True)
class DeadLetter:
    topic: str
    reason: str
    detail: str
    payload: bytes
    branch: str | None = None


@dataclass
class Inbound:
    """What one transaction takes: event batches, totals, replies and rejections."""

    batches: list[EventBatch] = field(default_factory=list)
    totals: list[dict[str, Any]] = field(default_factory=list)
    replies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.batches) + len(self.totals) + len(self.replies) + len(self.dead)


@dataclass(frozen=True, slots=True)
class Mark:
    """A branch journal's state at the centre: everything through ``contiguous`` is stored;
    ``next_present`` is the first stored seq after a gap (None: no gap)."""

    branch: str
    epoch: str
    contiguous: int
    max_seen: int
    next_present: int | None = None


@dataclass
class Ingested:
    marks: list[Mark] = field(default_factory=list)
    inserted: int = 0
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    totals: list[tuple[str, str]] = field(default_factory=list)  # (branch, day)
