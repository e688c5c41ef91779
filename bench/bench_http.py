"""HTTP: tickets/s and latency on loopback, against a real box.

    python bench/bench_http.py [--connections 1,4,20] [--seconds 5] [--client wrk|httpx]

Starts ``python -m controller`` (uvicorn, no devices: ``hardware = "none"``) on a free
port with three tellers logged in, and drives it with keep-alive connections, each sending
``POST /api/tickets`` then ``POST /api/windows/{n}/call-next`` (n = 1, 2, 3 in turn) over
and over, so the queue stays at a branch's length. It reports tickets/s and the latency
percentiles of all requests (both kinds; a call-next costs about what a ticket does).

The load generator is ``wrk`` (Debian package ``wrk``, C, one thread) when installed, so
that the figures are the box's and not the client's; otherwise an ``httpx`` client in this
process, which saturates first (its figures are a floor for the box).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

# wrk's script: each connection alternates a ticket and a call-next at windows 1, 2, 3.
MIX_LUA = """
local tokens = {os.getenv("PAIDUI_T1"), os.getenv("PAIDUI_T2"), os.getenv("PAIDUI_T3")}
local n = 0
request = function()
  n = n + 1
  if n % 2 == 1 then
    return wrk.format("POST", "/api/tickets", {["Content-Type"] = "application/json"},
                      '{"queue": "A"}')
  end
  local w = (n / 2) % 3 + 1
  return wrk.format("POST", "/api/windows/" .. w .. "/call-next",
                    {["Authorization"] = "Bearer " .. tokens[w]}, "")
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %f %d %d %d %d\\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_box(port: int) -> subprocess.Popen[bytes]:
    data = tempfile.mkdtemp(prefix="paidui-http-")
    return subprocess.Popen(
        [sys.executable, "-m", "controller", "--config", "examples/branch.toml",
         "--data-dir", data, "--http", f"127.0.0.1:{port}", "--log-level", "WARNING",
         "--set", 'hardware="none"', "--set", "clock.start=2026-11-25T10:00:00+08:00",
         "--set", "thresholds.branch_waiting_cap=0", "--set", "queues.0.digits=6"],
        cwd=ROOT,
    )


async def tellers(base: str) -> dict[int, str]:
    """Wait for the box, log in three tellers; their tokens by window."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as c:
        for _ in range(200):
            try:
                await c.get("/api/status")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)  # the box is starting
        tokens = {}
        for n, t in ((1, "t1"), (2, "t2"), (3, "t3")):
            r = await c.post(f"/api/windows/{n}/login", json={"teller": t, "password": "1234"})
            assert r.status_code == 200, r.text
            tokens[n] = str(r.json()["token"])
        return tokens


def with_wrk(base: str, tokens: dict[int, str], connections: int, seconds: float
             ) -> tuple[float, float, float, int]:
    """(tickets/s, p50 ms, p99 ms, failed requests) from one wrk run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(MIX_LUA)
    env = {**os.environ, **{f"PAIDUI_T{n}": t for n, t in tokens.items()}}
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", f.name,
                              base], env=env, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    m = re.search(r"RESULT (\d+) ([\d.]+) (\d+) (\d+) (\d+) (\d+)", out)
    assert m, out
    requests, secs, p50, p99, _status, errors = m.groups()
    # the only expected non-2xx: a call-next with nobody waiting for that window (409)
    return (int(requests) / 2 / float(secs), int(p50) / 1000, int(p99) / 1000,
            int(errors))


async def with_httpx(base: str, tokens: dict[int, str], connections: int, seconds: float
                     ) -> tuple[float, float, float, int]:
    lat: list[float] = []
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as c:

        async def client(i: int) -> None:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = await c.post("/api/tickets", json={"queue": "A"})
                lat.append(time.perf_counter() - t)
                assert r.status_code == 201, r.text
                w = i % 3 + 1
                t = time.perf_counter()
                r = await c.post(f"/api/windows/{w}/call-next",
                                 headers={"authorization": f"Bearer {tokens[w]}"})
                lat.append(time.perf_counter() - t)
                assert r.status_code in (200, 409), r.text  # 409: nobody for it now

        start = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(connections)))
        elapsed = time.perf_counter() - start
    lat.sort()
    return (len(lat) / 2 / elapsed, statistics.median(lat) * 1000,
            lat[int(0.99 * len(lat))] * 1000, 0)


async def main_async(connections: list[int], seconds: float, client: str) -> None:
    port = free_port()
    proc = start_box(port)
    base = f"http://127.0.0.1:{port}"
    try:
        tokens = await tellers(base)
        async with httpx.AsyncClient(base_url=base) as c:
            status = (await c.get("/api/status")).json()
        print(f"box: {base}, load generator: {client}")
        for n in connections:
            if client == "wrk":
                rate, p50, p99, errors = with_wrk(base, tokens, n, seconds)
            else:
                rate, p50, p99, errors = await with_httpx(base, tokens, n, seconds)
            async with httpx.AsyncClient(base_url=base) as c:
                status = (await c.get("/api/status")).json()
            print(f"http: {n:3d} connections: {rate:7,.0f} tickets/s (and as many call-next), "
                  f"p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  (errors {errors}, "
                  f"waiting at the end {status['waiting_total']})")
        print(json.dumps({"tickets_today": sum(q["issued"] for q in status["queues"])}))
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--connections", default="1,4,20")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--client", choices=["wrk", "httpx"],
                   default="wrk" if shutil.which("wrk") else "httpx")
    args = p.parse_args()
    asyncio.run(main_async([int(x) for x in args.connections.split(",")], args.seconds,
                           args.client))


if __name__ == "__main__":
    main()
