"""The appointment push under a cancel/rebook loop (issue 15): lists and rows sent to a box.

    python bench/bench_appointment_push.py [--customers 4] [--rounds 60] [--standing 40]
                                           [--store URL]

In one process, on loopback: a private Mosquitto, the centre's customer channels (SQLite
store unless ``--store``), and the example branch's box with its uplink and appointment
book. ``--customers`` customers each book and cancel ``--rounds`` times as fast as the
centre answers (the issue's loop: 4 customers, 4 minutes, 5,391 rows pushed), on a day
that already holds ``--standing`` bookings of other customers (where deltas pay).

Printed, for the same run:

* changes made, lists sent (full / delta), rows sent (bookings + removed ids);
* the baseline: an upper bound of what the push sent before (one whole list per change,
  cancelled rows included: the day's booking rows at each change, summed; the old loop
  sent one per look, so somewhat fewer when changes came faster) and the ratio;
* with the default ``changes_per_hour`` (10) the loop again: the changes refused.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.checks import Checks, machine_line  # noqa: E402
from central.appointments import Customer, CustomerRefused  # noqa: E402
from central.broker import LocalBroker  # noqa: E402
from common.clock import ManualClock  # noqa: E402
from controller.box import Box  # noqa: E402
from tests.conftest import WEDNESDAY_10AM, example_config  # noqa: E402
from tests.customer_support import an_id, customer_centre, linked_box, pushed  # noqa: E402
from tests.uplink_support import BRANCH  # noqa: E402

TODAY = "2026-11-25"


async def register(a: Any, n: int, first: int) -> list[Customer]:
    people = []
    for i in range(first, first + n):
        phone = f"136{i:08d}"
        who = Customer(a.vault.digest(phone), phone, None, None)
        profile = await a.register(who, f"客户{i}", None, an_id(300 + i))
        people.append(Customer(who.phone_digest, phone, profile["id"], None))
    return people


async def run(work: Path, customers: int, rounds: int, standing: int, store: str | None,
              limit: int) -> dict[str, float]:
    broker = LocalBroker(work / "broker")
    broker.add_user("centre", "centre-pw")
    broker.start()
    clock = ManualClock(WEDNESDAY_10AM.timestamp())
    url = store or f"sqlite:///{work / 'centre.sqlite3'}"
    try:
        async with Box(example_config(), work / "data", clock) as box, \
                customer_centre(broker, url, clock, work,
                                f"customers.changes_per_hour={limit}") as centre, \
                linked_box(box, broker):
            assert centre.customers is not None
            a = centre.customers.appointments
            await pushed(centre, TODAY, timeout=60)
            for i, who in enumerate(await register(a, standing, 100)):
                await a.book(who, BRANCH, "AB"[i % 2], TODAY, 3 + (i // 2) % 7)
            await pushed(centre, TODAY, timeout=60)
            people = await register(a, customers, 0)
            before = (sum(a.pushes.values()), a.rows_pushed, a.pushes[True])
            made, refused, ids = [0], [0], []

            async def loop(who: Customer) -> None:
                for _ in range(rounds):
                    try:
                        b = await a.book(who, BRANCH, "A", TODAY, 3)
                        ids.append(b["id"])
                        made[0] += 1
                        await a.cancel(who, b["id"])
                        made[0] += 1
                    except CustomerRefused:
                        refused[0] += 1
                        return

            started = time.perf_counter()
            await asyncio.gather(*(loop(p) for p in people))
            await pushed(centre, TODAY, timeout=60)
            wall = time.perf_counter() - started
            # Before: every change sent the whole day, cancelled rows included.
            baseline = sum(range(standing + 1, standing + made[0] // 2 + 1)) * 2
            return {"changes": made[0], "refused": refused[0], "wall_s": wall, "ids": ids,
                    "lists": sum(a.pushes.values()) - before[0],
                    "deltas": a.pushes[True] - before[2], "rows": a.rows_pushed - before[1],
                    "baseline_rows": baseline}
    finally:
        broker.kill()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=4)
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--standing", type=int, default=40)
    p.add_argument("--store", default=None)
    args = p.parse_args()
    checks = Checks("bench_appointment_push")
    print(machine_line())
    for limit in (1000, 10):
        with tempfile.TemporaryDirectory() as tmp:
            f = asyncio.run(run(Path(tmp), args.customers, args.rounds, args.standing,
                                args.store, limit))
        print(f"changes_per_hour={limit}: {f['changes']:.0f} changes "
              f"({f['refused']:.0f} customers refused) in {f['wall_s']:.1f} s; "
              f"{f['lists']:.0f} lists sent ({f['deltas']:.0f} deltas), "
              f"{f['rows']:.0f} rows; before: up to {f['changes']:.0f} lists, "
              f"{f['baseline_rows']:.0f} rows (x{f['baseline_rows'] / max(1, f['rows']):.0f})")
        checks.unique(f["ids"], f"booking ids (changes_per_hour={limit})")
        if limit == 1000:  # nobody reaches the limit: every change made
            checks.failed(int(f["refused"]), "customers' changes (changes_per_hour=1000)")
            checks.drained(2 * args.customers * args.rounds, int(f["changes"]),
                           "changes made (changes_per_hour=1000)")
        else:  # each customer is stopped by the limit once (the loop ends there)
            checks.true(f["refused"] == args.customers or args.rounds * 2 <= limit,
                        f"{f['refused']} of {args.customers} customers refused at the limit")
    return checks.verdict()


if __name__ == "__main__":
    sys.exit(main())
