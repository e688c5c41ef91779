"""Percentiles, Student-t quantiles and intervals used by the simulator's reports."""

from __future__ import annotations

import pytest

from queueing.stats import batch_means, interval, percentile, t_quantile


@pytest.mark.parametrize(("df", "q975"), [(1, 12.706), (2, 4.303), (3, 3.182), (5, 2.571),
                                          (10, 2.228), (30, 2.042), (1000, 1.962)])
def test_t_quantiles_match_the_table(df: int, q975: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(q975, abs=1e-3)


def test_t_quantile_995() -> None:
    assert t_quantile(0.995, 7) == pytest.approx(3.499, abs=1e-3)
    assert t_quantile(0.995, 19) == pytest.approx(2.861, abs=1e-3)


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 90) == 5.0
    assert percentile([0.0, 10.0], 90) == 9.0


def test_interval_and_batch_means() -> None:
    ci = interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert ci.mean == 3.0
    assert ci.half_width == pytest.approx(2.776 * (2.5**0.5) / 5**0.5, abs=1e-2)
    assert ci.contains(3.0) and not ci.contains(6.0)
    bm = batch_means([float(i % 7) for i in range(700)], batches=10)
    assert bm.n == 10 and bm.mean == pytest.approx(3.0, abs=0.05)


def test_t_cdf_known_points() -> None:
    from queueing.stats import t_cdf

    assert t_cdf(0.0, 4) == 0.5
    assert t_cdf(1.0, 1) == pytest.approx(0.75)  # Cauchy
    assert t_cdf(-2.0, 2) == pytest.approx(0.5 - 1 / 6**0.5)  # 1/2 + t / (2 sqrt(2 + t^2))
