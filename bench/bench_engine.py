"""Engine alone: commands per second for a realistic mix (issue, call, finish, rate).

    python bench/bench_engine.py [--customers N]
    python bench/bench_engine.py --waiting 10,100,1000,10000 [--branch one-lane|example]

The example branch with six windows staffed; every customer is issued a ticket (by the
example's business mix), called at a window, finished and (four in five) rated. The
queue stays a realistic length (about a dozen waiting) so ``ahead`` is computed for real.

``--waiting``: issuing as the queue grows. For each length, that many tickets wait (by
the same mix); then tickets are issued, each followed by a call and a finish at a window
of its business (untimed) so the length stays put, and only the issuing is timed: tickets
per second of CPU time, and the ratio of each length's cost per ticket to the shortest's.
Lengths are measured in turn, several rounds, best of each (the machine is shared). Two branches:
``one-lane`` (each business's windows alike, as ``ahead`` counts without a walk) and
``example`` (the example branch: a business served by windows of different priorities and
a balancing window, where ``ahead`` drains the lanes). Exits 1 when a ratio exceeds 2 or
a command is refused.

The default run exits 1 (bench/checks.py) when a ticket is refused, a number is given
twice, or the day does not add up (every ticket issued finished or still waiting).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks import Checks
from common.passwords import hash_password
from controller.config import load_config, parse_config
from controller.engine import CallNext, Engine, Finish, IssueTicket, Login, Rate
from controller.errors import Refused

MIX = ["A"] * 60 + ["B"] * 15 + ["V"] * 10 + ["T"] * 5 + ["F"] * 10
T0 = 1795572000.0  # 2026-11-25 10:00 +08:00, a Wednesday


# One lane per business: each business's windows serve it alike (no balancing window).
ONE_LANE = [{"A": 5}, {"A": 5}, {"A": 5}, {"B": 9}, {"V": 9}, {"F": 5, "T": 5}]


def build(branch: str = "example") -> Engine:
    cfg = load_config(Path(__file__).resolve().parent.parent / "examples" / "branch.toml",
                      ["thresholds.branch_waiting_cap=0", "queues.0.digits=5",
                       "queues.1.digits=5", "queues.2.digits=5", "queues.4.digits=5",
                       "queues.4.daily_limit=0"])
    cheap = hash_password("1234", n=2, r=1, p=1)
    data = cfg.model_dump()
    for t in data["tellers"]:
        t["password_hash"] = cheap
    data["tellers"] += [{"id": f"t{i}", "name": f"柜员{i}", "password_hash": cheap}
                        for i in range(4, 7)]
    if branch == "one-lane":
        for w, queues in zip(data["windows"], ONE_LANE, strict=True):
            w["queues"], w["balancing"] = queues, False
    engine = Engine(parse_config(data))
    for n in range(1, 7):
        engine.handle(Login(n, f"t{n}", "1234"), T0)
    return engine


def run(customers: int, checks: Checks, seed: int = 1, at: float = T0
        ) -> tuple[int, float, int]:
    """Each customer: a ticket, a call at the next window that has somebody for it (as
    the next free teller would), finish, and four in five rate. About a dozen wait.
    ``checks`` hears of refused tickets, numbers given twice and tickets unaccounted for."""
    engine = build()
    rng = random.Random(seed)
    mix = [rng.choice(MIX) for _ in range(customers + 12)]
    scores = [rng.choice([5, 5, 5, 4, 3]) if rng.random() < 0.8 else 0 for _ in mix]
    commands = refused = turned_away = finished = 0
    numbers: list[str] = []
    now = at
    w = 0

    def do(cmd: object) -> bool:
        nonlocal commands, refused, turned_away, finished
        commands += 1
        try:
            events = engine.handle(cmd, now)  # type: ignore[arg-type]
        except Refused:
            if isinstance(cmd, IssueTicket):
                turned_away += 1  # a customer without a ticket: the run is wrong
            else:
                refused += 1  # a call at a window with nobody of its businesses: expected
            return False
        for e in events:
            if e["type"] == "ticket_issued":
                numbers.append(e["number"])
            elif e["type"] == "ticket_finished":
                finished += 1
        return True

    start = time.perf_counter()
    for q in mix[:12]:
        do(IssueTicket(queue=q))
    for i in range(customers):
        now += 0.5  # a busy day compressed; stays within business hours
        do(IssueTicket(queue=mix[i + 12]))
        for _ in range(6):
            w = w % 6 + 1
            if do(CallNext(w)):
                break
        do(Finish(w))
        if scores[i]:
            do(Rate(w, scores[i]))
    secs = time.perf_counter() - start
    waiting = len(engine.state.waiting)
    print(f"  (waiting at the end: {waiting})")
    checks.failed(turned_away, "ticket issues")
    checks.unique(numbers, "ticket numbers")
    checks.drained(len(numbers), finished + waiting, "tickets finished or waiting")
    return commands, secs, refused


def issue_cost(branch: str, waiting: int, budget_s: float = 0.25, seed: int = 1) -> float:
    """Seconds per issued ticket with ``waiting`` tickets waiting (see the docstring)."""
    engine = build(branch)
    rng = random.Random(seed)
    mix = [rng.choice(MIX) for _ in range(waiting)]
    now = T0
    engine.count_ahead = False  # filling the queue: its counts are not what is measured
    for i, q in enumerate(mix):
        engine.handle(IssueTicket(queue=q), now + i / 1000)
    engine.count_ahead = True
    serving = {q.id: next(w.number for w in engine.cfg.windows if q.id in w.queues)
               for q in engine.cfg.queues}
    now += 60
    issued, spent = 0, 0.0
    while (spent < budget_s and issued < 5000) or issued < 20:
        q = rng.choice(MIX)
        now += 0.25
        start = time.process_time()  # CPU time: other jobs on a shared machine not counted
        events = engine.handle(IssueTicket(queue=q), now)
        spent += time.process_time() - start
        issued += 1
        assert events[-1]["type"] == "ticket_issued" and events[-1]["ahead"] is not None
        engine.handle(CallNext(serving[q]), now)  # (a refusal raises: the run fails)
        engine.handle(Finish(serving[q]), now)
    assert len(engine.state.waiting) == waiting, len(engine.state.waiting)
    return spent / issued


def waiting_curve(branch: str, lengths: list[int], rounds: int) -> bool:
    """Print the issue rate per queue length; True when every ratio is within 2."""
    best = dict.fromkeys(lengths, float("inf"))
    for _ in range(rounds):
        for n in lengths:
            best[n] = min(best[n], issue_cost(branch, n))
    base = best[lengths[0]]
    ok = True
    print(f"{branch}: issuing with a queue of N waiting (best of {rounds} rounds)")
    for n in lengths:
        ratio = best[n] / base
        ok = ok and ratio <= 2.0
        print(f"  {n:>6} waiting: {1 / best[n]:>9,.0f} tickets/s, {best[n] * 1e6:8.1f} µs a "
              f"ticket, ratio to {lengths[0]} waiting {ratio:6.2f}"
              f"{'' if ratio <= 2.0 else '  > 2: FAIL'}")
    return ok


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--customers", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--waiting", help="queue lengths, e.g. 10,100,1000,10000")
    p.add_argument("--branch", choices=["one-lane", "example", "both"], default="both")
    args = p.parse_args()
    if args.waiting:
        lengths = sorted(int(n) for n in args.waiting.split(","))
        branches = ["one-lane", "example"] if args.branch == "both" else [args.branch]
        try:
            ok = all([waiting_curve(b, lengths, args.repeat) for b in branches])
        except Refused as refusal:
            print(f"refused: {refusal}")
            sys.exit(1)
        sys.exit(0 if ok else 1)
    best = 0.0
    checks = Checks("bench_engine")
    for _ in range(args.repeat):
        n, secs, refused = run(args.customers, checks)
        best = max(best, n / secs)
        print(f"engine: {n} commands in {secs:.3f} s = {n / secs:,.0f} commands/s "
              f"({refused} refused, e.g. a window with nobody of its businesses waiting)")
    print(f"engine best: {best:,.0f} commands/s (goal >= 50,000/s)")
    sys.exit(checks.verdict())


if __name__ == "__main__":
    main()
