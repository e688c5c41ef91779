"""Durable ticket issue through the journal, against the disk's floor, measured together.

    python bench/bench_journal.py [--n 2000] [--clients 50] [--dir DIR]

* floor: a bare SQLite one-row commit with the journal's settings (WAL, synchronous=FULL)
  on the same disk, p50/p99;
* one client: ``Box.execute(IssueTicket)`` (engine + group commit on the writer thread +
  hand-back to the event loop), p50/p99, and p99 as a ratio to the floor's p99;
* fifty clients: tickets/s with group commit, and the average batch size.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.box import Box
from controller.clock import ManualClock
from controller.config import load_config
from controller.engine import IssueTicket

ROOT = Path(__file__).resolve().parent.parent
T0 = 1795572000.0  # 2026-11-25 10:00 +08:00


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def floor(path: Path, n: int) -> list[float]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, body TEXT)")
    out = []
    for i in range(n):
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?)", (i, '{"type":"ticket_issued"}' * 8))
        db.execute("COMMIT")
        out.append(time.perf_counter() - t)
    db.close()
    return out


def config() -> object:
    return load_config(ROOT / "examples" / "branch.toml", [
        "thresholds.branch_waiting_cap=0", "thresholds.lobby_alert_waiting=0",
        "queues.0.digits=6", "journal.snapshot_every=100000"])


async def one_client(data: Path, n: int) -> list[float]:
    async with Box(config(), data, ManualClock(T0)) as box:  # type: ignore[arg-type]
        out = []
        for _ in range(n):
            t = time.perf_counter()
            await box.execute(IssueTicket(queue="A"))
            out.append(time.perf_counter() - t)
        return out


async def many_clients(data: Path, clients: int, seconds: float) -> tuple[float, float]:
    async with Box(config(), data, ManualClock(T0)) as box:  # type: ignore[arg-type]
        done = 0
        stop = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await box.execute(IssueTicket(queue="A"))
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
        assert box._committer is not None
        return done / elapsed, done / max(box._committer.batches, 1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = p.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="paidui-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    f = floor(base / "floor.sqlite3", args.n)
    j = asyncio.run(one_client(base / "one", args.n))
    rate, batch = asyncio.run(many_clients(base / "many", args.clients, args.seconds))
    ms = 1000
    print(f"disk: {base}")
    print(f"floor  (bare one-row commit, WAL+FULL): p50 {statistics.median(f) * ms:.3f} ms  "
          f"p99 {pct(f, 99) * ms:.3f} ms")
    print(f"issue  (durable, one client):          p50 {statistics.median(j) * ms:.3f} ms  "
          f"p99 {pct(j, 99) * ms:.3f} ms")
    print(f"ratio  p99 issue / p99 floor: {pct(j, 99) / pct(f, 99):.2f}  (goal <= 2)")
    print(f"group commit, {args.clients} clients: {rate:,.0f} tickets/s, "
          f"{batch:.1f} tickets per commit  (goal >= 1,000/s)")


if __name__ == "__main__":
    main()
