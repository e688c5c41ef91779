"""Engine alone: commands per second for a realistic mix (issue, call, finish, rate).

    python bench/bench_engine.py [--customers N]

The example branch with six windows staffed; every customer is issued a ticket (by the
example's business mix), called at a window, finished and (four in five) rated. The
queue stays a realistic length (about a dozen waiting) so ``ahead`` is computed for real.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.config import load_config, parse_config
from controller.engine import CallNext, Engine, Finish, IssueTicket, Login, Rate
from controller.errors import Refused
from controller.passwords import hash_password

MIX = ["A"] * 60 + ["B"] * 15 + ["V"] * 10 + ["T"] * 5 + ["F"] * 10
T0 = 1795572000.0  # 2026-11-25 10:00 +08:00, a Wednesday


def build() -> Engine:
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
    engine = Engine(parse_config(data))
    for n in range(1, 7):
        engine.handle(Login(n, f"t{n}", "1234"), T0)
    return engine


def run(customers: int, seed: int = 1) -> tuple[int, float, int]:
    """Each customer: a ticket, a call at the next window that has somebody for it (as
    the next free teller would), finish, and four in five rate. About a dozen wait."""
    engine = build()
    rng = random.Random(seed)
    mix = [rng.choice(MIX) for _ in range(customers + 12)]
    scores = [rng.choice([5, 5, 5, 4, 3]) if rng.random() < 0.8 else 0 for _ in mix]
    commands = refused = 0
    now = T0
    w = 0

    def do(cmd: object) -> bool:
        nonlocal commands, refused
        commands += 1
        try:
            engine.handle(cmd, now)  # type: ignore[arg-type]
            return True
        except Refused:
            refused += 1
            return False

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
    print(f"  (waiting at the end: {len(engine.state.waiting)})")
    return commands, secs, refused


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--customers", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    best = 0.0
    for _ in range(args.repeat):
        n, secs, refused = run(args.customers)
        best = max(best, n / secs)
        print(f"engine: {n} commands in {secs:.3f} s = {n / secs:,.0f} commands/s "
              f"({refused} refused, e.g. a window with nobody of its businesses waiting)")
    print(f"engine best: {best:,.0f} commands/s (goal >= 50,000/s)")


if __name__ == "__main__":
    main()
