"""One branch floods, the others should not notice: their event latency with and without.

    python bench/bench_centre_flood.py [--rate 10000] [--branches 20] [--duration 15]
                                       [--store sqlite|postgres]

Starts a private Mosquitto (the shipped configuration: passwords and ACL) and
``python -m central`` (one consumer, its HTTP API with a ``/metrics`` token), then twice
for ``--duration`` seconds: ``--branches`` well-behaved branches each publish a batch of
5 ticket events every 0.25 s (in this process), and ``/metrics`` is asked every 0.2 s;
the second time one more branch (``tests/branch_flood.py``, its own process) publishes
``--rate`` valid live snapshots a second on its own topic. Prints, for each run: the
other branches' latency (publish → the centre's ``stored_at``) p50/p99/max, the
``/metrics`` answer time p50/p99, the centre's RSS before and after and its CPU, and the
drop counters. Figures and the machine: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiomqtt  # noqa: E402
import httpx  # noqa: E402
from bench_uplink import _cpu_s, _pct, drop_schema, pg_schema_url  # noqa: E402

from bench.checks import Checks, machine_line  # noqa: E402
from central.broker import LocalBroker  # noqa: E402
from central.store import open_store  # noqa: E402
from protocols import uplink as proto  # noqa: E402
from tests.branch_flood import ticket  # noqa: E402

PY = sys.executable
FLOODER = "1001019999"
TOKEN = secrets.token_urlsafe(24)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_centre(broker: LocalBroker, store_url: str, port: int, log: Path
                 ) -> subprocess.Popen[bytes]:
    sets = [f"broker.url={broker.url}", "broker.username=centre",
            "broker.password=centre-pw", f"store.url={store_url}", f"http.port={port}",
            f"web.metrics_token={TOKEN}", "alerts.enabled=false"]
    return subprocess.Popen(
        [PY, "-m", "central", *(a for s in sets for a in ("--set", s)),
         "--log-level", "INFO"], cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


async def branch(broker: LocalBroker, code: str, password: str, seconds: float,
                 nexts: dict[str, int], sent: dict[tuple[str, int], float]) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port, username=code, password=password,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        seq, end = nexts.get(code, 1), time.monotonic() + seconds
        while time.monotonic() < end:
            events = [ticket(seq + i) for i in range(5)]
            for e in events:
                sent[code, e["seq"]] = time.time()
            await client.publish(proto.topic(code, "events"),
                                 proto.encode(proto.events_batch(code, "e1", events)), qos=1)
            seq += 5
            nexts[code] = seq
            await asyncio.sleep(0.25)


async def scrape(port: int, seconds: float) -> tuple[list[float], str]:
    took, text = [], ""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            r = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            took.append(time.monotonic() - t0)
            text = r.text
            await asyncio.sleep(0.2)
    return took, text


def stored(store_url: str) -> dict[tuple[str, int], float]:
    return {k: t for k, t in stored_rows(store_url)}


def stored_rows(store_url: str) -> list[tuple[tuple[str, int], float]]:
    """Every stored event row as ((branch, seq), stored_at): a key twice is a duplicate."""
    s = open_store(store_url)
    try:
        return [((b, int(q)), float(t)) for b, q, t in s.execute(
            "SELECT branch, seq, stored_at FROM events").fetchall()]
    finally:
        s.close()


async def run(broker: LocalBroker, store_url: str, port: int, pid: int,
              passwords: dict[str, str], args: argparse.Namespace,
              nexts: dict[str, int], flood: bool) -> dict[str, Any]:
    sent: dict[tuple[str, int], float] = {}
    rss0, cpu0 = rss_mb(pid), _cpu_s(pid)
    flooder = subprocess.Popen(
        [PY, "-m", "tests.branch_flood", "--port", str(broker.port), "--branch", FLOODER,
         f"--password={passwords[FLOODER]}", "--rate", str(args.rate)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True) if flood else None
    try:
        await asyncio.sleep(2.0 if flood else 0)  # the flood under way first
        others = [branch(broker, code, pw, args.duration, nexts, sent)
                  for code, pw in passwords.items() if code != FLOODER]
        (took, text), *_ = await asyncio.gather(scrape(port, args.duration), *others)
        rss1, cpu1 = rss_mb(pid), _cpu_s(pid)
    finally:
        out = ""
        if flooder is not None:
            flooder.terminate()
            out = flooder.communicate(timeout=20)[0].strip()
    deadline = time.monotonic() + 60
    while True:
        got = stored(store_url)
        if got.keys() >= sent.keys() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    late = sorted(got[k] - sent[k] for k in sent if k in got)
    took.sort()
    drops = [line for line in text.splitlines()
             if line.startswith(("paidui_centre_ingest_dropped_total",
                                 "paidui_centre_branch_flooding"))]
    return {"flood": out or "none", "events": len(sent), "missing": len(sent) - len(late),
            "p50": _pct(late, 50), "p99": _pct(late, 99), "max": late[-1] if late else 0,
            "metrics_p50": _pct(took, 50), "metrics_p99": _pct(took, 99),
            "rss": (rss0, rss1), "cpu": cpu1 - cpu0, "drops": drops}


def show(name: str, r: dict[str, Any]) -> None:
    print(f"\n{name}: flood {r['flood']}")
    print(f"  other branches' events: {r['events']} ({r['missing']} missing); latency p50 "
          f"{r['p50'] * 1000:.0f} ms, p99 {r['p99'] * 1000:.0f} ms, max {r['max'] * 1000:.0f} ms")
    print(f"  /metrics answer: p50 {r['metrics_p50'] * 1000:.0f} ms, p99 "
          f"{r['metrics_p99'] * 1000:.0f} ms")
    print(f"  centre RSS {r['rss'][0]:.0f} → {r['rss'][1]:.0f} MB; CPU {r['cpu']:.1f} s")
    for line in r["drops"]:
        print(f"  {line}")


async def main_async(args: argparse.Namespace, work: Path, store_url: str) -> int:
    broker = LocalBroker(work / "broker")
    broker.add_user("centre", "centre-pw")
    codes = [f"10010{n:05d}" for n in range(1, args.branches + 1)] + [FLOODER]
    passwords = {c: broker.add_user(c) for c in codes}
    broker.start()
    port = 18000 + os.getpid() % 2000
    centre = start_centre(broker, store_url, port, work / "centre.log")
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{port}/metrics",
                                       headers={"Authorization": f"Bearer {TOKEN}"})
                            ).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        nexts: dict[str, int] = {}
        quiet = await run(broker, store_url, port, centre.pid, passwords, args, nexts, False)
        flooded = await run(broker, store_url, port, centre.pid, passwords, args, nexts, True)
    finally:
        centre.terminate()
        centre.wait(30)
        broker.kill()
    print(f"{machine_line()}; {platform.node()}, {platform.platform()}; store {args.store}")
    show("without the flood", quiet)
    show(f"with one branch flooding at {args.rate:.0f} live msgs/s", flooded)
    ratio = flooded["p99"] / quiet["p99"] if quiet["p99"] else float("nan")
    print(f"\nother branches' p99 with / without the flood: ×{ratio:.2f}")
    checks = Checks("bench_centre_flood")
    for name, r in (("without the flood", quiet), ("with the flood", flooded)):
        checks.drained(r["events"], r["events"] - r["missing"], f"events stored ({name})")
    checks.unique([k for k, _ in stored_rows(store_url)], "stored (branch, seq)")
    return checks.verdict()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=10_000.0, help="flood, messages/s")
    p.add_argument("--branches", type=int, default=20)
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--store", choices=("sqlite", "postgres"), default="postgres")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        work = Path(tmp)
        if args.store == "sqlite":
            return asyncio.run(main_async(args, work, f"sqlite:///{work / 'centre.sqlite3'}"))
        base = os.environ.get("PAIDUI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
        url, schema = pg_schema_url(base)
        try:
            return asyncio.run(main_async(args, work, url))
        finally:
            drop_schema(base, schema)


if __name__ == "__main__":
    sys.exit(main())
