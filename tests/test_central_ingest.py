"""The centre's consumers against a real broker and real stores: dead letters, gaps and
replays, acks after commit, a shared group, reconciliation, the live picture and the API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from central.broker import LocalBroker
from central.service import Centre
from central.web import create_app
from protocols import uplink as proto
from tests.ingest_support import as_branch
from tests.office_support import login
from tests.uplink_support import (  # noqa: F401
    broker_fixture,
    centre_running,
    pg_url_fixture,
    running,
    store_url_fixture,
    wait_for,
)

B1, B2, B3 = "1001010001", "1001010002", "1001010003"
ROOT = Path(__file__).resolve().parent.parent


def ev(seq: int, etype: str = "ticket_issued", day: str = "2026-11-25", **f: Any
       ) -> dict[str, Any]:
    return {"seq": seq, "type": etype, "at": 1764036000.0 + seq * 60, "day": day, **f}


async def publish(client: aiomqtt.Client, branch: str, kind: str, msg: Any) -> None:
    payload = msg if isinstance(msg, bytes) else proto.encode(msg)
    await client.publish(proto.topic(branch, kind), payload, qos=1)


async def collect(client: aiomqtt.Client, topic: str) -> asyncio.Queue[dict[str, Any]]:
    q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await client.subscribe(topic, qos=1)
    return q


async def pump(client: aiomqtt.Client, q: asyncio.Queue[Any]) -> None:
    async for m in client.messages:
        q.put_nowait((str(m.topic), json.loads(bytes(m.payload or b"{}"))))


async def next_msg(q: asyncio.Queue[Any], kind: str, match: Any = None,
                   timeout: float = 10.0) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        while True:
            topic, msg = await q.get()
            if kind in topic and (match is None or match(msg)):
                return msg  # type: ignore[no-any-return]
    return await asyncio.wait_for(find(), timeout)


# --- bad input -----------------------------------------------------------------------------


async def test_bad_messages_are_dead_lettered_and_counted_never_a_crash(
        broker: LocalBroker, store_url: str) -> None:
    async with centre_running(broker, store_url, "ingest.max_ahead=1000") as centre, \
            as_branch(broker, B1) as box:
        await publish(box, B1, "events", b'{"v": 1, "branch": "1001010001", "epo')
        await publish(box, B1, "events", {**proto.events_batch(B1, "e1", [ev(1)]), "v": 2})
        await publish(box, B1, "events", proto.events_batch(B1, "e1", [ev(10**9)]))
        await publish(box, B1, "live", {"v": 1, "branch": B1})  # no status, no at
        await publish(box, B1, "events", proto.events_batch(B1, "e1", [ev(1), ev(2)]))

        async def counted() -> dict[str, int]:
            counts = await centre.read(lambda s: s.dead_letter_counts())
            stored = await centre.read(lambda s: s.count_events(B1))
            return counts if sum(counts.values()) == 4 and stored == 2 else {}

        counts = await wait_for(counted, 10, "four dead letters and the good batch stored")
        assert counts == {"malformed_json": 1, "wrong_version": 1, "seq_far_ahead": 1,
                          "invalid": 1}
        latest = await centre.read(lambda s: s.dead_letters())
        assert {d["topic"] for d in latest} == {f"qms/v1/{B1}/events", f"qms/v1/{B1}/live"}
        assert all(d["branch"] == B1 and d["detail"] for d in latest)
        assert dict(centre.stats.dead) == counts


async def test_a_message_of_megabytes_is_dead_lettered_and_the_connection_stays(
        broker: LocalBroker, store_url: str) -> None:
    # 2 MiB of junk (decoded: not JSON), and 4.5 MiB (over the uplink's 4 MiB, under the
    # broker's 5 MiB packet limit): each a dead letter, neither a broken connection
    async with centre_running(broker, store_url) as centre, as_branch(broker, B1) as box:
        clients = [c.client for c in centre.consumers]
        await publish(box, B1, "events", b"x" * (2 << 20))
        await publish(box, B1, "events", b"x" * (4_500_000))
        await publish(box, B1, "events", proto.events_batch(B1, "e1", [ev(1)]))

        async def counted() -> dict[str, int]:
            counts = await centre.read(lambda s: s.dead_letter_counts())
            stored = await centre.read(lambda s: s.count_events(B1))
            return counts if sum(counts.values()) == 2 and stored == 1 else {}

        assert await wait_for(counted, 20, "two dead letters and the batch stored") == {
            "malformed_json": 1, "too_large": 1}
        assert [c.client for c in centre.consumers] == clients  # never reconnected


async def test_a_branch_speaking_for_another_is_dead_lettered(
        broker: LocalBroker, store_url: str) -> None:
    async with centre_running(broker, store_url) as centre, as_branch(broker, B1) as box:
        # Its own topic (the broker lets it) but another branch's name inside.
        await publish(box, B1, "events", proto.events_batch(B2, "e1", [ev(1)]))

        async def counted() -> dict[str, int]:
            return await centre.read(lambda s: s.dead_letter_counts())

        assert await wait_for(counted, 10, "a dead letter") == {"wrong_branch": 1}
        assert await centre.read(lambda s: s.count_events()) == 0


# --- ordering, gaps, acks --------------------------------------------------------------------


async def test_acks_follow_the_contiguous_mark_and_gaps_get_a_replay_request(
        broker: LocalBroker, store_url: str) -> None:
    async with centre_running(broker, store_url), as_branch(broker, B1) as box:
        q = await collect(box, f"qms/v1/{B1}/#")
        async with running(pump(box, q)):
            await publish(box, B1, "events", proto.events_batch(B1, "e1", [ev(1), ev(2)]))
            assert (await next_msg(q, "/ack"))["acked_through"] == 2
            await publish(box, B1, "events", proto.events_batch(B1, "e1", [ev(6), ev(7)]))
            assert (await next_msg(q, "/ack"))["acked_through"] == 2  # not beyond the gap
            replay = await next_msg(q, "/cmd/replay")
            assert (replay["from"], replay["through"], replay["epoch"]) == (3, 5, "e1")
            await publish(box, B1, "events",
                          proto.events_batch(B1, "e1", [ev(3), ev(4), ev(5)]))
            assert (await next_msg(q, "/ack"))["acked_through"] == 7
            await publish(box, B1, "events", proto.events_batch(B1, "e1", [ev(2), ev(3)]))
            assert (await next_msg(q, "/ack"))["acked_through"] == 7  # duplicates: re-acked


async def test_two_consumers_in_a_group_share_the_load_exactly_once(
        broker: LocalBroker, store_url: str) -> None:
    async with centre_running(broker, store_url) as one, \
            centre_running(broker, store_url) as two:
        clients = [as_branch(broker, b) for b in (B1, B2, B3)]
        async with clients[0] as c1, clients[1] as c2, clients[2] as c3:
            for start in range(1, 301, 3):
                for client, branch in ((c1, B1), (c2, B2), (c3, B3)):
                    events = [ev(s) for s in range(start, start + 3)]
                    await publish(client, branch, "events",
                                  proto.events_batch(branch, "e1", events))

            async def all_in() -> bool:
                marks = await one.read(lambda s: s.marks())
                return [m.contiguous for m in marks] == [300, 300, 300]

            await wait_for(all_in, 30, "all three branches stored through 300")
    assert one.stats.inserted > 0 and two.stats.inserted > 0  # both did a share
    assert one.stats.inserted + two.stats.inserted == 900
    for b in (B1, B2, B3):
        rows = await asyncio.to_thread(_events, one, b)
        assert [e["seq"] for e in rows] == list(range(1, 301))


def _events(centre: Centre, branch: str) -> list[dict[str, Any]]:
    from central.store import open_store

    s = open_store(centre.config.store.url)
    try:
        return s.events(branch)
    finally:
        s.close()


# --- reconciliation ------------------------------------------------------------------------


DAY = "2026-11-25"
ADMIN_SEED = 'web.admin.password="admin-pw-for-tests"'  # the API needs a session


def day_of_tickets(n: int) -> list[dict[str, Any]]:
    out = [ev(1, "day_opened")]
    for i in range(n):
        t = f"t{i}"
        out += [ev(len(out) + 1, "ticket_issued", ticket=t, queue="A"),
                ev(len(out) + 2, "ticket_called", ticket=t, queue="A",
                   wait_s=(20 + 25 * i) * 60.0)]
        out.append(ev(len(out) + 1, "ticket_finished", ticket=t, queue="A"))
    return out


async def test_reconciliation_lists_silent_and_disagreeing_branches(
        broker: LocalBroker, store_url: str, tmp_path: Path) -> None:
    events = day_of_tickets(3)
    true_totals = {"v": 1, "branch": B1, "epoch": "e1", "day": DAY,
                   **proto.day_totals(events)}
    async with centre_running(broker, store_url, ADMIN_SEED) as centre, \
            as_branch(broker, B1) as good, as_branch(broker, B2) as liar, \
            as_branch(broker, B3) as silent:
        q = await collect(liar, f"qms/v1/{B2}/cmd/#")
        async with running(pump(liar, q)):
            await publish(silent, B3, "status", proto.birth(B3, "e3", 0, "0.1.0", "c", 1.0))
            for client, branch in ((good, B1), (liar, B2)):
                await publish(client, branch, "events",
                              proto.events_batch(branch, "e1", events))
            await publish(good, B1, "totals", true_totals)
            lie = json.loads(json.dumps({**true_totals, "branch": B2}))
            lie["queues"]["A"]["served"] = 5
            lie["events"], lie["last_seq"] = 12, 12  # claims one more event than it sent
            await publish(liar, B2, "totals", lie)
            replay = await next_msg(q, "/cmd/replay")  # the centre asks on mismatch
            assert (replay["from"], replay["through"]) == (11, 12)

        async def known() -> bool:
            return len(await centre.read(lambda s: s.branches())) == 3

        await wait_for(known, 10, "three known branches")
        app = create_app(centre)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://centre") as http:
            http.headers.update(await login(http, "admin", "admin-pw-for-tests"))
            report = (await http.get(f"/api/reconcile?day={DAY}")).json()
    assert report["ok"] == [B1] and report["no_data"] == [B3] and report["no_totals"] == []
    (mismatch,) = report["mismatch"]
    assert mismatch["branch"] == B2
    assert "A.served: branch 5, centre 3" in mismatch["problems"]
    assert "events: branch 12, centre 10" in mismatch["problems"]
    assert report["long_waits"][B1] == {"over_15": 3, "over_30": 2, "over_60": 1}

    cli = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "central", "reconcile", "--day", DAY,
        "--set", f"store.url={store_url}", "--log-level", "WARNING"],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert cli.returncode == 1, cli.stderr  # something is wrong that day: non-zero
    printed = json.loads(cli.stdout)
    assert printed["no_data"] == [B3] and printed["mismatch"][0]["branch"] == B2


# --- the live picture, commands, metrics -----------------------------------------------------


async def test_live_picture_commands_and_metrics_through_the_api(
        broker: LocalBroker, store_url: str) -> None:
    async with centre_running(broker, store_url, ADMIN_SEED) as centre, \
            as_branch(broker, B1) as box:
        q = await collect(box, f"qms/v1/{B1}/cmd/#")
        await publish(box, B1, "status", proto.birth(B1, "e1", 5, "0.1.0", "cfg1", 1.0))
        await publish(box, B1, "live", {"v": 1, "branch": B1, "at": 2.0, "status": {
            "branch_name": "郑州金水路支行", "waiting_total": 4, "day": DAY}})
        await publish(box, B1, "health", {"v": 1, "branch": B1, "at": 3.0, "last_seq": 9,
                                          "devices": [{"name": "printer", "state": "fault"}],
                                          "link": {}})
        await publish(box, B1, "events", proto.events_batch(B1, "e1", [ev(1), ev(2)]))
        app = create_app(centre)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://centre") as http:
            http.headers.update(await login(http, "admin", "admin-pw-for-tests"))
            async def pictured() -> dict[str, Any]:
                rows = (await http.get("/api/branches")).json()["branches"]
                return rows[0] if rows and rows[0]["health_at"] and rows[0]["live_at"] else {}

            row = await wait_for(pictured, 10, "the branch's live picture")
            assert row["online"] is True and row["waiting"] == 4
            assert row["name"] == "郑州金水路支行" and row["devices_not_ok"] == ["printer"]
            assert row["lag"] == 7  # it has 9, the centre holds 1..2

            async with running(pump(box, q)):
                sent = await http.post(f"/api/branches/{B1}/commands/pause",
                                       json={"queue": "A", "reason": "系统维护"})
                assert sent.status_code == 202
                cmd = await next_msg(q, "/cmd/pause")
            assert cmd == {"v": 1, "id": sent.json()["id"], "queue": "A", "reason": "系统维护"}
            await publish(box, B1, "reply", proto.reply(cmd["id"], "pause", result={"ok": 1}))

            async def replied() -> bool:
                r = await http.get(f"/api/branches/{B1}/replies/{cmd['id']}")
                return r.status_code == 200 and r.json()["ok"] is True

            await wait_for(replied, 10, "the reply at the centre")
            bad = await http.post(f"/api/branches/{B1}/commands/pause", json={"queue": "A"})
            assert bad.status_code == 422 and "reason" in bad.json()["detail"]
            metrics = (await http.get("/metrics")).text
            assert 'paidui_centre_branch_lag_events{branch="1001010001"} 7' in metrics
            assert "paidui_centre_events_ingested_total 2" in metrics
            await publish(box, B1, "status", proto.will(B1, "e1"))

            async def offline() -> bool:
                rows = (await http.get("/api/branches")).json()["branches"]
                return rows[0]["online"] is False

            await wait_for(offline, 10, "the Last Will at the centre")


async def test_one_instance_at_a_time_reads_the_live_picture_and_another_takes_over(
        broker: LocalBroker, store_url: str) -> None:
    """The branches' status, live and health are not shared between instances: each used
    to read every one of them and write the same rows. One instance reads them, under the
    live-picture lease; when it stops, another takes over and starts from the broker's
    retained latest, so nothing a box said in between is missed."""
    def waiting(centre: Centre) -> Any:
        return centre.read(lambda s: s.execute(
            "SELECT live FROM branches WHERE branch = ?", (B1,)).fetchone())

    def live(n: int) -> dict[str, Any]:
        return {"v": 1, "branch": B1, "at": float(n), "status": {"waiting_total": n,
                                                                "day": DAY}}

    async def shows(centre: Centre, n: int) -> bool:
        row = await waiting(centre)
        body = row and (json.loads(row[0]) if isinstance(row[0], str) else row[0])
        return bool(body) and body["status"]["waiting_total"] == n

    first, second = contextlib.AsyncExitStack(), contextlib.AsyncExitStack()
    async with first, second, as_branch(broker, B1) as box:
        one = await first.enter_async_context(centre_running(broker, store_url, "ha.lease_s=1"))
        two = await second.enter_async_context(centre_running(broker, store_url, "ha.lease_s=1"))
        both = [*one.consumers, *two.consumers]
        await wait_for(lambda: any(c.live_read.is_set() for c in both), 10, "a reader")
        readers = [c for c in both if c.live_read.is_set()]
        assert len(readers) == 1, "one instance reads the live picture"
        holder, survivor = (first, two) if readers[0] in one.consumers else (second, one)
        await box.publish(proto.topic(B1, "live"), proto.encode(live(3)), qos=1, retain=True)
        await wait_for(lambda: shows(survivor, 3), 10, "the holder's picture in the store")
        assert not any(c.live_read.is_set() for c in survivor.consumers)

        await holder.aclose()  # stopped: its lease is given up at once
        await box.publish(proto.topic(B1, "live"), proto.encode(live(5)), qos=1, retain=True)
        await wait_for(lambda: any(c.live_read.is_set() for c in survivor.consumers), 10,
                       "the other instance reading the live picture")
        await wait_for(lambda: shows(survivor, 5), 10, "the latest picture, from the survivor")
        await box.publish(proto.topic(B1, "live"), b"", qos=1, retain=True)  # tidy the broker


@pytest.mark.parametrize("argv", [
    ["--set", "store.url=sqlite:///x", "--set", "broker.url=x"],
    ["--config", "/nonexistent.toml"],
    ["--set", "store.url=postgresql://nobody@127.0.0.1:1/none", "--set", "http.enabled=false"],
])
def test_a_bad_centre_config_exits_2(argv: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", "central", *argv], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "error:" in r.stderr


async def test_births_and_update_reports_reach_the_release_store(
        broker: LocalBroker, store_url: str, tmp_path: Path) -> None:
    """With releases on, the consumers make the three calls central/releases.py asks for."""
    from central.store import open_store

    files = tmp_path / "releases"
    async with centre_running(broker, store_url, f"releases.files={files}",
                              ADMIN_SEED) as centre, as_branch(broker, B1) as box:
        await publish(box, B1, "status", proto.birth(B1, "e1", 0, "0.1.0", "cfg", 1.0))
        report = {"id": "update-0.2.0-r1", "version": "0.2.0", "status": "downloading",
                  "running": "0.1.0", "at": 2.0}
        await publish(box, B1, "reply", proto.reply(report["id"], "update", result=report))

        def recorded() -> tuple[Any, Any]:
            s = open_store(store_url)
            try:
                running = s.execute("SELECT running_version FROM release_branches WHERE "
                                    "branch = ?", (B1,)).fetchone()
                reports = s.execute("SELECT status FROM update_reports WHERE branch = ?",
                                    (B1,)).fetchall()
                return running, reports
            finally:
                s.close()

        async def both() -> tuple[Any, Any] | None:
            running, reports = await asyncio.to_thread(recorded)
            return (running, reports) if running and running[0] and reports else None

        running, reports = await wait_for(both, 10, "the birth and the report recorded")
        assert running[0] == "0.1.0" and [r[0] for r in reports] == ["downloading"]
        app = create_app(centre)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://centre") as http:
            assert (await http.get("/api/releases")).status_code == 401  # operators only
            http.headers.update(await login(http, "admin", "admin-pw-for-tests"))
            assert (await http.get("/api/releases")).json() == []
