"""What may be booked: each branch's catalogue, its slots and their capacity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols import appointment as ap

if TYPE_CHECKING:
    pass

from .core import (
    Base,
    _catalogue,
    _kind_of,
    _slot_counts,
    refused,
)


class Slots(Base):
    """What may be booked: each branch's catalogue, its slots and their capacity."""

    # --- what may be booked ------------------------------------------------------------------

    async def catalogue(self, branch: str) -> dict[str, Any] | None:
        """What a branch's box last said it offers (businesses, hours, coordinates)."""
        cat = self._catalogues.fresh(branch)
        if cat is None:
            cat = self._catalogues.keep(branch, await self.pool.read(_catalogue, branch))
        return cat

    async def bookable(self, branch: str, day: str | None = None) -> dict[str, Any]:
        """Each business of a branch with, per slot of ``day``, the places left."""
        day = day or self.today()
        cat = await self.catalogue(branch)
        if cat is None:
            raise refused("unknown_branch", branch=branch)
        counts = await self.pool.read(_slot_counts, branch, day)
        cap = self._capacity(branch)
        queues = []
        for q in self._bookable_queues(branch, cat):
            slots = []
            for s in ap.SLOTS:
                problem = self._slot_problem(cat, q, day, s.number)
                left = max(0, cap - counts.get((q["id"], s.number), 0))
                slots.append({"slot": s.number, "label": s.label, "left": 0 if problem else left,
                              "open": problem is None and left > 0, "why": problem})
            queues.append({"id": q["id"], "name": q["name"], "name_en": q.get("name_en", ""),
                           "slots": slots})
        return {"branch": branch, "name": self._branch_name(branch, cat), "day": day,
                "days": self.days(self.settings.days_ahead + 1), "queues": queues}

    async def branch_name(self, branch: str) -> str:
        return self._branch_name(branch, await self.catalogue(branch))

    def _capacity(self, branch: str) -> int:
        entry = self.settings.branch(branch)
        return entry.capacity if entry and entry.capacity is not None else \
            self.settings.capacity

    def _bookable_queues(self, branch: str, cat: dict[str, Any]) -> list[dict[str, Any]]:
        entry = self.settings.branch(branch)
        allowed = entry.bookable if entry and entry.bookable is not None else None
        return [q for q in cat.get("queues", []) if allowed is None or q["id"] in allowed]

    def _branch_name(self, branch: str, cat: dict[str, Any] | None) -> str:
        entry = self.settings.branch(branch)
        if entry and entry.name:
            return entry.name
        return str(((cat or {}).get("branch") or {}).get("name") or branch)

    def _slot_problem(self, cat: dict[str, Any], queue: dict[str, Any], day: str,
                      number: int) -> str | None:
        """Why ``queue`` cannot be booked on ``day`` in slot ``number`` (None: it can)."""
        s = ap.slot(number)
        today, now = self.today(), self.clock()
        if day < today:
            return "slot_past"
        if day > self.days(self.settings.days_ahead + 1)[-1]:
            return "too_far_ahead"
        kind = (cat.get("days") or {}).get(day) or _kind_of(day)
        if (queue.get("days") == "workdays" and kind != "workday") or (
                queue.get("days") == "weekends" and kind == "workday"):
            return "closed_day"
        spans = (queue.get("hours") or cat.get("hours") or {}).get(kind, [])
        if not spans:
            return "closed_day"
        if not any(span[:5] < s.end and s.start < span[6:] for span in spans):
            return "outside_hours"
        _, last = ap.redeem_window(day, number, self.settings.tz, 0, 0)
        if day == today and now >= last:
            return "slot_past"
        return None

