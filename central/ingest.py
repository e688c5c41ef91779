"""The centre's consumer: MQTT shared subscription in, store, ``ack`` out.

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
(a broker sends no retained message to a shared subscription), so they are read by a
direct subscription — by one consumer per broker of one instance at a time, under the
``live-picture`` lease (:meth:`Consumer.take_live`, :meth:`Consumer.drop_live`; a consumer
on its own reads them) — and the latest of each is written, coalesced, to ``branches``.

One branch cannot starve the others: every message is admitted by its branch's token
bucket for its class (:mod:`central.admission`) as it comes off the socket, before it is
decoded. Events over the limit are neither stored nor acknowledged (the box sends them
again); status, live and health are latest-wins, kept raw and decoded only when flushed
(the bucket counts and reports a flood of them; only superseded ones are dropped).
Every line between the broker and the store is bounded::

    socket ─► admit ─► line (≤ line_messages, ≤ line_bytes) ─► decode ─► pending
     (events over the     │ full: dropped, counted             (≤ pending_messages:
      limit: dropped,     └─ status/live/health: latest per      receiving waits)
      counted)               branch, ≤ known + unknown branches  ─► commit ─► ack
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
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

from common.clock import Clock, SystemClock
from common.tasks import still_cancelling
from protocols import uplink as proto

from .admission import CLASS_OF, BranchLimits, FloodNote, Rate, cost_of
from .config import CentreConfig, IngestSettings
from .errors import StoreError
from .mqtt import MqttClient, MqttError
from .reconcile import check_branch
from .store import DeadLetter, EventBatch, Inbound, Ingested, Mark, Store, open_store

if TYPE_CHECKING:
    from .releases import ReleaseStore

__all__ = ["Consumer", "IncomingLine", "IngestStats"]

log = logging.getLogger(__name__)
T = TypeVar("T")

SHARED_KINDS = ("events", "totals", "reply")
LIVE_KINDS = ("status", "live", "health")
LIVE_TOPICS = [(f"{proto.ROOT}/+/{k}", 1) for k in LIVE_KINDS]
KNOW_EVERY_S = 60.0  # the known branches are read again this often
TAKE_PER_TURN = 500  # messages decoded in one turn of the event loop, at most
ACK_BACKLOG = 64  # commits whose acks wait to be sent, at most; then committing waits
DROPS_LOG_EVERY_S = 10.0  # the line's drops are logged at most this often
# The largest packet the consumers read; a larger one is a broken connection. Above the
# shipped broker's max_packet_size (5 MiB): a payload over the uplink's 4 MiB reaches
# decoding and is dead-lettered ``too_large`` there, and the connection stays up.
MAX_PACKET = 2 * proto.MAX_PAYLOAD


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
    # Messages not taken, by (class, reason): rate (over the branch's limit), superseded
    # (a newer status/live/health of the branch came first), line_full (the line is full).
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    flood_notes: int = 0  # branch_flooding rows noted (alert_inbox)

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


class IncomingLine(asyncio.Queue[tuple[str, bytes]]):
    """The messages a connection received and the consumer has not yet decoded, bounded in
    messages and bytes, with admission in front.

    The client hands every message here (:meth:`offer`, on the event loop, as it comes off
    the socket). ``admit(topic, payload)`` decides first (False: taken care of, not
    queued); a message that finds the line full is handed to ``overflow`` (counted there)
    and dropped.
    """

    def __init__(self, admit: Callable[[str, bytes], bool], overflow: Callable[[str], None],
                 max_messages: int, max_bytes: int) -> None:
        super().__init__()
        self._admit, self._overflow = admit, overflow
        self.max_messages, self.max_bytes = max_messages, max_bytes
        self.bytes = 0

    def offer(self, topic: str, payload: bytes) -> None:
        if not self._admit(topic, payload):
            return
        if self.qsize() >= self.max_messages or self.bytes + len(payload) > self.max_bytes:
            self._overflow(topic)
            return
        self.bytes += len(payload)
        self.put_nowait((topic, payload))

    def get_nowait(self) -> tuple[str, bytes]:
        item = super().get_nowait()
        self.bytes -= len(item[1])
        return item


class Consumer:
    """One MQTT client in the shared group, with its own store connection and thread."""

    def __init__(self, config: CentreConfig, *, index: int = 0,
                 stats: IngestStats | None = None, url: str | None = None,
                 clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()  # the centre's one clock: what it stamps
        self.index = index
        self.stats = stats or IngestStats()
        self.url = url or config.broker.url  # one of broker.urls when there are several
        _, self.host, self.port = proto.parse_broker_url(self.url)
        self.client: MqttClient | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"centre-store-{index}")
        self._store: Store | None = None
        self._inbound = Inbound()
        self._arrived = asyncio.Event()
        self._live: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in LIVE_KINDS}
        self._latest: dict[str, dict[str, tuple[str, bytes]]] = {k: {} for k in LIVE_KINDS}
        ingest = config.ingest
        self.limits = BranchLimits(_rates(ingest), known_cap=ingest.known_branches,
                                   unknown_cap=ingest.unknown_branches)
        self.line: IncomingLine | None = None  # the current connection's
        self._room = asyncio.Event()  # pending below ingest.pending_messages
        self._room.set()
        self._know_at = 0.0
        self._drops_logged: tuple[float, int] = (0.0, 0)
        self._gaps: dict[tuple[str, str], Gap] = {}
        self._acks: asyncio.Queue[list[Mark]] = asyncio.Queue(ACK_BACKLOG)  # per session
        self.ready = asyncio.Event()  # set once subscribed
        self._tag = uuid.uuid4().hex[:6]  # two consumers never share a client id
        self.releases: ReleaseStore | None = None  # set when releases are on
        # Whether this consumer reads the branches' status, live and health (retained, not
        # shared). A consumer alone reads them; a centre lets one instance at a time read
        # them, under the ``live-picture`` lease (take_live / drop_live).
        self.live_wanted = True
        self.live_read = asyncio.Event()  # set while subscribed to them

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until cancelled, reconnecting with a capped, randomised back-off."""
        try:
            ingest = self.config.ingest
            self._store = await self._db(open_store, self.config.store.url, ingest.max_ahead,
                                         self.clock)
            delay = 0.2
            while True:
                still_cancelling()
                try:
                    # Its own task: see controller.uplink.link (3.11 TaskGroup cancel marks).
                    await asyncio.create_task(self._connection(), name="consumer-connection")
                    delay = 0.2
                except* (MqttError, OSError, TimeoutError) as group:
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
            self.live_read.clear()

    async def _reopen_store(self) -> None:
        old, self._store = self._store, None
        if old is not None:
            with contextlib.suppress(Exception):
                await self._db(old.close)
        try:
            self._store = await self._db(open_store, self.config.store.url,
                                         self.config.ingest.max_ahead, self.clock)
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

    def _ident(self) -> str:
        b = self.config.broker
        return b.client_id or f"centre-{socket.gethostname()}-{os.getpid()}-{self._tag}"

    def _make_client(self) -> MqttClient:
        """A clean-session MQTT 3.1.1 client (the boxes send again whatever has no ack),
        with a new bounded line for what it receives."""
        b = self.config.broker
        tls = ssl.create_default_context(cafile=b.ca_file) \
            if self.url.startswith("mqtts://") else None
        return MqttClient(self.host, self.port, client_id=f"{self._ident()}-{self.index}",
                          on_message=self._new_line().offer, username=b.username,
                          password=b.password, keepalive=b.keepalive, tls=tls,
                          max_inflight=b.inflight, max_packet=MAX_PACKET)

    def _new_line(self) -> IncomingLine:
        """A new connection's bounded line (what the old one held is sent again)."""
        ingest = self.config.ingest
        self.line = IncomingLine(self._admit, self._overflow, ingest.line_messages,
                                 ingest.line_bytes)
        return self.line

    async def _session(self, client: MqttClient) -> None:
        group = self.config.broker.group
        topics = [(f"$share/{group}/{proto.ROOT}/+/{k}", 1) for k in SHARED_KINDS]
        await client.subscribe(topics)
        self.client = client
        self.stats.connected += 1  # (taken back when the connection ends, with the client)
        if self.live_wanted:  # (take_live may also subscribe meanwhile: MQTT allows twice)
            await client.subscribe(LIVE_TOPICS)
            self.live_read.set()
        # Say so: boxes send again at once what they sent while nobody was subscribed.
        instance = f"{self._ident()}-{self.index}-{self.stats.connected}"[-64:]
        await client.publish(proto.CENTRE_TOPIC,
                             proto.encode(proto.centre_online(instance, self.clock.now())),
                             qos=1, retain=True)
        self._acks = asyncio.Queue(ACK_BACKLOG)  # a new session's: the old acks went with it
        self.ready.set()
        log.info("consumer %d subscribed on %s:%d (group %s)", self.index, self.host,
                 self.port, group)
        line = self.line
        assert line is not None  # made with the client
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._receive(line), name=f"consumer-{self.index}-receive")
            tg.create_task(self._commit(client), name=f"consumer-{self.index}-commit")
            tg.create_task(self._acknowledge(client), name=f"consumer-{self.index}-acks")
            tg.create_task(self._watch_gaps(client), name=f"consumer-{self.index}-gaps")
            tg.create_task(self._flush_live(), name=f"consumer-{self.index}-live")
            tg.create_task(client.wait_closed(), name=f"consumer-{self.index}-link")

    async def take_live(self) -> None:
        """Read the branches' status, live and health from now on (and their retained
        latest at once): this instance has the ``live-picture`` lease."""
        self.live_wanted = True
        client = self.client
        if client is not None:
            await client.subscribe(LIVE_TOPICS)
            self.live_read.set()

    async def drop_live(self) -> None:
        """Stop reading them, and forget what is not written yet: the lease's next holder
        gets every branch's latest from the broker (retained), and a write of ours after
        its own could put an older picture over a newer one."""
        self.live_wanted = False
        self.live_read.clear()
        self._latest = {k: {} for k in LIVE_KINDS}
        self._live = {k: {} for k in LIVE_KINDS}
        client = self.client
        if client is not None:
            with contextlib.suppress(MqttError, OSError, TimeoutError):
                await client.unsubscribe([t for t, _ in LIVE_TOPICS], timeout=5)

    # --- receiving -------------------------------------------------------------------------

    async def _receive(self, line: IncomingLine) -> None:
        cap = self.config.ingest.pending_messages
        while True:  # the session's task group ends it when the connection is lost
            self.classify(*await line.get())
            # Take what else has arrived now, a bounded number per turn of the loop (one
            # message per turn held a busy centre to a few hundred a second).
            for _ in range(TAKE_PER_TURN):
                if not line.qsize() or len(self._inbound) >= cap:
                    break
                self.classify(*line.get_nowait())
            if len(self._inbound) >= cap:  # the store is behind: let the line fill
                self._room.clear()
                await self._room.wait()

    def _admit(self, topic: str, payload: bytes) -> bool:
        """A message off the socket: an event over its branch's limit (dropped, counted),
        a status/live/health kept as its branch's latest, or True: to be queued."""
        self.stats.messages += 1
        parts = topic.split("/")
        cls = CLASS_OF.get(parts[-1]) if len(parts) == 4 else None
        if cls is None:
            return True  # not ours to limit: decoding dead-letters it
        branch = parts[2][:32]
        within = self.limits.allow(branch, cls, cost_of(len(payload)), time.monotonic())
        if cls == "events":
            if not within:
                self.stats.dropped[cls, "rate"] += 1  # not acked: the box sends it again
            return within
        if not self.live_wanted:  # sent before the broker took our unsubscribe
            return False
        # Latest wins, over the limit or not (a Last Will is never lost to a live flood):
        # the one waiting is dropped, counted "rate" when this one came over the limit.
        latest = self._latest[parts[3]]
        if branch in latest:
            self.stats.dropped[cls, "superseded" if within else "rate"] += 1
        elif len(latest) >= self.limits.known_cap + self.limits.unknown_cap:
            self.stats.dropped[cls, "line_full"] += 1
            return False
        latest[branch] = (topic, payload)
        return False

    def _overflow(self, topic: str) -> None:
        self.stats.dropped[CLASS_OF.get(topic.rsplit("/", 1)[-1], "other"), "line_full"] += 1

    def classify(self, topic: str, payload: bytes) -> None:
        """Decode one message and queue it for the next commit (or the live picture)."""
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

    async def _commit(self, client: MqttClient) -> None:
        limit = self.config.ingest.group_messages
        while True:
            still_cancelling()
            await self._arrived.wait()
            inbound = self._take(limit)
            self._room.set()
            if not len(self._inbound):
                self._arrived.clear()
            if not len(inbound):
                continue
            result = await self._store_group(inbound)
            self._count(result)
            await self._acks.put(result.marks)  # sent by _acknowledge, after this commit
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
                raise  # no primary within the store's patience: restart, the boxes re-send
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

    async def _acknowledge(self, client: MqttClient) -> None:
        """Publish the committed marks, apart from the commits: the broker's PUBACKs come
        back behind everything it is sending this client, and committing does not wait
        for them (it waits only when ``ACK_BACKLOG`` commits' acks are still unsent).
        Whatever waited meanwhile goes out together, a branch's latest mark only: a mark
        says everything up to it is stored, so it covers the ones before it."""
        qos = self.config.ingest.ack_qos
        while True:
            latest = {(m.branch, m.epoch): m for m in await self._acks.get()}
            while not self._acks.empty():
                latest.update({(m.branch, m.epoch): m for m in self._acks.get_nowait()})
            await asyncio.gather(*(
                client.publish(proto.topic(m.branch, "ack"),
                               proto.encode(proto.ack(m.epoch, m.contiguous)), qos=qos)
                for m in latest.values()))
            self.stats.acks += len(latest)

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

    async def _watch_gaps(self, client: MqttClient) -> None:
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

    async def request_replay(self, client: MqttClient, branch: str, epoch: str,
                             first: int, last: int) -> None:
        msg = proto.command(f"replay-{uuid.uuid4().hex[:12]}", epoch=epoch,
                            **{"from": first, "through": last})
        await client.publish(proto.topic(branch, "cmd", "replay"), proto.encode(msg), qos=1)
        self.stats.replay_requests += 1
        log.info("asked %s for a replay of %d..%d (epoch %s)", branch, first, last, epoch)

    async def _reconcile(self, client: MqttClient, branch: str, day: str) -> None:
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
            await self._watch_floods()
            latest, self._latest = self._latest, {k: {} for k in LIVE_KINDS}
            for kind in LIVE_KINDS:  # decoded now: only the latest of each branch
                for topic, payload in latest[kind].values():
                    self.classify(topic, payload)
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

    async def _watch_floods(self) -> None:
        """Keep the known branches' buckets; note (log, ``alert_inbox``) the branches over
        their limits, at most once a minute each; log the line's drops now and then."""
        now = time.monotonic()
        if now >= self._know_at:
            self._know_at = now + KNOW_EVERY_S
            self.limits.know(await self._db(_known_branches, self._storage(),
                                            self.limits.known_cap))
        notes = self.limits.due(now)
        for n in notes:
            log.warning("branch %s is flooding: %d %s messages over its limit (%.0f/s "
                        "arrived, limit %g/s)%s", n.branch, n.limited, n.cls, n.rate, n.limit,
                        "; not acknowledged, the box sends them again" if n.cls == "events"
                        else "; superseded ones dropped")
        if notes:
            self.stats.flood_notes += await self._db(note_flooding, self._storage(), notes,
                                                     self.clock.now())
        full = sum(n for (_, why), n in self.stats.dropped.items() if why == "line_full")
        at, logged = self._drops_logged
        if full > logged and now - at >= DROPS_LOG_EVERY_S:
            log.warning("consumer %d: the incoming line was full: %d messages dropped so far "
                        "(events among them are sent again by their boxes)", self.index, full)
            self._drops_logged = (now, full)

    def _storage(self) -> Store:
        if self._store is None:
            raise StoreError("the store is not open")
        return self._store


def _rates(ingest: IngestSettings) -> dict[str, Rate]:
    return {"events": Rate(ingest.events_per_s, ingest.events_burst),
            "status": Rate(ingest.status_per_s, ingest.status_burst),
            "health": Rate(ingest.health_per_s, ingest.health_burst)}


def _known_branches(store: Store, cap: int) -> list[str]:
    return [r[0] for r in store.execute("SELECT branch FROM branches ORDER BY branch LIMIT ?",
                                        (cap,)).fetchall()]


def note_flooding(store: Store, notes: list[FloodNote], at: float) -> int:
    """One ``branch_flooding`` row in ``alert_inbox`` per note, unless that branch has one
    from the last minute (another consumer or process noted it); returns the rows added."""
    def add() -> int:
        added = 0
        for n in notes:
            cur = store.execute(
                "INSERT INTO alert_inbox (branch, kind, at, body) SELECT ?, 'branch_flooding', "
                "?, ? WHERE NOT EXISTS (SELECT 1 FROM alert_inbox WHERE branch = ? AND "
                "kind = 'branch_flooding' AND at > ?)",
                (n.branch, at, json.dumps(n.body()), n.branch, at - 60.0))
            added += max(cur.rowcount, 0)
        return added

    return int(store.retrying(add))


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
