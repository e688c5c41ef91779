"""The rank of a ticket at a window (SPEC B5) is the tuple of the strategy's rules in order.

Checks ``rank_key`` against the rule table in ``controller/engine/select.py`` written
out one rule at a time, for any ticket, window, rule order and escalation threshold.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import STRATEGY_RULES, Config
from controller.engine.select import rank_key
from controller.engine.state import Ticket
from tests.conftest import example_config

INF = float("inf")
BASE = example_config()


def reference_rank(cfg: Config, window: Any, now: float, t: Ticket) -> tuple[float, ...]:
    escalate_s = cfg.thresholds.escalate_after_min * 60.0
    parts: list[float] = []
    for rule in cfg.strategy.order:
        if rule == "front":
            parts.append(t.front or INF)
        elif rule == "directed":
            parts.append(0.0 if t.directed == window.number else 1.0)
        elif rule == "appointment":
            parts.append(0.0 if t.appointment else 1.0)
        elif rule == "escalated" and escalate_s > 0:
            parts.append(0.0 if now - t.issued_at >= escalate_s else 1.0)
        elif rule == "vip":
            parts.append(-(t.type_priority * 10 + t.stars))
        elif rule == "high_return":
            parts.append(0.0 if t.high_return else 1.0)
        elif rule == "priority":
            parts.append(-window.queues.get(t.queue, 0))
    return (*parts, t.issued_at, t.order)


tickets = st.builds(
    Ticket,
    id=st.just("x"), number=st.just("A001"), queue=st.sampled_from(["A", "B", "V", "T", "F"]),
    day=st.just("2026-11-25"), n=st.just(1),
    issued_at=st.floats(0, 7200, allow_nan=False), order=st.integers(0, 999),
    type_priority=st.integers(0, 2), stars=st.integers(0, 7),
    appointment=st.sampled_from([None, "bk-1"]), high_return=st.booleans(),
    front=st.integers(0, 3), directed=st.sampled_from([None, 1, 2, 5]),
)


@settings(max_examples=300, deadline=None)
@given(
    t=tickets,
    order=st.permutations(STRATEGY_RULES).flatmap(
        lambda p: st.integers(0, len(p)).map(lambda k: list(p[:k]))),
    escalate=st.sampled_from([0, 20, 30]),
    window=st.sampled_from(BASE.windows),
    now=st.floats(0, 7200, allow_nan=False),
)
def test_rank_is_the_rules_in_strategy_order(
    t: Ticket, order: list[str], escalate: int, window: Any, now: float
) -> None:
    cfg = BASE.model_copy(update={
        "strategy": BASE.strategy.model_copy(update={"order": order}),
        "thresholds": BASE.thresholds.model_copy(update={"escalate_after_min": escalate}),
    })
    assert rank_key(cfg, window, now)(t) == reference_rank(cfg, window, now, t)
