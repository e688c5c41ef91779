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
    drawn: list[tuple[float, int, int, float, int, int]] = []
    b = scenario.behaviour
    limit = recall_limit(config, b)
    weight = sum(w for _, w in b.scores)
    no_show, answer, rating, scores = b.no_show, b.answer_recall, b.rating, b.scores
    recalls = range(1, limit + 1)
    for k, stream in enumerate(scenario.arrivals):
        tag = f"{seed}/{stream.queue}/{stream.customer_type or ''}"
        times = _arrival_times(stream, open_spans(config, scenario.date, stream.queue),
                               scenario, random.Random(f"{tag}/arrivals"))
        service = scenario.service[stream.queue].draw
        svc_rng = random.Random(f"{tag}/service")
        draw = random.Random(f"{tag}/behaviour").random
        for i, t in enumerate(times):
            service_s = service(svc_rng)
            # The behaviour, from a fixed number of draws so streams stay in step:
            # absent?, then each recall answered? (drawn whether absent or not), then
            # rates?, then which score.
            answers_at = -1 if draw() < no_show else 0
            for r in recalls:
                if draw() < answer and answers_at < 0:
                    answers_at = r
            rates = draw() < rating
            pick = draw() * weight
            score = 0
            if rates:
                for sc, w in scores:
                    pick -= w
                    if pick < 0:
                        score = sc
                        break
            drawn.append((t, k, i, service_s, answers_at, score))
    drawn.sort()  # by (time, stream, index): unique, so nothing after them is compared
    streams = [(st.queue, st.customer_type) for st in scenario.arrivals]
    return [Customer(n, t, *streams[k], service_s, answers_at, score)
            for n, (t, k, _, service_s, answers_at, score) in enumerate(drawn)]


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
    at = 0  # the piece the last time fell in: times only grow, so search on from there
    a, b, r = parts[0]

    def rate(t: float) -> float:
        nonlocal at, a, b, r
        if a <= t < b:  # (most times: the same piece as the last one)
            return r
        for i in range(at + 1, len(parts)):
            lo, hi, per_s = parts[i]
            if lo <= t < hi:
                at, a, b, r = i, lo, hi, per_s
                return r
        return 0.0

    return thinning(rate, max(r for _, _, r in parts), parts[0][0], parts[-1][1], rng)


def recall_limit(config: Config, behaviour: Behaviour) -> int:
    """How many recalls a teller makes before giving the number up."""
    return config.thresholds.recalls_before_no_show or behaviour.max_recalls
