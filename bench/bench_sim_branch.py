"""How fast ``python -m sim branch`` can drive a real box: figures per speed.

For each speed a fresh box subprocess (example config, ``hardware = "sim"``, clock at
10:00 on a Wednesday, ``audio.sim_pace = 0``) gets the example branch's default day with
its three tellers for ``--seconds`` of wall time. Printed per speed:

* customers arrived and served per wall minute;
* key press round trip (the simulator's request → the box's bus master took the key),
  p50 / p99;
* 呼叫 → the call seen in the box's event stream, p50 / p99;
* service stretch: the box's ``handle_s`` (call → finish) minus the customer's modeled
  service time ÷ speed, for customers who were there when called — what the key round
  trips add to each service, mean and p90.

Usage: ``python bench/bench_sim_branch.py [--speeds 10,30,60,120] [--seconds 30]``
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks import Checks, machine_line
from sim.live.branch import LiveBranch, Options
from tests.browser import BoxProcess
from tests.conftest import example_config

BOX = ("audio.sim_pace=0",)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one(speed: float, seconds: float, data_dir: Path, checks: Checks) -> dict[str, Any]:
    box = BoxProcess(data_dir, *BOX).start()
    try:
        branch = LiveBranch(Options(example_config(*BOX), url=box.url, data_dir=data_dir,
                                    speed=speed, duration=seconds, seed=1, every=3600,
                                    out=io.StringIO()))
        stretch: list[float] = []

        def on_event(e: dict[str, Any]) -> None:
            if e.get("type") != "ticket_finished" or branch.stop.is_set():
                return  # on stop the tellers finish whoever is there at once
            c = branch.roster.by_ticket.get(str(e.get("ticket")))
            if c is not None and c.answers_at == 0 and e.get("handle_s") is not None:
                stretch.append(float(e["handle_s"]) - c.service_s / speed)

        branch.mirror.listeners.append(on_event)
        report = await branch.run()
    finally:
        box.stop()
    keys = [x for t in branch.tellers for x in t.keypad.latencies]
    calls = [x for t in branch.tellers for x in t.call_latencies]
    minutes = report["seconds"] / 60
    label = f"speed {speed:g}"
    checks.failed(sum(t["failures"] for t in report["tellers"].values()),
                  f"teller actions ({label})")
    given = report["tickets"]["kiosk"] + report["tickets"]["card"]
    checks.drained(given, report["box_events"].get("ticket_issued", 0),
                   f"tickets in the box's event stream ({label})")
    return {
        "speed": speed,
        "arrived_per_min": report["arrived"] / minutes,
        "served_per_min": report["box_events"].get("ticket_finished", 0) / minutes,
        "keys": len(keys), "key_p50": pct(keys, 0.5), "key_p99": pct(keys, 0.99),
        "call_p50": pct(calls, 0.5), "call_p99": pct(calls, 0.99),
        "stretch_mean": statistics.fmean(stretch) if stretch else float("nan"),
        "stretch_p90": pct(stretch, 0.9),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--speeds", default="10,30,60,120")
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args()
    checks = Checks("bench_sim_branch")
    print(machine_line())
    print(f"{'speed':>6} {'arr/min':>8} {'srv/min':>8} {'keys':>5} {'key p50':>8} "
          f"{'key p99':>8} {'call p50':>9} {'call p99':>9} {'stretch':>8} {'p90':>6}")
    for speed in (float(s) for s in args.speeds.split(",")):
        tmp = Path(tempfile.mkdtemp(prefix="bench-sim-branch-"))
        try:
            r = asyncio.run(one(speed, args.seconds, tmp / "data", checks))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"{r['speed']:6g} {r['arrived_per_min']:8.1f} {r['served_per_min']:8.1f} "
              f"{r['keys']:5d} {r['key_p50'] * 1000:6.0f}ms {r['key_p99'] * 1000:6.0f}ms "
              f"{r['call_p50'] * 1000:7.0f}ms {r['call_p99'] * 1000:7.0f}ms "
              f"{r['stretch_mean']:7.2f}s {r['stretch_p90']:5.2f}s", flush=True)
    return checks.verdict()


if __name__ == "__main__":
    sys.exit(main())
