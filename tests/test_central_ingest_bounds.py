"""Every line between the broker and the store is bounded, and admission is per branch
(central/admission.py, central/ingest.py, central/live.py): the pure parts, fed directly."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import central.live
from central.admission import NOTE_EVERY_S, BranchLimits, Rate, cost_of
from central.config import load_centre_config
from central.ingest import Consumer
from central.live import LiveBoard
from central.settings import LiveSettings
from central.store import EventBatch, Inbound, open_store
from protocols import uplink as proto
from tests.branch_flood import snapshot, ticket
from tests.uplink_support import wait_for

B1, B2 = "1001010001", "1001010002"
RATES = {"events": Rate(50.0, 1000.0), "status": Rate(5.0, 20.0), "health": Rate(1.0, 10.0)}


def limits(known_cap: int = 100, unknown_cap: int = 10) -> BranchLimits:
    return BranchLimits(RATES, known_cap=known_cap, unknown_cap=unknown_cap)


# --- token buckets ---------------------------------------------------------------------------


def test_a_branch_gets_its_burst_then_its_rate_and_the_others_are_untouched() -> None:
    lim = limits()
    assert sum(lim.allow(B1, "status", 1, 0.0) for _ in range(100)) == 20  # the burst
    assert sum(lim.allow(B1, "status", 1, 1.0) for _ in range(100)) == 5  # 1 s at 5/s
    assert lim.allow(B1, "health", 1, 1.0) and lim.allow(B1, "events", 1, 1.0)  # per class
    assert sum(lim.allow(B2, "status", 1, 1.0) for _ in range(100)) == 20  # per branch


def test_a_message_costs_a_token_per_started_64_kib() -> None:
    assert [cost_of(n) for n in (0, 1, 65_536, 65_537, 5 * 2**20)] == [1, 1, 1, 2, 80]
    lim = limits()
    assert lim.allow(B1, "health", 10, 0.0) and not lim.allow(B1, "health", 1, 0.0)


def test_the_table_holds_the_known_branches_and_a_few_others() -> None:
    lim = limits(known_cap=3, unknown_cap=10)
    lim.know([B1, B2])
    for _ in range(20):
        lim.allow(B1, "status", 1, 0.0)  # B1 drained
    for n in range(10_000):  # codes nobody knows, e.g. without the broker's ACL
        lim.allow(f"9{n:09d}", "status", 1, 0.0)
    assert len(lim) == 2 + 10
    assert not lim.allow(B1, "status", 1, 0.0)  # still drained: never evicted
    lim.know(str(n) for n in range(1000))  # more than known_cap: the first three kept
    assert len(lim) <= 3 + 10


def test_a_flood_is_noted_at_most_once_a_minute_per_branch_with_its_rate() -> None:
    lim = limits()
    for i in range(1000):  # 1,000 status messages in 10 s: 100/s
        lim.allow(B1, "status", 1, i / 100)
    lim.allow(B2, "status", 1, 10.0)  # within its limit: no note
    (note,) = lim.due(10.0)
    assert (note.branch, note.cls, note.limit) == (B1, "status", 5.0)
    assert note.limited == 1000 - 20 - 49 and 95 < note.rate < 105
    assert note.body() == {"class": "status", "limited": note.limited,
                           "rate": round(note.rate, 1), "limit": 5.0}
    for i in range(1000):
        lim.allow(B1, "status", 1, 10 + i / 100)
    assert lim.due(NOTE_EVERY_S) == []  # noted 50 s ago: not yet
    (again,) = lim.due(10.0 + NOTE_EVERY_S)
    assert again.limited > 0 and lim.due(10.0 + NOTE_EVERY_S) == []


# --- the consumer's admission and lines --------------------------------------------------------


def consumer(*sets: str) -> Consumer:
    return Consumer(load_centre_config(None, ["ingest.status_burst=3", *sets]))


async def test_status_is_latest_wins_and_never_queued() -> None:
    """Over the limit or not, the latest is kept (a Last Will after a live flood)."""
    c = consumer()
    line = c._new_line()
    for n in range(10):
        line.offer(proto.topic(B1, "live"), snapshot(B1, n))
    assert line.qsize() == 0 and len(c._latest["live"]) == 1
    kept = json.loads(c._latest["live"][B1][1])
    assert kept["status"]["waiting_total"] == 9  # the latest, though over the limit
    # each superseded: the first two by one within the burst of 3, the rest by one over it
    assert c.stats.dropped == {("status", "superseded"): 2, ("status", "rate"): 7}
    assert c.stats.messages == 10


async def test_a_last_will_after_a_live_flood_is_kept() -> None:
    c = consumer()
    line = c._new_line()
    for n in range(100):  # the status class's bucket drained by live snapshots
        line.offer(proto.topic(B1, "live"), snapshot(B1, n))
    line.offer(proto.topic(B1, "status"), proto.encode(proto.will(B1, "e1")))
    assert json.loads(c._latest["status"][B1][1])["online"] is False


async def test_the_line_is_bounded_in_messages_and_bytes_and_counts_what_it_drops() -> None:
    c = consumer("ingest.line_messages=10", "ingest.line_bytes=1048576",
                 "ingest.events_burst=10000")
    line = c._new_line()
    batch = proto.encode(proto.events_batch(B1, "e1", [ticket(1)]))
    for _ in range(50):
        line.offer(proto.topic(B1, "events"), batch)
    assert line.qsize() == 10 and line.bytes == 10 * len(batch)
    assert c.stats.dropped == {("events", "line_full"): 40}
    big = b"x" * 600_000
    line.get_nowait()
    line.offer(proto.topic(B2, "totals"), big)  # room for 1 message, not bytes
    line.offer(proto.topic(B2, "totals"), big)
    assert line.qsize() == 10 and c.stats.dropped["events", "line_full"] == 41
    while line.qsize():
        await line.get()
    assert line.bytes == 0


@settings(max_examples=300, deadline=None)
@given(topic=st.text(max_size=80) | st.builds(
    lambda b, k: f"qms/v1/{b}/{k}", st.text(max_size=40),
    st.sampled_from(["events", "totals", "reply", "status", "live", "health", "ack", "x"])),
    payload=st.binary(max_size=200))
def test_admission_takes_any_topic_and_payload(topic: str, payload: bytes) -> None:
    c = consumer("ingest.unknown_branches=5", "ingest.known_branches=5")
    for _ in range(3):
        queued = c._admit(topic, payload)
        assert isinstance(queued, bool)
    assert all(len(kept) <= 10 for kept in c._latest.values())
    assert c.stats.messages == 3


async def test_receiving_waits_while_the_pending_messages_are_at_their_bound() -> None:
    c = consumer("ingest.pending_messages=10")
    batches = [proto.encode(proto.events_batch(B1, "e1", [ticket(n)])) for n in range(1, 41)]
    line = c._new_line()
    for b in batches:
        line.offer(proto.topic(B1, "events"), b)
    task = asyncio.create_task(c._receive(line))
    try:
        # Unbounded, all 40 would be taken before the first look: the 10 show the bound.
        await wait_for(lambda: len(c._inbound) >= 10, 5, "the line full", poll=0.005)
        assert len(c._inbound) == 10 and line.qsize() == 30  # the rest waits in the line
        c._take(5)
        c._room.set()  # what a commit does
        await wait_for(lambda: line.qsize() <= 25, 5, "five more taken", poll=0.005)
        assert len(c._inbound) == 10 and line.qsize() == 25
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# --- the live board ---------------------------------------------------------------------------


def test_the_board_reads_what_changed_each_poll_and_everything_every_few_seconds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(central.live, "FULL_READ_EVERY_S", 1e9)  # no whole read but the first
    url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    store = open_store(url)
    codes = [f"10010100{n:02d}" for n in range(50)]
    store.ingest(Inbound(batches=[EventBatch(c, "e1", [ticket(1)]) for c in codes]),
                 now=1000.0)
    centre: Any = SimpleNamespace(config=SimpleNamespace(store=SimpleNamespace(url=url)))
    board = LiveBoard(centre, LiveSettings())

    def poll() -> tuple[int, dict[str, int]]:
        before = board.rows_read
        board._poll()
        return board.rows_read - before, {c: t.folded for c, t in board._tracked.items()}

    def online(code: str) -> bool:
        return bool(board._tracked[code].row.get("online"))

    try:
        read, folded = poll()  # the first poll reads both tables whole
        assert read == 100 and set(folded.values()) == {1}
        store.ingest(Inbound(batches=[EventBatch(codes[0], "e1", [ticket(2)])]), now=1010.0)
        read, folded = poll()  # the rows stamped within the margin of the newest seen
        assert read == 50 and folded[codes[0]] == 2
        read, folded = poll()  # nothing new: the one row stamped since, read again
        assert read == 1
        store.save_live({codes[2]: {"online": True}}, {}, {}, now=1020.0)
        read, _ = poll()  # a branch's status: its row, and the marks row of 1010
        assert read == 2 and online(codes[2])
        # A writer whose clock is an hour ahead: its row is read, the watermark stays.
        store.ingest(Inbound(batches=[EventBatch(codes[4], "e1", [ticket(2)])]),
                     now=time.time() + 3600)
        poll()
        store.ingest(Inbound(batches=[EventBatch(codes[5], "e1", [ticket(2)])]), now=1030.0)
        _, folded = poll()
        assert folded[codes[4]] == 2 and folded[codes[5]] == 2
        # Commits stamped long before the newest seen (a transaction that took longer
        # than the margin): not in the next poll's read, but in the next whole one.
        store.ingest(Inbound(batches=[EventBatch(codes[1], "e1", [ticket(2)])]), now=900.0)
        store.save_live({codes[3]: {"online": True}}, {}, {}, now=900.0)
        read, folded = poll()
        assert folded[codes[1]] == 1 and not online(codes[3])
        monkeypatch.setattr(central.live, "FULL_READ_EVERY_S", 0.0)
        read, folded = poll()
        assert read == 100 and folded[codes[1]] == 2 and online(codes[3])
    finally:
        store.close()
        board._close_store()
        board._executor.shutdown()


def test_a_poll_that_fails_halfway_is_made_good_by_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(central.live, "FULL_READ_EVERY_S", 1e9)  # no whole read but the first
    url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    store = open_store(url)
    store.ingest(Inbound(batches=[EventBatch(B1, "e1", [ticket(1)])]), now=1000.0)
    centre: Any = SimpleNamespace(config=SimpleNamespace(store=SimpleNamespace(url=url)))
    board = LiveBoard(centre, LiveSettings())
    try:
        board._poll()
        store.ingest(Inbound(batches=[EventBatch(B1, "e1", [ticket(2)])]), now=1100.0)
        # another branch, stamped later: the failed poll's read moves the newest seen
        # well past B1's stamp
        store.ingest(Inbound(batches=[EventBatch(B2, "e1", [ticket(1)])]), now=1200.0)
        fold = board._fold_few

        def lost(*args: Any) -> None:  # the store went away after the marks were read
            monkeypatch.setattr(board, "_fold_few", fold)
            raise OSError("connection lost")

        monkeypatch.setattr(board, "_fold_few", lost)
        with pytest.raises(OSError):
            board._poll()
        changed, summaries, _ = board._poll()  # reads everything again
        assert B1 in changed and summaries[B1]["issued"] == 2
    finally:
        store.close()
        board._close_store()
        board._executor.shutdown()


def test_the_board_loads_a_flooded_day_a_bounded_slice_per_poll(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    store = open_store(url)
    store.ingest(Inbound(batches=[EventBatch(B1, "e1", [ticket(n) for n in range(1, 121)])]))
    store.close()
    monkeypatch.setattr(central.live, "FETCH_LIMIT", 50)
    centre: Any = SimpleNamespace(config=SimpleNamespace(store=SimpleNamespace(url=url)))
    board = LiveBoard(centre, LiveSettings())
    try:
        folded = []
        for _ in range(4):
            board._poll()
            t = board._tracked[B1]
            folded.append((t.folded, t.fig.events))
        assert folded == [(50, 50), (100, 100), (120, 120), (120, 120)]
    finally:
        board._close_store()
        board._executor.shutdown()
