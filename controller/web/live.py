"""What every screen starts from: the branch's status plus what the pages draw with.

:func:`live_view` is ``/api/status`` (waiting per business, windows) plus the latest calls
(hall display), whether each business is offered right now and today's hours (kiosk), the
devices' health (lobby manager) and the versions a page reloads itself on.
"""

from __future__ import annotations

import datetime as dt
import heapq
from typing import TYPE_CHECKING, Any

from common import __version__

from ..config import Config, QueueConfig
from ..engine import State
from ..notices import voice
from ..views import iso, status_view

if TYPE_CHECKING:
    from ..box import Box

__all__ = ["latest_calls", "live_view", "offered_now"]


def offered_now(cfg: Config, queue: QueueConfig, now: float) -> bool:
    """Whether ``queue`` takes tickets at ``now`` by its days and hours (the engine decides;
    this only lets the kiosk grey a button and show the hours)."""
    local = dt.datetime.fromtimestamp(now, cfg.tz)
    kind = cfg.calendar.kind(local.date())
    if (queue.days == "workdays" and kind != "workday") or (
        queue.days == "weekends" and kind == "workday"
    ):
        return False
    hhmm = local.strftime("%H:%M")
    return any(s[:5] <= hhmm < s[6:] for s in getattr(queue.hours or cfg.hours, kind))


def latest_calls(state: State, cfg: Config, limit: int = 20) -> list[dict[str, Any]]:
    """Today's most recent calls, newest first (for the hall display)."""
    # the ``limit`` latest of the day's calls without sorting the day (as sorted(...,
    # reverse=True)[:limit] would give them: heapq.nlargest's documented equivalent)
    called = heapq.nlargest(limit, (t for t in state.tickets.values()
                                    if t.called_at is not None and t.window),
                            key=lambda t: (t.called_at or 0.0, t.order))
    out = []
    for t in called:
        q, w = cfg.queue(t.queue), cfg.window(t.window or 0)
        out.append({
            "number": t.number, "queue": t.queue,
            "queue_name": q.name if q else t.queue, "queue_name_en": q.name_en if q else t.queue,
            "window": t.window, "window_name": w.name if w else "",
            "called_at": iso(t.called_at, cfg), "state": t.state, "recalls": t.recalls,
        })
    return out


def live_view(box: Box, seq: int) -> dict[str, Any]:
    """The snapshot a screen draws itself from; ``seq`` is the last event it reflects."""
    cfg, state, now = box.config, box.engine.state, box.clock.now()
    view = status_view(state, cfg, now)
    for q in view["queues"]:
        queue = cfg.queue(q["id"])
        q["offered_now"] = bool(queue and offered_now(cfg, queue, now))
        q["hours"] = _spans(cfg, queue, now) if queue else []
    local = dt.datetime.fromtimestamp(now, cfg.tz)
    view.update(
        seq=seq, epoch=box.epoch, version=__version__, config_version=cfg.version,
        hours_today=getattr(cfg.hours, cfg.calendar.kind(local.date())),
        calls=latest_calls(state, cfg),
        devices=box.health.snapshot(),
        voice=voice(box).speaking,  # the hall shows a call as it is spoken (event: voice)
    )
    return view


def _spans(cfg: Config, queue: QueueConfig, now: float) -> list[str]:
    kind = cfg.calendar.kind(dt.datetime.fromtimestamp(now, cfg.tz).date())
    return list(getattr(queue.hours or cfg.hours, kind))
