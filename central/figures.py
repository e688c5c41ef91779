"""A branch's figures for today, folded from its journal events in seq order (pure).

The centre keeps, per branch, the box engine's own :class:`~controller.engine.State`
rebuilt from the events it stored (``State.apply`` never reads a configuration, so the
centre's copy is exactly the box's), plus running counters the dashboard needs:

* **issued** — tickets issued today; **waiting** — tickets waiting now; **served** —
  tickets finished; **no_show**, **not_served** — tickets that ended so.
* **wait** of a ticket = its call time − its issue time, taken from the *latest*
  ``ticket_called`` (a customer called back after a no-show waited until that call).
  **avg_wait_s** is the mean over tickets called today; **longest wait** is the larger
  of the longest such wait and the time the oldest ticket still waiting has waited so far.
* **wait distribution** — called tickets by wait: ≤ 2 min, 2–5 min, 5–10 min, > 10 min
  (the SPEC's "<2, 3–5, 6–10, >10 min", with each boundary in the lower band).
* **hourly arrivals** — tickets issued per local hour (0–23).
* **waiting over the day** — the number waiting at the end of each 15-minute slot of the
  local day (96 slots); a slot without events keeps the previous slot's number.

Times are the box's (event ``at``); local hours use the branch's UTC offset, which the
centre reads from the box's live snapshot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from controller.engine.state import State

from .masking import mask_name

__all__ = ["SLOTS", "SLOT_S", "WAIT_BANDS", "WAIT_BAND_WORDS", "BranchDay", "utc_offset"]

SLOT_S = 15 * 60
SLOTS = 24 * 3600 // SLOT_S
WAIT_BANDS = (("le2", 120.0), ("2to5", 300.0), ("5to10", 600.0), ("gt10", float("inf")))
# The bands' names on every page and export, Chinese (the seed's E1 wording) and English
# saying the same minutes: a wait is counted in the minute it has begun, so 2 min 30 s is
# in "3-5分钟" / "3–5 min". The one table the dashboard's chart and the reports both use.
WAIT_BAND_WORDS = (("2分钟以内", "Up to 2 min"), ("3-5分钟", "3–5 min"),
                   ("6-10分钟", "6–10 min"), ("10分钟以上", "Over 10 min"))
OPEN = ("waiting", "called", "held")


def _band(wait: float) -> str:
    for name, top in WAIT_BANDS:
        if wait <= top:
            return name
    return WAIT_BANDS[-1][0]


def utc_offset(iso: str | None, default: float = 8 * 3600) -> float:
    """Seconds east of UTC of an ISO time such as ``2026-11-25T10:00:00+08:00``."""
    if not iso:
        return default
    try:
        off = dt.datetime.fromisoformat(iso).utcoffset()
    except ValueError:
        return default
    return off.total_seconds() if off is not None else default


@dataclass
class BranchDay:
    """Today's figures of one branch (not thread-safe: one owner)."""

    offset: float = 8 * 3600  # the branch's UTC offset, seconds
    state: State = field(default_factory=State)
    day: str = ""
    waits: dict[str, float] = field(default_factory=dict)  # ticket id -> latest call's wait
    hourly: list[int] = field(default_factory=lambda: [0] * 24)
    series: dict[int, int] = field(default_factory=dict)  # slot -> waiting at its end
    events: int = 0
    wait_sum: float = 0.0  # of self.waits, kept as they change (a dashboard reads often)
    wait_max: float = 0.0
    hist: dict[str, int] = field(default_factory=lambda: {n: 0 for n, _ in WAIT_BANDS})

    def fold(self, event: dict[str, Any]) -> None:
        """Apply one event (in seq order)."""
        kind = event.get("type")
        if kind == "day_opened" and event.get("day") != self.day:
            self._new_day(str(event.get("day")))
        elif not self.day and event.get("day"):
            self.day = str(event["day"])
        self.state.apply(event)
        self.events += 1
        at = float(event.get("at") or 0.0)
        if kind == "ticket_issued":
            self.hourly[self._local(at) // 3600] += 1
        elif kind == "ticket_called" and event.get("ticket"):
            self._wait(event["ticket"], float(event.get("wait_s") or 0.0))
        if at:
            self.series[self._local(at) // SLOT_S] = self.state.waiting_total

    def _wait(self, ticket: str, wait: float) -> None:
        old = self.waits.get(ticket)
        if old is not None:
            self.wait_sum -= old
            self.hist[_band(old)] -= 1
        self.waits[ticket] = wait
        self.wait_sum += wait
        self.wait_max = max(self.wait_max, wait)
        self.hist[_band(wait)] += 1

    def _new_day(self, day: str) -> None:
        self.day = day
        self.waits.clear()
        self.wait_sum = self.wait_max = 0.0
        self.hist = {n: 0 for n, _ in WAIT_BANDS}
        self.hourly = [0] * 24
        self.series.clear()

    def _local(self, at: float) -> int:
        return int((at + self.offset) % 86400)

    # --- reading -----------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """Issued, waiting, served, … and the wait figures (without the open tickets')."""
        by_state: dict[str, int] = {}
        for t in self.state.tickets.values():
            by_state[t.state] = by_state.get(t.state, 0) + 1
        oldest = min((t.issued_at for t in self.state.waiting.values()), default=None)
        return {
            "day": self.day,
            "issued": len(self.state.tickets),
            "waiting": self.state.waiting_total,
            "serving": by_state.get("called", 0),
            "served": by_state.get("finished", 0),
            "no_show": by_state.get("no_show", 0),
            "not_served": by_state.get("not_served", 0),
            "called": len(self.waits),
            "wait_sum_s": round(self.wait_sum, 3),
            "max_called_wait_s": round(self.wait_max, 3),
            "oldest_waiting_at": oldest,
            "wait_hist": dict(self.hist),
            "paused": dict(self.state.paused_queues),
        }

    def waiting_series(self, until: float | None = None) -> list[int | None]:
        """Waiting at the end of each slot of the day, carried forward; None before the
        first event and after ``until`` (box time), so the line stops at now."""
        out: list[int | None] = [None] * SLOTS
        last: int | None = None
        stop = SLOTS - 1 if until is None else self._local(until) // SLOT_S
        for slot in range(SLOTS):
            if slot in self.series:
                last = self.series[slot]
            if slot <= stop:
                out[slot] = last
        return out

    def windows(self, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each window's state, teller and current ticket from the folded events; the
        names and the list of windows come from the box's live snapshot (``listed``)."""
        s = self.state
        rows = {int(w["number"]): dict(w) for w in listed if w.get("number") is not None}
        for number in s.windows:
            rows.setdefault(number, {"number": number, "name": f"{number}号窗口"})
        for number, row in rows.items():
            ws = s.windows.get(number)
            if ws is None:
                continue
            current = s.tickets.get(ws.current) if ws.current else None
            if row.get("teller") != ws.teller:
                row["teller_name"] = ws.teller
            row.update(teller=ws.teller, current=current.number if current else None,
                       current_queue=current.queue if current else None,
                       state="closed" if ws.teller is None else "paused" if ws.paused
                       else "serving" if current else "open")
        return [rows[n] for n in sorted(rows)]

    def queues(self, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Waiting, issued and pause per business from the folded events; names from
        the live snapshot (``listed``)."""
        s = self.state
        issued: dict[str, int] = {}
        for t in s.tickets.values():
            issued[t.queue] = issued.get(t.queue, 0) + 1
        rows = {q["id"]: dict(q) for q in listed if q.get("id")}
        for qid in set(issued) | set(s.waiting_count) | set(s.paused_queues):
            rows.setdefault(qid, {"id": qid, "name": qid})
        for qid, row in rows.items():
            row.update(waiting=s.waiting_count.get(qid, 0), issued=issued.get(qid, 0),
                       paused=qid in s.paused_queues, pause_reason=s.paused_queues.get(qid))
        return list(rows.values())

    def vips(self, queue_names: dict[str, str]) -> list[dict[str, Any]]:
        """VIP customers waiting or being served (D3), names masked."""
        out: list[dict[str, Any]] = []
        for t in self.state.tickets.values():
            if t.state not in OPEN or not (t.vip or t.stars or t.customer_type == "vip"):
                continue
            out.append({
                "number": t.number, "queue": t.queue,
                "queue_name": queue_names.get(t.queue, t.queue),
                "name": mask_name(t.vip_name) or "", "stars": t.stars,
                "customer_type": t.customer_type, "state": t.state, "window": t.window,
                "issued_at": t.issued_at, "called_at": t.called_at,
            })
        out.sort(key=lambda v: float(v["issued_at"]))
        return out
