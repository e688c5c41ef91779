"""Ticket button -> printer bytes complete, p50/p99, through the real issue path.

    python bench/bench_printer.py [--tickets N] [--profile NAME ...] [--no-png]

For each printer profile: a real :class:`~controller.box.Box` (journal on disk, group
commit) with the real printer component on ``backend = "sim"``: the driver talks to the
virtual printer over a loopback TCP socket, as to a network printer. One ticket at a time,
like a kiosk button: ``issue_and_print`` = ``box.execute(IssueTicket)`` (durable) +
status query + ticket bytes + status query. When it returns, the printer has answered the
status query sent after the last ticket byte, so it holds the whole ticket. The virtual
printer also decodes every ticket and writes ``.bin``/``.txt``/``.png`` (in worker threads,
on the same two cores) unless ``--no-png``.

Also printed: rendering alone (``render_ticket``), the ticket's size, and the time those
bytes take on a 115200-baud serial line, the floor for a serial printer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks import Checks, machine_line
from common.clock import ManualClock
from controller.box import Box
from controller.compose import printer_component
from controller.config import load_config
from controller.engine import commands as c
from controller.kiosk import issue_and_print
from protocols.ticket import get_profile, render_ticket

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "branch.toml"
T0 = 1795572000.0  # 2026-11-25 10:00 +08:00, a Wednesday, inside hours
QUEUES = ["A", "B", "V", "T"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(profile: str, tickets: int, png: bool, checks: Checks) -> dict[str, float]:
    cfg = load_config(EXAMPLE, [f'printer.profile="{profile}"', "printer.poll_s=60",
                                "thresholds.branch_waiting_cap=0"])
    with tempfile.TemporaryDirectory() as tmp:
        async with Box(cfg, Path(tmp), ManualClock(T0)) as box:
            comp = printer_component(cfg, box.data_dir)
            assert comp is not None
            task = asyncio.create_task(comp.run(box))
            while box.printer is None or comp.sim is None:
                await asyncio.sleep(0.01)  # start-up only, outside the timings
            comp.sim.png = png
            durable: list[float] = []
            # durable = the issue's commit, not the later ticket_delivered one
            box.listeners.append(lambda events: durable.append(time.perf_counter()) if any(
                e["type"] == "ticket_issued" for e in events) else None)
            times, commits, numbers, failed = [], [], [], 0
            for i in range(tickets):
                start = time.perf_counter()
                info, outcome = await issue_and_print(box, c.IssueTicket(queue=QUEUES[i % 4]))
                times.append(time.perf_counter() - start)
                commits.append(durable[-1] - start)
                numbers.append(str(info["number"]))
                failed += outcome is None or not outcome.ok
            with contextlib.suppress(TimeoutError):  # counted below
                await comp.sim.wait_tickets(tickets, timeout=120)
            checks.failed(failed, f"{profile} prints")
            checks.unique(numbers, f"{profile} ticket numbers")
            checks.drained(tickets, len(comp.sim.tickets), f"{profile} tickets at the printer")
            size = len(comp.sim.tickets[-1].raw) if comp.sim.tickets else 0
            render = render_times(box, info, profile)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return {"p50": pct(times, 50), "p99": pct(times, 99), "max": max(times),
            "durable_p50": pct(commits, 50), "durable_p99": pct(commits, 99),
            "print_p50": pct([t - d for t, d in zip(times, commits, strict=True)], 50),
            "print_p99": pct([t - d for t, d in zip(times, commits, strict=True)], 99),
            "mean": statistics.fmean(times), "bytes": size, "render_p50": pct(render, 50)}


def render_times(box: Box, info: dict[str, object], profile: str) -> list[float]:
    prof = get_profile(profile)
    out = []
    for _ in range(50):
        start = time.perf_counter()
        render_ticket(info, prof, qr_base_url="http://127.0.0.1:8080")
        out.append(time.perf_counter() - start)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=400)
    ap.add_argument("--profile", action="append", default=None)
    ap.add_argument("--no-png", action="store_true")
    args = ap.parse_args()
    profiles = args.profile or ["kiosk80", "pos58"]
    png = "off" if args.no_png else "on"
    checks = Checks("bench_printer")
    print(machine_line())
    print(f"{args.tickets} tickets per profile, one at a time, PNG {png}")
    print("profile   QR      p50 ms  p99 ms  max ms  mean ms | durable p50/p99 ms |"
          " print p50/p99 ms | render ms  bytes  115200 bd ms")
    for name in profiles:
        r = asyncio.run(run(name, args.tickets, not args.no_png, checks))
        wire = r["bytes"] * 10 / 115200 * 1000
        print(f"{name:9} {get_profile(name).qr:6} {r['p50'] * 1e3:7.2f} {r['p99'] * 1e3:7.2f}"
              f" {r['max'] * 1e3:7.2f} {r['mean'] * 1e3:8.2f} |"
              f" {r['durable_p50'] * 1e3:8.2f} {r['durable_p99'] * 1e3:8.2f} |"
              f" {r['print_p50'] * 1e3:7.2f} {r['print_p99'] * 1e3:7.2f} |"
              f" {r['render_p50'] * 1e3:9.2f}"
              f" {int(r['bytes']):6d} {wire:13.1f}")
    return checks.verdict()


if __name__ == "__main__":
    sys.exit(main())
