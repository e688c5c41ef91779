"""A simulated branch-day: the real engine driven in virtual time by customers and tellers."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import replace

import pytest

from controller.config import Config
from queueing.compare import PRESETS
from queueing.day import DayRun, simulate_day
from queueing.scenario import HOURS, Behaviour, Scenario, Staffing, Stream, default_scenario
from tests.conftest import at, example_config

DAY = dt.date(2026, 11, 25)  # a Wednesday


def rates(**per_hour: float) -> tuple[float, ...]:
    """``rates(h9=30, h10=40)`` -> 24 hourly rates."""
    out = [0.0] * HOURS
    for key, value in per_hour.items():
        out[int(key[1:])] = value
    return tuple(out)


def plan(**hours: tuple[int, ...]) -> Staffing:
    out: list[tuple[int, ...]] = [()] * HOURS
    for key, windows in hours.items():
        out[int(key[1:])] = windows
    return Staffing(tuple(out))


def types(run: DayRun) -> Counter[str]:
    return Counter(e["type"] for e in run.events)


@pytest.fixture(scope="module")
def config() -> Config:
    return example_config()


@pytest.fixture(scope="module")
def day(config: Config) -> Scenario:
    return default_scenario(config, DAY)


def test_the_same_seed_gives_the_same_day(config: Config, day: Scenario) -> None:
    a, b = simulate_day(config, day, 5), simulate_day(config, day, 5)
    assert a.events == b.events
    assert a.events != simulate_day(config, day, 6).events


def test_counting_who_is_ahead_changes_nothing_but_the_count(
    config: Config, day: Scenario,
) -> None:
    # The simulator prints no tickets, so by default the engine skips the count.
    busy = day.scaled(1.4)
    skipped, counted = simulate_day(config, busy, 3), simulate_day(config, busy, 3,
                                                                   count_ahead=True)
    issued = [e for e in counted.events if e["type"] == "ticket_issued"]
    assert max(e["ahead"] for e in issued) > 5  # a real queue formed
    assert {e["ahead"] for e in skipped.events if e["type"] == "ticket_issued"} == {None}
    assert [{**e, "ahead": None} if "ahead" in e else e for e in counted.events] \
        == skipped.events


def test_every_customer_is_accounted_for(config: Config, day: Scenario) -> None:
    run = simulate_day(config, replace(day, behaviour=Behaviour(no_show=0.2)), 2)
    n = types(run)
    assert len(run.customers) == n["ticket_issued"] + sum(run.turned_away.values())
    assert n["ticket_issued"] == n["ticket_finished"] + n["ticket_no_show"] + sum(
        1 for e in run.events if e["type"] == "ticket_closed" and e["state"] == "not_served")
    assert n["ticket_no_show"] > 0 and n["ticket_recalled"] > 0


def test_waits_and_services_are_the_customers_own(config: Config, day: Scenario) -> None:
    run = simulate_day(config, replace(day, behaviour=Behaviour(no_show=0.0, rating=0.0)), 3)
    issued = {e["ticket"]: e["at"] for e in run.events if e["type"] == "ticket_issued"}
    by_arrival = {round(run.t0 + c.at, 3): c for c in run.customers}
    services = {}
    for e in run.events:
        if e["type"] == "ticket_called":
            assert e["wait_s"] == pytest.approx(e["at"] - issued[e["ticket"]], abs=2e-3)
        if e["type"] == "ticket_finished":
            services[e["ticket"]] = e["handle_s"]
    for ticket, handle in services.items():
        assert handle == pytest.approx(by_arrival[issued[ticket]].service_s, abs=2e-3)


def test_tellers_follow_the_staffing_plan(config: Config) -> None:
    scenario = Scenario(
        DAY, (Stream("A", None, rates(h9=50, h10=50, h11=50)),),
        default_scenario(config, DAY).service,
        plan(h9=(1,), h10=(1, 2), h11=(1,)), Behaviour(no_show=0.0),
    )
    run = simulate_day(config, scenario, 1)
    logins = {(e["window"], e["type"]): e["at"] for e in run.events
              if e["type"] in ("teller_login", "teller_logout")}
    assert logins[(1, "teller_login")] == at(9)
    assert logins[(2, "teller_login")] == at(10)
    # window 2 finishes its customer after 11:00, then logs out; no call after 11:00
    assert at(11) <= logins[(2, "teller_logout")] < at(12)
    calls_2 = [e["at"] for e in run.events if e["type"] == "ticket_called" and e["window"] == 2]
    assert calls_2 and min(calls_2) >= at(10) and max(calls_2) < at(11)
    assert {e["window"] for e in run.events if e["type"] == "ticket_called"} == {1, 2}


def test_after_the_last_hour_tellers_serve_out_or_leave(config: Config) -> None:
    base = Scenario(
        DAY, (Stream("A", None, rates(h9=60)),), {"A": default_scenario(config, DAY).service["A"]},
        plan(h9=(1,)), Behaviour(no_show=0.0),
    )
    served_out = simulate_day(config, base, 1)
    assert types(served_out)["ticket_finished"] == types(served_out)["ticket_issued"]
    left = simulate_day(config, replace(base, staffing=replace(base.staffing, serve_out=False)), 1)
    closed = [e for e in left.events if e["type"] == "ticket_closed"]
    assert closed and all(e["state"] == "not_served" for e in closed)
    assert max(e["at"] for e in left.events if e["type"] == "ticket_called") < at(10)


def test_absent_customers_are_recalled_then_discarded(config: Config) -> None:
    scenario = Scenario(
        DAY, (Stream("A", None, rates(h9=20)),), default_scenario(config, DAY).service,
        plan(h9=(1,)), Behaviour(no_show=1.0, answer_recall=0.0, recall_every_s=30, rating=0),
    )
    run = simulate_day(config, scenario, 1)
    n = types(run)
    limit = config.thresholds.recalls_before_no_show
    assert n["ticket_no_show"] == n["ticket_issued"] > 0
    assert n["ticket_recalled"] == limit * n["ticket_issued"]
    assert {e["reason"] for e in run.events if e["type"] == "ticket_no_show"} == {
        "recalls_exhausted"}


def test_a_customer_type_arrives_by_card(config: Config) -> None:
    scenario = Scenario(
        DAY, (Stream("A", "vip", rates(h10=10)), Stream("A", None, rates(h10=10))),
        default_scenario(config, DAY).service, plan(h10=(1, 2)), Behaviour(no_show=0.0),
    )
    run = simulate_day(config, scenario, 1)
    issued = [e for e in run.events if e["type"] == "ticket_issued"]
    assert {(e["queue"], e["customer_type"]) for e in issued} == {("A", "vip"), ("A", "normal")}
    assert {e["channel"] for e in issued if e["customer_type"] == "vip"} == {"card"}


def test_refused_customers_are_counted_by_reason(config: Config) -> None:
    # 外汇 (F) issues 09:00-16:00 and at most 60 a day
    scenario = Scenario(
        DAY, (Stream("F", None, rates(h16=30, h10=120)),), default_scenario(config, DAY).service,
        plan(h10=(2, 6), h16=(2, 6)), Behaviour(no_show=0.0),
    )
    run = simulate_day(config, scenario, 1)
    assert run.turned_away["outside_hours"] > 0
    assert run.turned_away["daily_limit_reached"] > 0
    assert types(run)["ticket_issued"] == 60


def test_ratings_follow_the_behaviour(config: Config) -> None:
    scenario = Scenario(
        DAY, (Stream("A", None, rates(h10=40)),), default_scenario(config, DAY).service,
        plan(h10=(1, 2, 3)), Behaviour(no_show=0.0, rating=1.0, scores=((2, 1.0),)),
    )
    run = simulate_day(config, scenario, 1)
    rated = [e for e in run.events if e["type"] == "ticket_rated"]
    assert len(rated) == types(run)["ticket_finished"]
    assert {(e["score"], e["bad"]) for e in rated} == {(2, True)}


def test_variants_serve_the_same_customers(config: Config, day: Scenario) -> None:
    def arrivals(run: DayRun) -> list[float]:
        return [e["at"] for e in run.events if e["type"] == "ticket_issued"]

    base = simulate_day(config, day, 4)
    for name in ("fifo", "escalate_20", "balancing_off"):
        assert arrivals(simulate_day(config, day, 4, PRESETS[name].overrides)) == arrivals(base)


def _first_divergence(a: list[dict[str, object]], b: list[dict[str, object]]) -> float:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return float(x["at"])  # type: ignore[arg-type]
    return float("inf")


def test_escalating_at_20_minutes_changes_nothing_before_a_ticket_waits_20(
    config: Config, day: Scenario
) -> None:
    busy = day.scaled(1.15)
    base = simulate_day(config, busy, 1)  # the branch escalates at 30 minutes
    earlier = simulate_day(config, busy, 1, ["thresholds.escalate_after_min=20"])
    # the first call at which some waiting ticket had waited 20 minutes or more
    issued: dict[str, float] = {}
    first = float("inf")
    for e in base.events:
        if e["type"] == "ticket_issued":
            issued[e["ticket"]] = e["at"]
        elif e["type"] == "ticket_called":
            issued.pop(e["ticket"], None)
            if any(e["at"] - t >= 1200 for t in issued.values()):
                first = e["at"]
                break
    assert first < float("inf")
    split = _first_divergence(base.events, earlier.events)
    assert first <= split < float("inf")  # it does change the day, and only from there


def test_balancing_changes_nothing_before_a_queue_reaches_the_threshold(
    config: Config, day: Scenario
) -> None:
    busy = day.scaled(1.15)
    base = simulate_day(config, busy, 2)
    off = simulate_day(config, busy, 2, PRESETS["balancing_off"].overrides)
    threshold = config.thresholds.balance_waiting
    waiting: Counter[str] = Counter()
    first = float("inf")
    for e in base.events:
        if e["type"] == "ticket_issued":
            waiting[e["queue"]] += 1
            if waiting[e["queue"]] >= threshold:
                first = e["at"]
                break
        elif e["type"] == "ticket_called" and not e["callback"]:
            waiting[e["queue"]] -= 1
    split = _first_divergence(base.events, off.events)
    assert first <= split < float("inf")
