"""The live dashboard at province scale: how long the centre's live board takes. Prints ms.

    python bench/bench_live.py [--branches 2000] [--tickets 150] [--store URL]

A store (SQLite in a temporary folder by default, or ``--store postgresql://…``) is filled
with ``--branches`` branches under a province → 20 cities → branches tree, each with one
business day of real engine events (``--tickets`` tickets issued, called and finished) and
its retained status/live/health rows. Then, on the real code paths of central/live.py:

* the first poll and the polls until every branch's day is loaded and folded (what a
  centre restart costs; the snapshots show from the first poll),
* an idle poll (nothing changed), a poll after 10 % of the branches got one more event,
* the roll-up of every node, one province view and its charts, one city view,
* the retained aggregate messages of every node.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks import Checks, machine_line
from central.config import load_centre_config
from central.live import LOADS_PER_POLL, LiveBoard, aggregate_message
from central.orgs import add_org
from central.service import Centre
from central.store import EventBatch, Inbound, open_store
from controller.config import load_config
from controller.engine import Engine
from controller.engine import commands as c
from controller.views import status_view

ROOT = Path(__file__).resolve().parent.parent
CITIES = 20
START = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def one_day(tickets: int) -> list[dict[str, Any]]:
    """A busy day of the example branch: tickets in four businesses, two windows."""
    cfg = load_config(ROOT / "examples" / "branch.toml")
    engine, now = Engine(cfg), START.timestamp()
    out: list[dict[str, Any]] = []
    out += engine.handle(c.Login(1, "t1", "1234"), now)
    out += engine.handle(c.Login(3, "t3", "1234"), now)
    for i in range(tickets):
        now += 20
        out += engine.handle(c.IssueTicket(queue="AABT"[i % 4]), now)
        if i % 3:
            out += engine.handle(c.CallNext(1 + 2 * (i % 2)), now + 5)
    for n, e in enumerate(out, 1):
        e["seq"] = n
    return out


def fill(url: str, branches: int, tickets: int) -> list[str]:
    cfg = load_config(ROOT / "examples" / "branch.toml")
    events = one_day(tickets)
    state_now = events[-1]["at"]
    store = open_store(url)
    add_org(store, "1001", "河南省分行", "head")
    codes = []
    for city in range(1, CITIES + 1):
        add_org(store, f"1001{city:02d}", f"城市{city}", "city")
    for i in range(branches):
        city = i % CITIES + 1
        code = f"1001{city:02d}{i // CITIES + 1:04d}"
        codes.append(code)
        add_org(store, code, f"网点{code}", "branch")
    engine = Engine(cfg)
    for e in events:
        engine.state.apply(e)
    view = status_view(engine.state, cfg, state_now)
    for start in range(0, branches, 100):
        chunk = codes[start:start + 100]
        store.ingest(Inbound(batches=[EventBatch(b, "e1", events) for b in chunk]))
        store.save_live(
            {b: {"online": True, "epoch": "e1", "last_seq": len(events), "version": "0.1",
                 "config_version": "x"} for b in chunk},
            {b: {"branch": b, "at": state_now, "status": view} for b in chunk},
            {b: {"branch": b, "at": state_now, "devices": [], "link": {"connected": True}}
             for b in chunk})
    store.close()
    return codes


def timed(fn: Any, n: int = 1) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def show(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    print(f"{name:<46} n={len(ms):<3} median {statistics.median(ms):9.1f}  "
          f"max {ms[-1]:9.1f} ms")


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--branches", type=int, default=2000)
    p.add_argument("--tickets", type=int, default=150)
    p.add_argument("--store", default=None)
    args = p.parse_args()
    checks = Checks("bench_live")
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"sqlite:///{tmp}/centre.sqlite3"
        t = time.perf_counter()
        codes = fill(url, args.branches, args.tickets)
        events = len(one_day(args.tickets))
        print(f"store: {url.split('@')[-1]}, {args.branches} branches × {events} events "
              f"({args.branches * events:,} events), filled in {time.perf_counter() - t:.1f} s")
        centre = Centre(load_centre_config(None, [f"store.url={url}"]))
        board = LiveBoard(centre, centre.config.web.live)
        try:
            show(f"first poll (snapshots; {LOADS_PER_POLL} branches' days)",
                 timed(board._poll))
            t, polls = time.perf_counter(), 1
            while any(tr.epoch is None for tr in board._tracked.values()):
                board._poll()
                polls += 1
            show(f"... until every day is folded ({polls} polls)",
                 [time.perf_counter() - t])
            show("idle poll", timed(board._poll, 10))
            store = open_store(url)
            extra = {**next(e for e in one_day(1) if e["type"] == "ticket_issued"),
                     "at": START.timestamp() + 7200, "ticket": "x", "number": "A999", "n": 999}
            touched = codes[:: 10]
            store.ingest(Inbound(batches=[EventBatch(b, "e1", [{**extra, "seq": events + 1}])
                                          for b in touched]))
            store.close()
            show(f"poll after {len(touched)} branches changed", timed(board._poll))
            changed, summaries, orgs = board._poll()
            board._publish(changed, summaries, orgs, board._rollup(summaries, orgs))
            show("roll-up of every node", timed(lambda: board._rollup(summaries, orgs), 5))
            show("province view (20 cities)", timed(lambda: board.view("1001", "1001"), 5))
            show("province charts", timed(lambda: board.charts("1001"), 5))
            show("city view (100 branches)", timed(lambda: board.view("100101", "1001"), 5))
            now = time.time()
            show("aggregate messages of every node", timed(lambda: [
                aggregate_message(o.code, o.name, board.totals[o.code], now, 150, 0)
                for o in orgs], 3))
            issued = board.view('1001', '1001')['totals']['issued']
            print(f"province: {issued:,} tickets issued")
            checks.unique(codes, "branch codes")
            # every branch's day folded, each ticket once, and the one more per touched branch
            checks.drained(args.branches * args.tickets + len(touched), issued,
                           "tickets on the province's board")
        finally:
            board._close_store()
            board._executor.shutdown()
            await centre.close()
    return checks.verdict()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
