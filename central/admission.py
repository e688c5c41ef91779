"""Who gets in: per-branch token buckets for what the boxes publish (pure, no I/O).

One misbehaving box must not starve the others (docs/uplink.md "One branch cannot starve
the others"). Every message a consumer receives is admitted here *before* it is decoded
or queued, by its branch (the topic's third level) and class:

======== ====================== ===============================================
class    topics                 over the limit
======== ====================== ===============================================
events   events, totals, reply  not stored and not acknowledged now: the box
                                sends it again (ack timeout, or the replay the
                                centre asks for when a later batch left a gap)
status   status, live           latest wins: the message it supersedes is dropped
                                (over the limit or not, the latest is kept: a Last
                                Will is never lost to a flood of live snapshots)
health   health                 latest wins, likewise
======== ====================== ===============================================

A message costs one token per started 64 KiB, so a batch of 5,000 events costs more
than one of 200. Buckets live in a bounded table: one per known branch (at most
``known_cap``) and, for codes not yet known, a least-recently-used table of
``unknown_cap``. Each bucket also counts what arrived and what was limited (over the
last minute or so), for the once-a-minute flood notes (:meth:`BranchLimits.due`). Time is
passed in (``now``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["CLASSES", "CLASS_OF", "BranchLimits", "FloodNote", "Rate", "cost_of"]

CLASSES = ("events", "status", "health")
CLASS_OF = {"events": "events", "totals": "events", "reply": "events",
            "status": "status", "live": "status", "health": "health"}
TOKEN_BYTES = 65_536  # a message costs one token per started 64 KiB
NOTE_EVERY_S = 60.0  # at most one flood note per branch per minute


def cost_of(size: int) -> int:
    """Tokens a message of ``size`` bytes costs."""
    return 1 + max(0, size - 1) // TOKEN_BYTES


@dataclass(frozen=True)
class Rate:
    """A token bucket's refill (tokens per second) and depth."""

    per_s: float
    burst: float


@dataclass
class Bucket:
    tokens: float
    at: float
    arrived: int = 0  # messages since ``since``
    limited: int = 0
    since: float = 0.0

    def take(self, cost: int, now: float, rate: Rate) -> bool:
        if not self.limited and now - self.since >= NOTE_EVERY_S:
            self.arrived, self.since = 0, now  # a rate is over the last minute or so
        self.tokens = min(rate.burst, self.tokens + (now - self.at) * rate.per_s)
        self.at = now
        self.arrived += 1
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        self.limited += 1
        return False


@dataclass
class Branch:
    buckets: dict[str, Bucket] = field(default_factory=dict)
    noted_at: float | None = None  # the last flood note


@dataclass(frozen=True)
class FloodNote:
    """One branch over its limit: what goes to the log and to ``alert_inbox``."""

    branch: str
    cls: str
    limited: int  # messages limited since the last note
    rate: float  # messages per second of that class that arrived meanwhile
    limit: float  # the class's rate (per second)

    def body(self) -> dict[str, object]:
        return {"class": self.cls, "limited": self.limited, "rate": round(self.rate, 1),
                "limit": self.limit}


class BranchLimits:
    """Token buckets per branch and class, in a bounded table."""

    def __init__(self, rates: dict[str, Rate], *, known_cap: int, unknown_cap: int) -> None:
        self.rates = rates
        self.known_cap, self.unknown_cap = known_cap, unknown_cap
        self._known: dict[str, Branch] = {}
        self._unknown: OrderedDict[str, Branch] = OrderedDict()
        self._flooding: set[str] = set()  # limited since their last note (in the table)

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)

    def know(self, codes: Iterable[str]) -> None:
        """The branches the centre knows (its store's): their buckets are never evicted.
        At most ``known_cap`` of them; the rest are treated as unknown."""
        wanted: dict[str, Branch] = {}
        for code in codes:
            if len(wanted) >= self.known_cap:
                break
            wanted[code] = (self._known.get(code) or self._unknown.pop(code, None)
                            or Branch())
        self._known = wanted
        self._flooding &= wanted.keys() | self._unknown.keys()

    def allow(self, branch: str, cls: str, cost: int, now: float) -> bool:
        """Take ``cost`` tokens from ``branch``'s ``cls`` bucket; False when over the limit."""
        rate = self.rates[cls]
        b = self._branch(branch).buckets
        bucket = b.get(cls)
        if bucket is None:
            bucket = b[cls] = Bucket(rate.burst, now, since=now)
        if bucket.take(cost, now, rate):
            return True
        self._flooding.add(branch)
        return False

    def _branch(self, code: str) -> Branch:
        found = self._known.get(code)
        if found is not None:
            return found
        found = self._unknown.get(code)
        if found is None:
            found = self._unknown[code] = Branch()
            if len(self._unknown) > self.unknown_cap:
                self._flooding.discard(self._unknown.popitem(last=False)[0])
        else:
            self._unknown.move_to_end(code)
        return found

    def due(self, now: float) -> list[FloodNote]:
        """Branches limited since their last note, at most one note a minute each (for
        the class limited most); their counters start again."""
        notes = []
        for code in list(self._flooding):
            branch = self._known.get(code) or self._unknown.get(code)
            if branch is None:
                self._flooding.discard(code)
                continue
            if branch.noted_at is not None and now - branch.noted_at < NOTE_EVERY_S:
                continue
            n, cls = max((b.limited, c) for c, b in branch.buckets.items())
            b = branch.buckets[cls]
            notes.append(FloodNote(code, cls, n, b.arrived / max(now - b.since, 1e-3),
                                   self.rates[cls].per_s))
            branch.noted_at = now
            self._flooding.discard(code)
            for b in branch.buckets.values():
                b.arrived = b.limited = 0
                b.since = now
        return notes
