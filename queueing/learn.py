"""Learning a scenario from a branch's history: the events the centre already stores.

Interface: any iterable of journal-style event dicts (one branch), e.g. the centre's
stored rows or a box journal read back. Used fields:

====================  ======================================================================
event ``type``        fields read
====================  ======================================================================
``ticket_issued``     ``at`` (epoch s), ``day`` (business day, optional), ``queue``,
                      ``customer_type``
``ticket_called``     ``queue``, ``call`` (1 = first call), ``wait_s``
``ticket_finished``   ``queue``, ``handle_s``
``ticket_recalled``   ``ticket`` (optional: absence at the call, answering recalls)
``ticket_no_show``    ``queue`` (optional: no-show share, when no recalls are recorded)
``ticket_rated``      ``score`` (optional: rating share and mix)
====================  ======================================================================

Everything else is ignored, so the full event stream can be passed as it is. Arrival
rates are tickets issued per local clock hour averaged over the distinct days seen
(``days`` can restrict which); they are *issued* tickets, so customers the engine turned
away (outside hours, limits) are not in them. Service times are ``handle_s`` (call →
finish, recalls included), as the centre reports handling time.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from statistics import fmean
from typing import Any

from controller.config import Config

from .distributions import Empirical, Exponential, LogNormal, ServiceTime
from .scenario import HOURS, Behaviour, Scenario, Stream, default_scenario

__all__ = ["History", "ServiceFit", "learn", "read_history"]

EMPIRICAL_MIN = 200  # samples before "auto" trusts the observed distribution as it is
LOGNORMAL_MIN = 20
EMPIRICAL_KEEP = 5000  # at most this many samples kept (evenly spaced order statistics)


@dataclass(frozen=True, slots=True)
class ServiceFit:
    """Observed handling times of one business and the fitted distributions."""

    samples: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def mean_s(self) -> float:
        return fmean(self.samples)

    @property
    def cv(self) -> float:
        m = self.mean_s
        var = fmean([(x - m) ** 2 for x in self.samples])
        return math.sqrt(var) / m if m else 0.0

    def lognormal(self) -> LogNormal:
        """Maximum-likelihood log-normal (from the mean and spread of the logs)."""
        logs = [math.log(x) for x in self.samples if x > 0]
        mu = fmean(logs)
        sigma2 = fmean([(v - mu) ** 2 for v in logs])
        return LogNormal(math.exp(mu + sigma2 / 2), math.sqrt(math.expm1(sigma2)))

    def empirical(self) -> Empirical:
        xs = sorted(x for x in self.samples if x > 0)
        if len(xs) > EMPIRICAL_KEEP:
            step = len(xs) / EMPIRICAL_KEEP
            xs = [xs[int(i * step)] for i in range(EMPIRICAL_KEEP)]
        return Empirical(tuple(xs))

    def best(self, kind: str = "auto") -> ServiceTime:
        positive = sum(1 for x in self.samples if x > 0)
        if kind == "auto":
            kind = ("empirical" if positive >= EMPIRICAL_MIN
                    else "lognormal" if positive >= LOGNORMAL_MIN else "exponential")
        if kind == "empirical":
            return self.empirical()
        if kind == "lognormal":
            return self.lognormal()
        if kind == "exponential":
            return Exponential(self.mean_s)
        raise ValueError(f"service kind {kind!r}: auto, empirical, lognormal or exponential")


@dataclass
class History:
    """What was counted from a branch's events."""

    tz: dt.tzinfo
    days: set[str] = field(default_factory=set)
    issued: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # (q, type, hour)
    handle: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    waits: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    first_calls: Counter[str] = field(default_factory=Counter)
    no_shows: Counter[str] = field(default_factory=Counter)
    recalled: Counter[str] = field(default_factory=Counter)  # ticket -> recalls
    finished: set[str] = field(default_factory=set)  # tickets finished (ids, when given)
    scores: Counter[int] = field(default_factory=Counter)
    ignored: int = 0

    def rate(self, queue: str, customer_type: str, hour: int) -> float:
        """Tickets per hour in local hour ``hour``, averaged over the days seen."""
        return self.issued[(queue, customer_type, hour)] / len(self.days) if self.days else 0.0

    def service(self, queue: str) -> ServiceFit | None:
        xs = self.handle.get(queue)
        return ServiceFit(tuple(xs)) if xs else None

    def behaviour(self, base: Behaviour) -> Behaviour:
        """The base behaviour with what the history shows.

        With ``ticket_recalled`` events: a customer recalled at least once was absent at
        the call; each recall is a trial that the customer answers (the recall before a
        finish) or not. Without them, every discarded number counts as an absent customer
        who never answered.
        """
        calls = sum(self.first_calls.values())
        out = base
        if calls and self.recalled:
            answered = sum(1 for t in self.recalled if t in self.finished)
            out = replace(out, no_show=min(1.0, len(self.recalled) / calls),
                          answer_recall=answered / sum(self.recalled.values()))
        elif calls:
            out = replace(out, no_show=min(1.0, sum(self.no_shows.values()) / calls),
                          answer_recall=0.0)
        served = sum(len(v) for v in self.handle.values())
        if self.scores and served:
            out = replace(out, rating=min(1.0, sum(self.scores.values()) / served),
                          scores=tuple(sorted(((s, float(n)) for s, n in self.scores.items()),
                                              reverse=True)))
        return out


def read_history(
    events: Iterable[Mapping[str, Any]], tz: dt.tzinfo,
    days: Callable[[str], bool] | None = None,
) -> History:
    """Count ``events`` (see the module docstring); ``days`` filters by business day."""
    h = History(tz)
    for e in events:
        try:
            _count(h, e, days)
        except (KeyError, TypeError, ValueError, OverflowError):
            h.ignored += 1  # a malformed row is counted, never fatal
    return h


def _count(h: History, e: Mapping[str, Any], days: Callable[[str], bool] | None) -> None:
    kind = e["type"]
    if kind == "ticket_issued":
        local = dt.datetime.fromtimestamp(float(e["at"]), h.tz)
        day = str(e.get("day") or local.date().isoformat())
        if days is not None and not days(day):
            return
        h.days.add(day)
        h.issued[(str(e["queue"]), str(e.get("customer_type") or "normal"), local.hour)] += 1
    elif days is not None and "day" in e and not days(str(e["day"])):
        return
    elif kind == "ticket_finished":
        h.handle[str(e["queue"])].append(float(e["handle_s"]))
        if "ticket" in e:
            h.finished.add(str(e["ticket"]))
    elif kind == "ticket_recalled":
        h.recalled[str(e["ticket"])] += 1
    elif kind == "ticket_called" and e.get("call", 1) == 1:
        h.first_calls[str(e["queue"])] += 1
        h.waits[str(e["queue"])].append(float(e["wait_s"]))
    elif kind == "ticket_no_show":
        h.no_shows[str(e["queue"])] += 1
    elif kind == "ticket_rated":
        h.scores[int(e["score"])] += 1


def learn(
    events: Iterable[Mapping[str, Any]], config: Config, day: dt.date, *,
    service: str = "auto", days: Callable[[str], bool] | None = None,
) -> Scenario:
    """A scenario for ``day`` learned from a branch's history.

    Arrivals per hour, business and customer type and service-time distributions per
    business come from the history (``service``: ``auto`` | ``empirical`` | ``lognormal`` |
    ``exponential``; ``auto`` picks empirical with ≥ 200 samples, log-normal with ≥ 20,
    else exponential); businesses without history keep the config's defaults. The no-show
    share and the rating mix are learned when those events are present. Staffing is the
    default (every window during opening hours): ask :func:`advise_staffing` for a plan.
    """
    h = read_history(events, config.tz, days)
    base = default_scenario(config, day)
    streams = []
    for q, t in sorted({(q, t) for q, t, _ in h.issued}):
        queue = config.queue(q)
        if queue is None:
            continue
        own = t == (queue.customer_type or "normal")
        rates = tuple(h.rate(q, t, hour) for hour in range(HOURS))
        streams.append(Stream(q, None if own else t, rates))
    svc = dict(base.service)
    for q in svc:
        fit = h.service(q)
        if fit is not None and any(x > 0 for x in fit.samples):
            svc[q] = fit.best(service)
    return replace(base, arrivals=tuple(streams) or base.arrivals, service=svc,
                   behaviour=h.behaviour(base.behaviour))
