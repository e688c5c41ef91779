"""Remote rating by ticket number (RateTicket, C3): one rating per service, whichever way."""

from __future__ import annotations

import pytest

from controller.engine import CallNext, Command, Engine, Finish, IssueTicket, Rate, RateTicket
from controller.errors import Refused
from tests.branches import T0, engine


def served(number_of_tickets: int = 1) -> tuple[Engine, list[str]]:
    e = engine(logged_in=(1,))
    numbers = [e.handle(IssueTicket(queue="A"), T0)[0]["number"]
               for _ in range(number_of_tickets)]
    return e, numbers


def refusal(e: Engine, cmd: Command, now: float) -> str:
    with pytest.raises(Refused) as err:
        e.handle(cmd, now)
    return err.value.code


def test_a_finished_service_is_rated_once_by_phone_long_after_the_evaluator_window() -> None:
    e, (n,) = served()
    e.handle(CallNext(1), T0 + 10)
    e.handle(Finish(1), T0 + 300)
    events = e.handle(RateTicket(n, 5), T0 + 3 * 3600)
    assert [(x["type"], x["number"], x["window"], x["score"], x["channel"]) for x in events] \
        == [("ticket_rated", n, 1, 5, "remote")]
    assert refusal(e, RateTicket(n, 4), T0 + 3 * 3600 + 5) == "already_rated"
    assert refusal(e, Rate(1, 4), T0 + 3 * 3600 + 6) == "already_rated"  # nor the evaluator


def test_a_service_rated_on_the_evaluator_cannot_be_rated_by_phone() -> None:
    e, (n,) = served()
    e.handle(CallNext(1), T0 + 10)
    e.handle(Finish(1), T0 + 60)
    e.handle(Rate(1, 2), T0 + 70)
    assert refusal(e, RateTicket(n, 5), T0 + 80) == "already_rated"


def test_only_a_finished_service_of_today_can_be_rated() -> None:
    e, (waiting, called) = served(2)
    e.handle(CallNext(1), T0 + 10)  # calls `waiting` first
    assert refusal(e, RateTicket(called, 5), T0 + 20) == "no_service_to_rate"  # still waiting
    assert refusal(e, RateTicket(waiting, 5), T0 + 20) == "no_service_to_rate"  # being served
    assert refusal(e, RateTicket("A999", 5), T0 + 20) == "unknown_ticket"
    e.handle(Finish(1), T0 + 30)
    assert refusal(e, RateTicket(waiting, 42), T0 + 40) == "bad_score"
    e.handle(RateTicket(waiting, 3), T0 + 40)
