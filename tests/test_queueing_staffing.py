"""Staffing advice: the fewest window-hours per hour that meet a service level."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from pathlib import Path

import pytest
from openpyxl import load_workbook

from queueing.arrivals import customers
from queueing.distributions import Exponential
from queueing.scenario import HOURS, Behaviour, Scenario, Staffing, Stream
from queueing.staffing import StaffingAdvice, _Search, advise_staffing, window_order
from queueing.theory import theory_config
from tests.conftest import example_config

DAY = dt.date(2026, 11, 25)
SEEDS = (1, 2, 3)
RATES = {9: 40.0, 10: 75.0, 11: 30.0}  # per hour; 4-minute services: loads 2.7, 5, 2


@pytest.fixture(scope="module")
def setup() -> tuple[object, Scenario, StaffingAdvice]:
    config = theory_config(6, 4.0)
    scenario = Scenario(
        DAY, (Stream("A", None, tuple(RATES.get(h, 0.0) for h in range(HOURS))),),
        {"A": Exponential(240.0)},
        Staffing(tuple(tuple(range(1, 7)) if 9 <= h < 12 else () for h in range(HOURS))),
        Behaviour(no_show=0.0, rating=0.0), target_wait_s=600,
    )
    advice = advise_staffing(config, scenario, level=0.85, seeds=SEEDS)
    return config, scenario, advice


def test_every_hour_meets_the_level(setup: tuple[object, Scenario, StaffingAdvice]) -> None:
    _, _, advice = setup
    assert advice.met
    by_hour = {h["hour"]: h for h in advice.hours}
    assert set(by_hour) == {9, 10, 11}
    for h in by_hour.values():
        assert h["within_target"] >= 0.85
    # more customers, more windows; at least the offered load (arrivals x service)
    assert by_hour[10]["windows"] > by_hour[11]["windows"]
    for hour, rate in RATES.items():
        assert by_hour[hour]["windows"] >= math.ceil(rate * 4 / 60)


def test_one_window_fewer_in_any_hour_misses_it(
    setup: tuple[object, Scenario, StaffingAdvice]
) -> None:
    config, scenario, advice = setup
    search = _Search(config, scenario, 0.85, list(SEEDS),  # type: ignore[arg-type]
                     {s: customers(config, scenario, s) for s in SEEDS})  # type: ignore[arg-type]
    hours = [9, 10, 11]
    assert search.meets_all(advice.plan, hours)
    for h in hours:
        open_ = advice.plan.open[h]
        if open_:
            assert not search.meets_all(advice.plan.with_hour(h, open_[:-1]), hours), h


def test_the_advice_exports(setup: tuple[object, Scenario, StaffingAdvice], tmp_path: Path
                            ) -> None:
    _, _, advice = setup
    data = advice.to_json()
    assert data["window_hours"] == advice.window_hours == sum(h["windows"] for h in advice.hours)
    assert data["staffing"] == {str(h["hour"]): h["open"] for h in advice.hours if h["open"]}
    wb = load_workbook(advice.to_excel(tmp_path / "plan.xlsx"))
    assert wb.sheetnames == ["排班建议 Plan", "概要 Summary"]
    rows = list(wb["排班建议 Plan"].iter_rows(values_only=True))
    assert rows[0][0] == "小时 Hour" and [r[0] for r in rows[1:]] == ["09:00", "10:00", "11:00"]


def test_windows_open_to_cover_the_hours_businesses() -> None:
    config = example_config()
    rates = tuple(10.0 if h == 10 else 0.0 for h in range(HOURS))
    scenario = Scenario(DAY, (Stream("B", None, rates), Stream("T", None, rates)), {},
                        Staffing(((),) * HOURS))
    order = window_order(config, scenario, 10)
    # window 3 serves A and B, window 1 serves T: B and T are covered by the first two
    served = {q for n in order[:2] for q in config.window(n).queues}  # type: ignore[union-attr]
    assert {"B", "T"} <= served
    assert sorted(order) == [1, 2, 3, 4, 5, 6]


def test_advice_straight_from_a_branchs_history() -> None:
    from queueing import advise_from_history, simulate_day

    config = example_config()
    every = tuple(w.number for w in config.windows)
    truth = Scenario(
        DAY, (Stream("A", None, tuple(30.0 if h in (9, 10) else 0.0 for h in range(HOURS))),),
        {"A": Exponential(240.0)}, Staffing(tuple(every if h in (9, 10) else ()
                                                  for h in range(HOURS))),
        Behaviour(no_show=0.0, rating=0.0),
    )
    history = [e for seed in (1, 2, 3) for e in simulate_day(
        config, replace(truth, date=DAY + dt.timedelta(seed)), seed).events]
    advice = advise_from_history(history, config, DAY, target_wait_s=600, seeds=(1, 2))
    assert advice.met
    assert [h["hour"] for h in advice.hours if h["windows"]] == [9, 10]
