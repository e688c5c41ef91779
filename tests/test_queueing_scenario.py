"""Scenario files: parsed against the branch config, every mistake named by its key."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from queueing.distributions import Empirical, Exponential, LogNormal
from queueing.errors import ScenarioError
from queueing.scenario import default_scenario, load_scenario, open_hours, parse_scenario
from tests.conftest import example_config

CFG = example_config()
DAY = dt.date(2026, 11, 25)

GOOD = """
date = "2026-11-25"
target_wait_min = 10
[[arrivals]]
queue = "A"
per_hour = { "9" = 40, "10-12" = 55 }
[[arrivals]]
queue = "A"
customer_type = "vip"
per_hour = { "10" = 5 }
[service.A]
dist = "lognormal"
mean_minutes = 4
cv = 0.7
[service.B]
dist = "empirical"
seconds = [300, 420, 600]
[behaviour]
no_show = 0.05
scores = { "5" = 8, "1" = 2 }
[staffing.open]
"8-12" = [1, 2, 3]
"12" = [1]
[staffing.serves]
"3" = { A = 3, B = 5 }
"""


def test_a_scenario_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "day.toml"
    path.write_text(GOOD, encoding="utf-8")
    s = load_scenario(path, CFG)
    assert s.target_wait_s == 600
    assert [(a.queue, a.customer_type) for a in s.arrivals] == [("A", None), ("A", "vip")]
    assert s.arrivals[0].per_hour[9:12] == (40, 55, 55)
    assert s.service["A"] == LogNormal(240.0, 0.7)
    assert s.service["B"] == Empirical((300.0, 420.0, 600.0))
    assert isinstance(s.service["V"], LogNormal)  # not given: the config's default
    assert s.staffing.open[8] == (1, 2, 3) and s.staffing.open[12] == (1,)
    assert s.staffing.open[13] == ()
    assert s.staffing.serves == {3: {"A": 3, "B": 5}}
    assert s.behaviour.no_show == 0.05 and s.behaviour.scores == ((5, 8.0), (1, 2.0))


def test_a_scenario_survives_json_and_back() -> None:
    s = parse_scenario(__import__("tomllib").loads(GOOD), CFG)
    again = parse_scenario(json.loads(json.dumps(s.to_json())), CFG)
    assert again == s


@pytest.mark.parametrize(("data", "key"), [
    ({"arrivals": [{"queue": "Z", "per_hour": {}}]}, "arrivals.0.queue"),
    ({"arrivals": [{"queue": "A", "per_hour": {"25": 1}}]}, "arrivals.0.per_hour.25"),
    ({"arrivals": [{"queue": "A", "per_hour": {"9": -1}}]}, "arrivals.0.per_hour.9"),
    ({"arrivals": [{"queue": "A", "customer_type": "alien"}]}, "arrivals.0.customer_type"),
    ({"service": {"A": {"dist": "gamma", "mean_minutes": 3}}}, "service.A.dist"),
    ({"service": {"A": {"dist": "lognormal"}}}, "service.A.mean_minutes"),
    ({"service": {"A": {"dist": "empirical", "seconds": []}}}, "service.A.seconds"),
    ({"service": {"Q": {"mean_minutes": 3}}}, "service.Q"),
    ({"behaviour": {"no_show": 1.5}}, "behaviour.no_show"),
    ({"behaviour": {"patience": 3}}, "behaviour.patience"),
    ({"staffing": {"open": {"9": [1, 99]}}}, "staffing.open.9"),
    ({"staffing": {"serves": {"1": {"A": "high"}}}}, "staffing.serves.1.A"),
    ({"date": "yesterday"}, "date"),
    ({"weather": "rain"}, "weather"),
])
def test_mistakes_are_named_by_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data, CFG)
    assert err.value.key == key


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml", CFG)
    bad = tmp_path / "bad.toml"
    bad.write_text("date = ", encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad, CFG)
    assert err.value.key == "(syntax)"


def test_the_default_day_fits_the_branch() -> None:
    s = default_scenario(CFG, DAY)
    assert open_hours(CFG, DAY) == list(range(8, 17))  # 08:30-17:00
    assert open_hours(CFG, DAY, "F") == list(range(9, 16))
    f = next(a for a in s.arrivals if a.queue == "F")
    assert all(r == 0 for h, r in enumerate(f.per_hour) if h not in range(9, 16))
    assert s.staffing.open[9] == (1, 2, 3, 4, 5, 6) and s.staffing.open[17] == ()
    assert 300 < sum(a.expected for a in s.arrivals) < 500  # 75 % of six windows' capacity
    saturday = default_scenario(CFG, dt.date(2026, 11, 28))
    assert "F" not in {a.queue for a in saturday.arrivals}  # 外汇 is workdays only
    assert isinstance(default_scenario(CFG, DAY).scaled(2).service["A"], LogNormal | Exponential)
