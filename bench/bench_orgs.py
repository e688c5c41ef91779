"""The org tree a page at a time at 10,000 branches (docs/performance.md, "/api/orgs").

    python bench/bench_orgs.py [--branches 10000] [--rounds 40] [--old DIR]
                               [--pg postgresql://postgres@127.0.0.1:5432/test]

A database of its own in the local PostgreSQL (``bench_orgs``, dropped after) holds the
tree of bench/bench_scale.py (province ``1001`` → 20 cities → the branches), every branch
also in ``branches`` (each has reported), and a private Mosquitto. One centre
(``python -m central``) runs from this tree and, with ``--old DIR`` (a checkout of an
earlier commit, e.g. ``git archive 15c7d1e | tar -x -C DIR``), a second one from there on
the same database: the *before*. Each round asks, one after the other on the same
machine and load, what the pages load:

* before: ``GET /api/orgs`` — the whole tree, what every page loaded;
* after: the dashboard tree opening (the user's roots, the province's 20 cities with their
  counts, one city's first 200 branches), a picker's search (a code's first digits, part
  of a name), the names of 50 branches on screen, and ``/api/orgs``' first page (1000).

Prints per route p50/p99/max in ms and the answer's size, the machine line with its load
average. Exit 1 when a request failed.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

import bench.bench_scale as scale  # noqa: E402
from bench.checks import Checks, machine_line  # noqa: E402
from central.broker import LocalBroker  # noqa: E402
from central.store import open_store  # noqa: E402
from sim.swarm import branch_codes  # noqa: E402

BEFORE = {"before: /api/orgs (the whole tree)": "/api/orgs"}
AFTER = {
    "tree: roots": "/api/orgs/children",
    "tree: the province's cities": f"/api/orgs/children?parent={scale.PROVINCE}",
    "tree: a city's first 200": f"/api/orgs/children?parent={scale.PROVINCE}01",
    "picker: code digits": f"/api/orgs/search?q={scale.PROVINCE}0500",
    "picker: part of a name": "/api/orgs/search?q=网点0250",
    "names: 50 codes": "/api/orgs/names?codes=",
    "/api/orgs: first page (1000)": "/api/orgs",
}


def reported(url: str, codes: list[str]) -> None:
    """Every branch in ``branches``: each has reported, as at a running province."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO branches (branch, first_seen) VALUES (%s, %s)",
                        [(c, time.time()) for c in codes])


def timed(client: httpx.Client, path: str) -> tuple[float, int] | None:
    started = time.perf_counter()
    try:
        r = client.get(path)
    except httpx.HTTPError:
        return None
    took = (time.perf_counter() - started) * 1000
    return (took, len(r.content)) if r.status_code == 200 else None


def measure(sides: dict[str, tuple[str, dict[str, str]]], token: str, rounds: int,
            checks: Checks) -> list[tuple[str, list[float], int]]:
    """Each route of each side once a round, the sides interleaved."""
    ms: dict[str, list[float]] = {}
    size: dict[str, int] = {}
    failed = 0
    headers = {"Authorization": f"Bearer {token}"}
    clients = {url: httpx.Client(base_url=url, headers=headers, timeout=120)
               for url, _ in sides.values()}
    try:
        for _ in range(rounds):
            for url, routes in sides.values():
                for label, path in routes.items():
                    got = timed(clients[url], path)
                    if got is None:
                        failed += 1
                        continue
                    ms.setdefault(label, []).append(got[0])
                    size[label] = got[1]
    finally:
        for c in clients.values():
            c.close()
    checks.failed(failed, "org requests")
    return [(label, ms[label], size[label]) for label in ms]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--branches", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--old", type=Path, help="a checkout of the commit to compare with")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = p.parse_args()
    codes = branch_codes(args.branches)
    AFTER["names: 50 codes"] += ",".join(codes[::max(1, len(codes) // 50)][:50])
    checks = Checks("bench_orgs")
    url = scale.make_database(args.pg, "bench_orgs")
    centres: list[scale.Centre] = []
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalBroker(Path(tmp) / "broker")
        try:
            open_store(url).close()  # migrated before anything starts
            scale.seed_tree(url, codes)
            reported(url, codes)
            scale.broker_users(broker, [], secrets.token_hex(8))
            broker.start()
            centres.append(scale.Centre(Path(tmp), broker, url, 0, 1.0))
            centres[0].wait_http()
            token = scale.login(centres[0].url)
            sides = {"after": (centres[0].url, AFTER)}
            if args.old:  # one store, one customers' secret (data/customers.key)
                (args.old / "data").mkdir(exist_ok=True)
                shutil.copy(ROOT / "data" / "customers.key", args.old / "data")
                centres.append(scale.Centre(Path(tmp), broker, url, 1, 1.0, source=args.old))
                centres[1].wait_http()
                sides = {"before": (centres[1].url, BEFORE), **sides}
            rows = measure(sides, token, args.rounds, checks)
        finally:
            for c in centres:
                c.stop()
            broker.stop()
            scale.drop_database(args.pg, "bench_orgs")
    print(f"{args.branches:,} branches, {args.rounds} rounds, sides interleaved")
    print(f"| {'route':<38} | p50 ms | p99 ms | max ms | answer |")
    for label, v, size in rows:
        p50, p99 = scale.pct(v, 50), scale.pct(v, 99)
        print(f"| {label:<38} | {p50:6.0f} | {p99:6.0f} | {max(v):6.0f} | "
              f"{size / 1024:7.1f} KB |")
    print(machine_line())
    return checks.verdict()


if __name__ == "__main__":
    sys.exit(main())
