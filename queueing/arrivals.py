"""Customers of a simulated day, drawn before the day runs.

Every customer's arrival, service time and behaviour come from random streams of their own
(per business and customer type, per kind of draw), seeded from the day's seed. A customer
is therefore the same person whatever the branch does with them: two runs with the same
seed under different strategies or staffing see identical customers (common random
numbers), and changing one stream's rate leaves the other streams' customers untouched.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from controller.config import Config

from .scenario import Behaviour, Scenario, Stream, open_spans

__all__ = ["Customer", "customers", "recall_limit", "thinning"]

Piece = tuple[float, float, float]  # [start, end) seconds, rate per second


@dataclass(slots=True)
class Customer:
    """One simulated customer; times in seconds after local midnight."""

    index: int
    at: float
    queue: str
    customer_type: str | None  # None: the queue's own type
    service_s: float
    answers_at: int  # 0: there when called; k: answers the k-th recall; -1: gone
    score: int  # 0: does not rate


def thinning(
    rate: Callable[[float], float], rate_max: float, start: float, end: float,
    rng: random.Random,
) -> list[float]:
    """Arrival times of a non-homogeneous Poisson process with intensity ``rate(t)`` ≤
    ``rate_max`` on [start, end) (Lewis & Shedler thinning)."""
    out: list[float] = []
    if rate_max <= 0:
        return out
    t = start
    draw, log = rng.random, math.log
    while True:
        # rng.expovariate(rate_max) written out (random.py's own arithmetic: the same
        # draws, bit for bit, without a call per candidate arrival)
        t += -log(1.0 - draw()) / rate_max
        if t >= end:
            return out
        if draw() * rate_max < rate(t):
            out.append(t)


def pieces(stream: Stream, spans: Sequence[tuple[float, float]]) -> list[Piece]:
    """The stream's intensity as constant pieces: hour ``h``'s customers spread over the
    part of the hour the business is open (all of it when it is closed all hour)."""
    out: list[Piece] = []
    for h, per_hour in enumerate(stream.per_hour):
        if not per_hour:
            continue
        lo, hi = h * 3600.0, h * 3600.0 + 3600.0
        parts = [(max(a, lo), min(b, hi)) for a, b in spans if min(b, hi) > max(a, lo)]
        parts = parts or [(lo, hi)]
        length = sum(b - a for a, b in parts)
        out.extend((a, b, per_hour / length) for a, b in parts)
    return out


def customers(config: Config, scenario: Scenario, seed: int | str) -> list[Customer]:
    """All of the day's customers in arrival order."""
    drawn: list[tuple[float, int, int, Customer]] = []
    for k, stream in enumerate(scenario.arrivals):
        tag = f"{seed}/{stream.queue}/{stream.customer_type or ''}"
        times = _arrival_times(stream, open_spans(config, scenario.date, stream.queue),
                               scenario, random.Random(f"{tag}/arrivals"))
        service = scenario.service[stream.queue]
        svc_rng = random.Random(f"{tag}/service")
        beh_rng = random.Random(f"{tag}/behaviour")
        limit = recall_limit(config, scenario.behaviour)
        weight = sum(w for _, w in scenario.behaviour.scores)
        for i, t in enumerate(times):
            c = Customer(0, t, stream.queue, stream.customer_type, service.draw(svc_rng),
                         *_behaviour(scenario.behaviour, limit, weight, beh_rng))
            drawn.append((t, k, i, c))
    drawn.sort()  # by (time, stream, index): unique, so the customers are never compared
    out = [d[3] for d in drawn]
    for i, c in enumerate(out):
        c.index = i
    return out


def _arrival_times(
    stream: Stream, spans: Sequence[tuple[float, float]], scenario: Scenario,
    rng: random.Random,
) -> list[float]:
    parts = [(max(a, scenario.start_s), min(b, scenario.end_s), r)
             for a, b, r in pieces(stream, spans)]
    parts = [p for p in parts if p[1] > p[0]]
    if not parts:
        return []

    parts.sort()  # (they come in time order already; the search below relies on it)
    at = [0]  # the piece the last time fell in: times only grow, so search on from there

    def rate(t: float) -> float:
        for i in range(at[0], len(parts)):
            a, b, r = parts[i]
            if a <= t < b:
                at[0] = i
                return r
        return 0.0

    return thinning(rate, max(r for _, _, r in parts), parts[0][0], parts[-1][1], rng)


def recall_limit(config: Config, behaviour: Behaviour) -> int:
    """How many recalls a teller makes before giving the number up."""
    return config.thresholds.recalls_before_no_show or behaviour.max_recalls


def _behaviour(b: Behaviour, limit: int, weight: float, rng: random.Random) -> tuple[int, int]:
    """(answers_at, score), from a fixed number of draws so streams stay in step.
    ``weight``: the scores' total weight."""
    draw = rng.random
    absent = draw() < b.no_show
    answers_at = -1 if absent else 0
    for k in range(1, limit + 1):  # (drawn whether absent or not)
        if draw() < b.answer_recall and answers_at < 0:
            answers_at = k
    rates = draw() < b.rating
    pick = draw() * weight
    score = 0
    if rates:
        for s, w in b.scores:
            pick -= w
            if pick < 0:
                score = s
                break
    return answers_at, score
