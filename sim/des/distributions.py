"""Service-time distributions per business: exponential, log-normal, empirical.

Each draws seconds from a ``random.Random`` it is handed, so the caller owns the stream
(common random numbers across compared runs).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Protocol

from .errors import ScenarioError

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

    @property
    def sigma(self) -> float:
        return math.sqrt(math.log1p(self.cv**2))

    @property
    def mu(self) -> float:
        return math.log(self.mean) - self.sigma**2 / 2

    @property
    def mean_s(self) -> float:
        return self.mean

    def draw(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)

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
