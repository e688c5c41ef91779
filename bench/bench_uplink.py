"""Uplink and centre benchmark: prints figures (docs/performance.md, "Uplink and centre").

    python bench/bench_uplink.py [--branches 2000] [--rate 120] [--duration 60]
                                 [--events 200000] [--pg postgresql://postgres@127.0.0.1/test]

In one run, against a private Mosquitto (anonymous, the shipped settings otherwise):

1. the broker's own ceiling: ``mosquitto_pub -l`` → ``mosquitto_sub``, QoS 1, messages the
   size of an events batch, and of a one-event batch;
2. ingest: pre-encoded batches of 200 events for 20 branches published as fast as the
   broker takes them, one ``python -m central`` consumer and then two in a shared group,
   on SQLite and on PostgreSQL: events committed per second (first to last commit). Two
   streams (``--mixes``): **day**, the headline — real branch-days one after another,
   every event the engine writes (issued, called, recalled, transferred, no-show,
   finished, rated, logins, the day's opening and closing…) in the proportions the
   simulator's default day of examples/branch.toml gives, each ticket its own id
   (queueing.simulate_day, the box's engine, ``ahead`` counted as a box does); and
   **issued**, the old stream kept as a secondary figure — every event ``ticket_issued``,
   ids reused every 900 tickets;
3. end to end: ``python -m sim fleet`` with N branches at a busy-hour rate against the
   centre on PostgreSQL; latency = the centre's commit time − the event's time at the
   branch (the engine stamps it just before the journal commit), p50 / p99. The fleet's
   journals are on ``/dev/shm`` (tmpfs: the branch side pays no fsync) and the figure
   says so; ``--disk-sample N`` (default 20) of the branches journal on a real disk
   instead, and their latency is printed beside the others'.

Exits 1 (bench/checks.py) when an event is missing or stored twice, a branch's ticket is
refused, or the fleet does not drain.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
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

from bench.checks import Checks, machine_line  # noqa: E402
from central.broker import LocalBroker  # noqa: E402
from central.store import open_store  # noqa: E402
from protocols import uplink as proto  # noqa: E402
from sim.fleet import raise_file_limit  # noqa: E402

PY = sys.executable
MIXES = {"day": "branch-day mix (real days, distinct ids)",
         "issued": "all ticket_issued, reused ids (old stream)"}


def event(seq: int, branch: str) -> dict[str, Any]:
    """A ticket_issued event as the engine writes it (about 330 bytes of JSON)."""
    n = seq % 900 + 1
    return {"type": "ticket_issued", "at": 1764036000.0 + seq, "day": "2026-11-25",
            "ticket": f"20261125-A{n:03d}", "number": f"A{n:03d}", "queue": "A", "n": n,
            "customer_type": "normal", "type_priority": 0, "stars": 0, "vip": None,
            "vip_name": None, "card": None, "channel": "kiosk", "kiosk": "kiosk",
            "appointment": None, "high_return": False, "ahead": 3, "waiting": 4,
            "seq": seq, "branch_hint": branch[-4:]}


@functools.lru_cache(maxsize=64)
def branch_day(k: int) -> tuple[dict[str, Any], ...]:
    """Day ``k`` (from 2026-11-02) of the example branch, every event its engine writes:
    the simulator's default day (about 390 customers, 1,450 events), ``ahead`` counted."""
    from controller.config import load_config
    from queueing.day import simulate_day
    from queueing.scenario import default_scenario

    cfg = load_config(ROOT / "examples" / "branch.toml")
    day = dt.date(2026, 11, 2) + dt.timedelta(days=k)
    run = simulate_day(cfg, default_scenario(cfg, day), seed=k + 1, count_ahead=True)
    return tuple(run.events)


def day_events(total: int) -> list[dict[str, Any]]:
    """A branch's first ``total`` events over consecutive days, seq 1…total."""
    out: list[dict[str, Any]] = []
    k = 0
    while len(out) < total:
        out += branch_day(k)
        k += 1
    return [{**e, "seq": i} for i, e in enumerate(out[:total], 1)]


def mix_counts(total: int) -> dict[str, int]:
    """How many of each event type ``day_events(total)`` holds (printed with the figure)."""
    counts: dict[str, int] = {}
    for e in day_events(total):
        counts[e["type"]] = counts.get(e["type"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def batch_lines(branch: str, total: int, size: int, mix: str = "issued") -> list[bytes]:
    events = (day_events(total) if mix == "day"
              else [event(s, branch) for s in range(1, total + 1)])
    return [proto.encode(proto.events_batch(branch, "bench1", events[first:first + size]))
            for first in range(0, total, size)]


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
           checks: Checks, mix: str = "day", branches: int = 20, size: int = 200
           ) -> dict[str, Any]:
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
            f.write_bytes(b"\n".join(batch_lines(str(9_100_000_000 + i), per_branch, size,
                                                  mix)) + b"\n")
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
                    break  # counted as not drained below
                time.sleep(0.05)
            done = time.monotonic() - start  # from the first publish to the last row stored
            marks = [m.contiguous for m in store.marks()]
            keys = store.execute("SELECT branch, seq FROM events").fetchall()
            dead = store.dead_letter_counts()
        finally:
            store.close()
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
    total = per_branch * branches
    label = f"{mix} ingest, {consumers} consumer(s)"
    checks.drained(total, len(keys), f"events stored ({label})")
    checks.unique([tuple(k) for k in keys], f"stored (branch, seq) ({label})")
    checks.true(marks == [per_branch] * branches,
                f"{label}: a branch is not contiguous to its last event: {marks}")
    checks.true(not dead, f"{label}: dead letters {dead}")
    # Wall time from the first publish to the last committed row, so commit time counts
    # (the rows' stored_at is when their transaction began, which flattered the rate).
    return {"mix": MIXES[mix], "consumers": consumers, "events": total,
            "publish_s": round(published, 1),
            "ingest_s": round(done, 1), "events_per_s": round(total / max(done, 1e-6))}


# --- 3. end to end -----------------------------------------------------------------------------


def fleet_latency(broker: LocalBroker, store_url: str, branches: int, rate: float,
                  duration: float, consumers: int, fleet_procs: int, work: Path,
                  checks: Checks, disk_sample: int = 0) -> dict[str, Any]:
    open_store(store_url).close()
    log = work / "centre-fleet.log"
    procs = [start_centre(broker, store_url, log, "fleet") for _ in range(consumers)]
    try:
        wait_subscribed(log, consumers)
        before = [_cpu_s(p.pid) for p in procs] + [_cpu_s(broker_pid(broker))]
        out = subprocess.run([PY, "-m", "sim", "fleet", "--branches", str(branches),
                              "--broker", broker.url, "--rate", str(rate), "--duration",
                              str(duration), "--drain", "120", "--procs", str(fleet_procs),
                              "--disk-sample", str(disk_sample)],
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
        everything = store.execute(
            "SELECT stored_at - at, at, type, branch, seq FROM events ORDER BY at").fetchall()
    finally:
        store.close()
    checks.fleet(fleet)
    checks.drained(int(fleet["events"]), len(everything), "fleet events stored")
    checks.unique([(b, q) for *_, b, q in everything], "stored (branch, seq) of the fleet")
    checks.true(not fleet["dead_letters"], f"fleet: dead letters {fleet['dead_letters']}")
    on_disk = set(fleet.get("disk_branches") or [])
    rows = [(d, at) for d, at, etype, b, _ in everything
            if etype.startswith("ticket_") and b not in on_disk]
    disk = sorted(float(d) for d, _, etype, b, _ in everything
                  if etype.startswith("ticket_") and b in on_disk)
    lat = sorted(float(d) for d, _ in rows)
    start = float(rows[0][1]) if rows else 0.0
    span = float(rows[-1][1]) - start if rows else 1.0
    windows: dict[int, list[float]] = {}
    for d, at in rows:  # p99 per 10 s of traffic: is the tail one moment or everywhere?
        windows.setdefault(int((float(at) - start) // 10), []).append(float(d))
    figure = f"branch side: {fleet.get('journals')}"
    sample = ({"figure": f"branch side: {fleet.get('disk_journals')}",
               "branches": len(on_disk), "measured_events": len(disk),
               "p50_ms": _ms(disk, 50), "p99_ms": _ms(disk, 99),
               "max_ms": round(disk[-1] * 1000) if disk else None} if on_disk else None)
    return {**fleet, "figure": figure, "disk_sample": sample,
            "measured_events": len(lat), "events_per_s": round(len(lat) / span, 1),
            "p50_ms": _ms(lat, 50), "p99_ms": _ms(lat, 99),
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


def _ms(values: list[float], p: float) -> int | None:
    """Percentile ``p`` of ``values`` (seconds) in whole ms; None when nothing was measured."""
    return round(_pct(values, p) * 1000) if values else None


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
    p.add_argument("--mixes", default="day,issued",
                   help="ingest streams, headline first: day (real branch-days), issued (old)")
    p.add_argument("--stores", default="sqlite,postgres", help="ingest stores")
    p.add_argument("--disk-sample", type=int, default=20,
                   help="fleet branches journaling on a real disk (the rest on tmpfs)")
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    mixes = [m for m in args.mixes.split(",") if m]
    unknown = set(mixes) - set(MIXES)
    if unknown:
        p.error(f"unknown --mixes {sorted(unknown)}: choose from {sorted(MIXES)}")
    raise_file_limit()
    checks = Checks("bench_uplink")
    print(machine_line(), flush=True)
    results: dict[str, Any] = {"machine": machine_line(),
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
                if "day" in mixes:
                    results["ingest"]["day_mix"] = mix_counts(args.events // 20)
                    print("branch-day mix per branch:", json.dumps(results["ingest"]["day_mix"]),
                          flush=True)
                for store in filter(None, args.stores.split(",")):
                    for n in (1, 2):
                        for mix in mixes:  # alternately, so both meet the same machine
                            if store == "sqlite":
                                url = f"sqlite:///{work / f'ingest-{mix}-{n}.sqlite3'}"
                            else:
                                url, schema = pg_schema_url(args.pg)
                                schemas.append(schema)
                            r = ingest(broker, url, n, args.events, work, checks, mix)
                            results["ingest"][f"{store}_{mix}_{n}"] = r
                            print(store, json.dumps(r, ensure_ascii=False), flush=True)
                    for mix in mixes:
                        one = results["ingest"][f"{store}_{mix}_1"]["events_per_s"]
                        two = results["ingest"][f"{store}_{mix}_2"]["events_per_s"]
                        results["ingest"][f"{store}_{mix}_ratio"] = round(two / one, 2)
                    if len(mixes) == 2:  # the headline against the old stream, same run
                        day = results["ingest"][f"{store}_day_1"]["events_per_s"]
                        old = results["ingest"][f"{store}_issued_1"]["events_per_s"]
                        results["ingest"][f"{store}_day_vs_issued"] = round(day / old, 2)
            if "fleet" not in skip:
                url, schema = pg_schema_url(args.pg)
                schemas.append(schema)
                results["fleet"] = fleet_latency(broker, url, args.branches, args.rate,
                                                 args.duration, args.fleet_consumers,
                                                 args.fleet_procs, work, checks,
                                                 min(args.disk_sample, args.branches))
                print("fleet", json.dumps(results["fleet"]), flush=True)
        finally:
            broker.kill()
            for schema in schemas:
                drop_schema(args.pg, schema)
    results["load_average_at_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2, ensure_ascii=False))
    summary(results)
    return checks.verdict()


def summary(results: dict[str, Any]) -> None:
    """The headline figures, each under its honest name."""
    print(f"\n{results['machine']}")
    for key, r in results.get("ingest", {}).items():
        if isinstance(r, dict) and "events_per_s" in r:
            print(f"ingest {key.split('_')[0]}, {r['consumers']} consumer(s), {r['mix']}: "
                  f"{r['events_per_s']:,} events/s")
    for key, ratio in results.get("ingest", {}).items():
        if key.endswith("_day_vs_issued"):
            print(f"ingest {key.split('_')[0]}, 1 consumer: branch-day mix / old stream = "
                  f"{ratio:.2f} (same run)")
    fleet = results.get("fleet")
    if fleet:
        print(f"end to end, {fleet['branches']} branches ({fleet['figure']}): "
              f"p50 {fleet['p50_ms']} ms, p99 {fleet['p99_ms']} ms")
        sample = fleet.get("disk_sample")
        if sample:
            print(f"end to end, {sample['branches']} of them ({sample['figure']}): "
                  f"p50 {sample['p50_ms']} ms, p99 {sample['p99_ms']} ms "
                  f"({sample['measured_events']} events)")


if __name__ == "__main__":
    sys.exit(main())
