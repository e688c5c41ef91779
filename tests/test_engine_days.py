"""Ratings (SPEC C1) and the day boundary (A3): one rating per finished service; numbering
restarts each day; a clock that jumps backwards never reopens a day."""

from __future__ import annotations

import pytest

from controller.engine import CallNext, Engine, Finish, IssueTicket, PauseQueue, Rate, Tick
from controller.errors import Refused
from tests.branches import T0, branch, engine

DAY = 86400.0


def rate(e: Engine, window: int, score: int, now: float = T0) -> str:
    try:
        e.handle(Rate(window, score), now)
    except Refused as r:
        return r.code
    return "rated"


def served(e: Engine, window: int = 1, now: float = T0) -> None:
    e.handle(IssueTicket(queue="A"), now)
    e.handle(CallNext(window), now)
    e.handle(Finish(window), now + 60)


# --- C1 ratings ----------------------------------------------------------------------------


def test_one_rating_per_service() -> None:
    e = engine(logged_in=(1,))
    served(e)
    assert rate(e, 1, 5, T0 + 70) == "rated"
    assert rate(e, 1, 4, T0 + 71) == "already_rated"
    assert e.state.by_num("A001").rated == 5  # type: ignore[union-attr]


def test_only_a_finished_service_can_be_rated() -> None:
    e = engine(logged_in=(1,))
    assert rate(e, 1, 5) == "no_service_to_rate"
    e.handle(IssueTicket(queue="A"), T0)
    e.handle(CallNext(1), T0)
    assert rate(e, 1, 5) == "no_service_to_rate"  # still being served


def test_rating_belongs_to_the_window_that_served() -> None:
    e = engine(logged_in=(1, 2))
    served(e, 1)
    assert rate(e, 2, 5, T0 + 70) == "no_service_to_rate"
    assert rate(e, 1, 5, T0 + 70) == "rated"


def test_rating_window_closes() -> None:
    e = engine(branch(thresholds={"rating_window_s": 120}), logged_in=(1,))
    served(e)
    assert rate(e, 1, 5, T0 + 60 + 121) == "rating_expired"


def test_a_customer_can_still_rate_after_the_teller_called_the_next() -> None:
    e = engine(logged_in=(1,))
    e.handle(IssueTicket(queue="A"), T0)
    e.handle(IssueTicket(queue="A"), T0)
    e.handle(CallNext(1), T0)
    e.handle(CallNext(1), T0 + 60)  # finishes A001, calls A002
    e.handle(Rate(1, 2), T0 + 65)
    assert e.state.by_num("A001").rated == 2  # type: ignore[union-attr]


def test_bad_ratings_are_marked_and_unknown_scores_refused() -> None:
    e = engine(logged_in=(1,))
    served(e)
    assert rate(e, 1, 7) == "bad_score"
    assert e.handle(Rate(1, 1), T0 + 70)[0]["bad"] is True


# --- day boundary --------------------------------------------------------------------------


def test_numbering_restarts_at_the_day_boundary_and_waiting_tickets_are_closed() -> None:
    e = engine(logged_in=(1,))
    for _ in range(3):
        e.handle(IssueTicket(queue="A"), T0)
    e.handle(CallNext(1), T0)
    events = e.handle(IssueTicket(queue="A"), T0 + DAY)
    kinds = [ev["type"] for ev in events]
    assert kinds == ["ticket_closed"] * 3 + ["day_closed", "day_opened", "ticket_issued"]
    assert {ev["was"] for ev in events[:3]} == {"called", "waiting"}
    assert all(ev["state"] == "not_served" for ev in events[:3])
    assert events[-1]["number"] == "A001" and events[-1]["day"] == "2026-11-26"


def test_a_tick_closes_the_day_without_any_customer() -> None:
    e = engine()
    e.handle(IssueTicket(queue="A"), T0)
    kinds = [ev["type"] for ev in e.handle(Tick(), T0 + DAY)]
    assert kinds == ["ticket_closed", "day_closed", "day_opened"]


def test_day_start_can_be_after_midnight() -> None:
    e = engine(branch(branch={"day_start": "04:00"}))
    midnight_past = T0 + 15 * 3600  # 01:00 the next calendar day: still the same business day
    e.handle(IssueTicket(queue="A"), T0)
    assert e.handle(IssueTicket(queue="A"), midnight_past)[-1]["number"] == "A002"
    assert e.handle(IssueTicket(queue="A"), T0 + 18 * 3600)[-1]["number"] == "A001"


def test_a_clock_that_jumps_back_never_reopens_a_day_or_reuses_a_number() -> None:
    e = engine()
    e.handle(IssueTicket(queue="A"), T0 + DAY)  # today
    # The Pi reboots with a stale clock: yesterday. Numbers continue, the day stays today.
    events = e.handle(IssueTicket(queue="A"), T0)
    assert (events[-1]["number"], events[-1]["day"]) == ("A002", "2026-11-26")
    assert events[-1]["at"] >= T0 + DAY  # times never run backwards in the journal


def test_refusal_after_crossing_the_day_hands_back_the_day_events() -> None:
    e = engine()
    e.handle(IssueTicket(queue="A"), T0)
    e.handle(PauseQueue("A", "系统维护"), T0)
    with pytest.raises(Refused) as info:
        e.handle(IssueTicket(queue="A"), T0 + DAY)
    assert info.value.code == "queue_paused"
    # Already applied: the caller must journal them like any others.
    kinds = [ev["type"] for ev in info.value.events]  # type: ignore[attr-defined]
    assert kinds == ["ticket_closed", "day_closed", "day_opened"]
    assert e.state.day == "2026-11-26"
