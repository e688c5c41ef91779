"""The centre's pruning job: rows deleted per second (docs/store.md, "Retention";
docs/performance.md, "Retention").

    python bench/bench_retention.py [--branches 40] [--days 2] [--pg postgresql://…]

Stores ``--days`` real branch-days (the example branch's simulated day, every event its
engine writes) for each of ``--branches`` branches in a fresh PostgreSQL schema, through
the centre's own ingest (the summaries folded as in production), then prunes everything
older than the last day with the job's code (5,000-row transactions) and prints the
rows deleted per second, per table. The schema is dropped at the end.

Exits 1 (bench/checks.py) when a row older than the cutoff is left, a row of the kept
day is gone, or the events stored are not the events sent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.checks import Checks, machine_line  # noqa: E402
from central.store import EventBatch, Inbound, Store, open_store  # noqa: E402
from central.store.retention import SHELVES, cutoffs, prune  # noqa: E402

FIRST = dt.date(2026, 11, 2)


def branch_days(days: int) -> list[dict[str, Any]]:
    """``days`` consecutive days of the example branch, seq 1…n."""
    from controller.config import load_config
    from queueing.day import simulate_day
    from queueing.scenario import default_scenario

    cfg = load_config(ROOT / "examples" / "branch.toml")
    out: list[dict[str, Any]] = []
    for k in range(days):
        day = FIRST + dt.timedelta(days=k)
        out += simulate_day(cfg, default_scenario(cfg, day), seed=k + 1, count_ahead=True).events
    return [{**e, "seq": i} for i, e in enumerate(out, 1)]


def count(st: Store, table: str, where: str = "", args: tuple[Any, ...] = ()) -> int:
    return int(st.execute(f"SELECT count(*) FROM {table} {where}", args).fetchone()[0])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--branches", type=int, default=40)
    p.add_argument("--days", type=int, default=2, help="days a branch; all but the last go")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = p.parse_args()
    import psycopg

    checks = Checks("bench_retention")
    events = branch_days(args.days)
    last = (FIRST + dt.timedelta(days=args.days - 1)).isoformat()  # the day kept
    schema = f"bench_retention_{secrets.token_hex(4)}"
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in args.pg else "?"
    st = open_store(f"{args.pg}{sep}options=-csearch_path%3D{schema}")
    try:
        t0 = time.perf_counter()
        for b in range(args.branches):
            for i in range(0, len(events), 500):
                st.ingest(Inbound(batches=[EventBatch(f"41{b:08}", "e1", events[i:i + 500])]))
        stored_s = time.perf_counter() - t0
        checks.drained(sent=args.branches * len(events), accounted=count(st, "events"),
                       what="events stored")
        kept_events = count(st, "events", "WHERE day >= %s", (last,))
        before = {s.table: count(st, s.table) for s in SHELVES}
        today = dt.date.fromisoformat(last)
        cut = cutoffs(today, time.time(), detail_days=0, day_days=0, month_years=0,
                      records_days=0, replies_days=0)
        cut |= {"month": last[:7], "year": last[:4]}  # the kept day's month and year stay
        t0 = time.perf_counter()
        gone = prune(st, cut)
        took = time.perf_counter() - t0
        left_old = count(st, "events", "WHERE day < %s", (last,))
        checks.true(left_old == 0, f"{left_old} events older than {last} left")
        checks.true(count(st, "events") == kept_events, "events of the kept day were pruned")
        for shelf in SHELVES:  # every table kept no more than it had
            checks.true(count(st, shelf.table) + gone[shelf.table] == before[shelf.table],
                        f"{shelf.table}: rows before ≠ left + pruned")
    finally:
        st.close()
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
    total = sum(gone.values())
    print(f"stored {args.branches} branches × {args.days} days ({len(events):,} events a "
          f"branch) in {stored_s:.1f} s through the ingest")
    print(f"pruned {total:,} rows older than {last} in {took:.2f} s: "
          f"{total / took:,.0f} rows/s (5,000-row transactions)")
    print("  " + ", ".join(f"{t} {n:,}" for t, n in gone.items() if n))
    print(machine_line())
    return checks.verdict()


if __name__ == "__main__":
    sys.exit(main())
