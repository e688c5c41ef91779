"""PostgreSQL failover under load: how long the centre cannot commit (docs/performance.md).

    python bench/bench_pg_failover.py [--rounds 3] [--kill]

The setup of tests/test_central_patroni.py (tests/pg_cluster_support.py): one etcd, two
Patroni-managed PostgreSQL 15 nodes in synchronous mode on free loopback ports in a temp
folder, a private Mosquitto, a centre (two consumers) on the multi-host URL
``postgresql://…@h1:p1,h2:p2/postgres?target_session_attrs=read-write`` and three boxes
under load. Each round does ``patronictl switchover --force`` (the primary alternates);
``--kill`` adds a last round where the leader's node dies (Patroni and postgres SIGKILLed:
the standby takes over when the leader key expires, ttl 10 s here).

Per round it prints each consumer's failover time: its first failed commit → its first
commit on the new primary. It fails (exit 1) unless the centre ends each round holding
exactly each box's journal (nothing lost, nothing doubled); exit 2 when Patroni, etcd or
PostgreSQL 15 is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from central.broker import LocalBroker  # noqa: E402
from common.clock import ManualClock  # noqa: E402
from tests.conftest import WEDNESDAY_10AM  # noqa: E402
from tests.pg_cluster_support import (  # noqa: E402
    PatroniCluster,
    missing_patroni,
    patroni_cluster,
    under_failover,
)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


async def switchover(cluster: PatroniCluster) -> str:
    result = await asyncio.to_thread(cluster.switchover)
    if "Successfully switched over" not in result.stdout:
        raise AssertionError(f"switchover failed: {result.stdout}")
    return "switchover"


async def kill(cluster: PatroniCluster) -> str:
    return f"node {await asyncio.to_thread(cluster.kill_leader_node)} killed"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="switchovers, one per round")
    ap.add_argument("--kill", action="store_true", help="end with the leader's node killed")
    args = ap.parse_args()
    reason = missing_patroni()
    if reason:
        print(f"bench_pg_failover: {reason}", file=sys.stderr)
        return 2
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores")
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-pg-failover-") as tmp:
        work = Path(tmp)
        broker = LocalBroker(work / "broker")
        broker.add_user("centre", "centre-pw")
        broker.start()
        clock = ManualClock(WEDNESDAY_10AM)
        try:
            with patroni_cluster() as cluster:
                plan = [switchover] * args.rounds + ([kill] if args.kill else [])
                for n, fail in enumerate(plan, 1):
                    codes = tuple(f"1001{n:02d}{i:04d}" for i in range(1, 4))
                    t0 = time.monotonic()
                    times = asyncio.run(under_failover(
                        cluster, broker, clock, work / f"round{n}",
                        functools.partial(fail, cluster), codes))
                    rows.append((fail.__name__, times))
                    print(f"round {n} ({fail.__name__}): {time.monotonic() - t0:.0f} s in all")
        finally:
            broker.kill()
    print("\nround  how         failover per consumer (first failed → first new commit)")
    for n, (how, times) in enumerate(rows, 1):
        print(f"{n:>5}  {how:<10}  " + ", ".join(f"{t:.2f} s" for t in times))
    planned = [max(t) for how, t in rows if how == "switchover"]
    if planned:
        print(f"switchover: median {statistics.median(planned):.2f} s, worst {max(planned):.2f} s"
              " (slowest consumer of each round)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
