"""Small statistics without numpy/scipy: percentiles, Student-t intervals, batch means."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean, stdev

__all__ = ["Interval", "batch_means", "interval", "percentile", "t_cdf", "t_quantile"]


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) of already sorted values, linear interpolation."""
    n = len(sorted_values)
    if n == 0:
        return None
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def t_cdf(t: float, df: int) -> float:
    """P(T ≤ t) for Student's t with integer ``df`` (closed form, A&S 26.7.3/26.7.4)."""
    theta = math.atan(abs(t) / math.sqrt(df))
    c2, sin, cos = math.cos(theta) ** 2, math.sin(theta), math.cos(theta)
    if df % 2:  # odd: (2/pi)(theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + …))
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        a = 2 / math.pi * (theta + sin * cos * total)
    else:  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + …)
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        a = sin * total
    return 0.5 + a / 2 if t >= 0 else 0.5 - a / 2


def t_quantile(p: float, df: int) -> float:
    """Quantile ``p`` of Student's t with ``df`` degrees of freedom (bisection on
    :func:`t_cdf`, to 1e-9)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if not 0 < p < 1:
        raise ValueError("p must be in (0, 1)")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2
    while hi - lo > 1e-9:
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


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
