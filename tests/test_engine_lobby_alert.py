"""The lobby alert (A8) has hysteresis: a waiting count hovering at the threshold raises it
once, not at every crossing (the demo used to pop up "超过30个" 16 times in 25 minutes)."""

from __future__ import annotations

from controller.engine import CallNext, Engine, IssueTicket, State
from tests.branches import T0, branch, engine


def waiting_at(e: Engine, target: int, now: float) -> list[dict]:
    """Issue or call until ``target`` customers wait; the lobby alerts raised on the way."""
    alerts: list[dict] = []
    while len(e.state.waiting) != target:
        cmd = IssueTicket(queue="A") if len(e.state.waiting) < target else CallNext(1)
        alerts += [ev for ev in e.handle(cmd, now) if ev["type"] == "lobby_alert"]
    return alerts


def hovering() -> Engine:
    return engine(branch(thresholds={"lobby_alert_waiting": 30}), logged_in=(1,))


def test_a_count_hovering_at_the_threshold_raises_one_alert() -> None:
    e = hovering()
    counts = [31, 30, 31, 29, 31, 28, 31, 25, 31] * 4 + [40, 26, 33]
    alerts = [a for i, n in enumerate(counts) for a in waiting_at(e, n, T0 + 60 * i)]
    assert [(a["waiting"], a["threshold"], a["clear"]) for a in alerts] == [(31, 30, 24)]


def test_it_is_raised_again_only_below_the_clear_mark_and_after_the_repeat_interval() -> None:
    e = hovering()
    assert len(waiting_at(e, 31, T0)) == 1
    assert waiting_at(e, 24, T0 + 60) == []  # cleared: 80 % of 30
    assert waiting_at(e, 35, T0 + 120) == []  # back over within 10 minutes: quiet
    later = waiting_at(e, 36, T0 + 601)  # still over once the interval has passed
    assert [a["waiting"] for a in later] == [36]


def test_the_clear_mark_and_interval_are_configurable_and_survive_a_snapshot() -> None:
    cfg = branch(thresholds={"lobby_alert_waiting": 5, "lobby_alert_clear": 2,
                             "lobby_alert_repeat_min": 0})
    e = engine(cfg, logged_in=(1,))
    assert len(waiting_at(e, 6, T0)) == 1
    again = Engine(cfg, State.from_dict(e.state.to_dict()))  # a restart mid-alert
    assert waiting_at(again, 3, T0) == [] and waiting_at(again, 6, T0) == []
    assert waiting_at(again, 2, T0) == [] and len(waiting_at(again, 6, T0)) == 1


def test_an_old_journal_without_a_clear_mark_replays_as_before() -> None:
    s = State()
    s.apply({"type": "lobby_alert", "at": T0, "day": "", "waiting": 31, "threshold": 30})
    assert s.lobby_alert_at == 30 and s.lobby_alert_last == T0
