"""Uplink and centre benchmark: prints figures (docs/performance.md, "Uplink and centre").

    python bench/bench_uplink.py [--branches 2000] [--rate 120] [--duration 60]
                                 [--events 200000] [--pg postgresql://postgres@127.0.0.1/test]

In one run, against a private Mosquitto (anonymous, the shipped settings otherwise):

1. the broker's own ceiling: ``mosquitto_pub -l`` → ``mosquitto_sub``, QoS 1, messages the
   size of an events batch, and of a one-event batch;
2. ingest: pre-encoded batches of 200 events for 20 branches published as fast as the
   broker takes them, one ``python -m central`` consumer and then two in a shared group,
   on SQLite and on PostgreSQL: events committed per second (first to last commit);
3. end to end: ``python -m sim fleet`` with N branches at a busy-hour rate against the
   centre on PostgreSQL; latency = the centre's commit time − the event's time at the
   branch (the engine stamps it just before the journal commit), p50 / p99.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from central.broker import LocalBroker  # noqa: E402
from central.store import open_store  # noqa: E402
from protocols import uplink as proto  # noqa: E402
from sim.fleet import raise_file_limit  # noqa: E402

PY = sys.executable


def event(seq: int, branch: str) -> dict[str, Any]:
    """A ticket_issued event as the engine writes it (about 330 bytes of JSON)."""
    n = seq % 900 + 1
    return {"type": "ticket_issued", "at": 1764036000.0 + seq, "day": "2026-11-25",
            "ticket": f"20261125-A{n:03d}", "number": f"A{n:03d}", "queue": "A", "n": n,
            "customer_type": "normal", "type_priority": 0, "stars": 0, "vip": None,
            "vip_name": None, "card": None, "channel": "kiosk", "kiosk": "kiosk",
            "appointment": None, "high_return": False, "ahead": 3, "waiting": 4,
            "seq": seq, "branch_hint": branch[-4:]}


def batch_lines(branch: str, total: int, size: int) -> list[bytes]:
    return [proto.encode(proto.events_batch(branch, "bench1", [event(s, branch) for s in
                                                               range(first, first + size)]))
            for first in range(1, total + 1, size)]


# --- 1. the broker's ceiling -------------------------------------------------------------------


def broker_ceiling(broker: LocalBroker, messages: int, size: int) -> dict[str, Any]:
    lines = batch_lines("9000000001", messages * size, size)[:messages]
    payload = Path(tempfile.mkstemp(suffix=".lines")[1])
    payload.write_bytes(b"\n".join(lines) + b"\n")
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(broker.port), "-t", "bench/#", "-q", "1",
                            "-C", str(messages), "-i", "bench-sub"],
                           stdout=subprocess.DEVNULL)
    time.sleep(0.5)  # the subscription must exist before the first message
    start = time.monotonic()
    with payload.open("rb") as f:
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", "bench/x", "-q", "1",
                        "-l", "-i", "bench-pub"], stdin=f, check=True)
    sub.wait(300)
    took = time.monotonic() - start
    payload.unlink()
    return {"messages": messages, "events_per_message": size,
            "bytes_per_message": len(lines[0]), "msgs_per_s": round(messages / took),
            "events_per_s": round(messages * size / took)}


# --- 2. ingest ---------------------------------------------------------------------------------


def start_centre(broker: LocalBroker, store_url: str, log: Path, group: str
                 ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PY, "-m", "central", "--set", f"broker.url={broker.url}", "--set",
         f"store.url={store_url}", "--set", "http.enabled=false", "--set",
         f"broker.group={group}", "--log-level", "INFO"],
        cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_subscribed(log: Path, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count("subscribed on") >= n:
            return
        time.sleep(0.1)
    raise RuntimeError(f"centre did not subscribe; see {log}")


def ingest(broker: LocalBroker, store_url: str, consumers: int, events: int, work: Path,
           branches: int = 20, size: int = 200) -> dict[str, Any]:
    open_store(store_url).close()  # migrate before the clock starts
    log = work / f"centre-{secrets.token_hex(3)}.log"
    group = f"bench{secrets.token_hex(3)}"
    procs = [start_centre(broker, store_url, log, group) for _ in range(consumers)]
    try:
        wait_subscribed(log, consumers)
        per_branch = events // branches
        files = []
        for i in range(branches):
            f = work / f"b{i}.lines"
            f.write_bytes(b"\n".join(batch_lines(str(9_100_000_000 + i), per_branch, size))
                          + b"\n")
            files.append(f)
        start = time.monotonic()
        pubs = [subprocess.Popen(["mosquitto_pub", "-p", str(broker.port), "-t",
                                  f"qms/v1/{9_100_000_000 + i}/events", "-q", "1", "-l"],
                                 stdin=files[i].open("rb")) for i in range(branches)]
        for p in pubs:
            p.wait(600)
        published = time.monotonic() - start
        store = open_store(store_url)
        try:
            while store.count_events() < per_branch * branches:
                if time.monotonic() - start > 900:
                    raise RuntimeError("ingest did not finish in 15 minutes")
                time.sleep(0.05)
            done = time.monotonic() - start  # from the first publish to the last row stored
            marks = [m.contiguous for m in store.marks()]
        finally:
            store.close()
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
    assert marks == [per_branch] * branches, "every branch contiguous to its last event"
    total = per_branch * branches
    # Wall time from the first publish to the last committed row, so commit time counts
    # (the rows' stored_at is when their transaction began, which flattered the rate).
    return {"consumers": consumers, "events": total, "publish_s": round(published, 1),
            "ingest_s": round(done, 1), "events_per_s": round(total / max(done, 1e-6))}


# --- 3. end to end -----------------------------------------------------------------------------


def fleet_latency(broker: LocalBroker, store_url: str, branches: int, rate: float,
                  duration: float, consumers: int, fleet_procs: int, work: Path
                  ) -> dict[str, Any]:
    open_store(store_url).close()
    log = work / "centre-fleet.log"
    procs = [start_centre(broker, store_url, log, "fleet") for _ in range(consumers)]
    try:
        wait_subscribed(log, consumers)
        before = [_cpu_s(p.pid) for p in procs] + [_cpu_s(broker_pid(broker))]
        out = subprocess.run([PY, "-m", "sim", "fleet", "--branches", str(branches),
                              "--broker", broker.url, "--rate", str(rate), "--duration",
                              str(duration), "--drain", "120", "--procs", str(fleet_procs)],
                             cwd=ROOT, capture_output=True,
                             text=True, timeout=duration + 900)
        if out.returncode not in (0, 1):
            raise RuntimeError(out.stderr[-2000:])
        fleet = json.loads(out.stdout.strip().splitlines()[-1])
        after = [_cpu_s(p.pid) for p in procs] + [_cpu_s(broker_pid(broker))]
        fleet["centre_cpu_s"] = round(sum(after[:-1]) - sum(before[:-1]), 1)
        fleet["broker_cpu_s"] = round(after[-1] - before[-1], 1)
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
    store = open_store(store_url)
    try:
        fleet["dead_letters"] = store.dead_letter_counts()
        rows = [(d, at) for d, at, etype in store.execute(
            "SELECT stored_at - at, at, type FROM events ORDER BY at").fetchall()
            if etype.startswith("ticket_")]
    finally:
        store.close()
    lat = sorted(float(d) for d, _ in rows)
    start = float(rows[0][1]) if rows else 0.0
    span = float(rows[-1][1]) - start if rows else 1.0
    windows: dict[int, list[float]] = {}
    for d, at in rows:  # p99 per 10 s of traffic: is the tail one moment or everywhere?
        windows.setdefault(int((float(at) - start) // 10), []).append(float(d))
    return {**fleet, "measured_events": len(lat), "events_per_s": round(len(lat) / span, 1),
            "p50_ms": round(_pct(lat, 50) * 1000), "p99_ms": round(_pct(lat, 99) * 1000),
            "max_ms": round(lat[-1] * 1000) if lat else None,
            "mean_ms": round(statistics.fmean(lat) * 1000) if lat else None,
            "p99_ms_per_10s": [round(_pct(sorted(v), 99) * 1000) for _, v in
                               sorted(windows.items())]}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid(broker: LocalBroker) -> int:
    assert broker.process is not None
    return broker.process.pid


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


# --- the run -----------------------------------------------------------------------------------


def pg_schema_url(base: str) -> tuple[str, str]:
    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--branches", type=int, default=2000)
    p.add_argument("--rate", type=float, default=120.0, help="tickets/hour per branch")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of fleet traffic")
    p.add_argument("--events", type=int, default=200_000, help="events per ingest run")
    p.add_argument("--fleet-consumers", type=int, default=1)
    p.add_argument("--fleet-procs", type=int, default=2, help="processes simulating branches")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--skip", default="", help="comma list of: ceiling,ingest,fleet")
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    raise_file_limit()
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} cores, {sys.platform}",
                               "load_average_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-uplink-") as tmp:
        work = Path(tmp)
        broker = LocalBroker(work / "broker", anonymous=True)
        broker.start()
        schemas: list[str] = []
        try:
            if "ceiling" not in skip:
                results["broker_ceiling"] = [broker_ceiling(broker, 2000, 200),
                                             broker_ceiling(broker, 50_000, 1)]
                print(json.dumps(results["broker_ceiling"]), flush=True)
            if "ingest" not in skip:
                results["ingest"] = {}
                for store in ("sqlite", "postgres"):
                    for n in (1, 2):
                        if store == "sqlite":
                            url = f"sqlite:///{work / f'ingest-{n}.sqlite3'}"
                        else:
                            url, schema = pg_schema_url(args.pg)
                            schemas.append(schema)
                        r = ingest(broker, url, n, args.events, work)
                        results["ingest"][f"{store}_{n}"] = r
                        print(store, json.dumps(r), flush=True)
                    one = results["ingest"][f"{store}_1"]["events_per_s"]
                    two = results["ingest"][f"{store}_2"]["events_per_s"]
                    results["ingest"][f"{store}_ratio"] = round(two / one, 2)
            if "fleet" not in skip:
                url, schema = pg_schema_url(args.pg)
                schemas.append(schema)
                results["fleet"] = fleet_latency(broker, url, args.branches, args.rate,
                                                 args.duration, args.fleet_consumers,
                                                 args.fleet_procs, work)
                print("fleet", json.dumps(results["fleet"]), flush=True)
        finally:
            broker.kill()
            for schema in schemas:
                drop_schema(args.pg, schema)
    results["load_average_at_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
