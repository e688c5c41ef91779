"""Service-time distributions per business: exponential, log-normal, empirical.

Each draws seconds from a ``random.Random`` it is handed, so the caller owns the stream
(common random numbers across compared runs).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any, Protocol

from .errors import ScenarioError

_NV_MAGICCONST = 4 * math.exp(-0.5) / math.sqrt(2.0)  # (random.py's NV_MAGICCONST)

__all__ = [
    "Empirical",
    "Exponential",
    "LogNormal",
    "ServiceTime",
    "parse_service",
]


class ServiceTime(Protocol):
    """A service-time distribution: ``draw(rng)`` seconds, ``mean_s`` its mean."""

    @property
    def mean_s(self) -> float: ...

    def draw(self, rng: random.Random) -> float: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Exponential:
    mean: float  # seconds

    @property
    def mean_s(self) -> float:
        return self.mean

    def draw(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean)

    def to_json(self) -> dict[str, Any]:
        return {"dist": "exponential", "mean_minutes": self.mean / 60}


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal with the given mean (seconds) and coefficient of variation."""

    mean: float
    cv: float
    # mu and sigma, worked out once: a draw per simulated customer used to redo them
    _params: tuple[float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sigma = math.sqrt(math.log1p(self.cv**2))
        object.__setattr__(self, "_params", (math.log(self.mean) - sigma**2 / 2, sigma))

    @property
    def sigma(self) -> float:
        return self._params[1]

    @property
    def mu(self) -> float:
        return self._params[0]

    @property
    def mean_s(self) -> float:
        return self.mean

    def draw(self, rng: random.Random) -> float:
        # rng.lognormvariate(mu, sigma), i.e. exp(rng.normalvariate(mu, sigma)), written
        # out: the same draws and arithmetic (Kinderman and Monahan, as CPython 3.11's
        # random.py) without two calls per customer; tests/test_queueing_reproducible.py
        # pins the days it draws.
        mu, sigma = self._params
        draw = rng.random
        while True:
            u1 = draw()
            u2 = 1.0 - draw()
            z = _NV_MAGICCONST * (u1 - 0.5) / u2
            if z * z / 4.0 <= -math.log(u2):
                return math.exp(mu + z * sigma)

    def to_json(self) -> dict[str, Any]:
        return {"dist": "lognormal", "mean_minutes": self.mean / 60, "cv": self.cv}


@dataclass(frozen=True, slots=True)
class Empirical:
    """Resampling of observed service times (seconds), e.g. ``handle_s`` from history."""

    seconds: tuple[float, ...]

    @property
    def mean_s(self) -> float:
        return fmean(self.seconds)

    def draw(self, rng: random.Random) -> float:
        return self.seconds[int(rng.random() * len(self.seconds))]

    def to_json(self) -> dict[str, Any]:
        return {"dist": "empirical", "seconds": list(self.seconds)}


def parse_service(raw: Mapping[str, Any], key: str) -> ServiceTime:
    """Build a distribution from a scenario table, e.g. ``{dist="lognormal", mean_minutes=4,
    cv=0.8}``; errors name ``key``."""
    dist = raw.get("dist", "exponential")
    unknown = set(raw) - {"dist", "mean_minutes", "cv", "seconds"}
    if unknown:
        raise ScenarioError(f"{key}.{sorted(unknown)[0]}", "unknown key")
    if dist == "empirical":
        return Empirical(_samples(raw.get("seconds"), f"{key}.seconds"))
    mean = _positive(raw.get("mean_minutes"), f"{key}.mean_minutes") * 60
    if dist == "exponential":
        return Exponential(mean)
    if dist == "lognormal":
        return LogNormal(mean, _positive(raw.get("cv", 1.0), f"{key}.cv"))
    raise ScenarioError(f"{key}.dist", f"{dist!r} is not exponential, lognormal or empirical")


def _positive(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ScenarioError(key, f"expected a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ScenarioError(key, "must be finite")
    return float(value)


def _samples(value: Any, key: str) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ScenarioError(key, "expected a non-empty list of seconds")
    return tuple(_positive(v, key) for v in value)
