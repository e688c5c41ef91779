"""JSON views of the engine's state, shared by the HTTP API and the uplink's live snapshot."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from typing import Any

from protocols.appointment import wait_minutes

from .config import Config
from .engine import State, Ticket
from .engine.select import ahead_of

__all__ = ["RECENT_SERVICES", "ServiceTimes", "expected_wait", "iso", "service_minutes",
           "status_view", "ticket_view"]

# how many of a business's latest services of the day its handling time is averaged over
RECENT_SERVICES = 10
LOOK_BACK = 500  # the latest tickets of the day searched for those services (a bound per answer)


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


def service_minutes(state: State, cfg: Config) -> dict[str, float]:
    """Each business's typical handling time in minutes: the mean of its latest
    :data:`RECENT_SERVICES` services (called to finished) among the day's latest
    :data:`LOOK_BACK` tickets, else its configured ``service_minutes`` (none served
    there). The kiosk, the printed ticket and the public status (through the live snapshot)
    estimate waits with it (:func:`expected_wait`; the box keeps the same figure from its
    events, :class:`ServiceTimes`, so that a ticket answer does not scan)."""
    served: dict[str, list[tuple[float, float]]] = {}
    # The day's latest tickets only (issue order, newest first): a ticket answer must not
    # cost a pass over the whole day (the HTTP bench: a day of tens of thousands).
    for t in itertools.islice(reversed(state.tickets.values()), LOOK_BACK):
        if t.state == "finished" and t.called_at is not None and t.finished_at is not None \
                and t.finished_at > t.called_at:
            served.setdefault(t.queue, []).append((t.finished_at, t.finished_at - t.called_at))
    out = {}
    for q in cfg.queues:
        latest = sorted(served.get(q.id, []))[-RECENT_SERVICES:]
        out[q.id] = (round(sum(s for _, s in latest) / len(latest) / 60, 1) if latest
                     else q.service_minutes)
    return out


# a business's services, in the order they finished: (finished at, seconds, order, ticket)
Served = dict[str, list[tuple[float, float, int, str]]]

# events about a ticket that leave its service as it was (a delivery can come after the
# ticket was served: it was called while its printing was being recorded)
_KEEPS = frozenset({"ticket_rated", "ticket_delivered", "ticket_print_failed",
                    "ticket_recalled", "ticket_front"})


def _served(t: Ticket) -> tuple[float, float, int, str] | None:
    if t.state == "finished" and t.called_at is not None and t.finished_at is not None \
            and t.finished_at > t.called_at:
        return (t.finished_at, t.finished_at - t.called_at, t.order, t.id)
    return None


def _scan(state: State) -> Served:
    """The services among the day's latest LOOK_BACK tickets, by business."""
    served: Served = {}
    for t in itertools.islice(reversed(state.tickets.values()), LOOK_BACK):
        if (service := _served(t)) is not None:
            served.setdefault(t.queue, []).append(service)
    for services in served.values():
        services.sort()
    return served


class ServiceTimes:
    """:func:`service_minutes` of one box's state, kept up to date from its events (a box
    listener, :meth:`on_events`), so that a ticket answer costs the same however long the
    queue is (the HTTP bench: with 1,000 waiting, scanning the latest LOOK_BACK tickets,
    none of them served, on every answer cost as much as the engine).

    It scans once (the first time, and for a new state: another day, a rebuild, another
    configuration); then each ``ticket_finished`` of one of the day's latest LOOK_BACK
    tickets adds its service in finishing order, and an answer reads each business's latest
    services back from the end, skipping those whose ticket has left the latest LOOK_BACK
    since (forgotten once more than RECENT_SERVICES were skipped, or a business holds
    2 × LOOK_BACK). Any other event about a ticket counted (but a rating, a delivery...)
    makes it scan again, so the figure is always the scan's (tests/test_kiosk_wait.py
    compares them over a random day)."""

    def __init__(self) -> None:
        self.state: State | None = None
        self.cfg: Config | None = None
        self.day = ""
        self.served: Served = {}
        self.ids: set[str] = set()  # tickets whose service is counted

    def minutes(self, state: State, cfg: Config) -> dict[str, float]:
        """What :func:`service_minutes` answers for ``state`` now."""
        if state is not self.state or cfg is not self.cfg or state.day != self.day:
            self.state, self.cfg, self.day = state, cfg, state.day
            self.served = _scan(state)
            self.ids = {x[3] for services in self.served.values() for x in services}
        first = len(state.tickets) - LOOK_BACK  # the oldest ticket still looked at
        out = {}
        for q in cfg.queues:
            latest: list[float] = []
            skipped = 0
            for _, seconds, order, _ in reversed(self.served.get(q.id, ())):
                if order >= first:
                    latest.append(seconds)
                    if len(latest) == RECENT_SERVICES:
                        break
                else:
                    skipped += 1
            if skipped > RECENT_SERVICES:  # many left the window: forget them (once each)
                self._prune(q.id, first)
            latest.reverse()  # summed in the scan's order: the same rounding
            out[q.id] = (round(sum(latest) / len(latest) / 60, 1) if latest
                         else q.service_minutes)
        return out

    def on_events(self, events: list[dict[str, Any]]) -> None:
        """Box listener: count each service as it finishes."""
        state = self.state
        if state is None:
            return
        for e in events:
            tid = e.get("ticket")
            if e["type"] == "ticket_finished":
                t = state.tickets.get(tid) if isinstance(tid, str) else None
                # (already counted when a scan ran between the engine and its journal; a
                # ticket no longer among the latest LOOK_BACK never will be again)
                if t is not None and t.id not in self.ids and (x := _served(t)) is not None \
                        and t.order >= len(state.tickets) - LOOK_BACK:
                    services = self.served.setdefault(t.queue, [])
                    bisect.insort(services, x)
                    self.ids.add(t.id)
                    if len(services) > 2 * LOOK_BACK:
                        self._prune(t.queue, len(state.tickets) - LOOK_BACK)
            elif e["type"] == "day_opened" or (tid in self.ids and e["type"] not in _KEEPS):
                self.state = None  # a counted service may have changed: scan again

    def _prune(self, queue: str, first: int) -> None:
        kept = []
        for x in self.served.get(queue, ()):
            if x[2] >= first:
                kept.append(x)
            else:
                self.ids.discard(x[3])
        self.served[queue] = kept


def expected_wait(state: State, cfg: Config, queue: str, ahead: int,
                  services: ServiceTimes | None = None) -> int:
    """About how many minutes a customer with ``ahead`` before them waits at ``queue``: the
    public status's estimate (:func:`protocols.appointment.wait_minutes`) with the
    business's recent handling time (from ``services`` when given: the box's, kept up to
    date), shared by its windows open now."""
    windows_open = sum(1 for w in cfg.windows if queue in w.queues and state.window(w.number).open)
    minutes = (services.minutes(state, cfg) if services is not None
               else service_minutes(state, cfg)).get(queue)
    if minutes is None:
        return 0
    return wait_minutes(ahead, minutes, windows_open)


def status_view(state: State, cfg: Config, now: float) -> dict[str, Any]:
    """Waiting per queue, current ticket per window, windows open or paused (SPEC B8, D2)."""
    issued: dict[str, int] = {}
    for t in state.tickets.values():
        issued[t.queue] = issued.get(t.queue, 0) + 1
    minutes = service_minutes(state, cfg)
    queues = [
        {
            "id": q.id,
            "name": q.name,
            "name_en": q.name_en,
            "waiting": state.waiting_count.get(q.id, 0),
            "issued": issued.get(q.id, 0),
            "paused": q.id in state.paused_queues,
            "pause_reason": state.paused_queues.get(q.id),
            "service_minutes": minutes[q.id],  # recent handling time, for wait estimates
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
            # bus addresses, so a page can say "3号窗口评价器" for the device "evaluator.3"
            "devices": {"keypad": wc.keypad, "display": wc.display, "evaluator": wc.evaluator},
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
