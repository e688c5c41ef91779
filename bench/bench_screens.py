"""How much the screens' push channel costs the box, and how fast it delivers.

Runs a real Box (journal on disk) with the event hub attached and N screens reading
their streams, issues T tickets one after another, and prints: tickets/s with no screens
and with N, the delay from a ticket's commit to its event reaching every screen
(median, p99), and how many status snapshots were sent. Then one screen that reads
nothing: the box's rate with it attached, and that it was dropped.

    python bench/bench_screens.py [--screens 50] [--tickets 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks import Checks, machine_line
from common.clock import SystemClock
from controller.box import Box
from controller.config import load_config
from controller.engine import IssueTicket
from controller.web.events import EventHub

ROOT = Path(__file__).resolve().parent.parent


async def reader(hub: EventHub, arrived: dict[str, list[float]], ready: asyncio.Event) -> None:
    async for write in hub.stream("bench", None):
        for message in write.split("\n\n"):  # one write holds a tick's events and status
            if "event: status" in message[:40]:
                ready.set()
            if "ticket_issued" in message:
                data = json.loads(message.split("data: ", 1)[1])
                arrived.setdefault(data["number"], []).append(time.perf_counter())


async def run(checks: Checks, screens: int, tickets: int, stalled: bool = False) -> None:
    cfg = load_config(ROOT / "examples/branch.toml",
                      ["hours.workday=[\"00:00-24:00\"]", "hours.weekend=[\"00:00-24:00\"]",
                       "hours.holiday=[\"00:00-24:00\"]", "thresholds.branch_waiting_cap=0",
                       "queues.0.digits=4", "thresholds.lobby_alert_waiting=0"])
    with tempfile.TemporaryDirectory() as tmp:
        async with Box(cfg, tmp, SystemClock()) as box:
            hub = EventHub(box).attach()
            arrived: dict[str, list[float]] = {}
            tasks = []
            for _ in range(screens):
                ready = asyncio.Event()
                tasks.append(asyncio.create_task(reader(hub, arrived, ready)))
                await ready.wait()
            if stalled:
                stream = hub.stream("stalled", None)
                await anext(stream)  # connected, then never reads again
            sent: dict[str, float] = {}
            numbers: list[str] = []
            start = time.perf_counter()
            for _ in range(tickets):
                events = await box.execute(IssueTicket(queue="A"))
                numbers.append(events[0]["number"])
                sent[events[0]["number"]] = time.perf_counter()
            elapsed = time.perf_counter() - start
            deadline = time.perf_counter() + 10
            while screens and time.perf_counter() < deadline and any(
                    len(arrived.get(n, [])) < screens for n in sent):
                await asyncio.sleep(0.05)  # the last ticks' messages on their way
            delays = [max(arrived[n]) - t for n, t in sent.items()
                      if screens and len(arrived.get(n, [])) == screens]
            label = f"{screens} screens" + (" + 1 stalled" if stalled else "")
            print(f"{label:>22}: {tickets / elapsed:7.0f} tickets/s", end="")
            if delays and screens:
                delays.sort()
                print(f", commit→all screens median {statistics.median(delays) * 1000:.1f} ms,"
                      f" p99 {delays[int(len(delays) * 0.99) - 1] * 1000:.1f} ms,"
                      f" delivered {len(delays)}/{tickets}", end="")
            print(f", dropped {hub.stats.dropped}")
            label = label.strip()
            checks.unique(numbers, f"ticket numbers ({label})")
            if screens:  # every screen heard every ticket, once
                heard = sum(len(arrived.get(n, [])) for n in sent)
                checks.drained(tickets * screens, heard, f"ticket events at the screens ({label})")
            # a reading screen is never dropped; the stalled one once it is 256 behind
            checks.true(hub.stats.dropped <= int(stalled),
                        f"{hub.stats.dropped} screens dropped ({label})")
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            hub.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--screens", type=int, default=50)
    p.add_argument("--tickets", type=int, default=500)
    a = p.parse_args()
    checks = Checks("bench_screens")
    print(machine_line())
    asyncio.run(run(checks, 0, a.tickets))
    asyncio.run(run(checks, a.screens, a.tickets))
    asyncio.run(run(checks, 0, a.tickets, stalled=True))
    return checks.verdict()


if __name__ == "__main__":
    sys.exit(main())
