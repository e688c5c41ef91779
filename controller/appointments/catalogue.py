"""What the centre offers for booking at this branch (sent back with every day list's
answer): businesses, hours, coordinates, ratings and the kind of each coming day."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["catalogue"]


def catalogue(cfg: Config, now: float, days: int = 14) -> dict[str, Any]:
    """What the centre offers for booking at this branch: businesses, hours, coordinates,
    and the kind of each of the next ``days`` days (工作日/周末/节假日)."""
    start = dt.datetime.fromtimestamp(now, cfg.tz).date()
    kinds = {(start + dt.timedelta(days=i)).isoformat():
             cfg.calendar.kind(start + dt.timedelta(days=i)) for i in range(days)}
    return {
        "branch": {"name": cfg.branch.name, "name_en": cfg.branch.name_en,
                   "timezone": cfg.branch.timezone, "latitude": cfg.branch.latitude,
                   "longitude": cfg.branch.longitude},
        "hours": cfg.hours.model_dump(),
        "days": kinds,
        "ratings": [{"score": r.score, "name": r.name, "name_en": r.name_en}
                    for r in cfg.rating_levels],
        "queues": [{"id": q.id, "name": q.name, "name_en": q.name_en, "days": q.days,
                    "hours": q.hours.model_dump() if q.hours else None,
                    "service_minutes": q.service_minutes} for q in cfg.queues],
    }
