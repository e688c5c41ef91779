"""One simulated branch-day: the real engine driven in virtual time.

An event calendar (a heap of ``(time, seq, kind, subject)``) holds the customers' arrivals,
the tellers' service ends and recalls, and the staffing plan's hour changes. Each is
turned into the commands a kiosk or keypad would send — ``IssueTicket``, ``Login``,
``CallNext``, ``Recall``, ``NoShow``, ``Finish``, ``Rate``, ``Logout`` — handed to
``Engine.handle(cmd, now)`` with the virtual ``now``. The engine decides everything a
branch box would (who is called, numbers, refusals, no-shows after recalls, day close);
the simulator only plays the people. Nothing sleeps, no thread, no journal: the events the
engine returns are kept in memory and measured afterwards (:mod:`queueing.measures`).

People:

* a customer takes a ticket on arrival; a refusal (outside hours, daily limit, branch
  full…) turns them away and is counted by its code;
* a teller logs in when their window's hour starts and presses call-next whenever free;
  an idle teller presses it as soon as a ticket they can serve is issued (the one idle
  longest first); at the end of their hour they finish the customer and log out; after the
  plan's last hour they serve whoever is still waiting, then log out (``serve_out``);
* a called customer is there (service starts at the call), or absent: the teller recalls
  every ``recall_every_s`` and the customer answers one of them or is discarded (弃号);
* a served customer rates with the scenario's probability, right after the service.
"""

from __future__ import annotations

import datetime as dt
import gc
import heapq
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from controller.config import Config
from controller.engine import (
    CallNext,
    Engine,
    Event,
    Finish,
    IssueTicket,
    Login,
    Logout,
    NoShow,
    Rate,
    Recall,
    Tick,
)
from controller.engine.commands import Command
from controller.errors import Refused

from .arrivals import Customer, customers, recall_limit
from .branch import SIM_PASSWORD, card_for, sim_config, teller_id
from .scenario import HOURS, Scenario

__all__ = ["Day", "DayRun", "simulate_day"]

_STAFF, _RECALL, _END = range(1, 4)
_AT = attrgetter("at")

# The simulated configuration of the last day run: the days of a comparison, a staffing
# search or a benchmark run one after another on the same config and scenario (frozen
# values), so it is built once (a quarter of a millisecond a day). One entry, by identity:
# a batch's process unpickles its own copies, and nothing is kept beyond the last day's.
_LAST_SIM: list[tuple[Config, Scenario, tuple[str, ...], Config]] = []


def _sim_config(config: Config, scenario: Scenario, overrides: Sequence[str]) -> Config:
    key = tuple(overrides)
    if _LAST_SIM:
        was_config, was_scenario, was_key, cfg = _LAST_SIM[0]
        if was_config is config and was_scenario is scenario and was_key == key:
            return cfg
    cfg = sim_config(config, scenario, overrides)
    _LAST_SIM[:] = [(config, scenario, key, cfg)]
    return cfg


@dataclass(slots=True)
class DayRun:
    """What a simulated day produced: the engine's events and who was turned away."""

    config: Config  # the engine's (simulation) config
    scenario: Scenario
    seed: int | str
    customers: list[Customer]
    events: list[Event]
    turned_away: Counter[str]  # refusal code -> customers refused a ticket
    t0: float  # epoch seconds of the day's local midnight
    wall_s: float = 0.0
    commands: int = 0


@dataclass(slots=True)
class _Teller:
    window: int
    queues: frozenset[str]
    balancing: bool
    # the keypad's commands, made once (commands are immutable values)
    call_next: CallNext
    finish: Finish
    recall: Recall
    no_show: NoShow
    on: bool = False
    leaving: bool = False  # log out when the current customer is done
    draining: bool = False  # log out as soon as nobody waits for this window
    customer: Customer | None = None
    recalls: int = 0


@dataclass
class Day:
    """A simulated day of ``config`` under ``scenario`` with ``seed``.

    ``overrides`` are ``--set`` style config changes (a strategy variant), see
    :func:`queueing.branch.sim_config`. ``count_ahead``: whether the engine counts the
    customers ahead for each ticket (what the paper ticket would say). Nobody reads a
    simulated ticket, so by default it does not: a third of a branch-day's engine time,
    and the day's events are otherwise identical (``ahead`` is None).
    """

    config: Config
    scenario: Scenario
    seed: int | str
    overrides: Sequence[str] = ()
    people: list[Customer] | None = None
    count_ahead: bool = False
    _heap: list[tuple[float, int, int, object]] = field(default_factory=list, init=False)

    def run(self) -> DayRun:
        # A day allocates some ten thousand objects (events, tickets) that all live until
        # it ends: the cyclic collector, run every 700 allocations, would only walk them
        # again and again and free nothing. It is paused for the day (reference counting
        # still frees what is dropped) and resumed as it was.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if collecting:
                gc.enable()

    def _run(self) -> DayRun:
        started = time.perf_counter()
        self.cfg = _sim_config(self.config, self.scenario, self.overrides)
        self.engine = Engine(self.cfg, count_ahead=self.count_ahead)
        self._handle = self.engine.handle
        self.t0 = dt.datetime.combine(self.scenario.date, dt.time(), self.cfg.tz).timestamp()
        people = self.people if self.people is not None else customers(
            self.cfg, self.scenario, self.seed)
        self.events: list[Event] = []
        self.turned_away: Counter[str] = Counter()
        self.commands = 0
        self.by_ticket: dict[str, Customer] = {}
        self.idle: dict[int, _Teller] = {}
        self.tellers = {
            w.number: _Teller(w.number, frozenset(w.queues), w.balancing, CallNext(w.number),
                              Finish(w.number, ask_rating=True), Recall(w.number),
                              NoShow(w.number))
            for w in self.cfg.windows
        }
        self._tickets: dict[tuple[str, str | None], IssueTicket] = {}
        self._rates: dict[tuple[int, int], Rate] = {}
        self.limit = recall_limit(self.cfg, self.scenario.behaviour)
        self._schedule()
        self._loop(sorted(people, key=_AT))  # (stable: customers arriving together in order)
        self._close_day()
        return DayRun(self.cfg, self.scenario, self.seed, people, self.events,
                      self.turned_away, self.t0, time.perf_counter() - started, self.commands)

    # --- the calendar ------------------------------------------------------------------

    def _schedule(self) -> None:
        self._seq = 0
        plan = self.scenario.staffing.open
        for h in range(HOURS):
            if plan[h] != (plan[h - 1] if h else ()):
                self._push(h * 3600.0, _STAFF, h)

    def _push(self, at: float, kind: int, subject: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, subject))

    def _loop(self, people: list[Customer]) -> None:
        """The calendar: the customers' arrivals (in time order already) merged with the
        heap of everything else. An arrival goes first among events at the same time, as
        if it had been put in the calendar before them, which it would have been: the
        whole day's arrivals are known before the day starts. (The heap then holds a few
        dozen events, not a thousand arrivals.)"""
        heap, t0, pop = self._heap, self.t0, heapq.heappop
        arrive, end, recall, staff = self._arrive, self._end, self._recall, self._staff
        coming = iter(people)
        c = next(coming, None)
        while True:
            if c is not None and (not heap or c.at <= heap[0][0]):
                self.at = at = c.at
                arrive(c, t0 + at)
                c = next(coming, None)
                continue
            if not heap:
                return
            at, _, kind, subject = pop(heap)
            self.at = at
            if kind == _END:
                end(subject, t0 + at)  # type: ignore[arg-type]
            elif kind == _RECALL:
                recall(subject, t0 + at)  # type: ignore[arg-type]
            else:
                staff(subject, t0 + at)  # type: ignore[arg-type]

    def _close_day(self) -> None:
        """Cross the business-day boundary so the engine closes what is left (not_served)."""
        h, m = map(int, self.cfg.branch.day_start.split(":"))
        boundary = self.t0 + 86400 + h * 3600 + m * 60
        self._do(Tick(), max(boundary, self.engine.state.last_now))

    # --- the engine ----------------------------------------------------------------------

    def _do(self, cmd: Command, now: float) -> list[Event] | None:
        self.commands += 1
        try:
            out = self._handle(cmd, now)
        except Refused as refusal:
            self.events.extend(refusal.events)  # type: ignore[attr-defined]
            self.refused = refusal.code
            return None
        self.events.extend(out)
        return out

    # --- customers -------------------------------------------------------------------------

    def _arrive(self, c: Customer, now: float) -> None:
        cmd = self._tickets.get((c.queue, c.customer_type))
        if cmd is None:
            if c.customer_type is None:
                cmd = IssueTicket(queue=c.queue)
            else:
                cmd = IssueTicket(card=card_for(self.cfg, c.queue, c.customer_type),
                                  channel="card")
            self._tickets[c.queue, c.customer_type] = cmd
        out = self._do(cmd, now)
        if out is None:
            self.turned_away[self.refused] += 1
            return
        for e in out:
            if e["type"] == "ticket_issued":
                self.by_ticket[e["ticket"]] = c
                break
        if self.idle:
            self._wake(c.queue, now)

    def _wake(self, queue: str, now: float) -> None:
        """Idle tellers who can serve ``queue`` press call-next, the longest idle first."""
        for teller in list(self.idle.values()):
            if queue in teller.queues:
                self._next(teller, now)
                if teller.customer is not None:
                    break
        th = self.cfg.thresholds.balance_waiting
        if self.engine.state.waiting_count.get(queue, 0) >= th:
            for teller in list(self.idle.values()):
                if teller.balancing:
                    self._next(teller, now)

    # --- tellers ---------------------------------------------------------------------------

    def _next(self, teller: _Teller, now: float) -> None:
        """The teller is free: log out if leaving, else call the next customer."""
        self.idle.pop(teller.window, None)
        teller.customer = None
        if teller.leaving:
            self._logout(teller, now)
            return
        out = self._do(teller.call_next, now)
        if out is None:
            if teller.draining:
                self._logout(teller, now)
            else:
                self.idle[teller.window] = teller
            return
        c = self.by_ticket[out[-1]["ticket"]]
        teller.customer = c
        if c.answers_at == 0:
            self._push(self.at + c.service_s, _END, teller)
        else:
            teller.recalls = 0
            self._push(self.at + self.scenario.behaviour.recall_every_s, _RECALL, teller)

    def _recall(self, teller: _Teller, now: float) -> None:
        teller.recalls += 1
        c = teller.customer
        assert c is not None
        if teller.recalls > self.limit:  # give the number up (弃号)
            limit = self.cfg.thresholds.recalls_before_no_show
            self._do(teller.recall if limit else teller.no_show, now)
            self._next(teller, now)
            return
        self._do(teller.recall, now)
        if c.answers_at == teller.recalls:
            self._push(self.at + c.service_s, _END, teller)
        else:
            self._push(self.at + self.scenario.behaviour.recall_every_s, _RECALL, teller)

    def _end(self, teller: _Teller, now: float) -> None:
        c = teller.customer
        if c is not None and c.score:
            self._do(teller.finish, now)
            rate = self._rates.get((teller.window, c.score))
            if rate is None:
                rate = self._rates[teller.window, c.score] = Rate(teller.window, c.score)
            self._do(rate, now)
        self._next(teller, now)

    def _staff(self, hour: int, now: float) -> None:
        plan = self.scenario.staffing.open
        want = set(plan[hour])
        after_last = not any(plan[hour:])
        for teller in self.tellers.values():
            if teller.window in want:
                teller.leaving = teller.draining = False
                if not teller.on:
                    self._login(teller, now)
                continue
            if not teller.on:
                continue
            if after_last and self.scenario.staffing.serve_out:
                teller.draining = True
            else:
                teller.leaving = True
            if teller.customer is None:
                self._next(teller, now)

    def _login(self, teller: _Teller, now: float) -> None:
        self._do(Login(teller.window, teller_id(teller.window), SIM_PASSWORD), now)
        teller.on = True
        self._next(teller, now)

    def _logout(self, teller: _Teller, now: float) -> None:
        self._do(Logout(teller.window), now)
        self.idle.pop(teller.window, None)
        teller.on = teller.leaving = teller.draining = False
        teller.customer = None


def simulate_day(
    config: Config, scenario: Scenario, seed: int | str = 1, overrides: Sequence[str] = (),
    *, count_ahead: bool = False,
) -> DayRun:
    """Run one day of ``config`` under ``scenario``; see :class:`Day`."""
    return Day(config, scenario, seed, overrides, count_ahead=count_ahead).run()
