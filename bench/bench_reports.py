"""Reports over a month of 2,000 branches, on SQLite and PostgreSQL; and what the summaries
cost at ingest.

    python bench/bench_reports.py [--branches 2000] [--days 30] [--db both|sqlite|postgres]
                                  [--months 1] [--templates 7] [--runs 3] [--keep DIR [--reuse]]

``--months 12``: the month summaries of a year (the month's sums again for each of the 11
months before it) and the year reports timed too (docs/performance.md, "10,000 branches").

How the data is made (docs/performance.md, "Reports"):

1. ``--templates`` real branch-days: the real engine plays a default day of the example
   branch (queueing, ~390 customers, ~1,460 events), and each is ingested through the real
   store (``Store.ingest``, several transactions), which folds it into the summary tables.
   The ingest is timed twice — with the summaries and with them switched off — which is
   what the summaries cost at ingest.
2. The summary rows those days produced are copied to every branch and day of the month
   (branch b on day d gets template (b·7 + d) mod K, its code and date put in), written
   straight into the summary tables: ``rpt_day``, ``rpt_recon``, ``rpt_branch_day``,
   ``rpt_rating_day`` for every day; ``rpt_month``, ``rpt_hour``, ``rpt_rating_month``
   summed over the month exactly as the ingest would have summed them (and ``rpt_year``,
   ``rpt_hour_year``, ``rpt_rating_year`` summed from those); ``rpt_slot`` and
   ``rpt_ticket`` for the one day the day reports read; the branches' totals (1 % of
   branch-days disagree, 1 % sent none) and their verdicts (``rpt_quality``, compared as
   the ingest compares them). 88 million events' worth of summaries without ingesting
   88 million events.
3. Every report is computed for the month over all branches, for one day over all
   branches, and for the month over one city (~200 branches): the median of ``--runs``
   after one warm-up, computing the report and serialising its JSON (what the API does);
   with ``--page N``, what the API does for a page of N rows (``rows=N``, as the reports
   page asks 1,000): the rows counted are then the page's.
   The Excel and CSV exports of the largest table are timed too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import inspect
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import central.store as store_module
from bench.checks import Checks, machine_line
from central.reports.catalog import REPORTS, run_report
from central.reports.export import to_csv, to_xlsx
from central.reports.labels import Labels
from central.reports.scope import Period, Scope
from central.store import EventBatch, Inbound, Store, open_store
from central.store.quality import totals_differences
from central.store.summary import CUBES, MAX_MEASURES, MEASURES, MIN_MEASURES, RATINGS
from controller.config import load_config
from protocols.uplink import day_totals
from queueing.day import simulate_day
from queueing.scenario import default_scenario

ROOT = Path(__file__).resolve().parent.parent
MONTH = "2026-11"
DAY = "2026-11-25"
PG = os.environ.get("PAIDUI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


# --- 1. template days through the real ingest --------------------------------------------


def template_events(k: int) -> list[dict[str, Any]]:
    cfg = load_config(ROOT / "examples" / "branch.toml")
    run = simulate_day(cfg, default_scenario(cfg, dt.date.fromisoformat(DAY)), seed=k + 1)
    return [{**e, "seq": i + 1} for i, e in enumerate(run.events)]


def template_code(k: int) -> str:
    return f"99990000{k:02d}"


def ingest_templates(store: Store, days: list[list[dict[str, Any]]], batch: int = 200
                     ) -> tuple[float, float]:
    """Ingest each template day through the real store; returns (events per second of
    wall time, CPU microseconds per event — steadier on a shared machine)."""
    started, cpu, n = time.perf_counter(), time.process_time(), 0
    for k, events in enumerate(days):
        code = template_code(k)
        for i in range(0, len(events), batch):
            store.ingest(Inbound(batches=[EventBatch(code, "e1", events[i:i + batch])]))
        n += len(events)
    return n / (time.perf_counter() - started), (time.process_time() - cpu) / n * 1e6


def ingest_cost(days: list[list[dict[str, Any]]], url: str, bare_url: str
                ) -> tuple[tuple[float, float], tuple[float, float]]:
    """Events/s ingested with the summaries (into ``url``, kept open for step 2) and
    without them (the hook switched off, into ``bare_url``)."""
    store = open_store(url)
    with_s = ingest_templates(store, days)
    store.close()
    real = store_module.summarize
    store_module.summarize = lambda *args: 0
    try:
        bare = open_store(bare_url)
        without = ingest_templates(bare, days)
        bare.close()
    finally:
        store_module.summarize = real
    return with_s, without


# --- 2. copying the template rows to every branch and day ---------------------------------

DAY_TABLES = ("rpt_day", "rpt_recon", "rpt_branch_day", "rpt_rating_day", "rpt_slot",
              "rpt_ticket")
MONTH_TABLES = ("rpt_month", "rpt_hour", "rpt_rating_month")


def columns(store: Store, table: str) -> list[str]:
    return [d[0] for d in store.execute(f"SELECT * FROM {table} LIMIT 0").description]


def template_rows(store: Store, k: int) -> dict[str, list[tuple[Any, ...]]]:
    """The rows template ``k`` left in each summary table (its own day only)."""
    code = template_code(k)
    out = {}
    for table in (*DAY_TABLES, *MONTH_TABLES):
        period = "day" if table in DAY_TABLES else "month"
        want = DAY if period == "day" else MONTH
        out[table] = store.execute(f"SELECT * FROM {table} WHERE branch = ? AND {period} = ?",
                                   (code, want)).fetchall()
    return out


def branches(n: int) -> list[str]:
    """``1001`` → 10 cities ``1001cc`` → branches ``1001ccbbbb``."""
    return [f"1001{i % 10:02d}{i // 10:04d}" for i in range(n)]


def put(cols: list[str], row: tuple[Any, ...], **values: Any) -> tuple[Any, ...]:
    out = list(row)
    for k, v in values.items():
        out[cols.index(k)] = v
    return tuple(out)


class Loader:
    """Bulk writes: COPY on PostgreSQL, executemany in one transaction on SQLite."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, table: str, cols: list[str], rows: Iterable[tuple[Any, ...]]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        if self.store.postgres:
            with self.store.db.cursor() as cur, \
                    cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
        else:
            marks = ", ".join("?" * len(cols))
            with self.store.transaction():
                self.store.db.executemany(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)
        return len(rows)


def earlier_months(n: int) -> list[str]:
    """The ``n`` - 1 months before :data:`MONTH`, newest first (2026-10, 2026-09, …)."""
    year, month = (int(x) for x in MONTH.split("-"))
    out = []
    for _ in range(n - 1):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        out.append(f"{year:04d}-{month:02d}")
    return out


def generate(target: Store, source: Store, k_count: int, n_branches: int, n_days: int,
             events: list[list[dict[str, Any]]], n_months: int = 1) -> dict[str, int]:
    templates = [template_rows(source, k) for k in range(k_count)]
    cols = {t: columns(source, t) for t in (*DAY_TABLES, *MONTH_TABLES)}
    totals = [day_totals([e for e in ev if e["day"] == DAY]) for ev in events]
    codes = branches(n_branches)
    last = int(DAY[-2:])  # fewer days than that: the ones ending on DAY, which is timed
    first = 1 if n_days >= last else last - n_days + 1
    days = [f"{MONTH}-{d:02d}" for d in range(first, first + n_days)]
    load, written = Loader(target), defaultdict(int)
    live: dict[str, Any] = {"branch": "", "status": {"queues": [
        {"id": q, "name": n} for q, n in (("A", "个人业务"), ("B", "对公业务"), ("V", "VIP业务"),
                                           ("T", "挂失改密"), ("F", "外汇业务"))]}}
    target.execute("DELETE FROM report_settings")
    target.execute("INSERT INTO report_settings VALUES ('timezone', 'Asia/Shanghai')")
    written["branches"] = load.write("branches", ["branch", "first_seen", "online", "live"], (
        (b, 0.0, 1, json.dumps({**live, "status": {**live["status"],
                                                    "branch_name": f"网点{b[-6:]}"}},
                               ensure_ascii=False)) for b in codes))
    month_acc: dict[str, dict[tuple[Any, ...], list[Any]]] = {t: {} for t in MONTH_TABLES}
    for di, day in enumerate(days):
        batch: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        totals_rows, quality_rows = [], []
        for bi, b in enumerate(codes):
            k = (bi * 7 + di) % k_count
            tpl = templates[k]
            seq0 = di * 2000  # each day's seq range, one journal per branch
            for table in ("rpt_day", "rpt_recon", "rpt_rating_day"):
                batch[table] += [put(cols[table], r, day=day, branch=b) for r in tpl[table]]
            for r in tpl["rpt_branch_day"]:
                c = cols["rpt_branch_day"]
                batch["rpt_branch_day"].append(put(
                    c, r, day=day, branch=b, first_seq=r[c.index("first_seq")] + seq0,
                    last_seq=r[c.index("last_seq")] + seq0))
            if day == DAY:
                for table in ("rpt_slot", "rpt_ticket"):
                    batch[table] += [put(cols[table], r, branch=b) for r in tpl[table]]
            for table in MONTH_TABLES:
                _add_month(month_acc[table], cols[table], tpl[table], b)
            roll = (bi * 31 + di * 17) % 100
            if roll == 0:
                continue  # no totals sent (1 %)
            body = json.loads(json.dumps(totals[k]))
            body["first_seq"] += seq0
            body["last_seq"] += seq0
            ours = {**body, "queues": totals[k]["queues"]}
            if roll == 1:  # disagreeing totals (1 %)
                body["queues"]["A"]["served"] += 1
            totals_rows.append((b, day, "e1", json.dumps({"branch": b, "epoch": "e1",
                                                          "day": day, **body}), 0.0))
            problems = totals_differences(body, ours)  # what judge_days stores at ingest
            quality_rows.append((day, b, "e1", "mismatch" if problems else "ok",
                                 "; ".join(problems)))
        for table, rows in batch.items():
            written[table] += load.write(table, cols[table], rows)
        written["totals"] += load.write("totals", ["branch", "day", "epoch", "body",
                                                   "received_at"], totals_rows)
        written["rpt_quality"] += load.write("rpt_quality", ["day", "branch", "epoch",
                                                             "status", "problems"],
                                             quality_rows)
    for table, acc in month_acc.items():
        written[table] += load.write(table, cols[table], (tuple(v) for v in acc.values()))
        for month in earlier_months(n_months):  # a year: the same month's sums again
            written[table] += load.write(table, cols[table],
                                         (put(cols[table], tuple(v), month=month)
                                          for v in acc.values()))
    for year_table, month_table in YEAR_TABLES.items():  # what the ingest folds with them
        target.execute(year_rollup(year_table, month_table))
        written[year_table] = int(target.execute(f"SELECT count(*) FROM {year_table}"
                                                 ).fetchone()[0])
    target.execute("ANALYZE")
    return dict(written)


YEAR_TABLES = {"rpt_year": "rpt_month", "rpt_hour_year": "rpt_hour",
               "rpt_rating_year": "rpt_rating_month"}


def year_rollup(year_table: str, month_table: str) -> str:
    """The year rows summed from the month rows (as migration 85 fills them)."""
    if year_table in RATINGS:
        keys = ["branch", "teller", "queue", "ctype", "score"]
        sums = ["SUM(n)", "SUM(bad)"]
        cols = [*keys, "n", "bad"]
    else:
        keys = list(CUBES[year_table][1:])
        sums = [f"MAX({m})" if m in MAX_MEASURES else f"MIN({m})" if m in MIN_MEASURES
                else f"SUM({m})" for m in MEASURES]
        cols = [*keys, *MEASURES]
    return (f"INSERT INTO {year_table} (year, {', '.join(cols)}) "
            f"SELECT substr(month, 1, 4), {', '.join(keys)}, {', '.join(sums)} "
            f"FROM {month_table} GROUP BY substr(month, 1, 4), {', '.join(keys)}")


def _add_month(acc: dict[tuple[Any, ...], list[Any]], cols: list[str],
               rows: list[tuple[Any, ...]], branch: str) -> None:
    measures = [c for c in cols if c in MEASURES or c in ("n", "bad")]
    keys = [c for c in cols if c not in measures]
    for r in rows:
        row = dict(zip(cols, r, strict=True))
        row["branch"] = branch
        key = tuple(row[c] for c in keys)
        full = [row[c] for c in cols]
        old = acc.get(key)
        if old is None:
            acc[key] = full
            continue
        for i, c in enumerate(cols):
            if c not in measures:
                continue
            a, b = old[i], full[i]
            if c in MAX_MEASURES:
                old[i] = max(a, b)
            elif c in MIN_MEASURES:
                old[i] = b if a is None else a if b is None else min(a, b)
            else:
                old[i] = a + b


# --- 3. timing the reports ---------------------------------------------------------------


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """(median wall seconds, median CPU seconds, result) over ``runs`` after a warm-up.
    The CPU time leaves out the waits a busy shared machine adds."""
    fn()  # warm-up
    walls, cpus, out = [], [], None
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def page_of(store: Store, rid: str, period: Period, scope: Scope, labels: Labels,
            now: float, rows: int) -> tuple[bytes, int]:
    """What ``GET /api/reports/{rid}?rows=…`` computes and sends: (the JSON, its rows).
    A tree whose ``run_report`` takes no ``page`` (before issue 19's paging) computes
    every row, and the API cuts the page from them; this bench times both alike."""
    from central.reports.api import _json

    if "page" in inspect.signature(run_report).parameters:
        r = run_report(store, rid, period, scope, labels, now=now, page=(0, rows))
    else:
        r = run_report(store, rid, period, scope, labels, now=now)
    body = _json(r, 0, rows)
    return body, len(json.loads(body)["rows"])


def bench_reports(store: Store, runs: int, year: bool = False, page: int | None = None
                  ) -> Iterator[tuple[str, str, float, float, int]]:
    labels = Labels()
    city = Scope(prefixes=("100103",))
    cases = [("month, all", Period("month", MONTH), Scope()),
             ("day, all", Period("day", DAY), Scope()),
             ("month, one city", Period("month", MONTH), city)]
    if year:
        cases += [("year, all", Period("year", MONTH[:4]), Scope()),
                  ("year, one city", Period("year", MONTH[:4]), city),
                  ("year, one branch", Period("year", MONTH[:4]),
                   Scope(prefixes=(branches(50)[-1],)))]
    now = dt.datetime(2026, 12, 5, 12, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
    for label, period, scope in cases:
        for rid in REPORTS:
            def run(rid: str = rid, period: Period = period, scope: Scope = scope) -> int:
                if page is not None:
                    return page_of(store, rid, period, scope, labels, now, page)[1]
                r = run_report(store, rid, period, scope, labels, now=now)
                json.dumps(r.to_json(), ensure_ascii=False)
                return len(r.rows)

            seconds, cpu, n = timed(run, runs)
            yield label, rid, seconds, cpu, n
    big = run_report(store, "branch-summary", Period("month", MONTH), Scope(), labels)
    exports: list[tuple[str, Callable[[Any], bytes]]] = [("xlsx", to_xlsx), ("csv", to_csv)]
    for name, fn in exports:
        seconds, cpu, data = timed(functools.partial(fn, big), runs)
        yield f"export {name}", f"branch-summary ({len(data) // 1024} KiB)", seconds, cpu, \
            len(big.rows)


def row_counts(store: Store) -> dict[str, int]:
    return {t: int(store.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
            for t in (*CUBES, *RATINGS, "rpt_recon", "rpt_branch_day", "rpt_ticket", "totals",
                      "rpt_quality")}


KEPT_SCHEMA = "bench_reports_kept"


def pg_schema_url(name: str | None = None) -> tuple[str, str, bool]:
    """(schema, URL, whether it existed already); a fresh random schema without ``name``."""
    schema = name or f"bench_{secrets.token_hex(4)}"
    import psycopg

    with psycopg.connect(PG, autocommit=True) as admin:
        existed = admin.execute("SELECT 1 FROM information_schema.schemata WHERE "
                                "schema_name = %s", (schema,)).fetchone() is not None
        admin.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    sep = "&" if "?" in PG else "?"
    return schema, f"{PG}{sep}options=-csearch_path%3D{schema}", existed


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


def _speed(figures: tuple[float, float]) -> str:
    return f"{figures[0]:,.0f} events/s ({figures[1]:.0f} µs CPU/event)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--branches", type=int, default=2000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--months", type=int, default=1,
                   help="months of month summaries (12: a year, and the year reports timed)")
    p.add_argument("--templates", type=int, default=7)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--page", type=int, default=None,
                   help="time what the API answers a page of this many rows (rows=…, as "
                        "the reports page asks 1,000) instead of the whole report")
    p.add_argument("--db", choices=("both", "sqlite", "postgres"), default="both")
    p.add_argument("--keep", default=None,
                   help=f"keep the SQLite files in this folder and the PostgreSQL month in "
                        f"schema {KEPT_SCHEMA}")
    p.add_argument("--reuse", action="store_true",
                   help="time the months kept by an earlier --keep instead of writing them")
    args = p.parse_args()
    checks = Checks("bench_reports")
    print(machine_line())
    folder = Path(args.keep or tempfile.mkdtemp(prefix="bench-reports-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"templates: {args.templates} real engine days ...", flush=True)
    days = [template_events(k) for k in range(args.templates)]
    print(f"  {sum(map(len, days)) / len(days):.0f} events, "
          f"{sum(sum(e['type'] == 'ticket_issued' for e in d) for d in days) / len(days):.0f}"
          " customers per day on average")
    for name in ("templates", "bare"):  # the ingest is timed into empty stores
        for f in folder.glob(f"{name}.sqlite3*"):
            f.unlink()
    source_url = f"sqlite:///{folder / 'templates.sqlite3'}"
    with_s, without = ingest_cost(days, source_url,
                                  f"sqlite:///{folder / 'bare.sqlite3'}")
    print(f"ingest (SQLite, batches of 200): {_speed(with_s)} with the summaries, "
          f"{_speed(without)} without")
    source = open_store(source_url)
    # every template event ingested, each once
    checks.drained(sum(map(len, days)), source.count_events(), "template events stored")
    checks.unique([tuple(r) for r in source.execute("SELECT branch, seq FROM events")],
                  "stored (branch, seq)")
    targets: list[tuple[str, str, str | None, bool]] = []
    if args.db in ("both", "sqlite"):
        kept = (folder / "month.sqlite3").exists()
        targets.append(("SQLite", f"sqlite:///{folder / 'month.sqlite3'}", None, kept))
    if args.db in ("both", "postgres"):
        pg_schema, url, kept = pg_schema_url(KEPT_SCHEMA if args.keep else None)
        targets.append(("PostgreSQL", url, pg_schema, kept))
    for name, url, schema, kept in targets:
        reuse = args.reuse and kept
        if not reuse and schema is None and kept:  # an old kept SQLite month
            for f in folder.glob("month.sqlite3*"):
                f.unlink()
        if kept and not reuse and schema is not None:  # an old kept month: write afresh
            drop_schema(schema)
            schema, url, _ = pg_schema_url(schema)
        t = time.perf_counter()
        target = open_store(url)
        print(f"\n{name}: opened (and migrated) in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        if not reuse:
            generate(target, source, args.templates, args.branches, args.days, days,
                     args.months)
        print(f"\n{name}: {'reused' if reuse else 'wrote'} the month in "
              f"{time.perf_counter() - t:.0f} s: {json.dumps(row_counts(target))}")
        print(f"{'case':18} {'report':34} {'wall ms':>8} {'CPU ms':>8} {'rows':>6}")
        for case, rid, seconds, cpu, n in bench_reports(target, args.runs, args.months > 1,
                                                         args.page):
            print(f"{case:18} {rid:34} {seconds * 1000:8.1f} {cpu * 1000:8.1f} {n:6d}",
                  flush=True)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        target.close()
        if schema is not None and not args.keep:
            drop_schema(schema)
    source.close()
    if args.db in ("both", "postgres"):
        schemas = [pg_schema_url()[:2], pg_schema_url()[:2]]
        try:
            with_s, without = ingest_cost(days, schemas[0][1], schemas[1][1])
        finally:
            for schema, _ in schemas:
                drop_schema(schema)
        print(f"\ningest (PostgreSQL, batches of 200): {_speed(with_s)} with the "
              f"summaries, {_speed(without)} without")
    return checks.verdict()


if __name__ == "__main__":
    sys.exit(main())
