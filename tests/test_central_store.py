"""The centre's store on SQLite and PostgreSQL: idempotent, order-free ingest; marks."""

from __future__ import annotations

import random
from typing import Any

import pytest

from central.store import MIGRATIONS, DeadLetter, EventBatch, Inbound, Store, open_store
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401

B1, B2 = "1001010001", "1001010002"


def ev(seq: int, **fields: Any) -> dict[str, Any]:
    return {"seq": seq, "type": "ticket_issued", "at": 1764036000.0 + seq,
            "day": "2026-11-25", "queue": "A", "number": f"A{seq:03d}", **fields}


def batch(branch: str, *seqs: int, epoch: str = "e1") -> EventBatch:
    return EventBatch(branch, epoch, [ev(s) for s in seqs], f"qms/v1/{branch}/events", b"{}")


@pytest.fixture
def store(store_url: str) -> Any:
    s = open_store(store_url)
    yield s
    s.close()


def test_in_order_batches_advance_the_mark(store: Store) -> None:
    r = store.ingest(Inbound(batches=[batch(B1, 1, 2, 3)]))
    assert r.inserted == 3 and r.duplicates == 0
    assert r.marks[0].contiguous == 3 and r.marks[0].next_present is None
    r = store.ingest(Inbound(batches=[batch(B1, 4, 5)]))
    assert r.marks[0].contiguous == 5
    assert [e["seq"] for e in store.events(B1)] == [1, 2, 3, 4, 5]


def test_duplicates_are_ignored_and_counted(store: Store) -> None:
    store.ingest(Inbound(batches=[batch(B1, 1, 2, 3)]))
    r = store.ingest(Inbound(batches=[batch(B1, 2, 3, 4)]))
    assert (r.inserted, r.duplicates) == (1, 2)
    assert store.count_events(B1) == 4


def test_a_gap_holds_the_mark_until_it_is_filled(store: Store) -> None:
    r = store.ingest(Inbound(batches=[batch(B1, 1, 2), batch(B1, 6, 7)]))
    assert r.marks[0].contiguous == 2 and r.marks[0].next_present == 6
    assert store.mark(B1, "e1").next_present == 6
    r = store.ingest(Inbound(batches=[batch(B1, 3, 4, 5)]))
    assert r.marks[0].contiguous == 7 and r.marks[0].next_present is None


def test_any_arrival_order_ends_with_every_event_once(store: Store) -> None:
    rng = random.Random(7)
    chunks = [list(range(i, min(i + 7, 101))) for i in range(1, 101, 7)]
    arrivals = chunks + rng.sample(chunks, 5)  # some twice
    rng.shuffle(arrivals)
    for c in arrivals:
        store.ingest(Inbound(batches=[batch(B1, *c)]))
    assert [e["seq"] for e in store.events(B1)] == list(range(1, 101))
    assert store.mark(B1, "e1").contiguous == 100


def test_branches_and_epochs_have_their_own_marks(store: Store) -> None:
    r = store.ingest(Inbound(batches=[batch(B1, 1, 2), batch(B2, 1), batch(B1, 1, epoch="e2")]))
    got = {(m.branch, m.epoch): m.contiguous for m in r.marks}
    assert got == {(B1, "e1"): 2, (B1, "e2"): 1, (B2, "e1"): 1}


def test_a_seq_far_ahead_is_dead_lettered(store: Store) -> None:
    store.max_ahead = 1000
    r = store.ingest(Inbound(batches=[batch(B1, 1), batch(B1, 5000)]))
    assert [d.reason for d in r.dead] == ["seq_far_ahead"]
    assert store.count_events(B1) == 1
    assert store.dead_letter_counts() == {"seq_far_ahead": 1}


def test_dead_letters_are_kept_with_reason_and_counted(store: Store) -> None:
    dead = [DeadLetter("qms/v1/1001010001/events", "malformed_json", "x", b"\xff\x00{"),
            DeadLetter("qms/v1/1001010001/events", "malformed_json", "y", b"["),
            DeadLetter("qms/v1/1001010001/live", "wrong_version", "v=2", b"{}")]
    store.ingest(Inbound(dead=dead))
    assert store.dead_letter_counts() == {"malformed_json": 2, "wrong_version": 1}
    rows = store.dead_letters()
    assert rows[0]["reason"] == "wrong_version"
    assert rows[-1]["payload"] == "\\xff\\x00{"


def test_totals_and_replies_are_upserted(store: Store) -> None:
    t = {"v": 1, "branch": B1, "epoch": "e1", "day": "2026-11-25", "events": 3,
         "first_seq": 1, "last_seq": 3, "queues": {"A": {"issued": 3}}}
    store.ingest(Inbound(totals=[t], replies=[(B1, {"id": "c1", "cmd": "pause", "ok": True})]))
    store.ingest(Inbound(totals=[{**t, "events": 4}]))
    assert store.totals("2026-11-25")[B1]["events"] == 4
    assert store.reply(B1, "c1") == {"id": "c1", "cmd": "pause", "ok": True}


def test_live_picture_and_lag(store: Store) -> None:
    store.ingest(Inbound(batches=[batch(B1, 1, 2, 3)]))
    store.save_live(
        status={B1: {"online": True, "epoch": "e1", "last_seq": 10, "version": "0.1.0"}},
        live={B1: {"status": {"queues": []}}},
        health={B1: {"devices": [], "link": {}, "last_seq": 12}},
    )
    (row,) = store.branches()
    assert row["online"] is True and row["last_seq"] == 12 and row["version"] == "0.1.0"
    assert row["live"] == {"status": {"queues": []}}
    assert store.lags() == [(B1, "e1", 3, 9)]
    store.save_live(status={B1: {"online": False, "epoch": "e1"}}, live={}, health={})
    assert store.branches()[0]["online"] is False
    assert store.branches()[0]["version"] == "0.1.0"


def test_migrations_run_once(store_url: str) -> None:
    a = open_store(store_url)
    a.ingest(Inbound(batches=[batch(B1, 1)]))
    newest = max(int(f.name[:4]) for f in (MIGRATIONS / "sqlite").glob("*.sql"))
    assert a.migrate() == newest  # each issue may add a migration
    a.close()
    b = open_store(store_url)  # reopening keeps the data and does not re-apply
    assert b.migrate() == newest and b.count_events() == 1
    b.close()


def test_two_connections_sharing_one_branch_end_at_its_last_seq(store_url: str) -> None:
    """Two consumers committing the same branch's batches at once (odd and even batches):
    whichever locks the mark last sees the other's rows, so the mark reaches the end."""
    import threading

    stores = [open_store(store_url), open_store(store_url)]
    chunks = [list(range(i, i + 10)) for i in range(1, 401, 10)]
    errors: list[BaseException] = []

    def work(store: Store, mine: list[list[int]]) -> None:
        try:
            for c in mine:
                store.ingest(Inbound(batches=[batch(B1, *c), batch(B2, *c)]))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(stores[k], chunks[k::2])) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for b in (B1, B2):
        assert stores[0].mark(b, "e1").contiguous == 400
        assert [e["seq"] for e in stores[0].events(b)] == list(range(1, 401))
    marks = {m.branch: m.contiguous for m in stores[1].marks()}
    for s in stores:
        s.close()
    assert marks == {B1: 400, B2: 400}  # the stored mark, not only a fresh walk


def test_every_migration_has_its_own_number_and_both_engines_the_same_ones() -> None:
    """The store applies migrations by number: two files with one number would leave one of
    them unapplied (two branches of work once both took 0060)."""
    folders = {d: sorted(f.name for f in (MIGRATIONS / d).glob("*.sql"))
               for d in ("sqlite", "postgres")}
    for names in folders.values():
        numbers = [int(n.split("_", 1)[0]) for n in names]
        assert len(numbers) == len(set(numbers)), names
    assert folders["sqlite"] == folders["postgres"]
