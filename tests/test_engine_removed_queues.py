"""A business taken out of the configuration while its customers wait (docs/config.md,
``removed_queues``): they are moved to the business it names, keeping their numbers and
their turn, or closed with an event; never left where no window calls them."""

from __future__ import annotations

import pytest

from controller.engine import (
    CallNext,
    Engine,
    Hold,
    IssueTicket,
    Login,
    SettleRemovedQueues,
    State,
)
from controller.errors import Refused
from tests.branches import T0, branch, engine, numbers

MIN = 60.0
WITHOUT_A = dict(
    queues=[{"id": "B", "name": "对公业务", "prefix": "B"},
            {"id": "V", "name": "VIP业务", "prefix": "V", "customer_type": "vip"}],
    windows=[{"number": 1, "queues": {"B": 1}}, {"number": 2, "queues": {"B": 5}}],
)


def busy_morning() -> tuple[Engine, list[dict[str, object]]]:
    """A001 held at window 1 (a form to fill in); A002, B001, A003, A004 waiting.
    Returns the engine and its events (the journal)."""
    e = engine()
    journal = e.handle(Login(1, "t1", "1234"), T0)
    for i, q in enumerate("AABAA"):
        journal += e.handle(IssueTicket(queue=q), T0 + i * MIN)
    journal += e.handle(CallNext(1), T0 + 6 * MIN)
    journal += e.handle(Hold(1), T0 + 7 * MIN)
    assert e.state.window(1).held == [e.state.by_number["A001"]]
    return e, journal


def reconfigure(e: Engine, **rules: dict[str, object]) -> list[dict[str, object]]:
    e.configure(branch(**WITHOUT_A, removed_queues=rules))
    return e.handle(SettleRemovedQueues(), T0 + 10 * MIN)


def test_without_a_word_for_them_the_waiting_customers_are_counted_and_refused() -> None:
    e, _ = busy_morning()
    assert e.stranded(branch(**WITHOUT_A)) == {"A": 4}  # A001 held, A002–A004 waiting
    e.configure(branch(**WITHOUT_A))
    with pytest.raises(Refused) as info:
        e.handle(SettleRemovedQueues(), T0 + 10 * MIN)
    assert info.value.code == "tickets_waiting" and info.value.params == {"queue": "A",
                                                                          "count": 4}
    assert "removed_queues.A" in info.value.message


def test_moved_customers_keep_their_numbers_and_their_turn() -> None:
    e, _ = busy_morning()
    events = reconfigure(e, A={"transfer_to": "B"})
    moved = [(x["number"], x["was"]) for x in events if x["type"] == "ticket_transferred"]
    assert moved == [("A001", "held"), ("A002", "waiting"), ("A003", "waiting"),
                     ("A004", "waiting")]
    assert all(x["reason"] == "business_removed" and x["from_queue"] == "A"
               and x["to_queue"] == "B" for x in events)
    assert e.state.window(1).held == []  # no longer set aside at window 1
    assert e.stranded() == {}
    # first come, first served across the merged line: A001 (issued first) … B001 in its turn
    e.handle(Login(2, "t2", "1234"), T0 + 10 * MIN)
    called = [numbers(e.handle(CallNext(2), T0 + (11 + i) * MIN))[0] for i in range(5)]
    assert called == ["A001", "A002", "B001", "A003", "A004"]


def test_closed_customers_end_as_not_served_with_the_reason() -> None:
    e, _ = busy_morning()
    events = reconfigure(e, A={"close": True})
    assert [(x["type"], x["number"], x["state"], x["reason"]) for x in events] == [
        ("ticket_closed", n, "not_served", "business_removed")
        for n in ("A001", "A002", "A003", "A004")]
    assert [t.number for t in e.state.waiting.values()] == ["B001"]
    assert e.state.window(1).held == []


def test_a_customer_at_a_window_stays_with_the_teller() -> None:
    e = engine(logged_in=(1,))
    e.handle(IssueTicket(queue="A"), T0)
    e.handle(IssueTicket(queue="A"), T0 + MIN)
    e.handle(CallNext(1), T0 + 2 * MIN)
    events = reconfigure(e, A={"close": True})
    assert [x["number"] for x in events] == ["A002"]
    assert e.state.by_num("A001").state == "called"  # type: ignore[union-attr]


def test_the_journal_replayed_gives_the_same_state() -> None:
    e, journal = busy_morning()
    journal += reconfigure(e, A={"transfer_to": "B"})
    replayed = State()
    for event in journal:
        replayed.apply(event)  # type: ignore[arg-type]
    assert replayed.to_dict() == e.state.to_dict()


def test_nothing_to_settle_is_no_event() -> None:
    e = engine()
    e.handle(IssueTicket(queue="B"), T0)
    assert reconfigure(e) == []
