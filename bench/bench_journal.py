"""Durable ticket issue through the journal, against the disk's floor, measured together.

    python bench/bench_journal.py [--n 2000] [--clients 50] [--dir DIR]

* floor: a bare SQLite one-row commit with the journal's settings (WAL, synchronous=FULL)
  on the same disk, p50/p99;
* one client: ``Box.execute(IssueTicket)`` (engine + group commit on the writer thread +
  hand-back to the event loop), p50/p99, and p99 as a ratio to the floor's p99. The two
  are measured in turn, one floor commit then one issue, so both see the same noise;
* fifty clients: tickets/s with group commit, and the average batch size.

Six tellers call the next customer between issues (untimed), so the queue stays at a
realistic length, as in a branch; a last line shows fifty clients with nobody serving,
where the queue grows by the thousand and ``ahead`` costs more with every ticket.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks import Checks, journal_numbers, machine_line
from common.clock import ManualClock
from controller.box import Box
from controller.config import load_config
from controller.engine import CallNext, IssueTicket, Login
from controller.errors import JournalError, Refused

ROOT = Path(__file__).resolve().parent.parent
T0 = 1795572000.0  # 2026-11-25 10:00 +08:00


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


class Floor:
    """A bare SQLite one-row commit with the journal's settings (WAL, synchronous=FULL)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, body TEXT)")
        self.i = 0

    def commit(self) -> float:
        self.i += 1
        t = time.perf_counter()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("INSERT INTO t VALUES (?, ?)", (self.i, '{"type":"ticket_issued"}' * 8))
        self.db.execute("COMMIT")
        return time.perf_counter() - t


def config() -> object:
    return load_config(ROOT / "examples" / "branch.toml", [
        "thresholds.branch_waiting_cap=0", "thresholds.lobby_alert_waiting=0",
        "queues.0.digits=6", "journal.snapshot_every=100000"])


async def staff(box: Box) -> None:
    for n, teller in ((1, "t1"), (2, "t2"), (3, "t3")):
        await box.execute(Login(n, teller, "1234"))


async def serve(box: Box, window: int) -> None:
    with contextlib.suppress(Refused):  # nobody for this window just now
        await box.execute(CallNext(window))


class Issued:
    """The numbers a run was given and the issues that failed, for :class:`Checks`."""

    def __init__(self) -> None:
        self.numbers: list[str] = []
        self.failed = 0

    async def issue(self, box: Box) -> None:
        try:
            events = await box.execute(IssueTicket(queue="A"))
        except (Refused, JournalError):
            self.failed += 1
            return
        self.numbers += [f"{e['day']} {e['number']}" for e in events
                         if e["type"] == "ticket_issued"]

    def check(self, checks: Checks, data: Path, label: str) -> None:
        """No issue failed, no number twice, and the journal on disk holds every one."""
        checks.failed(self.failed, f"{label} issues")
        checks.unique(self.numbers, f"{label} ticket numbers")
        durable = journal_numbers(data)
        checks.unique(durable, f"{label} journaled ticket numbers")
        checks.drained(len(self.numbers), len(durable), f"{label} tickets in the journal")


async def one_client(data: Path, floor_path: Path, n: int
                     ) -> tuple[list[float], list[float], Issued]:
    """Durable issues and floor commits, one after the other on the same disk, so both
    meet the same disturbances (other processes' writes, the disk's own flushes)."""
    floor = Floor(floor_path)
    issued = Issued()
    async with Box(config(), data, ManualClock(T0)) as box:  # type: ignore[arg-type]
        await staff(box)
        issue, bare = [], []
        for i in range(n):
            bare.append(floor.commit())
            t = time.perf_counter()
            await issued.issue(box)
            issue.append(time.perf_counter() - t)
            await serve(box, i % 3 + 1)
    floor.db.close()
    return issue, bare, issued


async def many_clients(data: Path, clients: int, seconds: float, serving: bool = True
                       ) -> tuple[float, float, Issued]:
    issued = Issued()
    async with Box(config(), data, ManualClock(T0)) as box:  # type: ignore[arg-type]
        await staff(box)
        stop = time.perf_counter() + seconds

        async def client(i: int) -> None:
            while time.perf_counter() < stop:
                await issued.issue(box)
                if serving:
                    await serve(box, i % 3 + 1)

        start = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
        assert box._committer is not None
        done = len(issued.numbers)
        # tickets issued per commit (transaction) of the writer thread; the commits also
        # carry the tellers' calls, so this is not every command per commit
        return done / elapsed, done / max(box._committer.batches, 1), issued


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = p.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="paidui-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    checks = Checks("bench_journal")
    j, f, one = asyncio.run(one_client(base / "one", base / "floor.sqlite3", args.n))
    one.check(checks, base / "one", "one-client")
    rate, batch, many = asyncio.run(many_clients(base / "many", args.clients, args.seconds))
    many.check(checks, base / "many", f"{args.clients}-client")
    grow, _, grown = asyncio.run(many_clients(base / "grow", args.clients, args.seconds, False))
    grown.check(checks, base / "grow", "nobody-serving")
    ms = 1000
    print(machine_line())
    print(f"disk: {base}")
    print(f"floor  (bare one-row commit, WAL+FULL): p50 {statistics.median(f) * ms:.3f} ms  "
          f"p99 {pct(f, 99) * ms:.3f} ms")
    print(f"issue  (durable, one client):          p50 {statistics.median(j) * ms:.3f} ms  "
          f"p99 {pct(j, 99) * ms:.3f} ms")
    print(f"ratio  p99 issue / p99 floor: {pct(j, 99) / pct(f, 99):.2f}  (goal <= 2)")
    print(f"group commit, {args.clients} clients: {rate:,.0f} tickets/s, "
          f"{batch:.1f} tickets issued per commit (the calls ride along)  (goal >= 1,000/s)")
    print(f"  same, nobody serving (queue grows to {grow * args.seconds:,.0f}): "
          f"{grow:,.0f} tickets/s")
    return checks.verdict()


if __name__ == "__main__":
    sys.exit(main())
