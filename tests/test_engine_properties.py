"""The engine's invariants under random command sequences (hypothesis state machine).

* a day's numbers in a queue run first, first+1, … with no duplicate and no hole;
* at the end of a day every ticket is in exactly one terminal state;
* ``ahead`` of a waiting ticket equals the number of tickets actually called before it when
  nothing else arrives and the windows serving it call in turn;
* replaying the events from scratch reproduces the same state.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import cycle

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from controller.engine import (
    TERMINAL_STATES,
    CallBack,
    CallNext,
    Engine,
    Event,
    Finish,
    Hold,
    InsertFront,
    IssueTicket,
    Login,
    Logout,
    NoShow,
    PauseQueue,
    PauseWindow,
    Rate,
    Recall,
    ResumeQueue,
    ResumeWindow,
    State,
    Tick,
    Transfer,
    serving_windows,
)
from controller.errors import Refused
from tests.branches import T0, branch

CFG = branch(
    windows=[
        {"number": 1, "queues": {"A": 5, "B": 1}},
        {"number": 2, "queues": {"B": 5, "V": 3}},
        {"number": 3, "queues": {"V": 9}, "balancing": True},
    ],
    card_types=[{"id": "gold", "name": "金卡", "prefix": "9", "queue": "A",
                 "customer_type": "vip", "stars": 3}],
    thresholds={"escalate_after_min": 20, "balance_waiting": 3, "recalls_before_no_show": 2,
                "lobby_alert_waiting": 4},
)
# Windows 1 and 2 alike (the same businesses and priorities): ``ahead`` then shares their
# ranking and, while nothing is directed to either, their lane.
TWINS = branch(
    windows=[
        {"number": 1, "queues": {"A": 5, "B": 1}},
        {"number": 2, "queues": {"A": 5, "B": 1}},
        {"number": 3, "queues": {"V": 9, "B": 2}, "balancing": True},
    ],
    card_types=CFG.model_dump(mode="json")["card_types"],
    thresholds={"escalate_after_min": 20, "balance_waiting": 2, "recalls_before_no_show": 2},
)
WINDOWS = st.sampled_from([1, 2, 3])
QUEUES = st.sampled_from(["A", "B", "V"])


def run(engine: Engine, cmd: object, now: float, log: list[Event]) -> list[Event]:
    try:
        events = engine.handle(cmd, now)  # type: ignore[arg-type]
    except Refused as refusal:
        events = refusal.events  # type: ignore[attr-defined]
    log.extend(events)
    return events


class Branch(RuleBasedStateMachine):
    cfg = CFG

    def __init__(self) -> None:
        super().__init__()
        self.engine = Engine(self.cfg)
        self.now = T0
        self.log: list[Event] = []
        self.given: dict[str, list[int]] = defaultdict(list)  # "day queue" -> numbers issued

    def do(self, cmd: object) -> list[Event]:
        return run(self.engine, cmd, self.now, self.log)

    def waiting_numbers(self) -> list[str]:
        return [t.number for t in self.engine.state.waiting.values()]

    # --- customers -----------------------------------------------------------------------

    @rule(queue=QUEUES)
    def take_ticket(self, queue: str) -> None:
        for e in self.do(IssueTicket(queue=queue)):
            if e["type"] == "ticket_issued":
                self.given[f"{e['day']} {e['queue']}"].append(e["n"])

    @rule()
    def swipe_gold_card(self) -> None:
        for e in self.do(IssueTicket(card="9123")):
            if e["type"] == "ticket_issued":
                self.given[f"{e['day']} {e['queue']}"].append(e["n"])

    @rule(seconds=st.sampled_from([1, 30, 300, 1500]))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds

    @rule()
    def next_day(self) -> None:
        self.now += 86400
        self.do(Tick())

    @rule(back=st.sampled_from([60, 3600, 86400]))
    def clock_jumps_back(self, back: int) -> None:
        self.now -= back

    # --- tellers ---------------------------------------------------------------------------

    @rule(window=WINDOWS)
    def login(self, window: int) -> None:
        self.do(Login(window, f"t{window}", "1234"))

    @rule(window=WINDOWS)
    def logout(self, window: int) -> None:
        self.do(Logout(window))

    @rule(window=WINDOWS)
    def call_next(self, window: int) -> None:
        self.do(CallNext(window))

    @rule(window=WINDOWS)
    def recall(self, window: int) -> None:
        self.do(Recall(window))

    @rule(window=WINDOWS)
    def no_show(self, window: int) -> None:
        self.do(NoShow(window))

    @rule(window=WINDOWS, ask=st.booleans())
    def finish(self, window: int, ask: bool) -> None:
        self.do(Finish(window, ask_rating=ask))

    @rule(window=WINDOWS, pause=st.booleans())
    def pause_or_resume(self, window: int, pause: bool) -> None:
        self.do(PauseWindow(window) if pause else ResumeWindow(window))

    @rule(window=WINDOWS, to=WINDOWS)
    def transfer_to_window(self, window: int, to: int) -> None:
        self.do(Transfer(window, to_window=to))

    @rule(window=WINDOWS, to=QUEUES)
    def transfer_to_queue(self, window: int, to: str) -> None:
        self.do(Transfer(window, to_queue=to))

    @precondition(lambda self: self.engine.state.waiting)
    @rule(data=st.data())
    def insert_front(self, data: st.DataObject) -> None:
        self.do(InsertFront(data.draw(st.sampled_from(self.waiting_numbers()))))

    @rule(window=WINDOWS)
    def hold(self, window: int) -> None:
        self.do(Hold(window))

    @rule(window=WINDOWS)
    def call_back(self, window: int) -> None:
        self.do(CallBack(window))

    @rule(window=WINDOWS, score=st.integers(1, 6))
    def rate(self, window: int, score: int) -> None:
        self.do(Rate(window, score))

    @rule(queue=QUEUES, pause=st.booleans())
    def lobby_pauses_business(self, queue: str, pause: bool) -> None:
        self.do(PauseQueue(queue, "系统维护") if pause else ResumeQueue(queue))

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def numbers_run_without_duplicates_or_holes(self) -> None:
        for key, ns in self.given.items():
            assert ns == list(range(1, len(ns) + 1)), key

    @invariant()
    def replay_gives_the_same_state(self) -> None:
        replayed = State()
        for e in self.log:
            replayed.apply(e)
        assert replayed.to_dict() == self.engine.state.to_dict()

    @invariant()
    def waiting_counts_match_the_tickets(self) -> None:
        s = self.engine.state
        for q in "ABV":
            assert s.waiting_count.get(q, 0) == sum(
                1 for t in s.tickets.values() if t.state == "waiting" and t.queue == q
            )

    @invariant()
    def ahead_is_the_number_called_before(self) -> None:
        s = self.engine.state
        for t in list(s.waiting.values())[:3]:
            predicted = self.engine.ahead(t.number, self.now)
            assert predicted == drain_until(self.engine, t.number, self.now)

    def teardown(self) -> None:
        end = max(self.now, self.engine.state.last_now) + 86400  # surely the next day
        run(self.engine, Tick(), end, self.log)
        closing_day = [e for e in self.log if e["type"] == "ticket_closed"]
        # After the day closed, every ticket it held ended in exactly one terminal state.
        final: dict[str, str] = {}
        for e in self.log:
            if e["type"] in ("ticket_finished", "ticket_no_show", "ticket_closed"):
                final[e["ticket"]] = e.get("state", e["type"].removeprefix("ticket_"))
            elif e["type"] in ("ticket_called", "ticket_transferred"):
                final.pop(e["ticket"], None)
        issued = {e["ticket"] for e in self.log if e["type"] == "ticket_issued"}
        assert set(final) == issued
        assert set(final.values()) <= {"finished", "no_show", "not_served"}
        # (voided: only at start-up, VoidUndelivered, which this machine does not run)
        assert {"finished", "no_show", "not_served", "voided"} == TERMINAL_STATES
        assert all(e["state"] == "not_served" for e in closing_day)


def drain_until(engine: Engine, number: str, now: float) -> int:
    """On a copy: open the windows that would serve the ticket, call in turn, count."""
    copy = Engine(engine.cfg, State.from_dict(engine.state.to_dict()))
    t = copy.state.by_num(number)
    assert t is not None
    windows = [w.number for w in serving_windows(copy.state, copy.cfg, t)]
    sink: list[Event] = []
    for n in windows:
        ws = copy.state.window(n)
        if ws.teller is not None and ws.teller != f"t{n}":
            run(copy, Logout(n), now, sink)
        other = copy.state.tellers.get(f"t{n}")
        if other is not None and other != n:
            run(copy, Logout(other), now, sink)
        run(copy, Login(n, f"t{n}", "1234"), now, sink)
        if copy.state.window(n).paused:
            run(copy, ResumeWindow(n), now, sink)
    called = 0
    idle = 0
    for n in cycle(windows):
        events = run(copy, CallNext(n), now, sink)
        got = [e["number"] for e in events if e["type"] == "ticket_called"]
        if not got:
            idle += 1
            if idle > len(windows):
                return called
            continue
        idle = 0
        if got[0] == number:
            return called
        called += 1
    raise AssertionError("unreachable")


class TwinWindows(Branch):
    cfg = TWINS


TestBranch = Branch.TestCase
TestTwinWindows = TwinWindows.TestCase
TestBranch.settings = TestTwinWindows.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
