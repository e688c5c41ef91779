"""10,000 branches into the centre: figures and how they grow (docs/performance.md,
"10,000 branches").

    python bench/bench_scale.py [--steps 1000,2000,5000,10000] [--duration 30]
                                [--rate 0.12] [--instances 2] [--swarm-procs 0]
                                [--pg postgresql://postgres@127.0.0.1:5432/test]

For each step, from scratch:

1. a database of its own in the local PostgreSQL (``bench_scale_{n}``, dropped after), so
   that ``pg_stat_database`` counts this step's work alone; the org tree written into it
   (province ``1001`` → 20 cities → the branches);
2. a private Mosquitto (``central.broker.LocalBroker``: the shipped configuration, password
   file and ACL): every branch its own user and password, the ``centre`` user for the
   consumers;
3. ``--instances`` full centres (``python -m central``: ingest in one shared group, web,
   live board, alerts on the first only), on that database;
4. ``python -m sim swarm`` (``--swarm-procs`` processes): every branch its own MQTT
   connection, its birth, its morning (day opened, tellers in), then ``--duration`` seconds
   of a real branch-day's events at ``--rate`` events per second per branch (a busy day's
   peak: 120 tickets an hour, ~3.7 events a ticket ≈ 0.12/s), each with a live snapshot;
5. meanwhile the dashboard API of the first centre (``GET /api/live?org={city}``, a page
   of branches) is asked every ``--poll`` seconds: a ticket is *visible* when its branch's
   ``issued`` reaches it; end to end = that moment − the ticket's ``at`` (the box's commit
   time, stamped by the swarm as it sends).

Prints per step: ingest events/s, commit latency (``stored_at − at``, every event of the
traffic) and dashboard latency p50/p99, broker CPU and RSS, centres' CPU, the database's
transactions and tuples per second; then a table of how each grows. Exit 1 when an event
is lost (the store, a mark or an ack short of what a branch sent), doubled (the
dashboard's or the day reports' ``issued`` above what was sent), dead-lettered, or the
run does not drain.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from central.broker import MOSQUITTO_PASSWD, LocalBroker, free_port  # noqa: E402
from central.store import open_store  # noqa: E402
from sim.fleet import raise_file_limit  # noqa: E402
from sim.swarm import branch_codes, branch_password  # noqa: E402

PY = sys.executable
PROVINCE, CITIES = "1001", 20
ADMIN_PW = "admin-pw-for-bench"
METRICS_TOKEN = "bench-scale-metrics-token"
INGEST_METRICS = ("paidui_centre_messages_total", "paidui_centre_commits_total",
                  "paidui_centre_events_ingested_total", "paidui_centre_events_duplicate_total",
                  "paidui_centre_ingest_dropped_total", "paidui_centre_ingest_line_messages")


# --- setting up one step -------------------------------------------------------------------


def make_database(base: str, name: str) -> str:
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    head, _, tail = base.rpartition("/")
    query = tail.partition("?")[2]
    return f"{head}/{name}" + (f"?{query}" if query else "")


def drop_database(base: str, name: str) -> None:
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def seed_tree(url: str, codes: list[str]) -> None:
    now = time.time()
    rows = [(PROVINCE, None, "省分行", "Province", "head", now, now)]
    rows += [(f"{PROVINCE}{c:02d}", PROVINCE, f"第{c}分行", f"City {c}", "city", now, now)
             for c in range(1, CITIES + 1)]
    rows += [(code, code[:6], f"网点{code[6:]}", f"Branch {code}", "branch", now, now)
             for code in codes]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO orgs (code, parent, name, name_en, kind, updated_at, "
                        "added_at) VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)


def broker_users(broker: LocalBroker, codes: list[str], secret: str) -> None:
    """Every branch its user and password, and ``centre``: written in clear, then hashed
    in place by ``mosquitto_passwd -U`` (one process for 10,000 users)."""
    assert broker.files is not None
    lines = [f"{code}:{branch_password(secret, code)}" for code in codes]
    lines.append("centre:centre-pw")
    broker.files.passwd.write_text("\n".join(lines) + "\n")
    subprocess.run([MOSQUITTO_PASSWD, "-U", str(broker.files.passwd)], check=True)


class Centre:
    def __init__(self, work: Path, broker: LocalBroker, store_url: str, index: int,
                 live_poll_s: float, source: Path = ROOT, extra: list[str] | None = None
                 ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = work / f"centre-{index}.log"
        sets = [f"broker.url={broker.url}", "broker.username=centre",
                "broker.password=centre-pw", f"store.url={store_url}",
                f"http.port={self.port}", "broker.group=scale",
                f"web.live.poll_s={live_poll_s}", f"web.live.push_s={live_poll_s}",
                "ingest.live_flush_s=0.5", f'web.metrics_token="{METRICS_TOKEN}"',
                *(extra or [])]
        if index == 0:
            sets.append(f'web.admin.password="{ADMIN_PW}"')
        else:  # one alert desk (docs/deploy.md)
            sets.append("alerts.enabled=false")
        cmd = [PY, "-m", "central", "--log-level", "WARNING"]
        for s in sets:
            cmd += ["--set", s]
        self.proc = subprocess.Popen(cmd, cwd=source, stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_http(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"a centre exited; see {self.log}")
            try:
                httpx.get(self.url + "/api/public/branches", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)  # polling a port that is not open yet
        raise RuntimeError(f"a centre did not answer in {timeout}s; see {self.log}")

    def ingest_counters(self) -> dict[str, float]:
        """This centre's ingest counters from ``/metrics`` (summed over their labels)."""
        got: dict[str, float] = {}
        try:
            text = httpx.get(self.url + "/metrics", timeout=10, headers={
                "Authorization": f"Bearer {METRICS_TOKEN}"}).text
        except httpx.HTTPError:
            return got
        for line in text.splitlines():
            series, _, value = line.rpartition(" ")  # name{labels} value
            if series.partition("{")[0] in INGEST_METRICS:
                key = series.removeprefix("paidui_centre_")
                got[key] = got.get(key, 0.0) + float(value)
        return got

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def profile_centres(folder: Path | None, n: int, pids: list[int], seconds: float
                    ) -> list[subprocess.Popen[bytes]]:
    """``--profile``: py-spy samples every centre through the traffic window, the thread
    holding the GIL only (where its Python time goes, thread by thread); collapsed
    stacks in ``folder/centre-{i}-{n}.txt`` (``py-spy record --format raw``)."""
    if folder is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    spy = Path(PY).with_name("py-spy")
    return [subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration",
                              str(max(1, int(seconds))), "--rate", "200", "--format", "raw",
                              "--threads", "--gil", "--output",
                              str(folder / f"centre-{i}-{n}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i, pid in enumerate(pids)]


def login(url: str) -> str:
    for _ in range(50):
        r = httpx.post(url + "/api/auth/login", json={"user": "admin", "password": ADMIN_PW},
                       timeout=10)
        if r.status_code == 200:
            return str(r.json()["token"])
        time.sleep(0.2)  # the first administrator is being seeded
    raise RuntimeError(f"login failed: {r.status_code} {r.text[:200]}")


# --- measuring -----------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


DB_COUNTERS = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted",
               "tup_fetched", "tup_returned", "blks_read", "blks_hit")


def db_counters(base: str, name: str) -> dict[str, int]:
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(f"SELECT {', '.join(DB_COUNTERS)} FROM pg_stat_database "
                           "WHERE datname = %s", (name,)).fetchone()
    assert row is not None
    return dict(zip(DB_COUNTERS, (int(v) for v in row), strict=True))


class DashboardWatch(threading.Thread):
    """Asks the dashboard API for a page of branches every ``poll`` s; records when each
    branch's ``issued`` first reached each count."""

    def __init__(self, url: str, token: str, orgs: list[str], limit: int, poll: float) -> None:
        super().__init__(daemon=True)
        self.url, self.orgs, self.limit, self.poll = url, orgs, limit, poll
        self.headers = {"Authorization": f"Bearer {token}"}
        self.seen: dict[str, list[float]] = {}  # code → when issued reached 1, 2, …
        self.request_ms: list[float] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=30) as c:
            while not self.stop.is_set():
                for org in self.orgs:
                    started = time.time()
                    try:
                        r = c.get("/api/live", params={"org": org, "limit": self.limit})
                    except httpx.HTTPError:
                        self.failures += 1
                        continue
                    took = time.time()
                    self.request_ms.append((took - started) * 1000)
                    if r.status_code != 200:
                        self.failures += 1
                        continue
                    for child in r.json()["children"]:
                        times = self.seen.setdefault(child["code"], [])
                        while len(times) < int(child.get("issued") or 0):
                            times.append(started)  # visible by the time it was asked
                self.stop.wait(self.poll)


class PageTimer(threading.Thread):
    """What a head-office user's pages ask while the traffic runs: the province and a
    city on the dashboard (a page of children), the province's charts, the org tree, the
    branches list (a page); each timed, with its size."""

    PAGES = ("/api/live?org={p}", "/api/live?org={c}", "/api/live/charts?org={p}",
             "/api/orgs", "/api/branches?limit=200")

    def __init__(self, url: str, token: str, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.headers = {"Authorization": f"Bearer {token}"}
        self.ms: dict[str, list[float]] = {}
        self.size: dict[str, int] = {}
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=60) as c:
            while not self.stop.is_set():
                for page in self.PAGES:
                    path = page.format(p=PROVINCE, c=f"{PROVINCE}01")
                    started = time.perf_counter()
                    try:
                        r = c.get(path)
                    except httpx.HTTPError:
                        self.failures += 1
                        continue
                    took = (time.perf_counter() - started) * 1000
                    if r.status_code != 200:
                        self.failures += 1
                        continue
                    self.ms.setdefault(page, []).append(took)
                    self.size[page] = len(r.content)
                self.stop.wait(self.every)

    def figures(self) -> dict[str, Any]:
        return {page.split("?")[0] + ("?org=city" if "{c}" in page else "?org=province"
                                      if "{p}" in page else "?" + page.partition("?")[2]):
                {"p50_ms": round(pct(v, 50)), "p99_ms": round(pct(v, 99)),
                 "max_ms": round(max(v)), "kb": round(self.size.get(page, 0) / 1024)}
                for page, v in self.ms.items()}


def board_ready(url: str, token: str, windows: int, timeout: float = 600) -> float:
    """Wait until the dashboard shows every branch's morning (its tellers' windows open):
    the board has loaded every branch's day, as it has in a centre that has been running.
    Returns how long that took."""
    started = time.monotonic()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as c:
        while time.monotonic() - started < timeout:
            r = c.get("/api/live", params={"org": PROVINCE, "limit": 1})
            if r.status_code == 200 and r.json()["totals"]["windows_open"] >= windows:
                return round(time.monotonic() - started, 1)
            time.sleep(0.5)  # the board loads 100 branches' days per poll
    raise RuntimeError(f"the dashboard did not show {windows} windows open in {timeout}s")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100 * (len(v) - 1))))]


# --- one step ------------------------------------------------------------------------------


def step(args: argparse.Namespace, n: int, work: Path) -> dict[str, Any]:
    name = f"bench_scale_{n}"
    url = make_database(args.pg, name)
    try:
        return run_step(args, n, work, name, url)
    finally:
        drop_database(args.pg, name)


def run_step(args: argparse.Namespace, n: int, work: Path, name: str, url: str
             ) -> dict[str, Any]:
    codes = branch_codes(n, PROVINCE, CITIES)
    secret = secrets.token_hex(8)
    open_store(url).close()  # migrated before anything starts
    seed_tree(url, codes)
    broker = LocalBroker(work / f"broker-{n}")
    broker_users(broker, codes, secret)
    broker.start()
    centres: list[Centre] = []
    swarms: list[subprocess.Popen[str]] = []
    watch: DashboardWatch | None = None
    pages: PageTimer | None = None
    try:
        centres = [Centre(work, broker, url, i, args.live_poll, extra=args.set)
                   for i in range(args.instances)]
        for c in centres:
            c.wait_http()
        token = login(centres[0].url)
        city = f"{PROVINCE}01"
        sample = [c for c in codes if c.startswith(city)][:args.sample]
        procs = args.swarm_procs or (1 if n <= 2000 else 2)
        outs = [work / f"swarm-{n}-{k}.json" for k in range(procs)]
        t_connect = time.monotonic()
        for k in range(procs):
            swarms.append(subprocess.Popen(
                [PY, "-m", "sim", "swarm", "--broker", broker.url, "--branches", str(n),
                 "--part", f"{k}/{procs}", "--province", PROVINCE, "--cities", str(CITIES),
                 "--secret", secret, "--connect-per-s", str(args.connect_per_s / procs),
                 "--rate", str(args.rate), "--duration",
                 str(args.duration), "--drain", str(args.drain), "--keep-times",
                 ",".join(sample), "--wait-go", "--out", str(outs[k]), "--seed", str(k + 1)],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        ready = [json.loads(p.stdout.readline()) for p in swarms if p.stdout]
        connect_s = time.monotonic() - t_connect
        if not all(r.get("morning_drained") for r in ready):
            raise RuntimeError(f"the morning did not drain: {ready}")
        board_ready_s = board_ready(centres[0].url, token, sum(r["windows"] for r in ready))
        watch = DashboardWatch(centres[0].url, token, [city], args.sample, args.poll)
        watch.start()
        pages = PageTimer(centres[0].url, token)
        pages.start()
        bpid = broker.process.pid if broker.process else 0
        pids = [c.proc.pid for c in centres]
        cpu0 = {"broker": cpu_s(bpid), "centres": sum(cpu_s(p) for p in pids),
                "swarm": sum(cpu_s(p.pid) for p in swarms)}
        db0 = db_counters(args.pg, name)
        rss0 = rss_mb(bpid)
        t0 = time.time()
        for p in swarms:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        traffic_end = t0 + args.duration
        spies = profile_centres(args.profile, n, pids, args.duration)
        time.sleep(args.duration)  # the traffic runs in the swarm processes
        for spy in spies:
            spy.wait(60)
        ingest_at_end = [c.ingest_counters() for c in centres]
        t1 = time.time()
        cpu1 = {"broker": cpu_s(bpid), "centres": sum(cpu_s(p) for p in pids),
                "swarm": sum(cpu_s(p.pid) for p in swarms)}
        db1 = db_counters(args.pg, name)
        rss1 = rss_mb(bpid)
        centre_rss = [round(rss_mb(p)) for p in pids]
        for p in swarms:
            p.communicate(timeout=args.drain + 120)
        results = [json.loads(o.read_text()) for o in outs]
        # the dashboard catches up with the last tickets, then the watch stops
        want = {code: r["per_branch"][code][1] for r in results for code in sample
                if code in r["per_branch"]}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
                len(watch.seen.get(c, [])) < k for c, k in want.items()):
            time.sleep(0.2)  # the watch thread polls the API
        watch.stop.set()
        watch.join(30)
        pages.stop.set()
        pages.join(60)
        ingest_drained = [c.ingest_counters() for c in centres]
    finally:
        if watch is not None:
            watch.stop.set()
        if pages is not None:
            pages.stop.set()
        for p in swarms:
            if p.poll() is None:
                p.kill()
                p.wait()
        for c in centres:
            c.stop()
        broker.kill()
    return {**measure(url, results, watch, n, t0, traffic_end, t1, cpu0, cpu1, db0, db1,
                      rss0, rss1, centre_rss, connect_s, want),
            "board_ready_s": board_ready_s,
            "ingest_at_traffic_end": ingest_at_end, "ingest_drained": ingest_drained,
            "pages": pages.figures() if pages else {},
            "page_failures": pages.failures if pages else 0}


def measure(url: str, results: list[dict[str, Any]], watch: DashboardWatch, n: int,
            t0: float, traffic_end: float, t1: float, cpu0: dict[str, float],
            cpu1: dict[str, float], db0: dict[str, int], db1: dict[str, int], rss0: float,
            rss1: float, centre_rss: list[int], connect_s: float,
            want: dict[str, int]) -> dict[str, Any]:
    span = t1 - t0
    sent = {code: seq for r in results for code, (seq, _) in r["per_branch"].items()}
    issued_sent = {code: iss for r in results for code, (_, iss) in r["per_branch"].items()}
    failures: list[str] = []
    store = open_store(url)
    try:
        stored = dict(store.execute("SELECT branch, count(*) FROM events GROUP BY branch"
                                    ).fetchall())
        marks = dict(store.execute("SELECT branch, max(contiguous) FROM marks GROUP BY branch"
                                   ).fetchall())
        rows = store.execute("SELECT stored_at - at FROM events WHERE at >= ? AND at <= ?",
                             (t0, traffic_end)).fetchall()
        in_window = store.execute("SELECT count(*) FROM events WHERE stored_at >= ? AND "
                                  "stored_at <= ?", (t0, traffic_end)).fetchone()[0]
        rpt_issued = dict(store.execute("SELECT branch, sum(issued) FROM rpt_day GROUP BY branch"
                                        ).fetchall())
        dead = store.dead_letter_counts()
    finally:
        store.close()
    lost = {c: (s, int(stored.get(c, 0)), int(marks.get(c, 0))) for c, s in sent.items()
            if int(stored.get(c, 0)) != s or int(marks.get(c, 0)) != s}
    if lost:
        failures.append(f"{len(lost)} branches short or long in the store, e.g. "
                        f"{list(lost.items())[:3]} (sent, stored, mark)")
    doubled = {c: (issued_sent[c], int(v)) for c, v in rpt_issued.items()
               if int(v) != issued_sent.get(c, 0)}
    if doubled:
        failures.append(f"{len(doubled)} branches' reported issued ≠ sent, e.g. "
                        f"{list(doubled.items())[:3]}")
    board_wrong = {c: (k, len(watch.seen.get(c, []))) for c, k in want.items()
                   if len(watch.seen.get(c, [])) != k}
    if board_wrong:
        failures.append(f"the dashboard's issued ≠ sent for {len(board_wrong)} branches, e.g. "
                        f"{list(board_wrong.items())[:3]}")
    if dead:
        failures.append(f"dead letters: {dead}")
    for r in results:
        if not r["drained"] or r["connect_failures"] or r["lost_connections"] or r["ack_errors"]:
            failures.append(f"swarm: drained {r['drained']}, connect failures "
                            f"{r['connect_failures']}, lost connections "
                            f"{r['lost_connections']}, ack errors {r['ack_errors']}")
    if watch.failures:
        failures.append(f"{watch.failures} dashboard requests failed")
    commit = [float(d) for (d,) in rows]
    visible: list[float] = []
    for r in results:
        for code, times in r["issued_at"].items():
            seen = watch.seen.get(code, [])
            visible += [s - at for at, s in zip(times, seen, strict=False)]
    traffic = sum(r["traffic_events"] for r in results)
    db = {k: round((db1[k] - db0[k]) / span) for k in DB_COUNTERS}
    return {
        "branches": n, "connect_s": round(connect_s, 1),
        "traffic_events": traffic, "offered_events_per_s": round(traffic / span),
        "ingest_events_per_s": round(in_window / (traffic_end - t0)),
        "commit_p50_ms": round(pct(commit, 50) * 1000),
        "commit_p99_ms": round(pct(commit, 99) * 1000),
        "dashboard_samples": len(visible),
        "dashboard_p50_ms": round(pct(visible, 50) * 1000),
        "dashboard_p99_ms": round(pct(visible, 99) * 1000),
        "dashboard_max_ms": round(max(visible) * 1000) if visible else None,
        "api_p50_ms": round(pct(watch.request_ms, 50)),
        "api_p99_ms": round(pct(watch.request_ms, 99)),
        "broker_cpu_pct": round(100 * (cpu1["broker"] - cpu0["broker"]) / span),
        "broker_rss_mb": round(rss1), "broker_rss_growth_mb": round(rss1 - rss0),
        "centres_cpu_pct": round(100 * (cpu1["centres"] - cpu0["centres"]) / span),
        "centres_rss_mb": centre_rss,
        "swarm_cpu_pct": round(100 * (cpu1["swarm"] - cpu0["swarm"]) / span),
        "db_per_s": db,
        "retries": sum(r["retries"] for r in results),
        "load_average": round(os.getloadavg()[0], 1),
        "failures": failures,
    }


GROWTH = ("offered_events_per_s", "ingest_events_per_s", "commit_p50_ms", "commit_p99_ms",
          "dashboard_p50_ms", "dashboard_p99_ms", "api_p99_ms", "broker_cpu_pct",
          "broker_rss_mb", "centres_cpu_pct", "swarm_cpu_pct", "connect_s", "board_ready_s")


def table(rows: list[dict[str, Any]]) -> str:
    head = ["figure", *(f"{r['branches']:,}" for r in rows)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in GROWTH:
        lines.append("| " + " | ".join([key, *(str(r[key]) for r in rows)]) + " |")
    for key in ("xact_commit", "tup_inserted", "tup_updated", "tup_fetched"):
        lines.append("| " + " | ".join([f"db {key}/s", *(str(r["db_per_s"][key])
                                                          for r in rows)]) + " |")
    return "\n".join(lines)


def rollup_costs(sizes: list[int], changed: float = 0.03) -> list[dict[str, Any]]:
    """The live board's roll-up (CPU ms) at each size: from scratch, as every poll did
    before, and following the branches that changed (``changed`` of them: 300 of 10,000
    ≈ what a poll of 0.25 s sees at the peak)."""
    import random

    from central.live import Rollup, Tracked, _summary
    from central.orgs import Org

    out = []
    for n in sizes:
        codes = branch_codes(n, PROVINCE, CITIES)
        orgs = [Org(PROVINCE, None, "省", "Province", "head")]
        orgs += [Org(f"{PROVINCE}{c:02d}", PROVINCE, f"{c}", f"{c}", "city")
                 for c in range(1, CITIES + 1)]
        orgs += [Org(c, c[:6], c, c, "branch") for c in codes]
        rng = random.Random(1)
        base = _summary(Tracked(""))
        summaries = {c: {**base, "code": c, "online": True, "issued": rng.randint(0, 99),
                         "hourly": [rng.randint(0, 9) for _ in range(24)]} for c in codes}
        r = Rollup()
        t = time.process_time()
        r.update(summaries, orgs, set(summaries), 0.0)
        full = time.process_time() - t
        summaries = dict(summaries)
        moved = set(rng.sample(codes, max(1, int(n * changed))))
        for c in moved:
            summaries[c] = {**summaries[c], "issued": summaries[c]["issued"] + 1}
        t = time.process_time()
        r.update(summaries, orgs, moved, 1.0)
        out.append({"branches": n, "full_ms": round(full * 1000, 1),
                    "incremental_ms": round((time.process_time() - t) * 1000, 1),
                    "changed": len(moved)})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--steps", default="1000,2000,5000,10000")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of traffic a step")
    p.add_argument("--rate", type=float, default=0.12, help="events/s per branch")
    p.add_argument("--instances", type=int, default=2, help="centre processes")
    p.add_argument("--swarm-procs", type=int, default=0, help="0: 1 up to 2,000, else 2")
    p.add_argument("--poll", type=float, default=0.1, help="dashboard API polling, seconds")
    p.add_argument("--live-poll", type=float, default=0.25, help="the centres' web.live.poll_s")
    p.add_argument("--sample", type=int, default=50, help="branches the dashboard watch reads")
    p.add_argument("--drain", type=float, default=300.0, help="seconds for the acks")
    p.add_argument("--connect-per-s", type=float, default=250.0,
                   help="the swarm's connections (and mornings) per second, in all")
    p.add_argument("--profile", type=Path, default=None,
                   help="folder: py-spy samples each centre during the traffic (raw stacks)")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a centre setting, e.g. ingest.ack_qos=0 (repeatable)")
    args = p.parse_args()
    raise_file_limit()
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or ''} "
          f"{_cpu_model()}, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    sizes = [int(s) for s in args.steps.split(",")]
    try:
        costs = rollup_costs(sizes)
    except ImportError:  # an older tree (a before/after comparison): no incremental roll-up
        costs = []
    for c in costs:
        print(f"live board roll-up at {c['branches']:,} branches: from scratch "
              f"{c['full_ms']} ms CPU, following {c['changed']} changed {c['incremental_ms']} ms",
              flush=True)
    rows: list[dict[str, Any]] = []
    stopped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for n in sizes:
            try:
                r = step(args, n, Path(tmp))
            except RuntimeError as exc:  # e.g. the morning did not drain: the step failed
                print(f"FAIL: {n:,} branches: {exc}", flush=True)
                stopped.append(f"{n:,} branches: {exc}")
                break
            print(json.dumps(r), flush=True)
            rows.append(r)
    if rows:
        print(table(rows))
    for r in rows:
        print(f"pages at {r['branches']:,} branches (ms, during the traffic): "
              + json.dumps(r["pages"]))
    failed = [f for r in rows for f in r["failures"]] + stopped
    failed += [f"{r['page_failures']} page requests failed at {r['branches']}" for r in rows
               if r["page_failures"]]
    for f in failed:
        print("FAIL:", f)
    return 1 if failed else 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return ""


if __name__ == "__main__":
    sys.exit(main())
