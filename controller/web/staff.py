"""The staff views: a window's soft-caller panel (B6) and the lobby manager's overview (D3).

Both only read. Changes go through the existing command routes (``/api/windows/{n}/…``,
``/api/queues/{q}/pause``), which :mod:`controller.web.auth` guards; the panel reads its
window as :data:`~controller.web.auth.TellerWindow`, checked against the teller's session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from ..config import Config
from ..engine import State, Ticket
from ..engine.select import eligible, select
from ..engine.state import OPEN_STATES
from ..errors import Refused
from .auth import TellerWindow
from .events import EventHub
from .views import iso

if TYPE_CHECKING:
    from ..box import Box

__all__ = ["lobby_overview", "staff_router", "window_panel"]

def _brief(t: Ticket, cfg: Config, now: float) -> dict[str, Any]:
    q = cfg.queue(t.queue)
    start = t.called_at if t.state == "called" and t.called_at else now
    return {
        "number": t.number, "queue": t.queue,
        "queue_name": q.name if q else t.queue, "queue_name_en": q.name_en if q else t.queue,
        "state": t.state, "customer_type": t.customer_type, "stars": t.stars,
        "vip_name": t.vip_name, "window": t.window, "appointment": t.appointment,
        "issued_at": iso(t.issued_at, cfg), "called_at": iso(t.called_at, cfg),
        "waited_s": round(start - t.issued_at), "recalls": t.recalls, "calls": t.calls,
    }


def window_panel(state: State, cfg: Config, number: int, now: float) -> dict[str, Any]:
    """What the soft caller of window ``number`` shows."""
    wc = cfg.window(number)
    if wc is None:
        raise Refused("unknown_window", window=number)
    ws = state.window(number)
    pool = eligible(wc, state.waiting.values(), state.waiting_count,
                    cfg.thresholds.balance_waiting)
    nxt = select(state, cfg, wc, now) if pool else None
    cur = state.tickets.get(ws.current) if ws.current else None
    teller = cfg.teller(ws.teller) if ws.teller else None
    return {
        "window": number, "name": wc.name, "teller": ws.teller,
        "teller_name": teller.name if teller else None, "paused": ws.paused,
        "current": _brief(cur, cfg, now) | {"serving_s": round(now - (cur.called_at or now))}
        if cur else None,
        "waiting": len(pool), "next": nxt.number if nxt else None,
        "queues": [
            {"id": qid, "name": q.name, "name_en": q.name_en, "priority": prio,
             "waiting": state.waiting_count.get(qid, 0)}
            for qid, prio in wc.queues.items() if (q := cfg.queue(qid)) is not None
        ],
        "held": [_brief(state.tickets[h], cfg, now) for h in ws.held if h in state.tickets],
        "no_shows": [_brief(t, cfg, now) for t in state.tickets.values()
                     if t.state == "no_show" and t.window == number][-10:],
        "windows": [{"number": w.number, "name": w.name} for w in cfg.windows],
        "all_queues": [{"id": q.id, "name": q.name, "name_en": q.name_en} for q in cfg.queues],
        "now": iso(now, cfg),
    }


def lobby_overview(state: State, cfg: Config, now: float) -> dict[str, Any]:
    """What the lobby manager watches: queues, windows, VIP customers, bad ratings."""
    longest: dict[str, float] = {}
    for t in state.waiting.values():
        longest[t.queue] = max(longest.get(t.queue, 0.0), now - t.issued_at)
    queues = [
        {"id": q.id, "name": q.name, "name_en": q.name_en,
         "waiting": state.waiting_count.get(q.id, 0), "longest_wait_s": round(longest.get(q.id, 0)),
         "paused": q.id in state.paused_queues, "pause_reason": state.paused_queues.get(q.id)}
        for q in cfg.queues
    ]
    served: dict[int, int] = {}
    for t in state.tickets.values():
        if t.state == "finished" and t.window is not None:
            served[t.window] = served.get(t.window, 0) + 1
    windows = []
    for wc in cfg.windows:
        ws = state.window(wc.number)
        cur = state.tickets.get(ws.current) if ws.current else None
        teller = cfg.teller(ws.teller) if ws.teller else None
        pool = eligible(wc, state.waiting.values(), state.waiting_count,
                        cfg.thresholds.balance_waiting)
        windows.append({
            "number": wc.number, "name": wc.name, "teller_name": teller.name if teller else None,
            "state": "closed" if ws.teller is None else "paused" if ws.paused
            else "serving" if cur else "open",
            "current": cur.number if cur else None, "waiting": len(pool),
            "served": served.get(wc.number, 0),
        })
    vips = [_brief(t, cfg, now) for t in state.tickets.values()
            if t.state in OPEN_STATES and (t.vip or t.stars or t.customer_type == "vip")]
    bad = [
        {"number": t.number, "window": t.window, "teller": t.teller, "score": t.rated,
         "level": lvl.name, "finished_at": iso(t.finished_at, cfg)}
        for t in state.tickets.values()
        if t.rated is not None and (lvl := cfg.rating_level(t.rated)) is not None and lvl.bad
    ]
    return {
        "now": iso(now, cfg), "kiosk_open": state.kiosk_open,
        "waiting_total": state.waiting_total,
        "threshold": cfg.thresholds.lobby_alert_waiting,
        "over_threshold": state.lobby_alert_at is not None,
        "queues": queues, "windows": windows, "vips": vips, "bad_ratings": bad,
    }


def staff_router(box: Box, hub: EventHub) -> APIRouter:
    router = APIRouter(tags=["screens"])

    @router.get("/api/windows/{n}/panel")
    async def panel(n: TellerWindow) -> dict[str, Any]:
        """The soft caller's view of window n (needs that window's teller session)."""
        await hub.settled()
        return window_panel(box.engine.state, box.config, n, box.clock.now())

    @router.get("/api/lobby/overview")
    async def overview() -> dict[str, Any]:
        """The lobby manager's view (needs a lobby-manager session)."""
        await hub.settled()
        return lobby_overview(box.engine.state, box.config, box.clock.now())

    return router
