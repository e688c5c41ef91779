"""The theory check: one FIFO queue, ``c`` identical windows, Poisson arrivals.

With exponential service times this is the M/M/c queue, whose stationary waiting time
has a closed form (Erlang C). Running it through the real engine and comparing checks the
simulator and the engine's call-next together: any error in either (a window calling the
wrong ticket, a lost customer, a clock mistake) shows up as a disagreement.

The engine is configured so that nothing but queueing shapes the waits: open 24 hours
every day, no daily limits or waiting cap, no escalation, no balancing, no lobby alert,
strategy order empty (pure first come, first served), no no-shows, no ratings.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from controller.config import Config, parse_config

from .batch import batch
from .day import DayRun, simulate_day
from .distributions import Empirical, Exponential, LogNormal, ServiceTime
from .measures import Period, WaitStats, wait_stats, windows
from .scenario import HOURS, Behaviour, Scenario, Staffing, Stream
from .stats import batch_means, interval

__all__ = ["MMc", "TheoryCase", "erlang_c", "theory_config", "theory_run"]

THEORY_DATE = dt.date(2026, 11, 25)
MAX_HOURS = 20.0  # a run must end, served out, inside one business day (see theory_run)


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``load`` = λ/μ < c."""
    if load >= servers:
        return 1.0
    term, total = 1.0, 1.0  # a^k / k!, summed for k < c
    for k in range(1, servers):
        term *= load / k
        total += term
    last = term * load / servers  # a^c / c!
    tail = last * servers / (servers - load)
    return tail / (total + tail)


@dataclass(frozen=True, slots=True)
class MMc:
    """Closed-form stationary results of M/M/c."""

    servers: int
    arrivals_per_hour: float
    service_minutes: float

    @property
    def load(self) -> float:
        return self.arrivals_per_hour * self.service_minutes / 60

    @property
    def utilisation(self) -> float:
        return self.load / self.servers

    @property
    def p_wait(self) -> float:
        return erlang_c(self.servers, self.load)

    @property
    def _drain_per_s(self) -> float:
        """c·μ − λ, per second."""
        return (self.servers - self.load) / (self.service_minutes * 60)

    @property
    def mean_wait_s(self) -> float:
        return self.p_wait / self._drain_per_s if self.load < self.servers else math.inf

    def p_wait_over(self, t_s: float) -> float:
        """P(W > t) = C(c, a)·exp(−(cμ − λ)t)."""
        if self.load >= self.servers:
            return 1.0
        return self.p_wait * math.exp(-self._drain_per_s * t_s)

    def to_json(self) -> dict[str, float]:
        return {
            "utilisation": self.utilisation, "p_wait": self.p_wait,
            "mean_wait_s": self.mean_wait_s, "p_wait_over_60s": self.p_wait_over(60),
        }


@dataclass(frozen=True, slots=True)
class TheoryCase:
    servers: int
    arrivals_per_hour: float
    service_minutes: float
    service_dist: str = "exponential"
    hours: float = 8.0
    warmup_hours: float | None = None  # None: a tenth of ``hours``
    cv: float = 1.0  # log-normal only

    @property
    def warmup(self) -> float:
        return self.hours / 10 if self.warmup_hours is None else self.warmup_hours


def theory_config(servers: int, service_minutes: float) -> Config:
    """One queue ``A``, windows 1..``servers`` all serving it, nothing but FIFO."""
    always = ["00:00-24:00"]
    return parse_config({
        "branch": {"code": "0000", "name": "理论校验", "name_en": "Theory check"},
        "hours": {"workday": always, "weekend": always, "holiday": always},
        "queues": [{"id": "A", "name": "理论队列", "prefix": "A", "digits": 6,
                    "service_minutes": service_minutes}],
        "windows": [{"number": n, "queues": {"A": 1}} for n in range(1, servers + 1)],
        "thresholds": {"escalate_after_min": 0, "branch_waiting_cap": 0,
                       "lobby_alert_waiting": 0, "balance_waiting": 10**6,
                       "recalls_before_no_show": 3},
        "strategy": {"order": []},
    }, "theory")


def theory_scenario(case: TheoryCase) -> Scenario:
    if not 0 < case.hours <= MAX_HOURS:
        raise ValueError(
            f"--hours must be in (0, {MAX_HOURS:g}]: a run is served out inside one business "
            "day (the engine closes a day's tickets at midnight); use --replications")
    if not 0 <= case.warmup < case.hours:
        raise ValueError("the warm-up must be shorter than the run")
    rates = tuple(case.arrivals_per_hour if h < math.ceil(case.hours) else 0.0
                  for h in range(HOURS))
    every = tuple(range(1, case.servers + 1))
    plan = Staffing(tuple(every if h < math.ceil(case.hours) else () for h in range(HOURS)))
    return Scenario(
        THEORY_DATE, (Stream("A", None, rates),), {"A": _service(case)}, plan,
        Behaviour(no_show=0.0, rating=0.0), end_s=case.hours * 3600,
    )


def _service(case: TheoryCase) -> ServiceTime:
    mean = case.service_minutes * 60
    if case.service_dist == "exponential":
        return Exponential(mean)
    if case.service_dist == "lognormal":
        return LogNormal(mean, case.cv)
    if case.service_dist == "deterministic":
        return Empirical((mean,))
    raise ValueError(f"--service-dist {case.service_dist!r}: exponential, lognormal or "
                     "deterministic")


def theory_run(
    case: TheoryCase, seed: int = 1, replications: int = 1, level: float = 0.95,
    jobs: int | None = 1,
) -> dict[str, Any]:
    """Simulate ``case`` and set the results beside the closed form.

    One replication: confidence intervals by batch means (20 batches of consecutive
    customers). Several: by the replications' means (independent days, seeds
    ``seed``, ``seed+1``…), which run in ``jobs`` processes (None: every core; see
    :mod:`queueing.batch`).
    """
    with batch(jobs) as days:
        parts = days.map(_replication, [(case, seed + i) for i in range(replications)])
    waits = [w for p in parts for w in p[0].waits]
    over = [1.0 if w > 60 else 0.0 for w in waits]
    util_ci = None
    if replications == 1:
        mean_ci, over_ci = batch_means(waits, level=level), batch_means(over, level=level)
    else:
        mean_ci = interval([fmean(p[0].waits) for p in parts], level)
        over_ci = interval([fmean([1.0 if w > 60 else 0.0 for w in p[0].waits]) for p in parts],
                           level)
        util_ci = interval([p[1] for p in parts], level).to_json()
    out: dict[str, Any] = {
        "servers": case.servers, "arrivals_per_hour": case.arrivals_per_hour,
        "service_minutes": case.service_minutes, "service_dist": case.service_dist,
        "hours": case.hours, "warmup_hours": case.warmup, "seed": seed,
        "replications": replications,
        "customers": sum(p[2] for p in parts),
        "served": sum(p[3] for p in parts),
        "measured": len(waits),
        "mean_wait_s": fmean(waits) if waits else None,
        "p_wait_over_60s": fmean(over) if over else None,
        "utilisation": fmean([p[1] for p in parts]),
        "level": level,
        "mean_wait_ci": mean_ci.to_json(),
        "p_wait_over_60s_ci": over_ci.to_json(),
        "utilisation_ci": util_ci,
        "wall_s": sum(p[4] for p in parts),
        "engine_commands": sum(p[5] for p in parts),
    }
    out["theory"] = _theory(case)
    return out


def _replication(task: tuple[TheoryCase, int]) -> tuple[WaitStats, float, int, int, float, int]:
    """One day of the case: its measures, wall time and engine commands."""
    case, seed = task
    run = simulate_day(theory_config(case.servers, case.service_minutes),
                       theory_scenario(case), seed)
    return *_measure(run, case), run.wall_s, run.commands


def _measure(run: DayRun, case: TheoryCase) -> tuple[WaitStats, float, int, int]:
    start = run.t0 + case.warmup * 3600
    period = Period(start, run.t0 + case.hours * 3600, run.config.tz)
    stats = wait_stats(run.events, period)["all"][""]
    per_window = windows(run.events, period)
    busy = sum(w["busy_s"] for w in per_window.values())
    util = busy / (case.servers * (period.end - period.start))
    issued = sum(1 for e in run.events if e["type"] == "ticket_issued")
    served = sum(1 for e in run.events if e["type"] == "ticket_finished")
    return stats, util, issued, served


def _theory(case: TheoryCase) -> dict[str, Any] | None:
    mmc = MMc(case.servers, case.arrivals_per_hour, case.service_minutes)
    if case.service_dist == "exponential":
        return {"model": "M/M/c (Erlang C, exact)", **mmc.to_json()}
    cv2 = {"lognormal": case.cv**2, "deterministic": 0.0}[case.service_dist]
    return {
        "model": "M/G/c (Allen–Cunneen approximation)",
        "utilisation": mmc.utilisation,
        "mean_wait_s": mmc.mean_wait_s * (1 + cv2) / 2,
    }
