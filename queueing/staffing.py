"""Staffing advice: the fewest window-hours that meet a service level, by simulation.

For each hour of the day, in order, the advice finds the fewest windows that serve at
least ``level`` of that hour's customers (by the hour they took their ticket) within
``target_wait_s``, pooled over the seeds' days, with later hours still fully staffed
(binary search on the count). Which windows: for a given count, the ones that cover the
hour's businesses best (greedy cover of the hour's expected customers by business, then
the remaining windows by how much of the demand they can serve). A later hour's plan can
still delay an earlier hour's customers (who wait into it, or a VIP arriving later is
served first), so the whole plan is then re-simulated and any hour that falls short gets
one more window, for a few rounds; finally one window is taken from any hour while every
hour still meets the level. The result is locally minimal: one window fewer in any hour
breaks some hour's level (or the level was out of reach to begin with).

Every simulation serves the same customers (common random numbers), so comparing two plans
compares plans, not luck.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from controller.config import Config

from .arrivals import Customer, customers
from .batch import Batch, batch
from .branch import sim_config
from .day import Day
from .learn import learn
from .measures import Period, wait_stats
from .report import write_tables
from .scenario import HOURS, Scenario, Staffing

__all__ = ["StaffingAdvice", "advise_from_history", "advise_staffing", "window_order"]


@dataclass
class StaffingAdvice:
    """The advised plan, hour by hour, with the service level it reaches."""

    plan: Staffing
    target_wait_s: float
    level: float
    seeds: list[int | str]
    hours: list[dict[str, Any]] = field(default_factory=list)
    simulated_days: int = 0

    @property
    def window_hours(self) -> int:
        return self.plan.window_hours()

    @property
    def met(self) -> bool:
        return all(h["met"] for h in self.hours)

    def to_json(self) -> dict[str, Any]:
        return {
            "target_wait_s": self.target_wait_s, "level": self.level, "seeds": self.seeds,
            "window_hours": self.window_hours, "met": self.met,
            "simulated_days": self.simulated_days, "hours": self.hours,
            "staffing": {str(h): list(w) for h, w in enumerate(self.plan.open) if w},
        }

    def to_excel(self, path: str | Path) -> Path:
        rows = [
            [f"{h['hour']:02d}:00", h["windows"], ", ".join(map(str, h["open"])),
             h["expected_customers"], h["customers"], h["within_target"],
             None if h["mean_wait_s"] is None else round(h["mean_wait_s"] / 60, 2),
             "是 yes" if h["met"] else "否 no"]
            for h in self.hours
        ]
        summary: list[list[Any]] = [
            ["目标等待(分) Target wait (min)", self.target_wait_s / 60],
            ["服务水平 Service level", self.level],
            ["窗口小时 Window-hours", self.window_hours],
            ["全部达标 All hours met", "是 yes" if self.met else "否 no"],
            ["模拟天数 Days simulated", self.simulated_days],
        ]
        return write_tables(path, [
            ("排班建议 Plan", ["小时 Hour", "窗口数 Windows", "开放窗口 Open windows",
                             "预计客户 Expected", "模拟客户 Simulated", "目标内比例 Within target",
                             "平均等待(分) Mean wait (min)", "达标 Met"], rows),
            ("概要 Summary", ["项目 Item", "值 Value"], summary),
        ])


def advise_staffing(
    config: Config, scenario: Scenario, *, target_wait_s: float | None = None,
    level: float = 0.85, seeds: Sequence[int | str] = (1, 2, 3, 4, 5), rounds: int = 4,
    jobs: int | None = 1,
) -> StaffingAdvice:
    """The fewest window-hours per hour meeting ``level`` within ``target_wait_s``.

    ``scenario.staffing.serves`` (which businesses each window serves) is kept; its
    ``open`` hours are what is advised. The scenario's target is used when
    ``target_wait_s`` is None. Callable from the centre's back office with a learned
    scenario (:func:`queueing.learn.learn`). Each plan's days (one per seed) run in
    ``jobs`` processes (None: every core; see :mod:`queueing.batch`).
    """
    with batch(jobs) as days:
        return _advise(config, scenario, target_wait_s, level, seeds, rounds, days)


def _advise(
    config: Config, scenario: Scenario, target_wait_s: float | None, level: float,
    seeds: Sequence[int | str], rounds: int, days: Batch,
) -> StaffingAdvice:
    target = scenario.target_wait_s if target_wait_s is None else target_wait_s
    scenario = replace(scenario, target_wait_s=target)
    cfg = sim_config(config, scenario)
    search = _Search(config, scenario, level, list(seeds),
                     {s: customers(cfg, scenario, s) for s in seeds}, days)
    hours = _demand_hours(scenario)
    every = tuple(sorted(w.number for w in cfg.windows))
    order = {h: window_order(cfg, scenario, h) for h in hours}
    plan = Staffing(tuple(every if h in hours else () for h in range(HOURS)),
                    scenario.staffing.serves, scenario.staffing.serve_out)
    counts: dict[int, int] = {}
    for h in hours:
        counts[h] = search.fewest(plan, h, order[h])
        plan = plan.with_hour(h, order[h][:counts[h]])
    for _ in range(rounds):
        shares = search.shares(plan)
        short = [h for h in hours if shares[h][0] < level and counts[h] < len(every)]
        if not short:
            break
        for h in short:
            counts[h] += 1
            plan = plan.with_hour(h, order[h][:counts[h]])
    plan = search.trim(plan, hours, order, counts)
    shares = search.shares(plan)
    advice = StaffingAdvice(plan, target, level, list(seeds), simulated_days=search.days)
    expected = _expected(scenario)
    for h in hours:
        share, mean, n = shares[h]
        advice.hours.append({
            "hour": h, "windows": len(plan.open[h]), "open": list(plan.open[h]),
            "expected_customers": round(expected[h], 1), "customers": n,
            "within_target": None if n == 0 else round(share, 4), "mean_wait_s": mean,
            "met": n == 0 or share >= level,
        })
    return advice


def advise_from_history(
    events: Iterable[Mapping[str, Any]], config: Config, day: dt.date, *,
    target_wait_s: float = 900.0, level: float = 0.85,
    seeds: Sequence[int | str] = (1, 2, 3, 4, 5), days: Callable[[str], bool] | None = None,
) -> StaffingAdvice:
    """Staffing advice for ``day`` from a branch's stored events (the back office's call):
    :func:`queueing.learn.learn` then :func:`advise_staffing`. ``days`` picks which
    history days to learn from (e.g. the same weekday)."""
    scenario = learn(events, config, day, days=days)
    return advise_staffing(config, scenario, target_wait_s=target_wait_s, level=level,
                           seeds=seeds)


@dataclass
class _Search:
    config: Config
    scenario: Scenario
    level: float
    seeds: list[int | str]
    people: Mapping[int | str, list[Customer]]
    batch: Batch = field(default_factory=lambda: Batch(1, None))  # this process
    days: int = 0

    def shares(self, plan: Staffing) -> dict[int, tuple[float, float | None, int]]:
        """Per issue hour: (share within target, mean wait, tickets), pooled over seeds."""
        within: dict[int, int] = {}
        total: dict[int, int] = {}
        called: dict[int, int] = {}
        waited: dict[int, float] = {}
        scenario = replace(self.scenario, staffing=plan)
        tasks = [(self.config, scenario, seed, self.people[seed]) for seed in self.seeds]
        for day in self.batch.map(_hour_waits, tasks):
            self.days += 1
            for h, (ok, n, waits, c) in day.items():
                within[h] = within.get(h, 0) + ok
                total[h] = total.get(h, 0) + n
                waited[h] = waited.get(h, 0.0) + waits
                called[h] = called.get(h, 0) + c
        out: dict[int, tuple[float, float | None, int]] = {}
        for h in range(HOURS):
            n, c = total.get(h, 0), called.get(h, 0)
            out[h] = (within.get(h, 0) / n if n else 1.0,
                      round(waited.get(h, 0.0) / c, 1) if c else None, n)
        return out

    def meets_all(self, plan: Staffing, hours: Sequence[int]) -> bool:
        shares = self.shares(plan)
        return all(shares[h][0] >= self.level for h in hours)

    def trim(self, plan: Staffing, hours: Sequence[int], order: Mapping[int, Sequence[int]],
             counts: dict[int, int]) -> Staffing:
        """Take one window from any hour while every hour still meets the level."""
        if not self.meets_all(plan, hours):
            return plan  # the level is out of reach somewhere: nothing to trade
        changed = True
        while changed:
            changed = False
            for h in sorted(hours, key=lambda h: -counts[h]):
                if counts[h] == 0:
                    continue
                fewer = plan.with_hour(h, order[h][:counts[h] - 1])
                if self.meets_all(fewer, hours):
                    plan, counts[h], changed = fewer, counts[h] - 1, True
        return plan

    def fewest(self, plan: Staffing, hour: int, order: Sequence[int]) -> int:
        """Binary search for the fewest windows (a prefix of ``order``) meeting the level."""
        lo, hi = 0, len(order)
        if not self._meets(plan, hour, order, hi):
            return hi
        while lo < hi:
            mid = (lo + hi) // 2
            if self._meets(plan, hour, order, mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _meets(self, plan: Staffing, hour: int, order: Sequence[int], k: int) -> bool:
        share, _, _ = self.shares(plan.with_hour(hour, order[:k]))[hour]
        return share >= self.level  # an hour nobody arrives in meets it with none


def _hour_waits(
    task: tuple[Config, Scenario, int | str, list[Customer]],
) -> dict[int, tuple[int, int, float, int]]:
    """One day under the scenario's plan: per issue hour (customers within the target,
    customers, their summed waits, customers called)."""
    config, scenario, seed, people = task
    run = Day(config, scenario, seed, people=people).run()
    period = Period(run.t0, run.t0 + 86400, run.config.tz)
    out = {}
    for hour, ws in wait_stats(run.events, period)["hour"].items():
        ok = sum(1 for w in ws.waits if w <= scenario.target_wait_s)
        out[int(hour)] = (ok, len(ws.waits) + ws.never_called, sum(ws.waits), len(ws.waits))
    return out


def _demand_hours(scenario: Scenario) -> list[int]:
    exp = _expected(scenario)
    return [h for h in range(HOURS) if exp[h] > 0 or scenario.staffing.open[h]]


def _expected(scenario: Scenario) -> list[float]:
    return [sum(s.per_hour[h] for s in scenario.arrivals) for h in range(HOURS)]


def window_order(config: Config, scenario: Scenario, hour: int) -> list[int]:
    """Windows in the order they should open in ``hour``: cover the businesses with
    demand first (greedy, by expected customers), then by how much demand they serve."""
    demand: dict[str, float] = {}
    for s in scenario.arrivals:
        demand[s.queue] = demand.get(s.queue, 0.0) + s.per_hour[hour]
    windows = {w.number: set(w.queues) for w in config.windows}
    order: list[int] = []
    uncovered = {q for q, d in demand.items() if d > 0}
    while uncovered:
        gain = {n: sum(demand[q] for q in qs & uncovered) for n, qs in windows.items()
                if n not in order}
        best = max(gain, key=lambda n: (gain[n], -n), default=None)
        if best is None or gain[best] <= 0:
            break
        order.append(best)
        uncovered -= windows[best]
    rest = sorted((n for n in windows if n not in order),
                  key=lambda n: (-sum(demand.get(q, 0.0) for q in windows[n]), n))
    return order + rest

