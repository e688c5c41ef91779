"""Customers of a simulated day: Poisson arrivals by thinning, their own random streams."""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import replace

from queueing.arrivals import customers, thinning
from queueing.scenario import HOURS, Behaviour, Stream, default_scenario
from tests.conftest import example_config

CFG = example_config()
DAY = dt.date(2026, 11, 25)


def test_thinning_gives_the_rate_per_piece() -> None:
    rng = random.Random(1)

    def rate(t: float) -> float:
        return 0.05 if t < 10_000 else 0.01

    times = thinning(rate, 0.05, 0.0, 20_000.0, rng)
    early = sum(1 for t in times if t < 10_000)
    late = len(times) - early
    for count, expected in ((early, 500), (late, 100)):
        assert abs(count - expected) <= 4 * math.sqrt(expected)
    assert times == sorted(times) and all(0 <= t < 20_000 for t in times)


def test_hourly_counts_follow_the_profile() -> None:
    base = default_scenario(CFG, DAY)
    rates = tuple(60.0 if 9 <= h < 16 else 0.0 for h in range(HOURS))
    scenario = replace(base, arrivals=(Stream("A", None, rates),))
    counts = [0] * HOURS
    days = 20
    for seed in range(days):
        for c in customers(CFG, scenario, seed):
            counts[int(c.at // 3600)] += 1
    for h in range(HOURS):
        expected = rates[h] * days
        assert abs(counts[h] - expected) <= 4 * math.sqrt(expected) + 1e-9, h


def test_arrivals_spread_over_the_open_part_of_an_hour() -> None:
    # the branch opens at 08:30: hour 8's customers all come between 08:30 and 09:00
    scenario = default_scenario(CFG, DAY)
    eight = [c.at for c in customers(CFG, scenario, 3) if c.at < 9 * 3600]
    assert eight and min(eight) >= 8.5 * 3600


def test_one_streams_change_leaves_the_others_customers_alone() -> None:
    base = default_scenario(CFG, DAY)
    more_a = replace(base, arrivals=tuple(
        replace(s, per_hour=tuple(2 * r for r in s.per_hour)) if s.queue == "A" else s
        for s in base.arrivals))

    def of(people: list, queue: str) -> list[tuple[float, float, int, int]]:  # type: ignore[type-arg]
        return [(c.at, c.service_s, c.answers_at, c.score) for c in people if c.queue == queue]

    a, b = customers(CFG, base, 9), customers(CFG, more_a, 9)
    for q in ("B", "V", "T", "F"):
        assert of(a, q) == of(b, q)
    assert len(of(b, "A")) > len(of(a, "A"))


def test_behaviour_draws_are_shared_across_behaviours() -> None:
    base = default_scenario(CFG, DAY)
    a = customers(CFG, replace(base, behaviour=Behaviour(no_show=0.1)), 4)
    b = customers(CFG, replace(base, behaviour=Behaviour(no_show=0.3)), 4)
    assert [(c.at, c.service_s) for c in a] == [(c.at, c.service_s) for c in b]
    absent_a = {c.index for c in a if c.answers_at}
    absent_b = {c.index for c in b if c.answers_at}
    assert absent_a < absent_b  # common random numbers: more absent, never fewer
