"""Floods against a real box: slow headers, a huge body, a thousand event-stream listeners.

    python bench/bench_floods.py [--slow 1000] [--listeners 1000] [--body-mb 300]
                                 [--nofile N]

Starts ``python -m controller`` (the example branch, ``hardware = "none"``: the time is the
box's, not a printer's) on a loopback port and, from other loopback addresses (127.0.0.2 …,
50 connections each, as from other machines on the branch LAN), in turn:

1. ``--slow`` connections that send a request head one header every 0.5 s and never end it;
   meanwhile 20 tickets from the kiosk's address: their latency, and how long until the
   box has closed every slow connection (``http.head_timeout_s``);
2. a ``--body-mb`` body to ``POST /api/tickets``, announced by Content-Length and then
   chunked: the answer, how much was sent before the box cut it, and the box's peak memory;
3. ``--listeners`` event-stream listeners, one in three never reading, then 50 tickets:
   their latency and whether every reading listener saw all 50.

Prints the figures; exits 1 if a ticket fails, a reading listener misses one, or a body is
not refused. Figures and the machine: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks import Checks, machine_line
from tests.flood_support import (
    FloodBox,
    attacker_addresses,
    big_body,
    issue_ticket,
    listeners,
    slow_headers,
)

PER_ADDRESS = 50
MB = 1024 * 1024
CHECKS = Checks("bench_floods")
NUMBERS: list[str] = []  # every ticket number the kiosk was given, per box (none twice)


def ms(seconds: list[float]) -> str:
    s = sorted(seconds)
    return (f"p50 {statistics.median(s) * 1000:.0f} ms, p95 {s[int(len(s) * 0.95)] * 1000:.0f}"
            f" ms, max {s[-1] * 1000:.0f} ms")


async def tickets(box: FloodBox, n: int) -> list[float]:
    out = []
    for i in range(n):
        status, took, answer = await issue_ticket(box.port, "AB"[i % 2], timeout=30)
        if status != 201:
            raise SystemExit(f"FAIL: a ticket was refused: {status} {answer}")
        NUMBERS.append(f"{box.port} {answer.get('number')}")
        out.append(took)
    return out


async def slow(box: FloodBox, count: int) -> None:
    addresses = attacker_addresses(count // PER_ADDRESS)
    start = time.perf_counter()
    async with slow_headers(box.port, addresses, PER_ADDRESS) as flood:
        while flood.opened + flood.refused < count and time.perf_counter() - start < 60:
            await asyncio.sleep(0.1)
        took = await tickets(box, 20)
        print(f"slow headers: {flood.opened} open ({flood.refused} refused), box holds "
              f"{box.open_files()} files; 20 tickets meanwhile: {ms(took)}")
        while flood.closed_by_box < flood.opened and time.perf_counter() - start < 120:
            await asyncio.sleep(0.1)
        print(f"  every slow connection closed by the box after "
              f"{time.perf_counter() - start:.1f} s ({flood.closed_by_box}/{flood.opened})")
        if flood.closed_by_box < flood.opened:
            raise SystemExit("FAIL: slow connections left open")


async def body(box: FloodBox, size_mb: int) -> None:
    for chunked in (False, True):
        before = box.rss_mb()
        box.reset_peak()
        start = time.perf_counter()
        status, sent = await big_body(box.port, size_mb * MB, chunked=chunked)
        kind = "chunked" if chunked else "Content-Length"
        print(f"{size_mb} MB body ({kind}): answer {status} after "
              f"{(time.perf_counter() - start) * 1000:.0f} ms, {sent / MB:.1f} MB sent before "
              f"the cut; box memory {before:.0f} MB, peak {box.rss_mb('VmHWM'):.0f} MB")
        if status not in (413, None):
            raise SystemExit("FAIL: the body was not refused")


async def listen(box: FloodBox, count: int) -> None:
    addresses = attacker_addresses(count // PER_ADDRESS)
    start = time.perf_counter()
    async with listeners(box.port, addresses, PER_ADDRESS, stalled_every=3) as screens:
        print(f"listeners: {len(screens)} connected in {time.perf_counter() - start:.1f} s "
              f"({sum(not s.reads for s in screens)} never read)")
        took = await tickets(box, 50)
        readers = [s for s in screens if s.reads]
        deadline = time.perf_counter() + 30
        while any(len(s.issued) < 50 for s in readers) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        missed = sum(50 - len(s.issued) for s in readers)
        print(f"  50 tickets: {ms(took)}; reading listeners {len(readers)}, events missed "
              f"{missed}, box memory {box.rss_mb():.0f} MB")
        if missed:
            raise SystemExit("FAIL: a reading listener missed events")


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slow", type=int, default=1000)
    p.add_argument("--listeners", type=int, default=1000)
    p.add_argument("--body-mb", type=int, default=300)
    p.add_argument("--nofile", type=int, default=None,
                   help="the box's open-file limit (systemd's default without LimitNOFILE: 1024)")
    args = p.parse_args()
    print(f"{machine_line()}; {platform.node()}")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"the box's open-file limit: {args.nofile or 'as this shell'}")
        parts = (("slow", args.slow, slow), ("body", args.body_mb, body),
                 ("listeners", args.listeners, listen))
        for part, size, run in parts:
            if not size:
                continue  # 0: not this one
            box = FloodBox(Path(tmp) / part / "data", 'hardware="none"',
                           "thresholds.branch_waiting_cap=0", nofile=args.nofile)
            box.start()
            try:
                await tickets(box, 1)  # warm
                await run(box, size)
            finally:
                box.stop()
    CHECKS.unique(NUMBERS, "ticket numbers")
    return CHECKS.verdict()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
