"""The centre's store: SQLite by default, PostgreSQL at scale; one schema (docs/store.md).

:meth:`Store.ingest` commits one group of received messages in one transaction and
returns each touched branch's contiguous mark, which the consumer then acknowledges:
an ``ack`` is never sent for anything not yet committed.

Ingest is idempotent on (branch, epoch, seq) and order-free: a batch may arrive twice,
late, or before the one it follows; the contiguous mark only moves over stored rows.
A branch's mark row is locked for the transaction (PostgreSQL ``FOR UPDATE``; SQLite
writes are serial), so several consumers can share one branch's batches.

The store is synchronous and owned by one thread at a time; the consumer runs it on its
own worker thread.

PostgreSQL may fail over under it (docs/deploy.md "PostgreSQL failover (Patroni)"): the
URL may name several hosts (``postgresql://h1:5432,h2:5432/db?target_session_attrs=read-write``)
and :meth:`Store.retrying` — every write — answers a lost primary (admin shutdown, refused
connections, a read-only transaction after a demotion) by reconnecting with back-off for up
to ``patience_s`` and running the whole transaction again. A transaction lost during its
COMMIT may have happened, so it runs again only when it is idempotent, as the ingest's
group commit is (events keyed by (branch, epoch, seq), upserts, the summaries' cursor): it
stores nothing twice when it runs again, and the consumer hears of success (and
acknowledges) only after a commit that succeeded.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.clock import Clock, SystemClock
from protocols.forms import masked_event

from ..errors import StoreError
from .records import DeadLetter, EventBatch, Inbound, Ingested, Mark
from .summary import summarize

__all__ = [
    "DeadLetter",
    "EventBatch",
    "Inbound",
    "Ingested",
    "Mark",
    "Outage",
    "Store",
    "open_store",
    "sqlite_path",
]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PAYLOAD_KEEP = 64 * 1024
PATIENCE_S = 60.0  # how long a write waits for a primary before it fails (Patroni: ttl 30 s)
BACKOFF_S = (0.05, 1.0)  # the first and the longest pause between reconnection attempts
CONNECT_TIMEOUT_S = 5  # per host, unless the URL says connect_timeout
OUTAGES_KEPT = 100  # Store.outages is bounded
# SQLSTATEs after which this connection cannot write again: admin/crash shutdown, the server
# starting or stopping, a read-only transaction (a demoted primary, a standby). Class 08
# (connection exceptions) too, and a psycopg error with no SQLSTATE (the client lost it).
_LOST_STATES = frozenset({"57P01", "57P02", "57P03", "25006"})
BRANCHES_CHUNK = 500  # codes per IN (...) when some branches' rows are read
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _stored(event: dict[str, Any]) -> str:
    """An event as the store keeps it: a pre-filled form's values masked (central/forms.py);
    whole, they never reach the centre's store."""
    return _dumps(masked_event(event) if event["type"] == "form_filled" else event)


def _wal(db: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch to WAL. SQLite answers "database is locked" at once, without its busy
    handler, when another connection is creating or switching the same new file, so
    several services opening one fresh store (web, ingest, alerts) wait here in turn."""
    deadline = time.monotonic() + patience
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def connect_sqlite(path: Path) -> sqlite3.Connection:
    """An autocommit SQLite connection in WAL mode, the busy timeout set first: several
    services (ingest, web, alerts, releases) open the same file at once."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=30000")
    _wal(db)
    return db


@contextmanager
def transaction(db: Any, postgres: bool) -> Iterator[None]:
    """One transaction on an autocommit connection (SQLite: taking the write lock at once)."""
    if postgres:
        with db.transaction():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def open_store(url: str, max_ahead: int = 1_000_000, clock: Clock | None = None) -> Store:
    """Open (and migrate) the store at ``url``: ``sqlite:///path`` or ``postgresql://…``.
    ``clock`` is the centre's one clock (:attr:`Store.clock`); default the real time."""
    return Store(url, max_ahead=max_ahead, clock=clock)


@dataclass(frozen=True)
class Outage:
    """A time the primary was lost under a write: from the first failure to the first
    commit after it (monotonic seconds), the attempts in between, the first error."""

    failed_at: float
    recovered_at: float
    attempts: int
    error: str

    @property
    def seconds(self) -> float:
        return self.recovered_at - self.failed_at


class Store:
    """One connection to the centre's database. Not thread-safe: one owner at a time."""

    def __init__(self, url: str, *, max_ahead: int = 1_000_000, patience_s: float = PATIENCE_S,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic,
                 clock: Clock | None = None) -> None:
        self.url = url
        # The centre's one clock (a demo's starts at 10:00): what the store stamps, and what
        # the functions handed this store stamp with when they are given no ``now``.
        self.clock: Clock = clock or SystemClock()
        self.max_ahead = max_ahead
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self.patience_s = patience_s
        self._sleep, self._monotonic = sleep, monotonic
        self.outages: deque[Outage] = deque(maxlen=OUTAGES_KEPT)  # the latest, for figures
        # Opening does not wait for a primary: a centre started against a wrong or dead URL
        # says so at once (exit 2); a consumer opens its store again on its own loop.
        self.db: Any = self._connect_postgres(url) if self.postgres else self._connect_sqlite(url)
        self.migrate()

    # --- connection ----------------------------------------------------------------------

    @staticmethod
    def _connect_sqlite(url: str) -> sqlite3.Connection:
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = connect_sqlite(path)
            db.execute("PRAGMA synchronous=FULL")  # an ack promises the row is on disk
        except sqlite3.Error as exc:
            raise StoreError(f"store {path}: {exc}") from exc
        return db

    @staticmethod
    def _connect_postgres(url: str) -> Any:
        import psycopg

        try:
            return _open_postgres(url)
        except psycopg.Error as exc:
            raise StoreError(f"store {_redact(url)}: {exc}") from exc

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def _lost(self) -> bool:
        """PostgreSQL: no connection yet, or the last one was lost."""
        return bool(self.postgres and (self.db is None or self.db.closed))

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, args: Any = ()) -> Any:
        if self._lost():  # lost earlier: a read outside retrying()
            self.db = self._connect_postgres(self.url)
        return self.db.execute(self._sql(sql), args)

    def execute_many(self, sql: str, rows: list[Any]) -> int:
        """executemany; returns the number of rows changed."""
        if not rows:
            return 0
        if self.postgres:
            with self.db.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
                return int(cur.rowcount)
        before = self.db.total_changes
        self.db.executemany(sql, rows)
        return int(self.db.total_changes - before)

    def transaction(self) -> AbstractContextManager[None]:
        return transaction(self.db, self.postgres)

    def retrying(self, fn: Callable[[], Any], attempts: int = 5, *,
                 idempotent: bool = False) -> Any:
        """Run ``fn`` in a transaction; run it again after a deadlock or serialisation
        failure (up to ``attempts`` times), and after a lost primary (PostgreSQL) once
        reconnected, for up to ``patience_s``.

        A transaction lost before its COMMIT was sent did not happen: it always runs again.
        One lost during its COMMIT may have happened: it runs again only when ``fn`` is
        ``idempotent`` (the ingest: running it twice stores nothing twice); otherwise the
        caller gets a :class:`StoreError` saying the outcome is unknown."""
        tries, failed_at, reconnects, first_error = 0, None, 0, ""
        pause = BACKOFF_S[0]
        while True:
            committing = False
            try:
                if self._lost():
                    self.db = _open_postgres(self.url)
                with self.transaction():
                    result = fn()
                    committing = True  # the block's end commits
            except Exception as exc:
                if self.postgres and _connection_lost(exc, self.db):
                    with suppress(Exception):
                        if self.db is not None:  # a demoted primary's: open but useless
                            self.db.close()
                    if committing and not idempotent:
                        raise StoreError(f"store {_redact(self.url)}: the connection was lost "
                                         f"during a commit, whose outcome is unknown: "
                                         f"{_describe(exc)}") from exc
                    now = self._monotonic()
                    if failed_at is None:
                        failed_at, first_error = now, _describe(exc)
                        log.warning("store: no primary to write to (%s); connecting again",
                                    first_error)
                    if now - failed_at >= self.patience_s:
                        raise StoreError(f"store {_redact(self.url)}: no primary for "
                                         f"{now - failed_at:.0f} s: {_describe(exc)}") from exc
                    reconnects += 1
                    self._sleep(pause)
                    pause = min(pause * 2, BACKOFF_S[1])
                    continue
                tries += 1
                if not _retryable(exc) or tries >= attempts:
                    raise
                log.info("store: retrying after %s", type(exc).__name__)
                continue
            if failed_at is not None:
                outage = Outage(failed_at, self._monotonic(), reconnects, first_error)
                self.outages.append(outage)
                log.warning("store: writing again after %.2f s without a primary "
                            "(%d reconnection attempts)", outage.seconds, reconnects)
            return result

    # --- migrations ------------------------------------------------------------------------

    def migrate(self) -> int:
        """Apply the versioned SQL files not yet applied; return the schema version."""
        folder = MIGRATIONS / ("postgres" if self.postgres else "sqlite")
        files = sorted(folder.glob("*.sql"))

        def run() -> int:
            if self.postgres:
                self.execute("SELECT pg_advisory_xact_lock(4242001)")
            self.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                         "applied_at DOUBLE PRECISION NOT NULL)")
            done = {r[0] for r in self.execute("SELECT version FROM schema_migrations")}
            for f in files:
                version = int(f.name.split("_", 1)[0])
                if version in done:
                    continue
                for statement in _statements(f.read_text()):
                    self.execute(statement)
                self.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                             (version, f.name, self.clock.now()))
                log.info("store: applied migration %s", f.name)
            return max((int(f.name.split("_", 1)[0]) for f in files), default=0)

        try:
            return int(self.retrying(run, idempotent=True))
        except Exception as exc:
            raise StoreError(f"store migration failed: {exc}") from exc

    # --- ingest ----------------------------------------------------------------------------

    def ingest(self, inbound: Inbound, now: float | None = None) -> Ingested:
        """Commit ``inbound`` in one transaction; return the marks to acknowledge."""
        stamp = self.clock.now() if now is None else now
        result: Ingested = self.retrying(lambda: self._ingest(inbound, stamp), idempotent=True)
        return result

    def _ingest(self, inbound: Inbound, now: float) -> Ingested:
        out = Ingested(dead=list(inbound.dead))
        keys = sorted({(b.branch, b.epoch) for b in inbound.batches})
        branches = sorted({b for b, _ in keys} | {t["branch"] for t in inbound.totals}
                          | {b for b, _ in inbound.replies})
        self.execute_many("INSERT INTO branches (branch, first_seen) VALUES (?, ?) "
                          "ON CONFLICT (branch) DO NOTHING", [(b, now) for b in branches])
        self.execute_many("INSERT INTO marks (branch, epoch, contiguous, max_seen, updated_at) "
                          "VALUES (?, ?, 0, 0, 0) ON CONFLICT (branch, epoch) DO NOTHING", keys)
        pending = self._accept(inbound.batches, self._marks_of(keys),
                               self._last_seqs([b for b, _ in keys]), out)
        rows = [(b, e, ev["seq"], ev["day"], ev["type"], ev["at"], _stored(ev), now)
                for (b, e), events in pending.items() for ev in events.values()]
        out.inserted = self.execute_many(
            "INSERT INTO events (branch, epoch, seq, day, type, at, body, stored_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (branch, epoch, seq) DO NOTHING", rows)
        out.duplicates += len(rows) - out.inserted
        # Lock the marks only now, for the short rest of the transaction: whichever
        # consumer locks a branch's mark last sees the others' committed rows and moves it.
        marks = self._marks_of(keys, lock=True)
        out.marks = [self._advance(key, marks[key], sorted(pending.get(key, {})))
                     for key in keys]
        self.execute_many("UPDATE marks SET contiguous = ?, max_seen = ?, updated_at = ? "
                          "WHERE branch = ? AND epoch = ?",
                          [(m.contiguous, m.max_seen, now, m.branch, m.epoch) for m in out.marks])
        self._save_totals(inbound.totals, now, out)
        summarize(self, out.marks, pending, inbound.totals)  # reports, same transaction
        self.execute_many("INSERT INTO replies (branch, id, cmd, ok, body, received_at) "
                          "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (branch, id) DO UPDATE SET "
                          "cmd = excluded.cmd, ok = excluded.ok, body = excluded.body, "
                          "received_at = excluded.received_at",
                          [(b, r["id"], r["cmd"], r["ok"], _dumps(r), now)
                           for b, r in inbound.replies])
        self._save_dead(out.dead, now)
        return out

    def _marks_of(self, keys: list[tuple[str, str]], lock: bool = False
                  ) -> dict[tuple[str, str], tuple[int, int]]:
        """(contiguous, max_seen) of each key; ``lock`` holds the rows to the commit."""
        if not keys:
            return {}
        names = sorted({b for b, _ in keys})
        if self.postgres:
            rows = self.execute(
                "SELECT branch, epoch, contiguous, max_seen FROM marks WHERE branch = ANY(?) "
                "ORDER BY branch, epoch" + (" FOR UPDATE" if lock else ""), (names,))
        else:  # SQLite: the transaction already holds the only write lock
            rows = self.execute("SELECT branch, epoch, contiguous, max_seen FROM marks "
                                f"WHERE branch IN ({','.join('?' * len(names))})", names)
        return {(b, e): (int(c), int(m)) for b, e, c, m in rows.fetchall()}

    def _last_seqs(self, branches: list[str]) -> dict[str, int]:
        names = sorted(set(branches))
        if not names:
            return {}
        if self.postgres:
            rows = self.execute("SELECT branch, last_seq FROM branches WHERE branch = ANY(?)",
                                (names,))
        else:
            rows = self.execute("SELECT branch, last_seq FROM branches WHERE branch IN "
                                f"({','.join('?' * len(names))})", names)
        return {b: int(s or 0) for b, s in rows.fetchall()}

    def _accept(self, batches: list[EventBatch], marks: dict[tuple[str, str], tuple[int, int]],
                last_seqs: dict[str, int], out: Ingested
                ) -> dict[tuple[str, str], dict[int, dict[str, Any]]]:
        """Merge the batches per (branch, epoch); count the events the mark has passed as
        duplicates; dead-letter batches far beyond the mark."""
        pending: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
        for b in batches:
            key = (b.branch, b.epoch)
            limit = max(marks[key][0], last_seqs.get(b.branch, 0)) + self.max_ahead
            top = b.events[-1]["seq"]
            if top > limit:
                out.dead.append(DeadLetter(b.topic, "seq_far_ahead",
                                           f"seq {top} > {limit} (mark + max_ahead)",
                                           b.payload, b.branch))
                continue
            for ev in b.events:
                if ev["seq"] <= marks[key][0]:  # stored and acknowledged (maybe pruned since)
                    out.duplicates += 1
                else:
                    pending[key][ev["seq"]] = ev
        return pending

    def _advance(self, key: tuple[str, str], mark: tuple[int, int], seqs: list[int]) -> Mark:
        contiguous, max_seen = mark
        for s in seqs:
            if s == contiguous + 1:
                contiguous = s
            elif s > contiguous:
                break
        max_seen = max([max_seen, *seqs[-1:]])
        next_present = None
        if max_seen > contiguous:  # rows stored earlier, beyond a gap, may join up now
            contiguous, next_present = self._walk(key, contiguous)
        return Mark(key[0], key[1], contiguous, max_seen, next_present)

    def _walk(self, key: tuple[str, str], contiguous: int, chunk: int = 5000
              ) -> tuple[int, int | None]:
        while True:
            rows = self.execute("SELECT seq FROM events WHERE branch = ? AND epoch = ? "
                                "AND seq > ? ORDER BY seq LIMIT ?",
                                (*key, contiguous, chunk)).fetchall()
            for (s,) in rows:
                if s != contiguous + 1:
                    return contiguous, int(s)
                contiguous = int(s)
            if len(rows) < chunk:
                return contiguous, None

    def _save_totals(self, totals: list[dict[str, Any]], now: float, out: Ingested) -> None:
        self.execute_many("INSERT INTO totals (branch, day, epoch, body, received_at) "
                          "VALUES (?, ?, ?, ?, ?) ON CONFLICT (branch, day) DO UPDATE SET "
                          "epoch = excluded.epoch, body = excluded.body, "
                          "received_at = excluded.received_at",
                          [(t["branch"], t["day"], t["epoch"], _dumps(t), now) for t in totals])
        out.totals = [(t["branch"], t["day"]) for t in totals]

    def _save_dead(self, dead: list[DeadLetter], now: float) -> None:
        if not dead:
            return
        self.execute_many("INSERT INTO dead_letters (topic, branch, reason, detail, payload, "
                          "received_at) VALUES (?, ?, ?, ?, ?, ?)",
                          [(d.topic[:300], d.branch, d.reason, d.detail[:500],
                            _printable(d.payload), now) for d in dead])
        counts: dict[str, int] = defaultdict(int)
        for d in dead:
            counts[d.reason] += 1
        self.execute_many("INSERT INTO dead_letter_counts (reason, count) VALUES (?, ?) "
                          "ON CONFLICT (reason) DO UPDATE SET "
                          "count = dead_letter_counts.count + excluded.count",
                          sorted(counts.items()))

    def dead_letter(self, dead: list[DeadLetter], now: float | None = None) -> None:
        """Record rejections on their own (when a whole group could not be stored)."""
        stamp = self.clock.now() if now is None else now
        self.retrying(lambda: self._save_dead(dead, stamp))

    # --- the live picture ------------------------------------------------------------------

    def save_live(self, status: dict[str, dict[str, Any]], live: dict[str, dict[str, Any]],
                  health: dict[str, dict[str, Any]], now: float | None = None) -> None:
        """Upsert the latest status / live / health message of each branch (by branch)."""
        stamp = self.clock.now() if now is None else now

        def run() -> None:
            every = sorted(set(status) | set(live) | set(health))
            self.execute_many("INSERT INTO branches (branch, first_seen) VALUES (?, ?) "
                              "ON CONFLICT (branch) DO NOTHING", [(b, stamp) for b in every])
            self.execute_many(
                "UPDATE branches SET online = ?, epoch = COALESCE(?, epoch), "
                "last_seq = COALESCE(?, last_seq), version = COALESCE(?, version), "
                "config_version = COALESCE(?, config_version), status_at = ? WHERE branch = ?",
                [(m["online"], m.get("epoch"), m.get("last_seq"), m.get("version"),
                  m.get("config_version"), stamp, b) for b, m in sorted(status.items())])
            self.execute_many("UPDATE branches SET live = ?, live_at = ? WHERE branch = ?",
                              [(_dumps(m), stamp, b) for b, m in sorted(live.items())])
            self.execute_many("UPDATE branches SET health = ?, health_at = ?, "
                              "last_seq = GREATEST(COALESCE(last_seq, 0), ?) WHERE branch = ?"
                              if self.postgres else
                              "UPDATE branches SET health = ?, health_at = ?, "
                              "last_seq = MAX(COALESCE(last_seq, 0), ?) WHERE branch = ?",
                              [(_dumps(m), stamp, m.get("last_seq", 0), b)
                               for b, m in sorted(health.items())])

        self.retrying(run, idempotent=True)  # upserts of the latest

    # --- reading ---------------------------------------------------------------------------

    def mark(self, branch: str, epoch: str) -> Mark:
        row = self.execute("SELECT contiguous, max_seen FROM marks WHERE branch = ? "
                           "AND epoch = ?", (branch, epoch)).fetchone()
        contiguous, max_seen = (int(row[0]), int(row[1])) if row else (0, 0)
        next_present = None
        if max_seen > contiguous:
            contiguous, next_present = self._walk((branch, epoch), contiguous)
        return Mark(branch, epoch, contiguous, max_seen, next_present)

    def marks(self) -> list[Mark]:
        rows = self.execute("SELECT branch, epoch, contiguous, max_seen FROM marks "
                            "ORDER BY branch, epoch").fetchall()
        return [Mark(b, e, int(c), int(m)) for b, e, c, m in rows]

    def events(self, branch: str, epoch: str | None = None) -> list[dict[str, Any]]:
        """A branch's stored events (of one epoch), in seq order."""
        sql, args = "SELECT body FROM events WHERE branch = ?", [branch]
        if epoch is not None:
            sql += " AND epoch = ?"
            args.append(epoch)
        return [_json(r[0]) for r in self.execute(sql + " ORDER BY epoch, seq", args)]

    def count_events(self, branch: str | None = None) -> int:
        if branch is None:
            return int(self.execute("SELECT count(*) FROM events").fetchone()[0])
        return int(self.execute("SELECT count(*) FROM events WHERE branch = ?",
                                (branch,)).fetchone()[0])

    def day_events(self, branch: str, day: str, epoch: str | None = None
                   ) -> list[dict[str, Any]]:
        sql, args = "SELECT body FROM events WHERE branch = ? AND day = ?", [branch, day]
        if epoch is not None:
            sql += " AND epoch = ?"
            args.append(epoch)
        return [_json(r[0]) for r in self.execute(sql + " ORDER BY epoch, seq", args)]

    def history(self, branch: str, first_day: str, last_day: str) -> list[dict[str, Any]]:
        """A branch's stored events of the business days ``first_day``..``last_day``
        (inclusive, ISO dates), in journal order: what :func:`queueing.learn.learn` reads."""
        rows = self.execute("SELECT body FROM events WHERE branch = ? AND day >= ? AND day <= ? "
                            "ORDER BY epoch, seq", (branch, first_day, last_day))
        return [_json(r[0]) for r in rows]

    def seqs(self, branch: str, epoch: str, low: int, high: int) -> list[int]:
        rows = self.execute("SELECT seq FROM events WHERE branch = ? AND epoch = ? AND seq >= ? "
                            "AND seq <= ? ORDER BY seq", (branch, epoch, low, high))
        return [int(r[0]) for r in rows]

    def branches(self, codes: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Every branch heard from, in code order; only ``codes`` when given (read in
        chunks: the live board asks for the few hundred that moved among 10,000)."""
        if codes is None:
            return self._branch_rows("SELECT * FROM branches ORDER BY branch", ())
        wanted = sorted(codes)
        out: list[dict[str, Any]] = []
        for i in range(0, len(wanted), BRANCHES_CHUNK):
            chunk = wanted[i:i + BRANCHES_CHUNK]
            out += self._branch_rows("SELECT * FROM branches WHERE branch IN ("
                                     + ", ".join("?" * len(chunk)) + ") ORDER BY branch",
                                     chunk)
        return out

    def branch_codes(self) -> list[str]:
        """The codes of every branch heard from, in order (no rows read whole)."""
        return [r[0] for r in self.execute("SELECT branch FROM branches ORDER BY branch")]

    def _branch_rows(self, sql: str, args: Any) -> list[dict[str, Any]]:
        cur = self.execute(sql, args)
        names = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            rec = dict(zip(names, row, strict=True))
            rec["online"] = None if rec["online"] is None else bool(rec["online"])
            rec["live"] = _json(rec["live"]) if rec["live"] is not None else None
            rec["health"] = _json(rec["health"]) if rec["health"] is not None else None
            out.append(rec)
        return out

    def totals(self, day: str) -> dict[str, dict[str, Any]]:
        rows = self.execute("SELECT branch, body FROM totals WHERE day = ?", (day,))
        return {b: _json(body) for b, body in rows}

    def branches_with_events(self, day: str) -> set[str]:
        rows = self.execute("SELECT DISTINCT branch FROM events WHERE day = ?", (day,))
        return {r[0] for r in rows}

    def reply(self, branch: str, cmd_id: str) -> dict[str, Any] | None:
        row = self.execute("SELECT body FROM replies WHERE branch = ? AND id = ?",
                           (branch, cmd_id)).fetchone()
        return _json(row[0]) if row else None

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        cur = self.execute("SELECT id, topic, branch, reason, detail, payload, received_at "
                           "FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def dead_letter_counts(self) -> dict[str, int]:
        rows = self.execute("SELECT reason, count FROM dead_letter_counts ORDER BY reason")
        return {r: int(c) for r, c in rows}

    def lags(self, codes: Collection[str] | None = None) -> list[tuple[str, str, int, int]]:
        """(branch, epoch, contiguous, behind) for each branch's current epoch (of
        ``codes`` only, when given: a page of the branches list)."""
        sql = ("SELECT m.branch, m.epoch, m.contiguous, m.max_seen, b.last_seq, b.epoch "
               "FROM marks m JOIN branches b ON b.branch = m.branch")
        if codes is None:
            rows = self.execute(sql + " ORDER BY m.branch").fetchall()
        else:
            wanted, rows = sorted(codes), []
            for i in range(0, len(wanted), BRANCHES_CHUNK):
                chunk = wanted[i:i + BRANCHES_CHUNK]
                rows += self.execute(sql + " WHERE m.branch IN (" + ", ".join("?" * len(chunk))
                                     + ") ORDER BY m.branch", chunk).fetchall()
        out = []
        for branch, epoch, contiguous, max_seen, last_seq, current in rows:
            if current is not None and epoch != current:
                continue
            top = max(int(max_seen), int(last_seq or 0))
            out.append((branch, epoch, int(contiguous), max(0, top - int(contiguous))))
        return out


# --- helpers -------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path:
    """``sqlite:////abs/file`` → /abs/file; ``sqlite:///rel/file`` → rel/file; else a path."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return Path(url.removeprefix("sqlite:"))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _printable(payload: bytes) -> str:
    return payload[:PAYLOAD_KEEP].decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def _statements(sql: str) -> list[str]:
    text = "\n".join(ln for ln in sql.splitlines() if not ln.lstrip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def _open_postgres(url: str) -> Any:
    """An autocommit connection to the first host of ``url`` that answers as asked
    (libpq's multi-host URL and ``target_session_attrs``)."""
    import psycopg

    if "connect_timeout=" in url:
        return psycopg.connect(url, autocommit=True)
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)


def _connection_lost(exc: Exception, db: Any) -> bool:
    """This PostgreSQL error means the connection cannot write any more (the primary went
    away or was demoted), rather than that the transaction itself was refused."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:  # no answer from a server: refused, reset, closed, timed out
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return state in _LOST_STATES or state.startswith("08") or db is None or bool(db.closed)


def _describe(exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:200]


def _retryable(exc: Exception) -> bool:
    name = type(exc).__name__
    return name in ("DeadlockDetected", "SerializationFailure") or (
        isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc))


def _redact(url: str) -> str:
    return re.sub(r"://([^:@/]+):[^@/]+@", r"://\1:***@", url)
