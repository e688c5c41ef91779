"""Calling at windows (SPEC B1–B5): login, call, recall, no-show, transfer, insert-front,
hold, call back, and every rule of the selection strategy."""

from __future__ import annotations

import pytest

from controller.engine import (
    CallBack,
    CallNext,
    Engine,
    Hold,
    InsertFront,
    IssueTicket,
    Login,
    Logout,
    NoShow,
    PauseWindow,
    Recall,
    ResumeWindow,
    Transfer,
)
from controller.errors import Refused
from tests.branches import T0, branch, engine, numbers

MIN = 60.0


def take(e: Engine, *queues: str, now: float = T0, **kw: object) -> list[str]:
    out = []
    for q in queues:
        ev = e.handle(IssueTicket(queue=q, **kw), now)  # type: ignore[arg-type]
        out.append(next(x["number"] for x in ev if x["type"] == "ticket_issued"))
    return out


def call(e: Engine, window: int, now: float = T0) -> str:
    return numbers(e.handle(CallNext(window), now))[0]


def refused(e: Engine, cmd: object, now: float = T0) -> str:
    with pytest.raises(Refused) as info:
        e.handle(cmd, now)  # type: ignore[arg-type]
    return info.value.code


# --- B1 login / logout ---------------------------------------------------------------------


def test_login_needs_the_right_password() -> None:
    e = engine()
    assert refused(e, Login(1, "t1", "0000")) == "wrong_password"
    assert refused(e, Login(1, "nobody", "1234")) == "wrong_password"
    assert e.handle(Login(1, "t1", "1234"), T0)[-1]["type"] == "teller_login"


def test_login_takes_the_callers_verified_login_fact() -> None:
    """A caller that checked the password (the box, off its loop) says so in the command;
    the engine then uses that fact and checks nothing itself."""
    assert refused(engine(), Login(1, "t1", "1234", verified=False)) == "wrong_password"
    assert engine().handle(Login(1, "t1", "0000", verified=True), T0)[-1]["type"] == (
        "teller_login")


def test_a_teller_works_at_one_window_and_a_window_has_one_teller() -> None:
    e = engine(logged_in=(1,))
    assert refused(e, Login(2, "t1", "1234")) == "teller_elsewhere"
    assert refused(e, Login(1, "t2", "1234")) == "window_occupied"
    assert e.handle(Login(1, "t1", "1234"), T0) == []  # logging in twice is harmless


def test_calling_needs_a_logged_in_teller_and_an_unpaused_window() -> None:
    e = engine()
    take(e, "A")
    assert refused(e, CallNext(1)) == "not_logged_in"
    e.handle(Login(1, "t1", "1234"), T0)
    e.handle(PauseWindow(1), T0)
    assert refused(e, CallNext(1)) == "window_paused"
    e.handle(ResumeWindow(1), T0)
    assert call(e, 1) == "A001"


def test_logout_finishes_the_current_customer_and_closes_the_window() -> None:
    e = engine(logged_in=(1,))
    take(e, "A")
    call(e, 1)
    types = [ev["type"] for ev in e.handle(Logout(1), T0)]
    assert types == ["ticket_finished", "teller_logout"]
    assert e.state.window(1).teller is None


def test_unknown_window() -> None:
    assert refused(engine(), CallNext(42)) == "unknown_window"


# --- B2 call, recall, no-show --------------------------------------------------------------


def test_call_next_finishes_the_current_and_calls_first_come_first_served() -> None:
    e = engine(logged_in=(1,))
    take(e, "A", "A")
    assert call(e, 1) == "A001"
    events = e.handle(CallNext(1), T0 + 5 * MIN)
    assert [ev["type"] for ev in events] == ["ticket_finished", "ticket_called"]
    assert events[0]["handle_s"] == 5 * MIN
    assert events[1]["wait_s"] == 5 * MIN


def test_call_next_with_nobody_waiting_still_finishes_the_current() -> None:
    e = engine(logged_in=(1,))
    take(e, "A")
    call(e, 1)
    with pytest.raises(Refused) as info:
        e.handle(CallNext(1), T0)
    assert info.value.code == "no_waiting"
    assert [ev["type"] for ev in info.value.events] == ["ticket_finished"]  # type: ignore[attr-defined]
    assert e.state.by_num("A001").state == "finished"  # type: ignore[union-attr]


def test_recall_then_no_show_after_the_configured_recalls() -> None:
    e = engine(logged_in=(1,))
    take(e, "A")
    call(e, 1)
    kinds = [e.handle(Recall(1), T0)[0]["type"] for _ in range(4)]
    assert kinds == ["ticket_recalled"] * 3 + ["ticket_no_show"]
    assert e.state.by_num("A001").state == "no_show"  # type: ignore[union-attr]


def test_teller_can_discard_at_once() -> None:
    e = engine(logged_in=(1,))
    take(e, "A")
    call(e, 1)
    assert e.handle(NoShow(1), T0)[0]["reason"] == "teller"
    assert refused(e, Recall(1)) == "no_current"


# --- B3 insert at front --------------------------------------------------------------------


def test_insert_front_puts_a_ticket_first_in_the_order_inserted() -> None:
    e = engine(logged_in=(1,))
    take(e, "A", "A", "A", "A")
    e.handle(InsertFront("A003"), T0)
    e.handle(InsertFront("A004"), T0)
    assert [call(e, 1) for _ in range(4)] == ["A003", "A004", "A001", "A002"]


def test_insert_front_only_for_a_waiting_ticket() -> None:
    e = engine(logged_in=(1,))
    take(e, "A")
    call(e, 1)
    assert refused(e, InsertFront("A001")) == "ticket_not_waiting"
    assert refused(e, InsertFront("A999")) == "unknown_ticket"


# --- B4 transfer ---------------------------------------------------------------------------


def test_transfer_to_a_window_keeps_the_number_and_goes_first_there() -> None:
    e = engine(logged_in=(1, 2))
    take(e, "A", "B", "B")
    assert call(e, 1) == "A001"
    e.handle(Transfer(1, to_window=2), T0 + MIN)
    t = e.state.by_num("A001")
    assert (t.state, t.directed, t.issued_at) == ("waiting", 2, T0)  # type: ignore[union-attr]
    assert call(e, 2, T0 + 2 * MIN) == "A001"  # before B001, though window 2 serves only B


def test_transfer_to_a_queue_keeps_the_original_issue_time() -> None:
    e = engine(logged_in=(1, 2))
    take(e, "A", now=T0)
    take(e, "B", now=T0 + MIN)
    call(e, 1, T0 + 2 * MIN)
    e.handle(Transfer(1, to_queue="B"), T0 + 3 * MIN)
    assert call(e, 2, T0 + 4 * MIN) == "A001"  # issued before B001: served first in B
    assert e.state.by_num("A001").queue == "B"  # type: ignore[union-attr]


def test_transfer_a_waiting_ticket_by_number() -> None:
    e = engine(logged_in=(1, 2))
    take(e, "A", "A")
    e.handle(Transfer(1, to_window=2, number="A002"), T0)
    assert call(e, 2) == "A002"


def test_transfer_refusals() -> None:
    e = engine(logged_in=(1, 2))
    take(e, "A")
    assert refused(e, Transfer(1, to_window=2)) == "no_current"
    call(e, 1)
    assert refused(e, Transfer(1, to_window=1)) == "same_place"
    assert refused(e, Transfer(1, to_window=9)) == "unknown_window"
    assert refused(e, Transfer(1, to_queue="Z")) == "unknown_queue"


# --- hold and call back --------------------------------------------------------------------


def test_hold_then_call_back() -> None:
    e = engine(logged_in=(1,))
    take(e, "A", "A")
    call(e, 1)
    e.handle(Hold(1), T0)
    assert call(e, 1) == "A002"
    events = e.handle(CallBack(1), T0 + MIN)
    assert [ev["type"] for ev in events] == ["ticket_finished", "ticket_called"]
    assert events[1]["number"] == "A001" and events[1]["callback"] is True


def test_a_no_show_who_comes_back_can_be_called_back_by_number() -> None:
    e = engine(logged_in=(1,))
    take(e, "A")
    call(e, 1)
    e.handle(NoShow(1), T0)
    assert numbers(e.handle(CallBack(1, "A001"), T0)) == ["A001"]
    assert refused(e, CallBack(1, "A001")) == "ticket_not_held"


# --- B5 selection strategy -----------------------------------------------------------------


def test_window_queue_priority_larger_first() -> None:
    e = engine(logged_in=(1,))  # window 1: A=5, B=1
    take(e, "B", "A")
    assert [call(e, 1), call(e, 1)] == ["A001", "B001"]


def test_vip_first_by_customer_type_then_stars() -> None:
    cfg = branch(
        windows=[{"number": 1, "queues": {"A": 1, "V": 1}}],
        card_types=[{"id": "gold", "name": "金卡", "prefix": "9", "queue": "A",
                     "customer_type": "vip", "stars": 2}],
        vip_customers=[{"id": "v1", "name": "陈先生", "stars": 5, "cards": ["8888888888888888"],
                        "queue": "A"}],
    )
    e = engine(cfg, logged_in=(1,))
    take(e, "A")
    e.handle(IssueTicket(card="9000000000000001"), T0)
    e.handle(IssueTicket(card="8888888888888888"), T0)
    assert [call(e, 1) for _ in range(3)] == ["A003", "A002", "A001"]


def test_appointment_tickets_before_walk_ins() -> None:
    e = engine(logged_in=(1,))
    take(e, "A")
    take(e, "A", appointment="bk-1", channel="appointment")
    assert call(e, 1) == "A002"


def test_wait_escalation_jumps_ahead_of_priority() -> None:
    e = engine(branch(thresholds={"escalate_after_min": 30}), logged_in=(1,))
    take(e, "B", now=T0)  # window 1 prefers A, but B001 has waited 31 minutes
    take(e, "A", now=T0 + 30 * MIN)
    assert call(e, 1, T0 + 31 * MIN) == "B001"


def test_without_escalation_priority_wins() -> None:
    e = engine(logged_in=(1,))
    take(e, "B", now=T0)
    take(e, "A", now=T0 + 30 * MIN)
    assert call(e, 1, T0 + 31 * MIN) == "A001"


def test_high_return_business_first() -> None:
    cfg = branch(queues=[{"id": "A", "name": "个人", "prefix": "A"},
                         {"id": "W", "name": "理财", "prefix": "W", "high_return": True},
                         {"id": "B", "name": "对公", "prefix": "B"}],
                 windows=[{"number": 1, "queues": {"A": 1, "W": 1}}])
    e = engine(cfg, logged_in=(1,))
    take(e, "A", "W")
    assert call(e, 1) == "W001"


def test_balancing_window_helps_an_overloaded_queue_when_idle() -> None:
    cfg = branch(windows=[{"number": 1, "queues": {"A": 1}},
                          {"number": 2, "queues": {"B": 1}, "balancing": True}],
                 thresholds={"balance_waiting": 3})
    e = engine(cfg, logged_in=(1, 2))
    take(e, "A", "A")
    assert refused(e, CallNext(2)) == "no_waiting"  # A below the balancing count
    take(e, "A")
    assert call(e, 2) == "A001"  # 3 waiting in A: window 2 helps
    take(e, "B")
    assert call(e, 2) == "B001"  # its own business first again


def test_strategy_order_is_configurable() -> None:
    # Priority before VIP: the window's preferred business wins over a VIP elsewhere.
    cfg = branch(strategy={"order": ["priority", "vip"]},
                 windows=[{"number": 1, "queues": {"A": 5, "V": 1}}])
    e = engine(cfg, logged_in=(1,))
    take(e, "V", "A")
    assert call(e, 1) == "A001"


def test_ahead_counts_what_the_strategy_puts_before_the_ticket() -> None:
    e = engine(branch(windows=[{"number": 1, "queues": {"A": 1, "V": 1}}]), logged_in=(1,))
    ahead = [
        next(ev["ahead"] for ev in e.handle(IssueTicket(queue=q), T0)
             if ev["type"] == "ticket_issued")
        for q in "AAV"
    ]
    assert ahead == [0, 1, 0]  # the VIP is next, not third
    assert e.ahead("A002", T0) == 2


def test_ahead_with_two_alike_windows_one_of_them_sent_a_customer() -> None:
    # Windows 1 and 2 serve personal banking alike; window 1 sends A001 on to window 2,
    # where it is called first. A new ticket then has A002, A001 and A003 before it: the
    # windows call in turn (1: A002, 2: A001, 1: A003, 2: A004).
    alike = {"A": 5}
    e = engine(branch(windows=[{"number": 1, "queues": alike}, {"number": 2, "queues": alike}]),
               logged_in=(1, 2))
    take(e, "A", "A", "A")
    assert call(e, 1) == "A001"
    e.handle(Transfer(1, to_window=2), T0)
    issued = e.handle(IssueTicket(queue="A"), T0)
    assert next(ev["ahead"] for ev in issued if ev["type"] == "ticket_issued") == 3
    assert [call(e, 1), call(e, 2), call(e, 1), call(e, 2)] == ["A002", "A001", "A003", "A004"]
