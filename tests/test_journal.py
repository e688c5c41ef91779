"""The journal (SPEC A3, F1): durable before shown, continuous after a restart, group commit,
a full disk refused cleanly, retention that never drops unacknowledged events."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from common.clock import ManualClock
from controller.box import Box
from controller.config import Config
from controller.engine import CallNext, IssueTicket, Login, State
from controller.errors import JournalError
from controller.journal import Journal
from tests.branches import branch


async def issue(box: Box, queue: str = "A") -> str:
    events = await box.execute(IssueTicket(queue=queue))
    return next(e["number"] for e in events if e["type"] == "ticket_issued")


async def test_numbering_continues_after_a_restart(config: Config, clock: ManualClock,
                                                  tmp_path: Path) -> None:
    async with Box(config, tmp_path, clock) as box:
        first = [await issue(box) for _ in range(3)]
        epoch, seq = box.epoch, box.last_seq
    async with Box(config, tmp_path, clock) as box:
        assert await issue(box) == "A004"
        assert box.epoch == epoch and box.last_seq > seq
    assert first == ["A001", "A002", "A003"]


async def test_events_are_in_the_journal_before_execute_returns(box: Box) -> None:
    events = await box.execute(IssueTicket(queue="A"))
    # A separate connection (another process would see the same): the row is there.
    db = sqlite3.connect(box.data_dir / "journal.sqlite3")
    rows = db.execute("SELECT seq, type FROM events ORDER BY seq").fetchall()
    db.close()
    assert rows[-1] == (events[-1]["seq"], "ticket_issued")


async def test_seq_is_monotonic_and_gapless(box: Box) -> None:
    for q in "ABAB":
        await issue(box, q)
    seqs = [r.seq for r in await box.read_events(0, 100)]
    assert seqs == list(range(1, len(seqs) + 1))


SNAPSHOT_EVERY_5 = branch(journal={"snapshot_every": 5})


async def a_morning_with_snapshots(tmp_path: Path, clock: ManualClock) -> dict[str, Any]:
    """Twelve tickets and a call on a box that takes a snapshot every 5 events; the state
    it closed with."""
    async with Box(SNAPSHOT_EVERY_5, tmp_path, clock) as box:
        await box.execute(Login(1, "t1", "1234"))
        for _ in range(12):
            await issue(box)
        await box.execute(CallNext(1))
        return box.engine.state.to_dict()


async def test_restart_from_a_snapshot_replays_only_the_tail(clock: ManualClock,
                                                             tmp_path: Path) -> None:
    before = await a_morning_with_snapshots(tmp_path, clock)
    j = Journal(tmp_path / "journal.sqlite3")
    snap = j.latest_snapshot()
    tail = j.read(snap[0]) if snap is not None else []
    j.close()
    assert snap is not None and snap[0] >= 5 and tail  # a snapshot, and events after it
    async with Box(SNAPSHOT_EVERY_5, tmp_path, clock) as box:
        assert box.engine.state.to_dict() == before


async def test_a_snapshot_an_older_box_wrote_is_read(clock: ManualClock,
                                                     tmp_path: Path) -> None:
    """Before the tickets were rows, a snapshot held one object per ticket: a box updated
    over such a journal starts from it, with the same state."""
    before = await a_morning_with_snapshots(tmp_path, clock)
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    seq, body = db.execute("SELECT seq, body FROM snapshots ORDER BY seq DESC").fetchone()
    state = json.loads(body)
    names, rows = state.pop("ticket_fields"), state.pop("ticket_rows")
    state["tickets"] = [dict(zip(names, row, strict=True)) for row in rows]  # the old form
    with db:
        db.execute("UPDATE snapshots SET body = ? WHERE seq = ?", (json.dumps(state), seq))
    db.close()
    async with Box(SNAPSHOT_EVERY_5, tmp_path, clock) as box:
        assert json.loads(json.dumps(box.engine.state.to_dict())) == json.loads(
            json.dumps(before))
        assert await issue(box) == "A013"


async def test_fifty_concurrent_issues_share_commits_and_get_distinct_numbers(box: Box) -> None:
    numbers = await asyncio.gather(*(issue(box) for _ in range(50)))
    assert sorted(numbers) == [f"A{i:03d}" for i in range(1, 51)]
    assert box._committer is not None and box._committer.batches < 50  # grouped


def journal_numbers(path: Path) -> list[str]:
    """The ticket numbers the journal file holds, read as another process would."""
    j = Journal(path / "journal.sqlite3")
    try:
        return [r.event["number"] for r in j.iter_all() if r.event["type"] == "ticket_issued"]
    finally:
        j.close()


async def test_a_full_disk_refuses_the_ticket_and_loses_nothing(box: Box) -> None:
    for _ in range(3):
        await issue(box)
    assert box.journal is not None
    pages = box.journal.db.execute("PRAGMA page_count").fetchone()[0]
    box.journal.db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now "full"
    with pytest.raises(JournalError):
        for _ in range(200):
            await issue(box)
    # Numbers that could not be written were never given out: memory equals the journal.
    durable = journal_numbers(box.data_dir)
    assert [t.number for t in box.engine.state.tickets.values()] == durable
    box.journal.db.execute("PRAGMA max_page_count = 1073741823")  # space freed
    assert await issue(box) == f"A{len(durable) + 1:03d}"  # no hole, no duplicate


async def test_after_a_failed_write_the_state_is_rebuilt_from_the_journal(
        config: Config, clock: ManualClock, tmp_path: Path) -> None:
    async with Box(config, tmp_path, clock) as box:
        await issue(box)
        assert box.journal is not None
        box.journal.db.execute("PRAGMA max_page_count = 1")
        with pytest.raises(JournalError):
            for _ in range(100):
                await issue(box)
        in_memory = box.engine.state.to_dict()
        box.journal.db.execute("PRAGMA max_page_count = 1073741823")
        assert box.journal_failures >= 1
    replayed = State()
    j = Journal(tmp_path / "journal.sqlite3")
    for rec in j.iter_all():
        replayed.apply(rec.event)
    j.close()
    assert replayed.to_dict() == in_memory


async def test_retention_keeps_unacknowledged_events(clock: ManualClock, tmp_path: Path
                                                     ) -> None:
    cfg = branch(journal={"snapshot_every": 1})
    async with Box(cfg, tmp_path, clock) as box:
        await issue(box)
        clock.advance(100 * 86400)  # a hundred days later
        await issue(box)
        assert await box.prune(keep_days=90) == 0  # nothing acknowledged: nothing deleted
        await box.acknowledge(box.last_seq)
        assert await box.prune(keep_days=90) > 0
        assert await issue(box) == "A002"
    async with Box(cfg, tmp_path, clock) as box:  # and a restart still rebuilds today
        assert await issue(box) == "A003"


async def test_a_corrupt_journal_file_is_a_clear_error(config: Config, clock: ManualClock,
                                                      tmp_path: Path) -> None:
    (tmp_path / "journal.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="journal"):
        async with Box(config, tmp_path, clock):
            pass


async def test_retention_runs_daily_and_at_start_and_spares_unsent_events(
        clock: ManualClock, tmp_path: Path) -> None:
    from tests.uplink_support import journal_rows, wait_for

    cfg = branch(journal={"snapshot_every": 1, "keep_days": 90})
    async with Box(cfg, tmp_path, clock, tick_s=0.01) as box:
        await issue(box)
        sent = box.last_seq
        await box.acknowledge(sent)  # the centre has the first ticket ...
        await issue(box)  # ... but not the second (unsent)
        first_day = box.engine.state.day
        clock.advance(91 * 86400)  # 91 virtual days later the box is still running

        def old_sent() -> list[int]:
            return [s for s, e in journal_rows(tmp_path) if s <= sent]

        await wait_for(lambda: not old_sent(), timeout=10, what="the daily retention")
        unsent = [e for s, e in journal_rows(tmp_path) if s > sent and e["day"] == first_day]
        assert any(e["type"] == "ticket_issued" for e in unsent)  # never pruned while unsent
        await box.acknowledge(box.last_seq)
    clock.advance(91 * 86400)
    async with Box(cfg, tmp_path, clock, tick_s=3600) as box:  # no tick: only the start
        assert not [e for _, e in journal_rows(tmp_path) if e["day"] == first_day]
        assert await issue(box) == "A001"



async def test_a_restart_replays_at_most_a_day_s_tickets_of_events(clock: ManualClock,
                                                                   tmp_path: Path) -> None:
    """Snapshots on a day of more tickets than ``snapshot_every`` are that many events
    apart (docs/journal.md "Restart"): what a restart replays after the newest is bounded
    by the day's tickets, never the whole day's journal."""
    async with Box(SNAPSHOT_EVERY_5, tmp_path, clock) as box:
        for _ in range(40):
            await issue(box)
        last = box.last_seq
    j = Journal(tmp_path / "journal.sqlite3")
    snap = j.latest_snapshot()
    j.close()
    assert snap is not None and 0 <= last - snap[0] <= 40
