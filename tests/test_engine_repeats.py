"""Repeats and numbers nobody holds, in the pure engine (docs/engine.md, "Repeats").

A request carries (who asked, their key); the same key again from the same asker is not
acted on, also after a replay of the journal. A ticket issued with ``confirm`` that never
reached its customer is voided at start-up, so no window calls it.
"""

from __future__ import annotations

from controller.engine import (
    CallNext,
    Delivered,
    Engine,
    IssueTicket,
    Login,
    State,
    Tick,
    VoidUndelivered,
)
from tests.branches import T0, engine, numbers


def replayed(e: Engine, log: list[dict]) -> Engine:
    fresh = Engine(e.cfg)
    fresh.replay(log)
    return fresh


def test_a_repeated_call_next_calls_one_customer() -> None:
    e = engine(logged_in=(1,))
    for _ in range(3):
        e.handle(IssueTicket(queue="A"), T0)
    first = e.handle(CallNext(1), T0 + 1, ("window-1", "press-1"))
    again = e.handle(CallNext(1), T0 + 1.2, ("window-1", "press-1"))
    assert numbers(first) == ["A001"] and again == []
    assert e.state.tickets["20261125-A001"].state == "called"  # not finished after 0 s
    assert numbers(e.handle(CallNext(1), T0 + 60, ("window-1", "press-2"))) == ["A002"]


def test_the_same_key_from_another_asker_is_another_request() -> None:
    e = engine(logged_in=(1, 2))
    for _ in range(2):
        e.handle(IssueTicket(queue="B"), T0)
    assert numbers(e.handle(CallNext(1), T0, ("window-1", "k"))) == ["B001"]
    assert numbers(e.handle(CallNext(2), T0, ("window-2", "k"))) == ["B002"]


def test_a_repeat_is_recognised_after_a_replay_and_from_a_snapshot() -> None:
    e = engine()
    log = e.handle(Login(1, "t1", "1234"), T0)
    log += e.handle(IssueTicket(queue="A"), T0, ("kiosk-1", "key-1"))
    log += e.handle(IssueTicket(queue="A"), T0)
    log += e.handle(CallNext(1), T0 + 1, ("window-1", "press-1"))
    for restarted in (replayed(e, log), Engine(e.cfg, State.from_dict(e.state.to_dict()))):
        assert restarted.handle(CallNext(1), T0 + 2, ("window-1", "press-1")) == []
        assert restarted.handle(IssueTicket(queue="A"), T0 + 2, ("kiosk-1", "key-1")) == []
        assert restarted.state.requested("kiosk-1").number == "A001"  # type: ignore[union-attr]


def test_requests_are_one_per_asker_and_forgotten_at_the_day_start() -> None:
    e = engine()
    for i in range(50):
        e.handle(IssueTicket(queue="A"), T0, ("kiosk-1", f"key-{i}"))
    assert list(e.state.requests) == ["kiosk-1"]  # the latest key only
    e.handle(Tick(), T0 + 86400)
    assert e.state.requests == {}


def test_an_undelivered_ticket_is_voided_and_never_called() -> None:
    e = engine()
    log = e.handle(Login(1, "t1", "1234"), T0)
    log += e.handle(IssueTicket(queue="A", confirm=True), T0)  # A001: the box died here
    log += e.handle(IssueTicket(queue="A", confirm=True), T0)  # A002: printed
    log += e.handle(Delivered("A002", "printed"), T0)
    log += e.handle(IssueTicket(queue="A", channel="remote"), T0)  # A003: no confirm asked
    restarted = replayed(e, log)
    voided = restarted.handle(VoidUndelivered(), T0 + 5)
    assert [(v["type"], v["number"], v["reason"]) for v in voided] == [
        ("ticket_voided", "A001", "not_delivered")]
    called = [numbers(restarted.handle(CallNext(1), T0 + 10 + i)) for i in range(2)]
    assert called == [["A002"], ["A003"]]
    assert restarted.state.waiting_total == 0
    assert restarted.handle(VoidUndelivered(), T0 + 20) == []  # once


def test_a_ticket_already_called_is_not_voided() -> None:
    e = engine(logged_in=(1,))
    e.handle(IssueTicket(queue="A", confirm=True), T0)
    e.handle(CallNext(1), T0 + 1)
    assert e.handle(VoidUndelivered(), T0 + 2) == []


def test_a_retried_key_whose_ticket_was_voided_gets_a_new_ticket() -> None:
    e = engine()
    e.handle(IssueTicket(queue="A", confirm=True), T0, ("kiosk-1", "key-1"))
    e.handle(VoidUndelivered(), T0 + 5)
    again = e.handle(IssueTicket(queue="A", confirm=True), T0 + 6, ("kiosk-1", "key-1"))
    assert numbers(again, "ticket_issued") == ["A002"]


def test_a_voided_appointment_ticket_frees_the_booking() -> None:
    e = engine()
    e.handle(IssueTicket(queue="A", appointment="bk-1", channel="appointment",
                         confirm=True), T0)
    e.handle(VoidUndelivered(), T0 + 5)
    assert not any(t.appointment == "bk-1" for t in e.state.tickets.values())
