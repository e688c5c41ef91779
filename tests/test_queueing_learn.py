"""Learning arrivals, services and behaviour from a history of journal-style events.

The history is made by the simulator itself (the real engine's events) from known rates;
learning must give them back within the sampling error of that history.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import pytest

from controller.config import Config
from queueing.day import simulate_day
from queueing.distributions import Empirical, Exponential, LogNormal
from queueing.learn import ServiceFit, learn, read_history
from queueing.scenario import HOURS, Behaviour, Scenario, Staffing, Stream
from tests.conftest import at, example_config

START = dt.date(2026, 11, 2)  # a Monday
WORKDAYS = [START + dt.timedelta(d) for d in range(21) if (START + dt.timedelta(d)).weekday() < 5]
A_RATES = {9: 30.0, 10: 45.0, 11: 20.0, 14: 35.0}
B_RATES = {9: 6.0, 10: 8.0, 14: 5.0}
VIP_RATES = {10: 4.0, 14: 4.0}


def per_hour(rates: dict[int, float]) -> tuple[float, ...]:
    return tuple(rates.get(h, 0.0) for h in range(HOURS))


@pytest.fixture(scope="module")
def config() -> Config:
    return example_config()


def known(config: Config, behaviour: Behaviour) -> Scenario:
    every = tuple(w.number for w in config.windows)
    return Scenario(
        START,
        (Stream("A", None, per_hour(A_RATES)), Stream("B", None, per_hour(B_RATES)),
         Stream("A", "vip", per_hour(VIP_RATES))),
        {"A": Exponential(180.0), "B": LogNormal(420.0, 0.6), "V": Exponential(600.0),
         "T": Exponential(300.0), "F": Exponential(600.0)},
        Staffing(tuple(every if 8 <= h < 17 else () for h in range(HOURS))),
        behaviour,
    )


def history(config: Config, scenario: Scenario) -> Iterator[dict[str, Any]]:
    for i, day in enumerate(WORKDAYS):
        yield from simulate_day(config, Scenario(day, *_rest(scenario)), seed=100 + i).events


def _rest(s: Scenario) -> tuple[Any, ...]:
    return s.arrivals, s.service, s.staffing, s.behaviour


@pytest.fixture(scope="module")
def learned(config: Config) -> tuple[Scenario, Scenario]:
    truth = known(config, Behaviour(no_show=0.0, rating=0.5))
    return truth, learn(history(config, truth), config, START, service="auto")


def test_arrival_rates_come_back_within_poisson_error(learned: tuple[Scenario, Scenario]) -> None:
    truth, got = learned
    days = len(WORKDAYS)
    found = {(s.queue, s.customer_type): s.per_hour for s in got.arrivals}
    assert set(found) == {("A", None), ("B", None), ("A", "vip")}
    for s in truth.arrivals:
        for h in range(HOURS):
            lam = s.per_hour[h]
            # the mean of `days` Poisson counts: sd = sqrt(lam / days); 4 sd
            assert abs(found[(s.queue, s.customer_type)][h] - lam) <= 4 * math.sqrt(
                lam / days) + 1e-9, (s.queue, h)


def test_service_times_come_back_within_sampling_error(learned: tuple[Scenario, Scenario]
                                                       ) -> None:
    truth, got = learned
    for q in ("A", "B"):
        dist = got.service[q]
        assert isinstance(dist, Empirical)  # plenty of samples: "auto" keeps them as seen
        n = len(dist.seconds)
        true_mean = truth.service[q].mean_s
        sd = true_mean * (1.0 if q == "A" else 0.6)  # exponential cv 1, the log-normal's 0.6
        assert abs(dist.mean_s - true_mean) <= 4 * sd / math.sqrt(n)


def test_ratings_are_learned(learned: tuple[Scenario, Scenario]) -> None:
    truth, got = learned
    assert got.behaviour.rating == pytest.approx(truth.behaviour.rating, abs=0.05)


def test_absence_and_recall_answers_are_learned(config: Config) -> None:
    truth = known(config, Behaviour(no_show=0.2, answer_recall=0.4, rating=0.0))
    events = list(history(config, truth))
    got = learn(events, config, START).behaviour
    calls = sum(1 for e in events if e["type"] == "ticket_called" and e["call"] == 1)
    recalls = sum(1 for e in events if e["type"] == "ticket_recalled")
    assert abs(got.no_show - 0.2) <= 4 * math.sqrt(0.2 * 0.8 / calls)
    assert abs(got.answer_recall - 0.4) <= 4 * math.sqrt(0.4 * 0.6 / recalls)


def test_the_fit_follows_the_number_of_samples() -> None:
    few = ServiceFit((100.0,) * 5)
    some = ServiceFit(tuple(float(x) for x in range(100, 150)))
    many = ServiceFit(tuple(float(x) for x in range(1, 400)))
    assert isinstance(few.best(), Exponential)
    assert isinstance(some.best(), LogNormal)
    assert isinstance(many.best(), Empirical)
    fit = ServiceFit(tuple(math.exp(x / 100) for x in range(-100, 101))).lognormal()
    assert fit.mu == pytest.approx(0.0, abs=1e-9)


def test_bad_rows_are_counted_not_fatal() -> None:
    rows: list[dict[str, Any]] = [
        {"type": "ticket_issued", "at": "soon", "queue": "A"},
        {"type": "ticket_finished", "queue": "A"},
        {"type": "ticket_issued", "at": at(10, 30), "queue": "A", "customer_type": "normal"},
        {"type": "something_new"},
    ]
    h = read_history(rows, dt.timezone(dt.timedelta(hours=8)))
    assert h.ignored == 2
    assert h.rate("A", "normal", 10) == 1.0
