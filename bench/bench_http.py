"""HTTP: tickets/s and latency of ``POST /api/tickets`` on loopback, against a real box.

    python bench/bench_http.py [--clients 20] [--seconds 5]

Starts ``python -m controller`` (uvicorn, no devices: ``hardware = "none"``) on a free
port, drives it with concurrent keep-alive clients from this process, and reports
tickets/s and p50/p99. Between tickets, three tellers call the next customer (untimed
``call-next`` requests), so the queue stays at a branch's length.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main_async(clients: int, seconds: float) -> None:
    port = free_port()
    data = tempfile.mkdtemp(prefix="paidui-http-")
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "--config", "examples/branch.toml",
         "--data-dir", data, "--http", f"127.0.0.1:{port}", "--log-level", "WARNING",
         "--set", 'hardware="none"', "--set", "clock.start=2026-11-25T10:00:00+08:00",
         "--set", "thresholds.branch_waiting_cap=0", "--set", "queues.0.digits=6"],
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            for _ in range(200):
                try:
                    await c.get("/api/status")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)  # the box is starting
            for n, t in ((1, "t1"), (2, "t2"), (3, "t3")):
                await c.post(f"/api/windows/{n}/login", json={"teller": t, "password": "1234"})
        lat: list[float] = []
        stop = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as c:

            async def client(i: int) -> None:
                while time.perf_counter() < stop:
                    t = time.perf_counter()
                    r = await c.post("/api/tickets", json={"queue": "A"})
                    lat.append(time.perf_counter() - t)
                    assert r.status_code == 201, r.text
                    await c.post(f"/api/windows/{i % 3 + 1}/call-next")

            start = time.perf_counter()
            await asyncio.gather(*(client(i) for i in range(clients)))
            elapsed = time.perf_counter() - start
        lat.sort()
        print(f"http: {len(lat)} tickets in {elapsed:.1f} s = {len(lat) / elapsed:,.0f} tickets/s "
              f"({clients} clients, each ticket followed by a call-next)")
        print(f"http: POST /api/tickets p50 {statistics.median(lat) * 1000:.2f} ms  "
              f"p99 {lat[int(0.99 * len(lat))] * 1000:.2f} ms")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    asyncio.run(main_async(args.clients, args.seconds))


if __name__ == "__main__":
    main()
