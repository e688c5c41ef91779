"""The centre's measures (SPEC E) computed from a day's engine events.

Everything here reads only event dicts — the ones a box journals and the centre stores —
so the same functions measure a simulated day and a real one.

Definitions (docs/simulation.md):

* **wait** = first call − issue (``wait_s`` of the ticket's first ``ticket_called``);
  tickets never called (closed ``not_served`` at day end) have no wait and count against
  the target share;
* **served within target** = tickets first called within the target ÷ (tickets called +
  tickets never called); a no-show was called, so it counts by its wait;
* **utilisation** of a window = time with a called ticket (call → finish or no-show,
  recalls included) ÷ time a teller was logged in, both within the measured period;
* **queue length** = tickets waiting (issued or transferred in, not yet called or closed).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

from .stats import percentile

__all__ = ["Period", "WaitStats", "day_measures", "utilisation", "wait_stats", "windows"]

# SPEC E1's wait bands (minutes) and E5's exception thresholds.
BANDS = (("<2", 0.0, 120.0), ("2-5", 120.0, 300.0), ("5-10", 300.0, 600.0),
         (">10", 600.0, float("inf")))
EXCEPTIONS_MIN = (15, 30, 60)


@dataclass(frozen=True, slots=True)
class Period:
    """Tickets issued in [start, end) are measured; window time is clipped to it too."""

    start: float
    end: float
    tz: ZoneInfo


@dataclass(slots=True)
class WaitStats:
    """Waits of a group of tickets (seconds)."""

    waits: list[float] = field(default_factory=list)
    never_called: int = 0

    def summary(self, target_s: float) -> dict[str, Any]:
        w = sorted(self.waits)
        n = len(w)
        total = n + self.never_called
        out: dict[str, Any] = {
            "called": n,
            "never_called": self.never_called,
            "mean_wait_s": _r(fmean(w)) if w else None,
            "p50_wait_s": _r(percentile(w, 50)),
            "p90_wait_s": _r(percentile(w, 90)),
            "p95_wait_s": _r(percentile(w, 95)),
            "max_wait_s": _r(w[-1]) if w else None,
            "within_target": _r(sum(1 for x in w if x <= target_s) / total, 4) if total else None,
            "bands": {name: sum(1 for x in w if lo <= x < hi) for name, lo, hi in BANDS},
            "over_min": {str(m): sum(1 for x in w if x > m * 60) for m in EXCEPTIONS_MIN},
        }
        return out


def wait_stats(events: Iterable[Mapping[str, Any]], period: Period | None = None
               ) -> dict[str, dict[str, WaitStats]]:
    """Waits grouped ``{"all": {"": …}, "queue": {q: …}, "customer_type": {t: …},
    "hour": {h: …}}`` by the ticket's issue."""
    tickets: dict[str, tuple[str, str, str]] = {}
    groups: dict[str, dict[str, WaitStats]] = defaultdict(lambda: defaultdict(WaitStats))
    for e in events:
        kind = e["type"]
        if kind == "ticket_issued":
            if period is None or period.start <= e["at"] < period.end:
                hour = _hour(e["at"], period)
                tickets[e["ticket"]] = (e["queue"], e["customer_type"], hour)
        elif kind == "ticket_called" and e.get("call", 1) == 1 and e["ticket"] in tickets:
            for g in _groups(groups, tickets[e["ticket"]]):
                g.waits.append(e["wait_s"])
        elif kind == "ticket_closed" and e["ticket"] in tickets and e.get("was") == "waiting":
            for g in _groups(groups, tickets[e["ticket"]]):
                g.never_called += 1
    return groups


def _groups(groups: dict[str, dict[str, WaitStats]], key: tuple[str, str, str]
            ) -> tuple[WaitStats, ...]:
    q, t, h = key
    return groups["all"][""], groups["queue"][q], groups["customer_type"][t], groups["hour"][h]


def _hour(at: float, period: Period | None) -> str:
    tz = period.tz if period is not None else dt.UTC
    return f"{dt.datetime.fromtimestamp(at, tz).hour:02d}"


def day_measures(
    events: Sequence[Mapping[str, Any]], period: Period, target_s: float, every_s: float = 300.0,
) -> dict[str, Any]:
    """All measures of a day (see the module docstring); JSON-ready."""
    groups = wait_stats(events, period)
    counts = Counter(e["type"] for e in events if period.start <= e["at"] < period.end
                     or e["type"] == "ticket_closed")
    summary = groups["all"][""].summary(target_s)
    return {
        "period": {"start": period.start, "end": period.end},
        "target_wait_s": target_s,
        "customers": counts["ticket_issued"],
        "served": counts["ticket_finished"],
        "no_show": counts["ticket_no_show"],
        "not_served": sum(1 for e in events if e["type"] == "ticket_closed"
                          and e.get("state") == "not_served"),
        "wait": summary,
        "by_queue": _by(groups["queue"], target_s),
        "by_customer_type": _by(groups["customer_type"], target_s),
        "by_hour": _by(groups["hour"], target_s),
        "handle": handling(events, period),
        "windows": windows(events, period),
        "queue_length": queue_length(events, period, every_s),
        "ratings": ratings(events),
    }


def _by(groups: Mapping[str, WaitStats], target_s: float) -> dict[str, Any]:
    return {k: groups[k].summary(target_s) for k in sorted(groups)}


def handling(events: Iterable[Mapping[str, Any]], period: Period) -> dict[str, Any]:
    """Mean handling time (call → finish) per business."""
    per: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e["type"] == "ticket_finished" and period.start <= e["at"]:
            per[e["queue"]].append(e["handle_s"])
    return {q: {"served": len(v), "mean_handle_s": _r(fmean(v))} for q, v in sorted(per.items())}


def windows(events: Iterable[Mapping[str, Any]], period: Period) -> dict[str, Any]:
    """Per window: logged-in time, busy time, utilisation, customers finished."""
    since: dict[int, float] = {}
    busy_since: dict[int, float] = {}
    open_s: defaultdict[int, float] = defaultdict(float)
    busy_s: defaultdict[int, float] = defaultdict(float)
    served: Counter[int] = Counter()
    last = period.start
    for e in events:
        kind, at = e["type"], e["at"]
        last = max(last, at)
        w: int = e.get("window", 0)
        if kind == "teller_login":
            since[w] = at
        elif kind == "teller_logout" and w in since:
            open_s[w] += _clip(since.pop(w), at, period)
        elif kind == "ticket_called":
            busy_since[w] = at
        elif kind in ("ticket_finished", "ticket_no_show", "ticket_held", "ticket_transferred"):
            if w in busy_since:
                busy_s[w] += _clip(busy_since.pop(w), at, period)
            served[w] += kind == "ticket_finished"
    for w, at in since.items():
        open_s[w] += _clip(at, last, period)
    return {
        str(w): {
            "open_s": _r(open_s[w]), "busy_s": _r(busy_s[w]), "served": served[w],
            "utilisation": _r(busy_s[w] / open_s[w], 4) if open_s[w] else None,
        }
        for w in sorted(set(open_s) | set(busy_s))
    }


def utilisation(window_measures: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Busy time over logged-in time, all windows together."""
    opened = sum(m["open_s"] for m in window_measures.values())
    busy = sum(m["busy_s"] for m in window_measures.values())
    return busy / opened if opened else None


def _clip(a: float, b: float, period: Period) -> float:
    return max(0.0, min(b, period.end) - max(a, period.start))


def queue_length(events: Iterable[Mapping[str, Any]], period: Period, every_s: float
                 ) -> dict[str, Any]:
    """Waiting tickets per business sampled every ``every_s``, and the hourly average."""
    steps: list[tuple[float, str, int]] = []
    where: dict[str, str] = {}
    for e in events:
        kind = e["type"]
        if kind == "ticket_issued":
            where[e["ticket"]] = e["queue"]
            steps.append((e["at"], e["queue"], 1))
        elif (kind == "ticket_called" and not e.get("callback")) or (
            kind == "ticket_closed" and e.get("was") == "waiting"
        ):
            steps.append((e["at"], e["queue"], -1))
        elif kind == "ticket_transferred":
            if e.get("was") == "waiting":
                steps.append((e["at"], e["from_queue"], -1))
            steps.append((e["at"], e.get("to_queue") or e["from_queue"], 1))
    queues = sorted({q for _, q, _ in steps})
    return {
        "every_s": every_s,
        "start": period.start,
        "by_queue": {q: _sample([(t, d) for t, qq, d in steps if qq == q], period, every_s)
                     for q in queues},
        "total": _sample([(t, d) for t, _, d in steps], period, every_s),
        "hourly_mean": _hourly_mean([(t, d) for t, _, d in steps], period),
    }


def _sample(steps: list[tuple[float, int]], period: Period, every_s: float) -> list[int]:
    out, level, i = [], 0, 0
    t = period.start
    while t < period.end:
        while i < len(steps) and steps[i][0] <= t:
            level += steps[i][1]
            i += 1
        out.append(level)
        t += every_s
    return out


def _hourly_mean(steps: list[tuple[float, int]], period: Period) -> dict[str, float]:
    """Time-average number waiting per local hour of the period."""
    area: defaultdict[str, float] = defaultdict(float)
    length: defaultdict[str, float] = defaultdict(float)
    level, t = 0, period.start
    for at, d in [*steps, (period.end, 0)]:
        at = min(max(at, period.start), period.end)
        while t < at:
            hour_end = (t // 3600 + 1) * 3600  # whole hours: zones with whole-hour offsets
            seg = min(at, hour_end) - t
            h = _hour(t, period)
            area[h] += level * seg
            length[h] += seg
            t += seg
        level += d
    return {h: round(area[h] / length[h], 3) for h in sorted(length) if length[h]}


def ratings(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    scores = Counter(e["score"] for e in events if e["type"] == "ticket_rated")
    bad = sum(1 for e in events if e["type"] == "ticket_rated" and e.get("bad"))
    total = sum(scores.values())
    return {
        "rated": total,
        "scores": {str(s): scores[s] for s in sorted(scores, reverse=True)},
        "satisfaction": _r(1 - bad / total, 4) if total else None,
    }


def _r(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)
