"""The centre's staff API through a flood of public requests (central/edge.py).

    python bench/bench_centre_public.py [--clients 1000] [--seconds 8] [--max-in-flight 64]
                                        [--no-compare]

Starts a private Mosquitto and a real centre (``python -m central``, SQLite, its real
uvicorn server: common/httpserver.py), logs in as the first administrator, then:

1. **baseline**: the staff client alone asks ``GET /api/branches`` every 50 ms for 3 s;
2. **flood**: ``--clients`` public clients, each from a loopback address of its own
   (127.0.x.y, so the per-address buckets do not hide the concurrency), each asking
   ``GET /api/public/branches`` again as soon as it is answered (keep-alive; a refused
   one asks again at once on the same connection, ignoring ``Retry-After``) for
   ``--seconds``, while the staff client goes on as in 1.

Prints p50/p99 of the staff requests (baseline and under the flood, and their ratio), of
the public requests (all, and those answered 200), and the counts of 200/429/503 and of
failed connections. Unless ``--no-compare``, the same run is made against a second
centre with ``http.public.enabled = false`` (no buckets, no cap: what main did) so the
two are measured on the same machine in the same minute. The public clients run in an
event loop of a thread of their own (tests/flood_support.py ``in_own_thread``), so the
staff client's loop times only the centre. Figures and the machine: docs/performance.md,
"Centre: public flood and staff latency".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.checks import Checks, machine_line
from central.broker import LocalBroker
from common.httpserver import open_file_limit
from tests.customer_support import CentreProcess
from tests.flood_support import in_own_thread, read_response
from tests.office_support import ADMIN_SEED

PUBLIC = b"GET /api/public/branches HTTP/1.1\r\nHost: centre\r\n\r\n"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000 if s else float("nan")


def line(name: str, values: list[float]) -> str:
    return (f"{name}: n {len(values)}, p50 {pct(values, 0.5):.0f} ms, "
            f"p99 {pct(values, 0.99):.0f} ms, max {pct(values, 1.0):.0f} ms")


class Flood:
    """Public clients, each on its own loopback address, asking until ``stop``."""

    def __init__(self, port: int, clients: int) -> None:
        self.port, self.clients = port, clients
        self.statuses: Counter[int] = Counter()
        self.took: list[float] = []
        self.took_ok: list[float] = []
        self.failed = 0
        self.closed = 0
        self.stop = False
        self.tasks: list[asyncio.Task[None]] = []
        self.stuck = 0  # clients still waiting for an answer 30 s after the stop

    async def __aenter__(self) -> Flood:
        self.tasks = [asyncio.ensure_future(self.client(i)) for i in range(self.clients)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop = True
        _, pending = await asyncio.wait(self.tasks, timeout=30)
        self.stuck = len(pending)
        for t in self.tasks:
            t.cancel()

    async def client(self, i: int) -> None:
        local = f"127.0.{1 + i // 250}.{2 + i % 250}"
        while not self.stop:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port,
                                                               local_addr=(local, 0))
            except OSError:
                self.failed += 1
                await asyncio.sleep(0.1)
                continue
            try:
                while not self.stop:
                    started = time.monotonic()
                    writer.write(PUBLIC)
                    async with asyncio.timeout(60):
                        status, _ = await read_response(reader)
                    took = time.monotonic() - started
                    self.statuses[status] += 1
                    self.took.append(took)
                    if status == 200:
                        self.took_ok.append(took)
            except asyncio.IncompleteReadError:
                self.closed += 1  # closed by the centre (or its keep-alive): connect again
            except (OSError, TimeoutError):
                self.failed += 1
            finally:
                writer.close()


async def staff_latency(url: str, token: str, seconds: float) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 headers={"Authorization": f"Bearer {token}"}) as c:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            r = await c.get("/api/branches")
            if r.status_code != 200:
                raise SystemExit(f"FAIL: staff request answered {r.status_code}: {r.text}")
            out.append(time.monotonic() - started)
            await asyncio.sleep(0.05)
    return out


@contextlib.contextmanager
def centre(work: Path, broker: LocalBroker, *sets: str) -> Iterator[CentreProcess]:
    work.mkdir(parents=True)
    c = CentreProcess(work, broker, ADMIN_SEED, "customers.status_ttl_s=2", *sets)
    c.start(60)
    try:
        yield c
    finally:
        c.stop()


async def run(name: str, c: CentreProcess, clients: int, seconds: float,
              checks: Checks) -> dict[str, Any]:
    token = login(c.url)
    base = await staff_latency(c.url, token, 3.0)
    async with in_own_thread(Flood(c.port, clients)) as flood:
        await asyncio.sleep(1.0)  # the clients connecting
        loaded = await staff_latency(c.url, token, seconds)
    p50_ratio = pct(loaded, 0.5) / pct(base, 0.5)
    print(f"\n[{name}] {clients} public clients for {seconds:g} s")
    print("  " + line("staff baseline", base))
    print("  " + line("staff under flood", loaded) + f"  (p50 ×{p50_ratio:.1f})")
    print("  " + line("public, all answers", flood.took))
    print("  " + line("public, 200 only", flood.took_ok))
    print(f"  public answers: {dict(sorted(flood.statuses.items()))}, connections closed by "
          f"the centre {flood.closed}, failed {flood.failed}")
    # 200 answered, 429/503 shed (the edge's answers); anything else is a failure
    odd = sum(n for status, n in flood.statuses.items() if status not in (200, 429, 503))
    checks.failed(odd, f"public requests ({name}: answers other than 200/429/503)")
    checks.failed(flood.failed, f"public connections ({name}: refused or timed out)")
    checks.drained(clients, clients - flood.stuck, f"public clients ended ({name})")
    checks.true(bool(flood.took_ok), f"{name}: no public request was answered 200")
    return {"base": base, "loaded": loaded, "flood": flood}


def login(url: str) -> str:
    r = httpx.post(url + "/api/auth/login", json={"user": "admin",
                                                  "password": "admin-pw-for-tests"})
    r.raise_for_status()
    return str(r.json()["token"])


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--max-in-flight", type=int, default=64)
    ap.add_argument("--no-compare", action="store_true")
    args = ap.parse_args()
    files = open_file_limit()
    if files < 2 * args.clients + 200:
        raise SystemExit(f"open-file limit {files}: too low for {args.clients} clients")
    checks = Checks("bench_centre_public")
    print(f"{machine_line()} at start; {platform.node()} ({platform.machine()})")
    with tempfile.TemporaryDirectory(prefix="bench-centre-public-") as tmp:
        work = Path(tmp)
        broker = LocalBroker(work / "broker")
        broker.add_user("centre", "centre-pw")
        broker.start()
        try:
            with centre(work / "edge", broker,
                        f"http.public.max_in_flight={args.max_in_flight}") as c:
                after = await run("edge on", c, args.clients, args.seconds, checks)
            if not args.no_compare:
                with centre(work / "plain", broker, "http.public.enabled=false") as c:
                    before = await run("edge off (as before)", c, args.clients, args.seconds,
                                       checks)
                print(f"\nstaff p50 under flood: edge off {pct(before['loaded'], 0.5):.0f} ms,"
                      f" edge on {pct(after['loaded'], 0.5):.0f} ms; public 200 p50: "
                      f"{pct(before['flood'].took_ok, 0.5):.0f} → "
                      f"{pct(after['flood'].took_ok, 0.5):.0f} ms")
        finally:
            broker.kill()
    checks.true(pct(after["loaded"], 0.5) <= 1000,
                "the staff median was over 1 s under the public flood")
    return checks.verdict()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
