"""The store keeps writing through a lost primary: it reconnects with back-off and runs the
whole transaction again, which stores nothing twice (docs/deploy.md "PostgreSQL failover").

Each test runs a real PostgreSQL 15 of its own (tests/pg_cluster_support.py) and does to it
what a failover does to the centre's connection: its backend terminated (admin shutdown),
the server stopped (connection refused) and started again, the server made read-only (a
demoted primary) with a second, writable host next in the URL.
"""

from __future__ import annotations

import secrets
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from central.errors import StoreError
from central.store import EventBatch, Inbound, Store
from tests.pg_cluster_support import PgServer, own_folder, pg_server, wait_until

B1 = "1001010001"


def ev(seq: int) -> dict[str, Any]:
    return {"seq": seq, "type": "ticket_issued", "at": 1764036000.0 + seq,
            "day": "2026-11-25", "queue": "A", "number": f"A{seq:03d}"}


def batch(*seqs: int) -> Inbound:
    return Inbound(batches=[EventBatch(B1, "e1", [ev(s) for s in seqs],
                                       f"qms/v1/{B1}/events", b"{}")])


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    with pg_server() as s:
        yield s


def schema_url(server: PgServer) -> str:
    """A fresh schema on ``server``."""
    schema = f"t_{secrets.token_hex(5)}"
    server.admin(f"CREATE SCHEMA {schema}")
    return f"{server.url}?options=-csearch_path%3D{schema}"


def backend_of(store: Store) -> int:
    return int(store.db.info.backend_pid)


def seqs(store: Store) -> list[int]:
    return [e["seq"] for e in store.events(B1)]


def test_a_terminated_connection_is_replaced_and_the_group_commits(server: PgServer) -> None:
    store = Store(schema_url(server))
    try:
        store.ingest(batch(1, 2, 3))
        server.admin("SELECT pg_terminate_backend(%s)", backend_of(store))  # admin shutdown
        r = store.ingest(batch(4, 5))
        assert (r.inserted, r.marks[0].contiguous) == (2, 5)
        assert seqs(store) == [1, 2, 3, 4, 5]
        assert len(store.outages) == 1
        assert "AdminShutdown" in store.outages[0].error or "Operational" in \
            store.outages[0].error
    finally:
        store.close()


def test_a_group_cut_mid_transaction_runs_again_and_stores_each_event_once(
        server: PgServer) -> None:
    """The connection dies while the group's transaction waits on a branch's mark (another
    consumer holds it): the whole group runs again on a new connection."""
    url = schema_url(server)
    store = Store(url)
    try:
        store.ingest(batch(1, 2, 3))
        with psycopg.connect(url, autocommit=True) as other:
            tx = other.transaction()
            tx.__enter__()
            other.execute("SELECT * FROM marks WHERE branch = %s FOR UPDATE", (B1,))
            pid = backend_of(store)
            done: list[Any] = []
            t = threading.Thread(target=lambda: done.append(store.ingest(batch(2, 3, 4, 5))))
            t.start()
            wait_until(lambda: server.admin(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
                pid), 15, "the group to wait on the mark's lock")
            server.admin("SELECT pg_terminate_backend(%s)", pid)
            tx.__exit__(None, None, None)
            t.join(30)
        assert not t.is_alive() and done, "the group did not commit"
        r = done[0]
        assert (r.inserted, r.duplicates, r.marks[0].contiguous) == (2, 2, 5)
        assert seqs(store) == [1, 2, 3, 4, 5]
        assert store.count_events(B1) == 5
        assert len(store.outages) == 1
    finally:
        store.close()


def cut_the_first_commit_on(url: str, table: str) -> None:
    """The first COMMIT of a transaction that wrote to ``table`` loses its connection: a
    deferred trigger (run at COMMIT) terminates its own backend, once (a sequence is not
    rolled back)."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE SEQUENCE cut_once")
        db.execute("CREATE FUNCTION cut() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "IF nextval('cut_once') = 1 THEN "
                   "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(10); "
                   "END IF; RETURN NULL; END $$")
        db.execute(f"CREATE CONSTRAINT TRIGGER cut AFTER INSERT ON {table} DEFERRABLE "
                   "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cut()")


def test_a_group_commit_cut_during_its_commit_runs_again_and_stores_once(
        server: PgServer) -> None:
    """The outcome of a COMMIT whose connection dies is unknown to the centre: the ingest
    runs the group again (it is idempotent), and acknowledges only that second commit."""
    url = schema_url(server)
    store = Store(url)
    try:
        store.ingest(batch(1, 2))
        cut_the_first_commit_on(url, "events")
        r = store.ingest(batch(3, 4, 5))
        assert (r.inserted, r.marks[0].contiguous) == (3, 5)
        assert seqs(store) == [1, 2, 3, 4, 5]
        assert len(store.outages) == 1
    finally:
        store.close()


def test_a_write_that_is_not_idempotent_is_not_run_twice_after_a_lost_commit(
        server: PgServer) -> None:
    url = schema_url(server)
    store = Store(url)
    try:
        store.execute("CREATE TABLE notes (body TEXT)")
        cut_the_first_commit_on(url, "notes")
        runs: list[int] = []

        def add() -> None:
            runs.append(1)
            store.execute("INSERT INTO notes VALUES ('once')")

        with pytest.raises(StoreError, match="outcome is unknown"):
            store.retrying(add)
        assert len(runs) == 1
        assert store.execute("SELECT count(*) FROM notes").fetchone()[0] == 0  # connected again
        store.retrying(add)
        assert store.execute("SELECT count(*) FROM notes").fetchone()[0] == 1
    finally:
        store.close()


def test_the_store_waits_for_a_primary_that_comes_back(server: PgServer) -> None:
    pauses: list[float] = []

    def pause(s: float) -> None:  # the back-off: the server comes back at the third pause
        pauses.append(s)
        if len(pauses) == 3:
            server.start()

    store = Store(schema_url(server), sleep=pause)
    try:
        store.ingest(batch(1))
        server.stop("fast")  # connections end; new ones are refused
        r = store.ingest(batch(2, 3))
        assert r.marks[0].contiguous == 3 and seqs(store) == [1, 2, 3]
        assert pauses[:3] == [0.05, 0.1, 0.2]  # doubling from 50 ms
        assert store.outages[-1].attempts == len(pauses)
    finally:
        store.close()
        if not server.admin("SELECT 1"):
            server.start()


def test_a_store_opened_without_a_primary_fails_at_once(server: PgServer) -> None:
    """Only writes wait for a primary: opening says at once that there is none (the
    centre's start exits 2 on it; a consumer opens its store again on its own loop)."""
    url = schema_url(server)
    server.stop("fast")
    try:
        with pytest.raises(StoreError, match="Connection refused"):
            Store(url, sleep=lambda s: pytest.fail("opening must not wait"))
    finally:
        server.start()


def test_without_a_primary_for_its_patience_the_write_fails_and_nothing_is_acked(
        server: PgServer) -> None:
    now = [0.0]

    def pause(s: float) -> None:  # no real waiting: the clock moves by the pause
        now[0] += s

    store = Store(schema_url(server), patience_s=5.0, sleep=pause, monotonic=lambda: now[0])
    try:
        server.stop("fast")
        with pytest.raises(StoreError, match="no primary for"):
            store.ingest(batch(1))
        assert not store.outages  # no commit: the consumer acknowledges nothing
        assert 5.0 <= now[0] < 7.0  # pauses capped at one second
    finally:
        server.start()
        store.close()


def test_a_refused_row_is_not_mistaken_for_a_lost_primary(server: PgServer) -> None:
    store = Store(schema_url(server))
    try:
        with pytest.raises(psycopg.errors.UndefinedTable):
            store.retrying(lambda: store.execute("INSERT INTO no_such_table VALUES (1)"))
        assert not store.outages
        store.ingest(batch(1))  # the connection is still good
        assert seqs(store) == [1]
    finally:
        store.close()


def test_a_demoted_primary_is_left_for_the_writable_host_of_a_multi_host_url(
        server: PgServer) -> None:
    """``postgresql://a,b/db?target_session_attrs=read-write``: when ``a`` turns read-only
    (as a demoted primary does) the group runs again on ``b``."""
    root = own_folder("paidui-pg-b-")
    other = PgServer(root).init()
    other.start()
    try:
        schema = f"t_{secrets.token_hex(5)}"
        for s in (server, other):
            s.admin(f"CREATE SCHEMA {schema}")
        url = (f"postgresql://postgres@127.0.0.1:{server.port},127.0.0.1:{other.port}/postgres"
               f"?target_session_attrs=read-write&options=-csearch_path%3D{schema}")
        Store(f"{other.url}?options=-csearch_path%3D{schema}").close()  # b's schema ready
        store = Store(url)
        try:
            assert store.db.info.port == server.port  # the first host, while writable
            store.ingest(batch(1, 2))
            server.read_only(True)
            r = store.ingest(batch(3, 4))
            assert store.db.info.port == other.port
            assert r.inserted == 2 and len(store.outages) == 1
            assert "ReadOnlySqlTransaction" in store.outages[0].error
        finally:
            store.close()
            server.read_only(False)
    finally:
        other.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
