"""The staff views: a window's soft-caller panel (B6) and the lobby manager's overview (D3).

Both only read. Changes go through the existing command routes (``/api/windows/{n}/…``,
``/api/queues/{q}/pause``), which :mod:`controller.web.auth` guards; the panel reads its
window as :data:`~controller.web.auth.TellerWindow`, checked against the teller's session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter

from ..config import Config
from ..engine import State, Ticket
from ..engine.select import eligible, select
from ..engine.state import OPEN_STATES
from ..errors import Refused
from ..notices import notices
from ..views import iso
from .auth import TellerWindow
from .deps import BoxDep
from .events import HubDep

__all__ = ["HISTORY_S", "WAITING_SHOWN", "lobby_alerts", "lobby_overview", "router",
           "teller_today", "window_panel"]

HISTORY_S = 3600  # the lobby manager's page shows, on login, the alerts of the last hour

WAITING_SHOWN = 30  # the soft caller lists at most this many numbers waiting for a window

def _brief(t: Ticket, cfg: Config, now: float) -> dict[str, Any]:
    q = cfg.queue(t.queue)
    start = t.called_at if t.state == "called" and t.called_at else now
    return {
        "number": t.number, "queue": t.queue,
        "queue_name": q.name if q else t.queue, "queue_name_en": q.name_en if q else t.queue,
        "state": t.state, "customer_type": t.customer_type, "stars": t.stars,
        "vip_name": t.vip_name, "manager": t.manager, "window": t.window,
        "appointment": t.appointment,
        "issued_at": iso(t.issued_at, cfg), "called_at": iso(t.called_at, cfg),
        "waited_s": round(start - t.issued_at), "recalls": t.recalls, "calls": t.calls,
    }


def teller_today(state: State, teller: str | None) -> dict[str, Any] | None:
    """A teller's own figures of the day: customers served, their mean handling time
    (called to finished, seconds), and the ratings they were given (count, mean score)."""
    if teller is None:
        return None
    mine = [t for t in state.tickets.values() if t.teller == teller and t.state == "finished"]
    handled = [t.finished_at - t.called_at for t in mine
               if t.finished_at is not None and t.called_at is not None]
    rated = [t.rated for t in mine if t.rated is not None]
    return {"served": len(mine),
            "avg_handle_s": round(sum(handled) / len(handled)) if handled else None,
            "ratings": len(rated),
            "avg_rating": round(sum(rated) / len(rated), 1) if rated else None}


def _waiting_numbers(pool: list[Ticket]) -> list[str]:
    """The numbers waiting for a window, the ones put in front first, then by issue order
    (at most :data:`WAITING_SHOWN`)."""
    ordered = sorted(pool, key=lambda t: (t.front == 0, t.front, t.order))
    return [t.number for t in ordered[:WAITING_SHOWN]]


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
        "waiting_numbers": _waiting_numbers(pool),
        "today": teller_today(state, ws.teller),
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


def lobby_alerts(state: State, cfg: Config, notices: Iterable[dict[str, Any]], now: float
                 ) -> dict[str, Any]:
    """What the lobby manager is shown on login: whether the branch is over its waiting
    threshold now, and the alerts of the last :data:`HISTORY_S` seconds, newest first — the
    queue alert (its latest raising), bad ratings, and the notices the box holds (the
    centre's alerts, disk space; ``notices``: the board's latest few), each with its time
    as ``HH:MM`` in the branch's zone."""
    since = now - HISTORY_S
    limit = cfg.thresholds.lobby_alert_waiting
    items = [*_queue_alert(state, limit, since), *_bad_ratings(state, cfg, since),
             *_notices(notices, since, now)]
    items.sort(key=lambda item: item[0], reverse=True)
    return {
        "waiting_total": state.waiting_total, "threshold": limit,
        "over_threshold": state.lobby_alert_at is not None,
        "history": [{**item, "at": iso(at, cfg), "time": _hhmm(at, cfg)} for at, item in items],
    }


Dated = tuple[float, dict[str, Any]]  # an alert of the lobby's history and when it was


def _queue_alert(state: State, limit: int, since: float) -> list[Dated]:
    at = state.lobby_alert_last
    if at is None or at < since:
        return []
    return [(at, {"kind": "lobby_alert", "title": "排队提醒 Queue alert",
                  "message": f"请注意,目前网点排队等待人数已经超过{limit}个。",
                  "message_en": f"More than {limit} customers are waiting in the branch."})]


def _bad_ratings(state: State, cfg: Config, since: float) -> list[Dated]:
    out = []
    for t in state.tickets.values():
        lvl = cfg.rating_level(t.rated) if t.rated is not None else None
        if lvl is None or not lvl.bad or t.finished_at is None or t.finished_at < since:
            continue
        teller = cfg.teller(t.teller) if t.teller else None
        who = teller.name if teller else (t.teller or "")
        out.append((t.finished_at, {
            "kind": "bad_rating", "title": "差评提醒 Bad rating",
            "message": f"{t.window}号窗口 柜员{who} 办理的 {t.number} 号客户"
                       f"评价为“{lvl.name}”。",
            "message_en": f"Window {t.window}: {t.number} rated "
                          f"\"{lvl.name_en or lvl.name}\"."}))
    return out


def _notices(notices: Iterable[dict[str, Any]], since: float, now: float) -> list[Dated]:
    """The board's notices of the last hour (one without a time: taken as now)."""
    out = []
    for n in notices:
        at = n.get("at")
        when = float(at) if isinstance(at, int | float) else now
        if when >= since:
            out.append((when, {"kind": str(n.get("kind") or "notice"), "level": n.get("level"),
                               "title": n.get("title") or "中心提醒 Centre alert",
                               "message": n.get("message") or "",
                               "message_en": n.get("message_en") or ""}))
    return out


def _hhmm(ts: float, cfg: Config) -> str:
    return dt.datetime.fromtimestamp(ts, cfg.tz).strftime("%H:%M")


router = APIRouter(tags=["screens"])


@router.get("/api/windows/{n}/panel")
async def panel(n: TellerWindow, box: BoxDep, hub: HubDep) -> dict[str, Any]:
    """The soft caller's view of window n (needs that window's teller session)."""
    await hub.settled()
    return window_panel(box.engine.state, box.config, n, box.clock.now())


@router.get("/api/lobby/overview")
async def overview(box: BoxDep, hub: HubDep) -> dict[str, Any]:
    """The lobby manager's view (needs a lobby-manager session)."""
    await hub.settled()
    return lobby_overview(box.engine.state, box.config, box.clock.now())


@router.get("/api/lobby/alerts")
async def alerts(box: BoxDep, hub: HubDep) -> dict[str, Any]:
    """The lobby manager's alerts on login: over the threshold now, and the last hour's
    (needs a lobby-manager session)."""
    await hub.settled()
    return lobby_alerts(box.engine.state, box.config, notices(box).recent, box.clock.now())
