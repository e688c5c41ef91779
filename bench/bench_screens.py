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
import tempfile
import time
from pathlib import Path

from controller.box import Box
from controller.clock import SystemClock
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


async def run(screens: int, tickets: int, stalled: bool = False) -> None:
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
            start = time.perf_counter()
            for _ in range(tickets):
                events = await box.execute(IssueTicket(queue="A"))
                sent[events[0]["number"]] = time.perf_counter()
            elapsed = time.perf_counter() - start
            await asyncio.sleep(0.2)  # let the last messages drain (a benchmark, not a test)
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
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--screens", type=int, default=50)
    p.add_argument("--tickets", type=int, default=500)
    a = p.parse_args()
    asyncio.run(run(0, a.tickets))
    asyncio.run(run(a.screens, a.tickets))
    asyncio.run(run(0, a.tickets, stalled=True))


if __name__ == "__main__":
    main()
