"""Jitter for the uplink's periodic work."""

from __future__ import annotations

import random

__all__ = ["jitter"]


def jitter() -> float:
    """Spread periodic work: boxes started together (a power cut, a broker restart) must not
    all report in the same second."""
    return random.uniform(0.75, 1.25)

