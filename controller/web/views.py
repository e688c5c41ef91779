"""JSON views of the engine's state, shared by the HTTP API and the uplink's live snapshot."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..config import Config
from ..engine import State, Ticket
from ..engine.select import ahead_of

__all__ = ["iso", "status_view", "ticket_view"]


def iso(ts: float | None, cfg: Config) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, cfg.tz).isoformat(timespec="seconds")


def ticket_view(t: Ticket, cfg: Config, state: State | None = None, now: float | None = None,
                *, identity: bool = True) -> dict[str, Any]:
    """A ticket as the API shows it; ``identity=False`` (a caller without a staff login)
    leaves out who the customer is (VIP name, stars) and which teller served them."""
    q = cfg.queue(t.queue)
    view: dict[str, Any] = {
        "id": t.id,
        "number": t.number,
        "queue": t.queue,
        "queue_name": q.name if q else t.queue,
        "queue_name_en": q.name_en if q else t.queue,
        "state": t.state,
        "customer_type": t.customer_type,
        "stars": t.stars,
        "vip_name": t.vip_name,
        "channel": t.channel,
        "appointment": t.appointment,
        "issued_at": iso(t.issued_at, cfg),
        "called_at": iso(t.called_at, cfg),
        "finished_at": iso(t.finished_at, cfg),
        "window": t.window,
        "teller": t.teller,
        "calls": t.calls,
        "recalls": t.recalls,
        "front": bool(t.front),
        "directed_to": t.directed,
        "rating": t.rated,
        "print_error": t.print_error,
    }
    if not identity:
        view.update(stars=None, vip_name=None, teller=None)
    if state is not None and now is not None and t.state == "waiting":
        view["ahead"] = ahead_of(state, cfg, t, now)
    return view


def status_view(state: State, cfg: Config, now: float) -> dict[str, Any]:
    """Waiting per queue, current ticket per window, windows open or paused (SPEC B8, D2)."""
    issued: dict[str, int] = {}
    for t in state.tickets.values():
        issued[t.queue] = issued.get(t.queue, 0) + 1
    queues = [
        {
            "id": q.id,
            "name": q.name,
            "name_en": q.name_en,
            "waiting": state.waiting_count.get(q.id, 0),
            "issued": issued.get(q.id, 0),
            "paused": q.id in state.paused_queues,
            "pause_reason": state.paused_queues.get(q.id),
            "service_minutes": q.service_minutes,  # typical handling time, for wait estimates
        }
        for q in cfg.queues
    ]
    windows = []
    for wc in cfg.windows:
        ws = state.window(wc.number)
        cur = state.tickets.get(ws.current) if ws.current else None
        teller = cfg.teller(ws.teller) if ws.teller else None
        windows.append({
            "number": wc.number,
            "name": wc.name,
            "state": _window_state(ws.teller, ws.paused, cur),
            "teller": ws.teller,
            "teller_name": teller.name if teller else None,
            "current": cur.number if cur else None,
            "current_queue": cur.queue if cur else None,
            "queues": wc.queues,
            "held": [state.tickets[h].number for h in ws.held if h in state.tickets],
        })
    return {
        "branch": cfg.branch.code,
        "branch_name": cfg.branch.name,
        "day": state.day,
        "now": iso(now, cfg),
        "kiosk_open": state.kiosk_open,
        "waiting_total": state.waiting_total,
        "queues": queues,
        "windows": windows,
    }


def _window_state(teller: str | None, paused: bool, current: Ticket | None) -> str:
    if teller is None:
        return "closed"
    if paused:
        return "paused"
    return "serving" if current is not None else "open"
