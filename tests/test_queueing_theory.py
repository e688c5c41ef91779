"""Theory check: the real engine in virtual time against closed-form M/M/c (Erlang C).

The tolerance is the run's own confidence interval (99 %, Student t over independent
simulated days), never a fixed fudge factor; each case also checks that the interval is
narrow enough for the comparison to mean something.
"""

from __future__ import annotations

import math

import pytest

from queueing.theory import MMc, TheoryCase, erlang_c, theory_config, theory_run


def test_erlang_c_matches_known_values() -> None:
    assert erlang_c(1, 0.75) == pytest.approx(0.75)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(3, 3.0) == 1.0  # saturated
    q = MMc(1, 40, 1.0)  # rho 2/3, mu 1/min
    assert q.mean_wait_s == pytest.approx(120.0)  # rho / (mu - lambda) = (2/3) / (1/3) min
    assert q.p_wait_over(60) == pytest.approx(2 / 3 * math.exp(-1 / 3))


def test_theory_config_is_pure_fifo_open_all_day() -> None:
    cfg = theory_config(3, 2.0)
    assert [w.queues for w in cfg.windows] == [{"A": 1}] * 3
    assert cfg.strategy.order == []
    assert cfg.thresholds.escalate_after_min == 0
    assert cfg.thresholds.branch_waiting_cap == 0
    assert cfg.hours.workday == cfg.hours.weekend == cfg.hours.holiday == ["00:00-24:00"]


CASES = [
    pytest.param(TheoryCase(1, 40, 1.0, hours=16, warmup_hours=2), 12, id="M/M/1 rho=.67"),
    pytest.param(TheoryCase(2, 60, 1.5, hours=16, warmup_hours=1), 10, id="M/M/2 rho=.75"),
    pytest.param(TheoryCase(4, 150, 1.2, hours=12, warmup_hours=1), 8, id="M/M/4 rho=.75"),
]


@pytest.mark.parametrize(("case", "replications"), CASES)
def test_simulated_waits_agree_with_erlang_c(case: TheoryCase, replications: int) -> None:
    result = theory_run(case, seed=11, replications=replications, level=0.99)
    theory = MMc(case.servers, case.arrivals_per_hour, case.service_minutes)

    mean_ci = result["mean_wait_ci"]
    assert mean_ci["low"] <= theory.mean_wait_s <= mean_ci["high"]
    assert mean_ci["half_width"] < 0.5 * theory.mean_wait_s  # the check has power

    over_ci = result["p_wait_over_60s_ci"]
    assert over_ci["low"] <= theory.p_wait_over(60) <= over_ci["high"]
    assert over_ci["half_width"] < 0.1

    util_ci = result["utilisation_ci"]
    assert util_ci["low"] <= theory.utilisation <= util_ci["high"]
    assert result["served"] == result["customers"]  # served out, nobody lost


def test_a_single_run_reports_batch_means_intervals() -> None:
    result = theory_run(TheoryCase(2, 60, 1.5, hours=8), seed=3)
    assert result["replications"] == 1
    assert result["mean_wait_ci"]["n"] == 20  # batches
    assert result["mean_wait_ci"]["low"] < result["mean_wait_s"] < result["mean_wait_ci"]["high"]
    assert result["utilisation_ci"] is None


def test_hours_beyond_one_business_day_are_refused() -> None:
    with pytest.raises(ValueError, match="--hours"):
        theory_run(TheoryCase(1, 10, 1.0, hours=23))
