"""``ahead`` and call-next read the waiting tickets by kind (``State.kinds``) instead of
walking all of them; the answers are exactly the walk's.

For random branches (windows, their businesses and priorities, balancing, the strategy's
rules in any order, escalation, the balancing count) and random days (tickets by queue,
card and appointment, calls, transfers, insert-front, holds, call-backs, windows opening,
pausing and closing, time passing):

* every waiting ticket's ``ahead_of`` equals :func:`ahead_by_walk`, the full walk over every
  waiting ticket that ``ahead_of`` was before (kept as the reference and the fallback);
* every window's call-next picks the ticket the old scan over every waiting ticket picked;
* the index holds exactly the waiting tickets, each kind's in issue order, after the day
  and after a replay of its events or a snapshot.
"""

from __future__ import annotations

import contextlib
from random import Random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.config import STRATEGY_RULES, Config, WindowConfig
from controller.engine import (
    CallBack,
    CallNext,
    Engine,
    Event,
    Hold,
    InsertFront,
    IssueTicket,
    Login,
    Logout,
    PauseWindow,
    ResumeWindow,
    State,
    Transfer,
)
from controller.engine.select import (
    _ranked_before,
    ahead_by_walk,
    ahead_of,
    eligible,
    rank_key,
    select,
)
from controller.engine.state import Ticket, issue_key, kind_of
from controller.errors import Refused
from tests.branches import BASE, CHEAP, T0, branch

QUEUES = ["A", "B", "V"]


def old_select(state: State, cfg: Config, window: WindowConfig, now: float) -> Ticket | None:
    """Call-next as it was: the smallest rank among every eligible waiting ticket."""
    pool = eligible(
        window, state.waiting.values(), state.waiting_count, cfg.thresholds.balance_waiting
    )
    return min(pool, key=rank_key(cfg, window, now)) if pool else None


@st.composite
def configs(draw: st.DrawFn) -> Config:
    windows = []
    # windows alike (one lane) are drawn often: the fast path's case
    alike = st.sampled_from([{"A": 2, "B": 1}, {"A": 1}, {"A": 1, "B": 1, "V": 1}])
    for n in range(1, draw(st.integers(1, 4)) + 1):
        queues = draw(st.lists(st.sampled_from(QUEUES), min_size=1, max_size=3, unique=True))
        own = {q: draw(st.integers(0, 2)) for q in queues}
        windows.append({
            "number": n,
            "queues": draw(st.one_of(alike, st.just(own))),
            "balancing": draw(st.booleans()),
        })
    rules = draw(st.permutations(list(STRATEGY_RULES)))
    order = rules[:draw(st.integers(0, len(rules)))]
    queues: list[dict[str, Any]] = [dict(q) for q in BASE["queues"]]
    for q in queues:
        q["high_return"] = draw(st.booleans())
    return drawn_branch(queues, windows, tellers=4, stars=draw(st.integers(0, 3)),
                        order=order, escalate_after_min=draw(st.sampled_from([0, 1, 5])),
                        balance_waiting=draw(st.integers(1, 4)))


def drawn_branch(queues: list[dict[str, Any]], windows: list[dict[str, Any]], *, tellers: int,
                 stars: int, order: list[str], escalate_after_min: int,
                 balance_waiting: int) -> Config:
    """A drawn branch: its businesses and windows, tellers t1…t``tellers``, the gold card
    (business A, a VIP of ``stars``), the strategy's ``order`` and thresholds."""
    return branch(
        queues=queues,
        windows=windows,
        tellers=[{"id": f"t{i}", "name": f"柜员{i}", "password_hash": CHEAP}
                 for i in range(1, tellers + 1)],
        card_types=[{"id": "gold", "name": "金卡", "prefix": "9", "queue": "A",
                     "customer_type": "vip", "stars": stars}],
        strategy={"order": order},
        thresholds={"escalate_after_min": escalate_after_min,
                    "balance_waiting": balance_waiting,
                    "recalls_before_no_show": 3, "lobby_alert_waiting": 0},
    )


WINDOW = st.integers(1, 4)
COMMANDS = st.one_of(
    st.builds(IssueTicket, queue=st.sampled_from(QUEUES)),
    st.builds(IssueTicket, queue=st.sampled_from(QUEUES)),  # walk-ins: the common case
    st.just(IssueTicket(card="9123")),
    st.builds(IssueTicket, queue=st.sampled_from(QUEUES), channel=st.just("appointment"),
              appointment=st.sampled_from(["b1", "b2"])),
    st.builds(CallNext, WINDOW),
    st.builds(CallNext, WINDOW),
    WINDOW.map(lambda n: Login(n, f"t{n}", "1234")),
    st.builds(Transfer, WINDOW, to_window=WINDOW),
    st.builds(Transfer, WINDOW, to_queue=st.sampled_from(QUEUES)),
    st.builds(Hold, WINDOW),
    st.builds(CallBack, WINDOW),
    st.builds(Logout, WINDOW),
    st.builds(PauseWindow, WINDOW),
    st.builds(ResumeWindow, WINDOW),
    st.sampled_from([60, 300, 1200]),  # minutes pass (escalation)
    st.integers(0, 40).map(lambda i: ("front", i)),  # insert a waiting ticket at the front
)


def check(engine: Engine, now: float) -> None:
    s, cfg = engine.state, engine.cfg
    for t in s.waiting.values():
        assert ahead_of(s, cfg, t, now) == ahead_by_walk(s, cfg, t, now), t.number
    for w in cfg.windows:
        assert select(s, cfg, w, now) is old_select(s, cfg, w, now), w.number
    assert_index(s)


def assert_index(s: State) -> None:
    indexed = [t for same in s.kinds.values() for t in same]
    assert sorted(t.id for t in indexed) == sorted(s.waiting)
    for k, same in s.kinds.items():
        assert same, k
        assert all(kind_of(t) == k for t in same)
        assert [issue_key(t) for t in same] == sorted(issue_key(t) for t in same)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), logins=st.lists(WINDOW, max_size=4, unique=True),
       steps=st.lists(COMMANDS, max_size=60))
def test_ahead_and_call_next_are_the_walks_answers(cfg: Config, logins: list[int],
                                                   steps: list[Any]) -> None:
    engine = Engine(cfg)
    now = T0
    log: list[Event] = []
    for n in logins:
        if n <= len(cfg.windows):
            log += engine.handle(Login(n, f"t{n}", "1234"), now)
    for step in steps:
        if isinstance(step, Login) and step.window > len(cfg.windows):
            continue
        if isinstance(step, int):
            now += step
        else:
            if isinstance(step, tuple):
                waiting = list(engine.state.waiting.values())
                if not waiting:
                    continue
                step = InsertFront(waiting[step[1] % len(waiting)].number)
            try:
                log += engine.handle(step, now)
            except Refused as refusal:
                log += refusal.events  # type: ignore[attr-defined]
        check(engine, now)
    # The index is derived: a replay and a snapshot rebuild it.
    replayed = State()
    for e in log:
        replayed.apply(e)
    assert_index(replayed)
    assert_index(State.from_dict(engine.state.to_dict()))
    assert {k: [t.id for t in same] for k, same in replayed.kinds.items()} == {
        k: [t.id for t in same] for k, same in engine.state.kinds.items()}


ARRIVALS = st.one_of(
    st.builds(IssueTicket, queue=st.sampled_from(QUEUES)),
    st.builds(IssueTicket, queue=st.sampled_from(QUEUES)),
    st.builds(IssueTicket, queue=st.sampled_from(QUEUES)),
    st.just(IssueTicket(card="9123")),
    st.builds(IssueTicket, queue=st.sampled_from(QUEUES), channel=st.just("appointment"),
              appointment=st.just("b1")),
    st.builds(CallNext, WINDOW),
    st.sampled_from([1, 30, 90]),  # seconds pass (escalation after 1 or 5 minutes)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), steps=st.lists(ARRIVALS, min_size=10, max_size=150))
def test_longer_queues_with_every_window_open(cfg: Config, steps: list[Any]) -> None:
    """Queues of dozens, every window open: the windows' calls race through long lanes,
    balancing windows borrow down to the balancing count."""
    engine = Engine(cfg)
    now = T0
    for w in cfg.windows:
        engine.handle(Login(w.number, f"t{w.number}", "1234"), now)
    for step in steps:
        if isinstance(step, int):
            now += step
            continue
        with contextlib.suppress(Refused):  # (a refused ticket or call changes nothing)
            engine.handle(step, now)
    s = engine.state
    for t in s.waiting.values():
        assert ahead_of(s, cfg, t, now) == ahead_by_walk(s, cfg, t, now), t.number


def test_a_long_queue_of_one_lane_is_counted_not_walked() -> None:
    """10,000 waiting at one window: each new ticket's ``ahead`` is its place, and the
    count reads a few tickets per kind, not every waiting one."""
    cfg = branch(queues=[dict(q, digits=5) for q in BASE["queues"]],
                 windows=[{"number": 1, "queues": {"A": 5, "B": 1}}],
                 thresholds={"escalate_after_min": 30})
    engine = Engine(cfg)
    for i in range(10_000):
        e = engine.handle(IssueTicket(queue="AB"[i % 2]), T0 + i / 100)[-1]
        if i % 1000 == 999:
            assert e["ahead"] == i  # B ranks after A at window 1, but nothing else waits
    reads = 0
    key = rank_key(cfg, cfg.windows[0], T0 + 100)

    def counting(t: Ticket) -> tuple[float, ...]:
        nonlocal reads
        reads += 1
        return key(t)

    t = engine.state.by_num("A02500")  # the middle of A's 5,000: all A before it
    assert t is not None
    assert _ranked_before(engine.state, counting, t, cfg.windows[0]) == 2499
    assert ahead_by_walk(engine.state, cfg, t, T0 + 100) == 2499
    assert reads < 40


def test_alike_windows_with_a_ticket_directed_to_one_take_two_lanes() -> None:
    """Windows 1 and 2 serve A alike, but a customer was transferred to window 2: window 2
    calls them before its next A, so a new A ticket has one more ahead than its place
    at window 1 (the walk drains two lanes; the count of one lane would say 1)."""
    cfg = branch(windows=[{"number": 1, "queues": {"A": 1}}, {"number": 2, "queues": {"A": 1}}])
    engine = Engine(cfg)
    for n in (1, 2):
        engine.handle(Login(n, f"t{n}", "1234"), T0)
    engine.handle(IssueTicket(queue="A"), T0)
    engine.handle(CallNext(1), T0 + 1)
    engine.handle(Transfer(1, to_window=2), T0 + 2)
    engine.handle(IssueTicket(queue="A"), T0 + 3)
    e = engine.handle(IssueTicket(queue="A"), T0 + 4)[-1]
    t = engine.state.by_num(e["number"])
    assert t is not None
    assert e["ahead"] == ahead_by_walk(engine.state, cfg, t, T0 + 4) == 2


def test_a_window_of_equal_priorities_takes_two_businesses_in_turn() -> None:
    """Window 1 serves A and B alike (by issue time), window 2 only A: the drain over
    kinds must follow window 1 from A to B and back as the tickets came, not take a run
    of A's. The walk over every ticket is the judge."""
    cfg = branch(windows=[{"number": 1, "queues": {"A": 1, "B": 1}},
                          {"number": 2, "queues": {"A": 2}}])
    engine = Engine(cfg)
    for n in (1, 2):
        engine.handle(Login(n, f"t{n}", "1234"), T0)
    pattern = "ABBABAAABBBABAB"
    for i, q in enumerate(pattern * 3):
        engine.handle(IssueTicket(queue=q), T0 + i)
    s = engine.state
    assert len(s.kinds) == 2
    answers = [(ahead_of(s, cfg, t, T0 + 99), ahead_by_walk(s, cfg, t, T0 + 99))
               for t in s.waiting.values()]
    assert all(new == old for new, old in answers), answers
    last_a = [t for t in s.waiting.values() if t.queue == "A"][-1]
    # window 2 takes an A every turn, window 1 the oldest of A and B: 45 waiting, 24 A's
    assert ahead_of(s, cfg, last_a, T0 + 99) == ahead_by_walk(s, cfg, last_a, T0 + 99) < 44


def test_two_balancing_windows_stop_borrowing_at_the_balancing_count() -> None:
    """Windows 1 and 2 (balancing) both help with A while eight or more wait. Each call
    lowers the count, so the second helper of a round may already find it under: the
    drain over kinds must stop that helper there, as the walk does (a case found by a
    random search against the walk)."""
    cfg = branch(windows=[{"number": 1, "queues": {"B": 0}, "balancing": True},
                          {"number": 2, "queues": {"B": 0, "V": 0}, "balancing": True}],
                 thresholds={"balance_waiting": 8})
    engine = Engine(cfg)
    for n in (1, 2):
        engine.handle(Login(n, f"t{n}", "1234"), T0)
    for i, q in enumerate("BBAVBAVABAAAAAVBABVABVABABBBAAAVAB"):
        engine.handle(IssueTicket(queue=q), T0 + i)
    s = engine.state
    got = [ahead_of(s, cfg, t, T0 + 99) for t in s.waiting.values()]
    assert got == [ahead_by_walk(s, cfg, t, T0 + 99) for t in s.waiting.values()]
    a11 = s.by_num("A011")
    assert a11 is not None and ahead_of(s, cfg, a11, T0 + 99) == 27



FIVE = ["A", "B", "V", "T", "F"]


@st.composite
def races(draw: st.DrawFn) -> Config:
    """Branches like the example's: five businesses, up to six windows sharing them with
    different priorities (often equal: their kinds interleave by issue time), some
    balancing."""
    queues: list[dict[str, Any]] = [
        {"id": q, "name": q, "prefix": q, "digits": 4,
         "high_return": draw(st.booleans())} for q in FIVE]
    queues[1]["customer_type"] = draw(st.sampled_from(["corporate", "vip"]))
    queues[2]["customer_type"] = "vip"
    windows = [{"number": n,
                "queues": draw(st.dictionaries(st.sampled_from(FIVE), st.integers(0, 3),
                                               min_size=1, max_size=3)),
                "balancing": draw(st.booleans())}
               for n in range(1, draw(st.integers(2, 6)) + 1)]
    rules = draw(st.permutations(list(STRATEGY_RULES)))
    return drawn_branch(queues, windows, tellers=6, stars=1,
                        order=draw(st.sampled_from([list(STRATEGY_RULES), rules[:4]])),
                        escalate_after_min=draw(st.sampled_from([0, 1, 5])),
                        balance_waiting=draw(st.integers(1, 12)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=races(), rng=st.randoms(use_true_random=False), n=st.sampled_from([50, 200, 500]))
def test_races_of_many_windows_over_long_queues(cfg: Config, rng: Random, n: int) -> None:
    """Hundreds waiting at windows that share businesses with different priorities: the
    race goes through many phases (a window taking a kind while another takes the kind
    that bounds it, balancing windows borrowing business after business). The day is
    drawn from ``rng``: a business mix, arrivals bunched or spread, a few calls, cards,
    appointments and insert-fronts."""
    engine = Engine(cfg, count_ahead=False)  # (counted below, for a sample)
    now = T0
    for w in cfg.windows:
        if rng.random() < 0.9:
            engine.handle(Login(w.number, f"t{w.number}", "1234"), now)
    mix = [rng.random() ** 2 for _ in FIVE]
    for _ in range(n):
        now += rng.choice([0.001, 0.01, 0.5, 3, 20])
        r = rng.random()
        step: Any = (IssueTicket(queue=rng.choices(FIVE, mix)[0]) if r < 0.85
                     else IssueTicket(card="9123") if r < 0.88
                     else IssueTicket(queue=rng.choice(FIVE), channel="appointment",
                                      appointment="b1") if r < 0.9
                     else CallNext(rng.randint(1, len(cfg.windows))) if r < 0.98
                     else InsertFront(rng.choice(list(engine.state.waiting.values())).number)
                     if engine.state.waiting else None)
        if step is not None:
            with contextlib.suppress(Refused):
                engine.handle(step, now)
    now += rng.choice([0, 100, 600])
    s = engine.state
    waiting = list(s.waiting.values())
    for t in rng.sample(waiting, min(len(waiting), 8)) + waiting[-3:]:
        assert ahead_of(s, cfg, t, now) == ahead_by_walk(s, cfg, t, now), t.number
