"""The journal: every event, durable, in order, in one SQLite file.

SQLite in WAL mode with ``synchronous=FULL``: a commit returns only after the write-ahead
log is on the disk, so a power cut keeps every committed event and loses nothing else.

* ``seq`` is branch-wide, monotonic across days and restarts; the ``epoch`` (a random id)
  changes only when the database is re-created, so the centre can tell a new journal from
  a replayed one (ARCHITECTURE, "Data never lost").
* Snapshots of the engine's state let a restart replay only the tail.
* The journal is also the uplink's outbox: events stay until the centre acknowledged them
  (``acked_through``) *and* are older than the retention; nothing unsent is ever pruned.

:class:`Journal` is synchronous; several threads may share one (the box's writer thread,
readers in ``asyncio.to_thread``): each call holds its connection alone, and
:meth:`Journal.close` waits for the call in flight (:mod:`common.shared_db`).
:class:`GroupCommitter` runs it on a writer thread and batches concurrent commits.
"""

from __future__ import annotations

import asyncio
import json
import queue
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.shared_db import SharedConnection
from protocols.forms import blanked

from .errors import JournalError

__all__ = ["GroupCommitter", "Journal", "Record"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq  INTEGER PRIMARY KEY,
    day  TEXT NOT NULL,
    type TEXT NOT NULL,
    at   REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_day ON events(day);
CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, day TEXT, body TEXT NOT NULL);
"""

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# (seq, day, state): the engine's state after event ``seq``, as ``State.to_dict()`` gives
# it — fresh containers nobody else holds, so the writer thread may encode it.
Snapshot = tuple[int, str, dict[str, Any]]


@dataclass(slots=True)
class Record:
    seq: int
    event: dict[str, Any]


class Journal:
    """Synchronous access to the journal database.

    Thread-safe: each call has the connection to itself (a transaction included), and
    :meth:`close` waits for the call in flight; a call after it raises
    :class:`JournalError` rather than reaching a closed connection (which would crash
    the process).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = SharedConnection(
                sqlite3.connect(self.path, isolation_level=None, check_same_thread=False),
                lambda: JournalError(f"journal {self.path} is closed"))
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"journal {self.path}: {exc}") from exc
        try:
            with self._conn.use() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(SCHEMA)
                self.epoch = self._meta("epoch") or self._create_epoch()
                row = db.execute("SELECT max(seq) FROM events").fetchone()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise JournalError(f"journal {self.path}: {exc}") from exc
        self.last_seq: int = row[0] or 0

    @property
    def db(self) -> sqlite3.Connection:
        """The bare connection, for tests and diagnostics on a journal nobody else is
        using at that moment; everything else goes through the methods."""
        with self._conn.use() as db:
            return db

    def close(self) -> None:
        """Close once the call in flight (if any) is over. Safe to call twice."""
        self._conn.close()

    # --- meta --------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        with self._conn.use() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        with self._conn.use() as db:
            db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value),
            )

    def _create_epoch(self) -> str:
        epoch = secrets.token_hex(4)
        self._set_meta("epoch", epoch)
        return epoch

    @property
    def acked_through(self) -> int:
        return int(self._meta("acked_through") or 0)

    def set_acked_through(self, seq: int) -> None:
        """Record the centre's cumulative acknowledgement; it never goes backwards."""
        with self._conn.use():  # the check and the write together
            if seq > self.acked_through:
                self._set_meta("acked_through", str(min(seq, self.last_seq)))

    # --- writing -----------------------------------------------------------------------

    def write(self, records: list[Record], snapshot: Snapshot | None = None) -> None:
        """Commit ``records`` (and optionally a snapshot) in one durable transaction."""
        rows = [(r.seq, r.event["day"], r.event["type"], r.event["at"], _dumps(r.event))
                for r in records]
        snap = None if snapshot is None else (snapshot[0], snapshot[1], _dumps(snapshot[2]))
        with self._conn.use() as db:
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany(
                        "INSERT INTO events(seq, day, type, at, body) VALUES (?, ?, ?, ?, ?)",
                        rows)
                    if snap is not None:
                        db.execute(
                            "INSERT OR REPLACE INTO snapshots(seq, day, body) VALUES (?, ?, ?)",
                            snap,
                        )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise JournalError(f"journal write failed: {exc}") from exc
            if rows:
                self.last_seq = max(self.last_seq, rows[-1][0])

    # --- reading -----------------------------------------------------------------------

    def read(self, after: int = 0, limit: int | None = None, through: int | None = None
             ) -> list[Record]:
        """Events with ``after < seq <= through``, in seq order, at most ``limit``."""
        sql = "SELECT seq, body FROM events WHERE seq > ?"
        args: list[Any] = [after]
        if through is not None:
            sql += " AND seq <= ?"
            args.append(through)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._conn.use() as db:
            return [Record(seq, json.loads(body)) for seq, body in db.execute(sql, args)]

    def day(self, day: str) -> list[Record]:
        with self._conn.use() as db:
            rows = db.execute("SELECT seq, body FROM events WHERE day = ? ORDER BY seq", (day,))
            return [Record(seq, json.loads(body)) for seq, body in rows]

    def iter_all(self, after: int = 0, chunk: int = 5000) -> Iterator[Record]:
        while True:
            batch = self.read(after, chunk)
            if not batch:
                return
            yield from batch
            after = batch[-1].seq

    def latest_snapshot(self) -> tuple[int, dict[str, Any]] | None:
        with self._conn.use() as db:
            row = db.execute(
                "SELECT seq, body FROM snapshots ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    # --- retention ---------------------------------------------------------------------

    def prune(self, before_day: str) -> int:
        """Delete events of days before ``before_day`` that the centre has acknowledged,
        and only below the newest snapshot (the state never needs them again)."""
        with self._conn.use() as db:
            snap = db.execute("SELECT max(seq) FROM snapshots").fetchone()[0] or 0
            limit = min(self.acked_through, snap)
            cur = db.execute(
                "DELETE FROM events WHERE seq <= ? AND day < ?", (limit, before_day)
            )
            db.execute("DELETE FROM snapshots WHERE seq < ?", (snap,))
            return cur.rowcount

    def blank_forms(self, before_day: str) -> int:
        """Blank the values of the pre-filled forms (``form_filled``) of days before
        ``before_day`` that the centre has acknowledged, and the forms in snapshots of
        those days (docs/integrations.md, "Retention"); returns the forms blanked. An
        unsent form is kept until it is sent: nothing is lost on the way to the centre."""
        acked = self.acked_through
        with self._conn.use() as db:
            rows = db.execute(
                "SELECT seq, body FROM events WHERE type = 'form_filled' AND day < ? "
                "AND seq <= ? AND body NOT LIKE '%\"blanked\":true%'",
                (before_day, acked)).fetchall()
            snaps = db.execute("SELECT seq, body FROM snapshots WHERE day < ?",
                               (before_day,)).fetchall()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany("UPDATE events SET body = ? WHERE seq = ?",
                                   [(_dumps(blanked(json.loads(b))), q) for q, b in rows])
                    for seq, body in snaps:
                        state = json.loads(body)
                        if state.get("forms"):
                            state["forms"] = {}
                            db.execute("UPDATE snapshots SET body = ? WHERE seq = ?",
                                       (_dumps(state), seq))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise JournalError(f"blanking forms failed: {exc}") from exc
            return len(rows)


@dataclass(slots=True)
class _Job:
    records: list[Record]
    snapshot: Snapshot | None
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop
    recover: bool = False  # a marker: everything before it has been settled
    call: Callable[[Journal], Any] | None = None  # run on the writer thread, in order


@dataclass
class GroupCommitter:
    """Commits from one writer thread, batching whatever is queued into one transaction.

    With one client each commit is one transaction; with fifty, the jobs queued while a
    commit is on its way to the disk go together in the next one (group commit). Jobs are
    committed strictly in submission order. If a commit fails, it and every job queued
    behind it fail with :class:`JournalError` (the caller rebuilds its state).
    """

    journal: Journal
    max_batch: int = 512
    _queue: queue.SimpleQueue[_Job | None] = field(default_factory=queue.SimpleQueue)
    _thread: threading.Thread | None = None
    batches: int = 0
    failures: int = 0
    _broken: JournalError | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    def submit(self, records: list[Record], snapshot: Snapshot | None = None
               ) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Job(records, snapshot, fut, loop))
        return fut

    async def call(self, fn: Callable[[Journal], Any]) -> Any:
        """Run ``fn(journal)`` on the writer thread after everything queued before it."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Job([], None, fut, loop, call=fn))
        return await fut

    async def recover(self) -> None:
        """Wait until every job submitted so far is settled, then accept commits again."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Job([], None, fut, loop, recover=True))
        await fut

    def stop(self) -> None:
        """Finish what is queued, then end the thread. Safe to call twice."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            stop = False
            while len(jobs) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
            self._commit(jobs)
            if stop:
                return

    def _commit(self, jobs: list[_Job]) -> None:
        while jobs:
            cut = next(
                (i for i, j in enumerate(jobs) if j.recover or j.call is not None), len(jobs)
            )
            self._commit_run(jobs[:cut])
            if cut < len(jobs):
                self._special(jobs[cut])
            jobs = jobs[cut + 1:]

    def _special(self, job: _Job) -> None:
        result: Any = None
        error: BaseException | None = None
        if job.recover:
            self._broken = None
        elif job.call is not None:
            try:
                result = job.call(self.journal)
            except Exception as exc:
                error = exc
        job.loop.call_soon_threadsafe(_settle, job.future, error, result)

    def _commit_run(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        error: JournalError | None = self._broken
        if error is None:
            records = [r for j in jobs for r in j.records]
            snapshots = [j.snapshot for j in jobs if j.snapshot is not None]
            try:
                self.journal.write(records, snapshots[-1] if snapshots else None)
                self.batches += 1
            except JournalError as exc:
                # Later jobs hold events applied after these: they must fail too, until
                # the owner has rebuilt its state and called recover().
                error = self._broken = exc
                self.failures += 1
        for j in jobs:
            j.loop.call_soon_threadsafe(_settle, j.future, error)


def _settle(fut: asyncio.Future[Any], error: BaseException | None, result: Any = None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(result)
    else:
        fut.set_exception(error)
