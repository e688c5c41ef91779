"""Failover time of the centre: two instances, one SIGKILLed mid-load, timed.

    python bench/bench_failover.py [--rounds 3] [--branches 6] [--lease-s 4]

Each round starts a private Mosquitto, a fresh PostgreSQL schema, two ``python -m
central`` processes on them and a fleet of real boxes (tests/ha_support.py, the scenario
of tests/test_central_ha.py), SIGKILLs the instance holding the ``alerts`` lease mid-load
and prints:

* **lease takeover**: SIGKILL → the survivor holds the lease (bounded by ``ha.lease_s``
  plus one try, ``lease_s / 4``);
* **ingest stall**: the longest time after the kill in which no event was stored (the
  killed instance's share of the shared subscription is re-sent by the boxes when their
  ``ack_timeout_s``, 2 s here, runs out);
* the events, each checked stored exactly once against the boxes' journals.

Exits 1 when a round loses or doubles an event, misses an alert or its SMS, or the
survivor's dashboard stops (every check of the test). Needs PostgreSQL
(``PAIDUI_TEST_PG``, default postgresql://postgres@127.0.0.1:5432/test) and mosquitto.
Figures: docs/deploy.md, "High availability".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_uplink import drop_schema, pg_schema_url  # noqa: E402

from central.broker import LocalBroker  # noqa: E402
from tests.ha_support import Failover, sigkill_the_alerts_holder  # noqa: E402

PG = os.environ.get("PAIDUI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
CODES = [f"100101{n:04d}" for n in range(1, 100)]


async def one_round(branches: int, lease_s: float) -> Failover:
    url, schema = pg_schema_url(PG)
    try:
        with tempfile.TemporaryDirectory(prefix="paidui-failover-") as tmp:
            root = Path(tmp)
            broker = LocalBroker(root / "broker")
            broker.add_user("centre", "centre-pw")
            broker.start()
            try:
                return await sigkill_the_alerts_holder(broker, url, root, CODES[:branches],
                                                       lease_s)
            finally:
                broker.kill()
    finally:
        drop_schema(PG, schema)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--branches", type=int, default=6, help="boxes (2..99)")
    p.add_argument("--lease-s", type=float, default=4.0, help="ha.lease_s (the default: 4)")
    args = p.parse_args()
    if not 2 <= args.branches <= len(CODES):
        p.error("--branches: 2..99")
    print(f"# {cpu_model()}, {os.cpu_count()} cores; "
          f"{args.branches} boxes, ha.lease_s={args.lease_s}")
    runs: list[Failover] = []
    for i in range(args.rounds):
        try:
            run = asyncio.run(one_round(args.branches, args.lease_s))
        except AssertionError as exc:
            print(f"round {i + 1}: FAILED: {exc}")
            return 1
        runs.append(run)
        print(f"round {i + 1}: lease takeover {run.takeover_s:.2f} s, ingest stall "
              f"{run.stall_s:.2f} s, {run.events} events stored exactly once")
    take = [r.takeover_s for r in runs]
    stall = [r.stall_s for r in runs]
    print(f"lease takeover: median {statistics.median(take):.2f} s, max {max(take):.2f} s "
          f"(bound {args.lease_s * 1.25:.2f} s + a poll)")
    print(f"ingest stall:   median {statistics.median(stall):.2f} s, max {max(stall):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
