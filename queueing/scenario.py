"""What a simulated day is made of: arrivals, service times, behaviour, staffing.

A scenario is read from a TOML or JSON table (see docs/simulation.md)::

    date = "2026-11-25"            # the business day; its kind (workday…) decides hours
    target_wait_min = 15           # the service-level target for "served within"

    [[arrivals]]                   # one stream per business and customer type
    queue = "A"
    customer_type = "vip"          # optional: default is the queue's own type
    per_hour = { "9" = 40, "10-12" = 55 }   # local hour (or range, end excluded) -> per hour

    [service.A]                    # per business: exponential | lognormal | empirical
    dist = "lognormal"
    mean_minutes = 4
    cv = 0.8

    [behaviour]
    no_show = 0.04                 # the customer is not there when called
    answer_recall = 0.5            # an absent customer answers each recall with this chance
    recall_every_s = 30
    rating = 0.6                   # share of served customers who rate
    scores = { "5" = 70, "4" = 20, "3" = 6, "2" = 3, "1" = 1 }

    [staffing.open]                # local hour (or range) -> windows open
    "8-12" = [1, 2, 3, 4, 5, 6]
    "12-14" = [1, 3, 5]
    [staffing.serves]              # optional: which businesses a window serves today
    "3" = { A = 3, B = 5 }
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from controller.config import Config

from .distributions import LogNormal, ServiceTime, parse_service
from .errors import ScenarioError

__all__ = [
    "Behaviour",
    "Scenario",
    "Staffing",
    "Stream",
    "default_scenario",
    "load_scenario",
    "open_hours",
    "open_spans",
    "parse_scenario",
]

HOURS = 24

# A typical branch's day (relative demand per opening hour, from 08:00): a morning peak,
# a lunch dip and an afternoon peak. Used only when no profile is given or learned.
_DAY_SHAPE = {8: 0.5, 9: 1.0, 10: 1.35, 11: 1.2, 12: 0.75, 13: 0.8, 14: 1.1, 15: 1.2,
              16: 0.9, 17: 0.5, 18: 0.4, 19: 0.3}


@dataclass(frozen=True, slots=True)
class Stream:
    """Customers of one business and customer type: ``per_hour[h]`` expected during local
    hour ``h``, arriving as a Poisson process over the part of that hour in which the
    business issues tickets (all of it when it is closed then: they are turned away)."""

    queue: str
    customer_type: str | None  # None: the queue's own type (what a plain ticket gets)
    per_hour: tuple[float, ...]  # 24 rates, customers per hour

    @property
    def expected(self) -> float:
        return sum(self.per_hour)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Customers' and tellers' behaviour at a call."""

    no_show: float = 0.03
    answer_recall: float = 0.5
    recall_every_s: float = 30.0
    max_recalls: int = 3  # used only when the branch's recalls never discard by themselves
    rating: float = 0.6
    scores: tuple[tuple[int, float], ...] = ((5, 70.0), (4, 20.0), (3, 6.0), (2, 3.0), (1, 1.0))


@dataclass(frozen=True, slots=True)
class Staffing:
    """Windows open per local hour, and optionally which businesses each serves."""

    open: tuple[tuple[int, ...], ...]  # 24 tuples of window numbers
    serves: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    serve_out: bool = True  # after the last staffed hour, serve whoever is still waiting

    def window_hours(self) -> int:
        return sum(len(ws) for ws in self.open)

    def with_hour(self, hour: int, windows: Sequence[int]) -> Staffing:
        hours = list(self.open)
        hours[hour] = tuple(sorted(windows))
        return replace(self, open=tuple(hours))


@dataclass(frozen=True, slots=True)
class Scenario:
    date: dt.date
    arrivals: tuple[Stream, ...]
    service: Mapping[str, ServiceTime]
    staffing: Staffing
    behaviour: Behaviour = Behaviour()
    target_wait_s: float = 900.0
    start_s: float = 0.0  # arrivals only in [start_s, end_s) seconds after local midnight
    end_s: float = HOURS * 3600.0

    def scaled(self, factor: float) -> Scenario:
        """The same day with every arrival rate multiplied by ``factor``."""
        streams = tuple(
            replace(s, per_hour=tuple(r * factor for r in s.per_hour)) for s in self.arrivals
        )
        return replace(self, arrivals=streams)

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "target_wait_min": self.target_wait_s / 60,
            "arrivals": [
                {"queue": s.queue, "customer_type": s.customer_type,
                 "per_hour": {str(h): r for h, r in enumerate(s.per_hour) if r}}
                for s in self.arrivals
            ],
            "service": {q: d.to_json() for q, d in self.service.items()},
            "behaviour": {
                "no_show": self.behaviour.no_show,
                "answer_recall": self.behaviour.answer_recall,
                "recall_every_s": self.behaviour.recall_every_s,
                "max_recalls": self.behaviour.max_recalls,
                "rating": self.behaviour.rating,
                "scores": {str(s): w for s, w in self.behaviour.scores},
            },
            "staffing": {
                "open": {str(h): list(ws) for h, ws in enumerate(self.staffing.open) if ws},
                "serves": {str(w): dict(q) for w, q in self.staffing.serves.items()},
                "serve_out": self.staffing.serve_out,
            },
        }


# --- defaults from a branch config ----------------------------------------------------------


def open_hours(config: Config, day: dt.date, queue: str | None = None) -> list[int]:
    """Local hours (0–23) during which the branch (or ``queue``) issues tickets on ``day``."""
    spans = open_spans(config, day, queue) if queue else _branch_spans(config, day)
    return [h for h in range(HOURS) if any(a < (h + 1) * 3600 and b > h * 3600 for a, b in spans)]


def default_scenario(config: Config, day: dt.date, customers: float | None = None) -> Scenario:
    """A plausible day for ``config``: ``customers`` expected arrivals (default: 75 % of
    what every window could serve over the opening hours) shaped like a typical branch
    day, every window open, log-normal services (cv 0.8) around each business's
    ``service_minutes``."""
    weights = _queue_mix(config)
    if customers is None:
        mean_min = sum(weights[q.id] * q.service_minutes for q in config.queues)
        open_h = sum(_open_fraction(config, day, None, h) for h in open_hours(config, day))
        customers = 0.75 * len(config.windows) * open_h * 60 / mean_min
    streams = []
    for q in config.queues:
        hours = open_hours(config, day, q.id)
        shape = {h: _DAY_SHAPE.get(h, 0.3) * _open_fraction(config, day, q.id, h) for h in hours}
        total = sum(shape.values())
        if not total or not weights[q.id]:
            continue
        rates = [0.0] * HOURS
        for h, w in shape.items():
            rates[h] = customers * weights[q.id] * w / total
        streams.append(Stream(q.id, None, tuple(rates)))
    branch_hours = set(open_hours(config, day))
    every = tuple(w.number for w in config.windows)
    staffing = Staffing(tuple(every if h in branch_hours else () for h in range(HOURS)))
    service = {q.id: LogNormal(q.service_minutes * 60, 0.8) for q in config.queues}
    return Scenario(day, tuple(streams), service, staffing)


def _queue_mix(config: Config) -> dict[str, float]:
    """Default business mix: the first untyped queue (personal banking) takes the bulk."""
    raw = {}
    first_plain = next((q.id for q in config.queues if q.customer_type is None), None)
    for q in config.queues:
        raw[q.id] = 6.0 if q.id == first_plain else 1.0
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()}


def _open_fraction(config: Config, day: dt.date, queue: str | None, hour: int) -> float:
    """The share of local hour ``hour`` during which ``queue`` (the branch) issues tickets."""
    lo, hi = hour * 3600.0, hour * 3600.0 + 3600.0
    spans = open_spans(config, day, queue) if queue else _branch_spans(config, day)
    return sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in spans) / 3600


def _branch_spans(config: Config, day: dt.date) -> list[tuple[float, float]]:
    kind = config.calendar.kind(day)
    return [(_minutes(s[:5]) * 60.0, _minutes(s[6:]) * 60.0) for s in getattr(config.hours, kind)]


def open_spans(config: Config, day: dt.date, queue: str) -> list[tuple[float, float]]:
    """Seconds after local midnight during which ``queue`` issues tickets on ``day``."""
    q = config.queue(queue)
    kind = config.calendar.kind(day)
    if q is None or (q.days == "workdays" and kind != "workday") or (
        q.days == "weekends" and kind == "workday"
    ):
        return []
    spans = getattr(q.hours or config.hours, kind)
    out = []
    for span in spans:
        start, end = span.split("-")
        out.append((_minutes(start) * 60.0, _minutes(end) * 60.0))
    return out


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


# --- reading a scenario file ---------------------------------------------------------------


def load_scenario(path: str | Path, config: Config, day: dt.date | None = None) -> Scenario:
    """Read a TOML or JSON scenario; missing parts default from ``config``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError("(file)", f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError("(syntax)", f"{path}: {exc}") from None
    return parse_scenario(data, config, day)


def parse_scenario(data: Mapping[str, Any], config: Config, day: dt.date | None = None) -> Scenario:
    """Validate a scenario table against ``config``; parts left out come from
    :func:`default_scenario`. Raises :class:`ScenarioError` naming the key."""
    known = {"date", "target_wait_min", "customers", "arrivals", "service", "behaviour",
             "staffing"}
    for key in data:
        if key not in known:
            raise ScenarioError(str(key), "unknown key")
    date = day or _date(data.get("date"))
    customers = data.get("customers")
    base = default_scenario(config, date, None if customers is None else _number(customers,
                                                                               "customers"))
    arrivals = base.arrivals
    if "arrivals" in data:
        arrivals = _streams(data["arrivals"], config)
    service = dict(base.service)
    for q, raw in _table(data.get("service", {}), "service").items():
        if config.queue(q) is None:
            raise ScenarioError(f"service.{q}", "unknown queue")
        service[q] = parse_service(_table(raw, f"service.{q}"), f"service.{q}")
    target = _number(data.get("target_wait_min", 15), "target_wait_min") * 60
    return Scenario(
        date, arrivals, service,
        _staffing(data.get("staffing"), config, base.staffing),
        _behaviour(data.get("behaviour", {})), target,
    )


def _date(value: Any) -> dt.date:
    if value is None:
        return dt.date(2026, 11, 25)
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ScenarioError("date", f"{value!r} is not a date like 2026-11-25") from None


def _streams(raw: Any, config: Config) -> tuple[Stream, ...]:
    if not isinstance(raw, list):
        raise ScenarioError("arrivals", "expected a list of streams ([[arrivals]])")
    types = {t.id for t in config.customer_types}
    out = []
    for i, item in enumerate(raw):
        key = f"arrivals.{i}"
        item = _table(item, key)
        extra = set(item) - {"queue", "customer_type", "per_hour"}
        if extra:
            raise ScenarioError(f"{key}.{sorted(extra)[0]}", "unknown key")
        q = config.queue(str(item.get("queue")))
        if q is None:
            raise ScenarioError(f"{key}.queue", f"unknown queue {item.get('queue')!r}")
        ctype = item.get("customer_type")
        if ctype is not None and ctype not in types:
            raise ScenarioError(f"{key}.customer_type", f"unknown customer type {ctype!r}")
        if ctype == (q.customer_type or "normal"):
            ctype = None
        out.append(Stream(q.id, ctype, _per_hour(item.get("per_hour"), f"{key}.per_hour")))
    return tuple(out)


def _per_hour(raw: Any, key: str) -> tuple[float, ...]:
    rates = [0.0] * HOURS
    for hours, value in _table(raw, key).items():
        rate = _number(value, f"{key}.{hours}", allow_zero=True)
        for h in _hour_range(str(hours), f"{key}.{hours}"):
            rates[h] = rate
    return tuple(rates)


def _hour_range(text: str, key: str) -> range:
    lo, sep, hi = text.partition("-")
    try:
        start = int(lo)
        end = int(hi) if sep else start + 1
    except ValueError:
        raise ScenarioError(key, "an hour is 0–23, a range like 9-12 (end excluded)") from None
    if not 0 <= start < end <= HOURS:
        raise ScenarioError(key, "an hour is 0–23, a range like 9-12 (end excluded)")
    return range(start, end)


def _staffing(raw: Any, config: Config, base: Staffing) -> Staffing:
    if raw is None:
        return base
    raw = _table(raw, "staffing")
    extra = set(raw) - {"open", "serves", "serve_out"}
    if extra:
        raise ScenarioError(f"staffing.{sorted(extra)[0]}", "unknown key")
    known = {w.number for w in config.windows}
    opened = list(base.open)
    if "open" in raw:
        opened = [()] * HOURS
        for hours, windows in _table(raw["open"], "staffing.open").items():
            key = f"staffing.open.{hours}"
            if not isinstance(windows, list) or any(w not in known for w in windows):
                raise ScenarioError(key, f"expected a list of window numbers from {sorted(known)}")
            for h in _hour_range(str(hours), key):
                opened[h] = tuple(sorted(set(windows)))
    serves: dict[int, dict[str, int]] = {}
    for w, queues in _table(raw.get("serves", {}), "staffing.serves").items():
        key = f"staffing.serves.{w}"
        if not str(w).isdigit() or int(w) not in known:
            raise ScenarioError(key, "unknown window")
        table = _table(queues, key)
        for q, prio in table.items():
            if config.queue(q) is None or not isinstance(prio, int):
                raise ScenarioError(f"{key}.{q}", "expected a known queue = integer priority")
        serves[int(w)] = dict(table)
    serve_out = raw.get("serve_out", True)
    if not isinstance(serve_out, bool):
        raise ScenarioError("staffing.serve_out", "expected true or false")
    return Staffing(tuple(opened), serves, serve_out)


def _behaviour(raw: Any) -> Behaviour:
    raw = _table(raw, "behaviour")
    fields = {"no_show", "answer_recall", "recall_every_s", "max_recalls", "rating", "scores"}
    extra = set(raw) - fields
    if extra:
        raise ScenarioError(f"behaviour.{sorted(extra)[0]}", "unknown key")
    b = Behaviour()
    kw: dict[str, Any] = {}
    for name in ("no_show", "answer_recall", "rating"):
        if name in raw:
            kw[name] = _share(raw[name], f"behaviour.{name}")
    if "recall_every_s" in raw:
        kw["recall_every_s"] = _number(raw["recall_every_s"], "behaviour.recall_every_s")
    if "max_recalls" in raw:
        n = raw["max_recalls"]
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 20:
            raise ScenarioError("behaviour.max_recalls", "expected an integer 0–20")
        kw["max_recalls"] = n
    if "scores" in raw:
        table = _table(raw["scores"], "behaviour.scores")
        scores = []
        for s, w in table.items():
            if not str(s).isdigit():
                raise ScenarioError(f"behaviour.scores.{s}", "a score is a number 1–9")
            scores.append((int(s), _number(w, f"behaviour.scores.{s}", allow_zero=True)))
        if not sum(w for _, w in scores):
            raise ScenarioError("behaviour.scores", "the weights add up to zero")
        kw["scores"] = tuple(sorted(scores, reverse=True))
    return replace(b, **kw)


def _table(raw: Any, key: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ScenarioError(key, "expected a table")
    return {str(k): v for k, v in raw.items()}


def _number(value: Any, key: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ScenarioError(key, f"expected a {'non-negative' if allow_zero else 'positive'} "
                                 f"number, got {value!r}")
    return float(value)


def _share(value: Any, key: str) -> float:
    v = _number(value, key, allow_zero=True)
    if v > 1:
        raise ScenarioError(key, "a share is between 0 and 1")
    return v
