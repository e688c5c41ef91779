"""Names for codes in reports: branches, businesses, customer types, tellers, rating levels.

Events carry ids (``A``, ``vip``, ``t1``); the names come from each branch's latest live
snapshot (its branch name, its businesses, the tellers logged in) and, for customer types
and rating levels, from the box's defaults. The back office, which holds every branch's
configuration, can pass a richer :class:`Labels`; a code without a name shows as itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store.reader import Reader

__all__ = ["Labels", "labels_from_store", "live_labels"]


def _default_types() -> dict[str, str]:
    from controller.config import Config

    return {t.id: t.name for t in Config.model_fields["customer_types"].default}


def _default_levels() -> dict[int, str]:
    from controller.config import Config

    return {r.score: r.name for r in Config.model_fields["rating_levels"].default}


@dataclass
class Labels:
    """Code → name maps; every lookup falls back to the code itself."""

    branches: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)
    ctypes: dict[str, str] = field(default_factory=_default_types)
    tellers: dict[tuple[str, str], str] = field(default_factory=dict)  # (branch, teller)
    levels: dict[int, str] = field(default_factory=_default_levels)

    def branch(self, code: str) -> str:
        return self.branches.get(code, code)

    def queue(self, queue: str) -> str:
        return self.queues.get(queue, queue)

    def ctype(self, ctype: str) -> str:
        return self.ctypes.get(ctype, ctype)

    def teller(self, branch: str, teller: str) -> str:
        if not teller:
            return "(无柜员) none"
        return self.tellers.get((branch, teller), teller)

    def level(self, score: int) -> str:
        return self.levels.get(score, str(score))

    def ctype_order(self, ids: set[str]) -> list[str]:
        """Known customer types in their configured order, then the rest by id."""
        known = [c for c in self.ctypes if c in ids]
        return known + sorted(ids - set(known))


_cache: dict[str, tuple[float, int, Labels]] = {}  # store URL: (read at, branches, labels)


def labels_from_store(store: Reader, max_age_s: float = 60.0) -> Labels:
    """Names from the branches' latest live snapshots (cached ``max_age_s`` per store URL,
    and read again as soon as another branch has sent its first snapshot: labels cached while
    the centre was starting would otherwise show codes, ``A``, for a minute)."""
    heard = store.execute("SELECT count(*) FROM branches WHERE live IS NOT NULL").fetchone()[0]
    hit = _cache.get(store.url)
    if hit is not None and hit[1] == heard and time.monotonic() - hit[0] < max_age_s:
        return hit[2]
    labels = live_labels(store)
    _cache[store.url] = (time.monotonic(), heard, labels)
    return labels


def live_labels(store: Reader, prefixes: list[str] | None = None) -> Labels:
    """Names from the latest live snapshots of the branches under ``prefixes`` (None: every
    branch), read now (not cached): what a page offers as filters right now."""
    labels = Labels()
    for branch, live in store.execute("SELECT branch, live FROM branches "
                                      "WHERE live IS NOT NULL ORDER BY branch").fetchall():
        if prefixes is not None and not any(branch.startswith(p) for p in prefixes):
            continue
        snap = json.loads(live) if isinstance(live, str | bytes) else live
        status = snap.get("status") if isinstance(snap, dict) else None
        _absorb(labels, branch, status if isinstance(status, dict) else {})
    return labels


def _absorb(labels: Labels, branch: str, status: dict[str, Any]) -> None:
    if status.get("branch_name"):
        labels.branches[branch] = str(status["branch_name"])
    for q in status.get("queues") or []:
        if isinstance(q, dict) and q.get("id") and q.get("name"):
            labels.queues.setdefault(str(q["id"]), str(q["name"]))
    for w in status.get("windows") or []:
        if isinstance(w, dict) and w.get("teller") and w.get("teller_name"):
            labels.tellers[(branch, str(w["teller"]))] = str(w["teller_name"])
