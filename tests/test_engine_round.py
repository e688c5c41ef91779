"""The engine's times in events: ``_ms`` must give exactly what ``round(x, 3)`` gives."""

from __future__ import annotations

import math
import random

from controller.engine.engine import _ms


def _same(x: float) -> bool:
    a, b = _ms(x), round(x, 3)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def test_event_times_round_as_round_does() -> None:
    rng = random.Random(19)
    for _ in range(100_000):
        k = rng.randrange(0, 2**41)
        tie = (k + 0.5) / 1000  # halfway between two milliseconds (as near as a float is)
        for x in (
            1_764_000_000 + rng.random() * 200_000,  # epoch seconds, a day's span
            rng.random() * 10_000,  # a wait or a handling time
            rng.random() * 1e-3,
            k / 1000, tie, math.nextafter(tie, 0.0), math.nextafter(tie, math.inf),
        ):
            assert _same(x), x


def test_edges_fall_back_to_round() -> None:
    for x in (0.0, -0.0, 5e-324, 0.0005, 0.0015, 2.675, 1.0005, -1.5, -0.0004,
              2**41 / 1000, 1e12, 1e15, 1e300, math.inf, -math.inf):
        assert _same(x), x
    assert math.isnan(_ms(math.nan))
