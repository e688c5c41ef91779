"""Small statistics without numpy/scipy: percentiles, Student-t intervals, batch means."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist, fmean, stdev

__all__ = ["Interval", "batch_means", "interval", "percentile", "t_quantile"]


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) of already sorted values, linear interpolation."""
    n = len(sorted_values)
    if n == 0:
        return None
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def t_quantile(p: float, df: int) -> float:
    """Quantile ``p`` of Student's t with ``df`` degrees of freedom.

    Exact for df 1 and 2; otherwise the Cornish–Fisher expansion around the normal
    quantile (Abramowitz & Stegun 26.7.5), within 1e-3 of the exact value for df >= 3.
    """
    if df < 1:
        raise ValueError("df must be >= 1")
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = NormalDist().inv_cdf(p)
    v = float(df)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / v + g2 / v**2 + g3 / v**3 + g4 / v**4


@dataclass(frozen=True, slots=True)
class Interval:
    """A mean with a two-sided confidence interval ``mean ± half_width``."""

    mean: float
    half_width: float
    n: int
    level: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_json(self) -> dict[str, float | int]:
        return {
            "mean": self.mean, "low": self.low, "high": self.high,
            "half_width": self.half_width, "n": self.n, "level": self.level,
        }


def interval(samples: Sequence[float], level: float = 0.95) -> Interval:
    """Student-t confidence interval of the mean of independent ``samples``."""
    n = len(samples)
    if n == 0:
        raise ValueError("no samples")
    mean = fmean(samples)
    if n == 1:
        return Interval(mean, math.inf, 1, level)
    half = t_quantile(0.5 + level / 2, n - 1) * stdev(samples) / math.sqrt(n)
    return Interval(mean, half, n, level)


def batch_means(values: Sequence[float], batches: int = 20, level: float = 0.95) -> Interval:
    """Confidence interval of the mean of a correlated series by non-overlapping batch means.

    Consecutive customers' waits are correlated, so their plain standard error is too
    small; the means of long consecutive batches are nearly independent.
    """
    n = len(values)
    batches = min(batches, n)
    if batches < 2:
        return interval(list(values) or [math.nan], level)
    size = n // batches
    means = [fmean(values[i * size:(i + 1) * size]) for i in range(batches)]
    return interval(means, level)
