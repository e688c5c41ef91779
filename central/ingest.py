"""The centre's consumer: MQTT v5 shared subscription in, store, ``ack`` out.

Several consumers (in one process or many) join the same ``$share/{group}/…``
subscriptions and split the branches' messages between them. Each:

1. decodes every message with :mod:`protocols.uplink`; whatever fails goes to the
   dead-letter table with its reason (and a counter), never to a crash;
2. commits what arrived since its last commit in one transaction (group commit);
3. only then publishes each touched branch's ``ack`` (its contiguous mark);
4. watches gaps: a gap older than ``reorder_timeout_s`` gets a ``cmd/replay``;
5. on a branch's daily totals, reconciles that day and asks for a replay on mismatch.

Consumers use clean sessions: anything lost in a crash is sent again by the box (it
re-sends whatever has no ack). Status, live and health are retained and are not shared
(MQTT 5 does not send retained messages to shared subscriptions), so every consumer
subscribes to them directly and writes the latest of each, coalesced, to ``branches``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import socket
import ssl
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import aiomqtt

from controller.uplink.link import still_cancelling
from protocols import uplink as proto

from .config import CentreConfig
from .errors import StoreError
from .reconcile import check_branch
from .store import DeadLetter, EventBatch, Inbound, Ingested, Mark, Store, open_store

if TYPE_CHECKING:
    from .releases import ReleaseStore

__all__ = ["Consumer", "IngestStats"]

log = logging.getLogger(__name__)
T = TypeVar("T")

SHARED_KINDS = ("events", "totals", "reply")
LIVE_KINDS = ("status", "live", "health")


@dataclass
class IngestStats:
    """This process's ingest counters (``/metrics``)."""

    inserted: int = 0
    duplicates: int = 0
    messages: int = 0
    commits: int = 0
    acks: int = 0
    replay_requests: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=2000))
    connected: int = 0

    def rate(self, window: float = 10.0) -> float:
        """Events stored per second over the last ``window`` seconds."""
        now = time.monotonic()
        n = sum(k for t, k in self.recent if now - t <= window)
        return n / window


@dataclass
class Gap:
    first: int
    last: int
    since: float
    next_ask: float = 0.0
    tries: int = 0


class Consumer:
    """One MQTT client in the shared group, with its own store connection and thread."""

    def __init__(self, config: CentreConfig, *, index: int = 0,
                 stats: IngestStats | None = None) -> None:
        self.config = config
        self.index = index
        self.stats = stats or IngestStats()
        _, self.host, self.port = proto.parse_broker_url(config.broker.url)
        self.client: aiomqtt.Client | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"centre-store-{index}")
        self._store: Store | None = None
        self._inbound = Inbound()
        self._arrived = asyncio.Event()
        self._live: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in LIVE_KINDS}
        self._gaps: dict[tuple[str, str], Gap] = {}
        self.ready = asyncio.Event()  # set once subscribed
        self._tag = uuid.uuid4().hex[:6]  # two consumers never share a client id
        self.releases: ReleaseStore | None = None  # set when releases are on

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until cancelled, reconnecting with a capped, randomised back-off."""
        try:
            ingest = self.config.ingest
            self._store = await self._db(open_store, self.config.store.url, ingest.max_ahead)
            delay = 0.2
            while True:
                still_cancelling()
                try:
                    # Its own task: see controller.uplink.link (3.11 TaskGroup cancel marks).
                    await asyncio.create_task(self._connection(), name="consumer-connection")
                    delay = 0.2
                except* (aiomqtt.MqttError, OSError, TimeoutError) as group:
                    log.warning("consumer %d: broker %s:%d: %s", self.index, self.host,
                                self.port, group.exceptions[0])
                    if self.ready.is_set():
                        delay = 0.2  # it was up: reconnect promptly
                except* Exception as group:  # the store went away, or a bug: never a crash
                    log.error("consumer %d stopped: %r; starting again", self.index,
                              group.exceptions[0], exc_info=group.exceptions[0])
                    await self._reopen_store()
                self.ready.clear()
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 10.0)
        finally:
            await self._close()

    async def _connection(self) -> None:
        try:
            async with self._make_client() as client:
                await self._session(client)
        finally:
            if self.client is not None:
                self.stats.connected -= 1
            self.client = None

    async def _reopen_store(self) -> None:
        old, self._store = self._store, None
        if old is not None:
            with contextlib.suppress(Exception):
                await self._db(old.close)
        try:
            self._store = await self._db(open_store, self.config.store.url,
                                         self.config.ingest.max_ahead)
        except Exception as exc:
            log.error("consumer %d: store unavailable: %s", self.index, exc)

    async def _close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                await self._db(store.close)
        await asyncio.to_thread(self._executor.shutdown, True)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on this consumer's store thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _make_client(self) -> aiomqtt.Client:
        b = self.config.broker
        ident = b.client_id or f"centre-{socket.gethostname()}-{os.getpid()}-{self._tag}"
        tls = ssl.create_default_context(cafile=b.ca_file) \
            if b.url.startswith("mqtts://") else None
        return aiomqtt.Client(
            self.host, self.port, username=b.username, password=b.password,
            identifier=f"{ident}-{self.index}", protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=True, keepalive=b.keepalive, tls_context=tls,
        )

    async def _session(self, client: aiomqtt.Client) -> None:
        client.pending_calls_threshold = 100_000
        group = self.config.broker.group
        topics = [(f"$share/{group}/{proto.ROOT}/+/{k}", 1) for k in SHARED_KINDS]
        topics += [(f"{proto.ROOT}/+/{k}", 1) for k in LIVE_KINDS]
        await client.subscribe(topics)
        self.client = client
        self.stats.connected += 1
        self.ready.set()
        log.info("consumer %d subscribed on %s:%d (group %s)", self.index, self.host,
                 self.port, group)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._receive(client), name=f"consumer-{self.index}-receive")
            tg.create_task(self._commit(client), name=f"consumer-{self.index}-commit")
            tg.create_task(self._watch_gaps(client), name=f"consumer-{self.index}-gaps")
            tg.create_task(self._flush_live(), name=f"consumer-{self.index}-live")

    # --- receiving -------------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.classify(str(message.topic), bytes(message.payload or b""))

    def classify(self, topic: str, payload: bytes) -> None:
        """Decode one message and queue it for the next commit (or the live picture)."""
        self.stats.messages += 1
        try:
            where, msg = proto.decode(topic, payload)
        except proto.ProtocolError as exc:
            self._inbound.dead.append(DeadLetter(topic, exc.reason, exc.detail, payload,
                                                 _branch_of(topic)))
        else:
            if where.kind == "events":
                self._inbound.batches.append(EventBatch(where.branch, msg["epoch"],
                                                        msg["events"], topic, payload))
            elif where.kind == "totals":
                self._inbound.totals.append(msg)
            elif where.kind == "reply":
                self._inbound.replies.append((where.branch, msg))
            elif where.kind in LIVE_KINDS:
                self._live[where.kind][where.branch] = msg
                return
            else:  # ack, cmd, agg: the centre's own words coming back to it
                self._inbound.dead.append(DeadLetter(topic, "unexpected_topic", where.kind,
                                                     payload, where.branch))
        self._arrived.set()

    # --- committing --------------------------------------------------------------------------

    async def _commit(self, client: aiomqtt.Client) -> None:
        limit = self.config.ingest.group_messages
        while True:
            still_cancelling()
            await self._arrived.wait()
            inbound = self._take(limit)
            if not len(self._inbound):
                self._arrived.clear()
            if not len(inbound):
                continue
            result = await self._store_group(inbound)
            self._count(result)
            await self._acknowledge(client, result.marks)
            self._track_gaps(result.marks)
            for branch, day in result.totals:
                await self._reconcile(client, branch, day)
            await self._update_reports(inbound.replies)

    def _take(self, limit: int) -> Inbound:
        """Up to ``limit`` messages from what has arrived (order kept within each kind)."""
        cur = self._inbound
        if len(cur) <= limit:
            self._inbound = Inbound()
            return cur
        out = Inbound(cur.batches[:limit], cur.totals[:limit], cur.replies[:limit],
                      cur.dead[:limit])
        self._inbound = Inbound(cur.batches[limit:], cur.totals[limit:], cur.replies[limit:],
                                cur.dead[limit:])
        return out

    async def _store_group(self, inbound: Inbound) -> Ingested:
        store = self._storage()
        try:
            return await self._db(store.ingest, inbound)
        except Exception as exc:
            if not _is_data_error(exc):
                raise  # connection trouble: the consumer restarts, the boxes re-send
            log.error("consumer %d: group refused by the store (%s); storing one by one",
                      self.index, exc)
            return await self._db(_one_by_one, store, inbound)

    def _count(self, result: Ingested) -> None:
        s = self.stats
        s.inserted += result.inserted
        s.duplicates += result.duplicates
        s.commits += 1
        s.recent.append((time.monotonic(), result.inserted))
        for d in result.dead:
            s.dead[d.reason] += 1
            log.warning("dead letter on %s: %s %s", d.topic, d.reason, d.detail)

    async def _acknowledge(self, client: aiomqtt.Client, marks: list[Mark]) -> None:
        qos = self.config.ingest.ack_qos
        await asyncio.gather(*(
            client.publish(proto.topic(m.branch, "ack"),
                           proto.encode(proto.ack(m.epoch, m.contiguous)), qos=qos)
            for m in marks))
        self.stats.acks += len(marks)

    # --- gaps and replays --------------------------------------------------------------------

    def _track_gaps(self, marks: list[Mark]) -> None:
        now = time.monotonic()
        for m in marks:
            key = (m.branch, m.epoch)
            if m.next_present is None:
                self._gaps.pop(key, None)
                continue
            old = self._gaps.get(key)
            if old is None or old.first != m.contiguous + 1:
                self._gaps[key] = Gap(m.contiguous + 1, m.next_present - 1, now)
            else:
                old.last = m.next_present - 1

    async def _watch_gaps(self, client: aiomqtt.Client) -> None:
        ingest = self.config.ingest
        while True:
            still_cancelling()
            await asyncio.sleep(min(0.5, ingest.reorder_timeout_s / 2))  # a timer, not a wait
            now = time.monotonic()
            for key, gap in list(self._gaps.items()):
                if now - gap.since < ingest.reorder_timeout_s or now < gap.next_ask:
                    continue
                mark = await self._db(self._storage().mark, *key)
                if mark.next_present is None:
                    self._gaps.pop(key, None)
                    continue
                gap.first, gap.last = mark.contiguous + 1, mark.next_present - 1
                await self.request_replay(client, key[0], key[1], gap.first, gap.last)
                gap.next_ask = now + min(ingest.replay_retry_s * 2 ** gap.tries, 120.0)
                gap.tries += 1

    async def request_replay(self, client: aiomqtt.Client, branch: str, epoch: str,
                             first: int, last: int) -> None:
        msg = proto.command(f"replay-{uuid.uuid4().hex[:12]}", epoch=epoch,
                            **{"from": first, "through": last})
        await client.publish(proto.topic(branch, "cmd", "replay"), proto.encode(msg), qos=1)
        self.stats.replay_requests += 1
        log.info("asked %s for a replay of %d..%d (epoch %s)", branch, first, last, epoch)

    async def _reconcile(self, client: aiomqtt.Client, branch: str, day: str) -> None:
        report = await self._db(check_branch, self._storage(), branch, day,
                                self.config.reconcile.long_wait_minutes)
        if report["status"] != "mismatch":
            return
        log.warning("totals of %s for %s disagree: %s", branch, day, report["problems"])
        for epoch, first, last in report["replay"]:
            await self.request_replay(client, branch, epoch, first, last)

    async def _update_reports(self, replies: list[tuple[str, dict[str, Any]]]) -> None:
        """A box's software-update reports go to the release store (F4)."""
        if self.releases is None:
            return
        for branch, reply in replies:
            if reply.get("cmd") == "update" and isinstance(reply.get("result"), dict):
                await asyncio.to_thread(self.releases.record_report, branch, reply["result"])

    # --- the live picture --------------------------------------------------------------------

    async def _flush_live(self) -> None:
        while True:
            still_cancelling()
            await asyncio.sleep(self.config.ingest.live_flush_s)  # coalescing timer
            if not any(self._live.values()):
                continue
            taken = self._live
            self._live = {k: {} for k in LIVE_KINDS}
            await self._db(self._storage().save_live, taken["status"], taken["live"],
                           taken["health"])
            if self.releases is not None:  # what each branch runs, from its birth
                for branch, msg in taken["status"].items():
                    if msg.get("online") and msg.get("version"):
                        await asyncio.to_thread(self.releases.record_running, branch,
                                                msg["version"])

    def _storage(self) -> Store:
        if self._store is None:
            raise StoreError("the store is not open")
        return self._store


def _branch_of(topic: str) -> str | None:
    parts = topic.split("/")
    return parts[2][:16] if len(parts) > 2 else None


def _is_data_error(exc: Exception) -> bool:
    """A row the database will not take (as opposed to a lost connection)."""
    import sqlite3

    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | ValueError | TypeError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, psycopg.DataError | psycopg.IntegrityError)


def _one_by_one(store: Store, inbound: Inbound) -> Ingested:
    """Store each message alone; one the database refuses is dead-lettered."""
    total = Ingested()
    singles: list[Inbound] = [Inbound(batches=[b]) for b in inbound.batches]
    singles += [Inbound(totals=[t]) for t in inbound.totals]
    singles += [Inbound(replies=[r]) for r in inbound.replies]
    singles.append(Inbound(dead=inbound.dead))
    for one in singles:
        try:
            r = store.ingest(one)
        except Exception as exc:
            if not _is_data_error(exc):
                raise
            dead = [DeadLetter(b.topic, "store_refused", str(exc)[:300], b.payload, b.branch)
                    for b in one.batches] or [DeadLetter("", "store_refused", str(exc)[:300],
                                                         b"")]
            store.dead_letter(dead)
            total.dead.extend(dead)
            continue
        total.marks += r.marks
        total.inserted += r.inserted
        total.duplicates += r.duplicates
        total.dead += r.dead
        total.totals += r.totals
    return total
