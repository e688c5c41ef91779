"""How far a box's clock stands from the centre's, read from what the box sent.

A box stamps its events and snapshots with its own clock; the centre stamps what it
receives with its own. Anything that compares a box's time with the centre's "now" (the
live board's waits, the alert desk's long waits) first moves it onto one clock with
:func:`box_clock_offset`. In production the two agree to NTP's second; in the demo the box
runs on the demo's clock (10:00 today) and the centre on the real one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["box_clock_offset"]


def box_clock_offset(row: dict[str, Any],
                     last_event: tuple[float, float] | None = None) -> float:
    """Box clock − centre clock (0 if unknown), from a ``branches`` row's latest live
    snapshot and health report and the latest stored event (``(box at, centre at)``):
    each says ``box time − centre time = offset − latency``, so the largest is the best
    estimate."""
    pairs: list[tuple[float, float]] = [last_event] if last_event else []
    for box_at, centre_at in (((row.get("live") or {}).get("at"), row.get("live_at")),
                              ((row.get("health") or {}).get("at"), row.get("health_at"))):
        if isinstance(box_at, int | float) and isinstance(centre_at, int | float):
            pairs.append((float(box_at), float(centre_at)))
    if not pairs:
        return 0.0
    return round(max(box - centre for box, centre in pairs), 3)
