"""The box's uplink: the journal is the outbox, the centre's ``ack`` settles it.

One :class:`Uplink` component per box (registered when ``uplink.broker`` is set). While
connected it runs, under one TaskGroup:

* the sender: unacknowledged events, in seq order, in batches, QoS 1, at most
  ``window`` events beyond the centre's ``acked_through``. No ack progress for
  ``ack_timeout_s`` → go back and send again from the last ack (a *timeout* and a
  *retry* in the day's counters). Every connect starts again from the last ack.
* the receiver: ``ack`` (cumulative, for this journal's epoch; stored with
  :meth:`Box.acknowledge` at most every ``ack_persist_s``) and ``cmd/…`` (into the
  bounded :class:`~controller.uplink.inbox.CommandInbox`, ``command_queue`` at most,
  appointment lists of a day coalesced to the latest; what it refuses or supersedes is
  answered at once on ``reply``), run one at a time by the command desk.
* ``live``: the status view, retained, after each change, at most every ``live_interval_s``.
* ``health``: devices, link counters, outbox; retained; on change and periodically.
* ``totals``: each finished day's totals, once all its events are acknowledged, at or
  after ``totals_at`` the next day.

A retained birth goes on ``status`` at connect, a retained Last Will says offline.
Connecting again uses a randomised, capped exponential back-off. Serving customers never
waits on any of this: the box's listener only sets flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import random
import ssl
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocols import uplink as proto
from protocols.metrics import Metric

from .. import __version__, metrics
from ..engine import Event
from ..journal import Journal
from ..web.views import status_view
from .commands import CommandDesk, CommandRefused, Handler
from .counters import LinkCounters
from .inbox import CommandInbox
from .settings import UplinkSettings

if TYPE_CHECKING:
    from ..box import Box
    from ..update import Updater

__all__ = ["Uplink"]

log = logging.getLogger(__name__)

MAX_REPLAY = 200_000  # events one replay command sends at most


class Uplink:
    """The MQTT link of one box (a supervisor component)."""

    name = "uplink"

    def __init__(self, settings: UplinkSettings) -> None:
        self.settings = settings
        _, self.host, self.port = proto.parse_broker_url(settings.broker)
        self.tls = settings.broker.startswith("mqtts://")
        self.counters = LinkCounters()
        self.connected = False
        self.acked = 0  # the centre's acked_through for this journal's epoch
        self.sent = 0  # sent through (since the last ack, in flight)
        self._extra: dict[str, Handler] = {}
        self._wake = asyncio.Event()  # new events or an ack: the sender looks again
        self._live_dirty = asyncio.Event()
        self._health_dirty = asyncio.Event()
        self._totals_wake = asyncio.Event()
        self._ack_dirty = asyncio.Event()  # an ack not yet stored in the journal
        self._reports: deque[dict[str, Any]] = deque()  # the updater's, not yet sent
        self._reports_ready = asyncio.Event()
        self._persisted = 0  # acked_through as stored in the journal
        self._client: aiomqtt.Client | None = None
        self._ack_progress = 0.0  # loop time of the last ack progress (or first send)
        self._up_since: float | None = None  # loop time the current connection came up
        self._totals_cache: dict[str, dict[str, Any]] = {}
        self._tail: deque[Event] = deque()  # committed events heard of, not yet acked
        self._first_day: str | None = None  # the journal's first day (totals start there)
        self._sent: set[str] | None = None
        self._view: Journal | None = None
        self.box: Box | None = None
        self.state_dir = Path("uplink")
        self.desk: CommandDesk | None = None
        self.inbox = CommandInbox(settings.command_queue)
        self._inbox_ready = asyncio.Event()

    def use_updater(self, updater: Updater) -> None:
        """Wire the software updater (F4): ``cmd/update`` goes to :meth:`Updater.offer`,
        and every report it makes (offered, downloading, …, healthy or failed) goes to the
        centre on ``reply`` as the ``result`` for that command id."""
        async def offer(box: Box, msg: dict[str, Any]) -> dict[str, Any]:
            return await updater.offer(msg)

        self.register_command("update", offer)
        updater.listeners.append(self._on_update_report)

    def _on_update_report(self, report: dict[str, Any]) -> None:
        if len(self._reports) < 200:  # kept while offline; the updater keeps them too
            self._reports.append(report)
            self._reports_ready.set()

    def register_command(self, name: str, handler: Handler) -> None:
        """Handle centre command ``name`` (e.g. ``update``) with ``handler(box, msg)``."""
        self._extra[name] = handler
        if self.desk is not None:
            self.desk.register(name, handler)

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self, box: Box) -> None:
        """Keep the link up until cancelled (reconnecting with back-off)."""
        await self._attach(box)
        try:
            await self._keep_connected(box)
        finally:
            with contextlib.suppress(Exception):
                await self._store_ack()  # what the centre acknowledged last, on the way out
            self._detach(box)

    async def _attach(self, box: Box) -> None:
        self.box = box
        assert box.journal is not None
        self._view = await asyncio.to_thread(Journal, box.journal.path)
        self.acked = await asyncio.to_thread(lambda: self._journal().acked_through)
        self.sent = self._persisted = self.acked
        self.state_dir = box.data_dir / "uplink"
        self.desk = CommandDesk(box, self.state_dir, replay=self.replay,
                                totals=self.send_totals, on_config=self._config_changed)
        for name, handler in self._extra.items():
            self.desk.register(name, handler)
        self.counters.roll(self._today(), self.state_dir / "link-days.jsonl")
        box.listeners.append(self._on_events)
        box.health.listeners.append(self._on_health)
        metrics.register(box, self.metrics)
        box.health.report(self.name, "offline", "connecting")

    def _detach(self, box: Box) -> None:
        metrics.unregister(box, self.metrics)
        with contextlib.suppress(ValueError):
            box.listeners.remove(self._on_events)
        with contextlib.suppress(ValueError):
            box.health.listeners.remove(self._on_health)
        if self._view is not None:
            self._view.close()
            self._view = None
        self.connected = False

    def _journal(self) -> Journal:
        assert self._view is not None
        return self._view

    async def _keep_connected(self, box: Box) -> None:
        s = self.settings
        delay = s.reconnect_min_s
        while True:
            still_cancelling()
            self._up_since = None
            try:
                # In a task of its own: on 3.11 a TaskGroup whose child fails leaves its
                # parent task marked "cancelling"; this keeps that off the long-lived task.
                await asyncio.create_task(self._connection(box), name="uplink-connection")
            except* (aiomqtt.MqttError, OSError, TimeoutError) as group:
                self._lost(box, group.exceptions[0], self._up_since is not None)
            up = self._up_since
            if up is not None and asyncio.get_running_loop().time() - up > 30:
                delay = s.reconnect_min_s  # it was up a good while: start the back-off afresh
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, s.reconnect_max_s)

    async def _connection(self, box: Box) -> None:
        try:
            async with self._make_client(box) as client:
                self._up_since = asyncio.get_running_loop().time()
                await self._session(box, client)
        finally:
            self.connected = False
            self._client = None

    def _lost(self, box: Box, exc: BaseException, was_up: bool) -> None:
        self.counters.roll(self._today(), self.state_dir / "link-days.jsonl")
        if was_up:
            self.counters.disconnects += 1
        else:
            self.counters.connection_failures += 1
        if isinstance(exc, TimeoutError) or "timed out" in str(exc):
            self.counters.timeouts += 1
        log.warning("uplink to %s:%d %s: %s", self.host, self.port,
                    "lost" if was_up else "failed", exc)
        box.health.report(self.name, "offline", str(exc)[:120] or type(exc).__name__)

    def _make_client(self, box: Box) -> aiomqtt.Client:
        s, branch = self.settings, box.config.branch.code
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry_s
        will = aiomqtt.Will(proto.topic(branch, "status"),
                            proto.encode(proto.will(branch, box.epoch)), qos=1, retain=True)
        tls = ssl.create_default_context(cafile=s.ca_file) if self.tls else None
        return aiomqtt.Client(
            self.host, self.port, username=s.username or branch, password=s.password,
            identifier=s.client_id or f"paidui-box-{branch}",
            protocol=aiomqtt.ProtocolVersion.V5, will=will, clean_start=False,
            properties=props, keepalive=s.keepalive_s, timeout=s.publish_timeout_s,
            tls_context=tls,
        )

    async def _session(self, box: Box, client: aiomqtt.Client) -> None:
        branch = box.config.branch.code
        client.pending_calls_threshold = 1000
        await client.subscribe([(proto.topic(branch, "ack"), 1),
                                (f"{proto.ROOT}/{branch}/cmd/+", 1)])
        self._client = client
        self.connected = True
        self.counters.roll(self._today(), self.state_dir / "link-days.jsonl")
        self.counters.connects += 1
        if self.sent > self.acked:
            self.counters.retries += 1  # what was in flight goes again
        self.sent = self.acked
        self._ack_progress = asyncio.get_running_loop().time()
        await self._publish_birth()
        box.health.report(self.name, "ok", f"connected to {self.host}:{self.port}")
        log.info("uplink connected to %s:%d (acked through %d of %d)", self.host, self.port,
                 self.acked, box.last_seq)
        self._live_dirty.set()
        self._health_dirty.set()
        self._totals_wake.set()
        self._wake.set()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._receive(client), name="uplink-receive")
            tg.create_task(self._send(client), name="uplink-send")
            tg.create_task(self._commands(client), name="uplink-commands")
            tg.create_task(self._live(client), name="uplink-live")
            tg.create_task(self._health(client), name="uplink-health")
            tg.create_task(self._totals(), name="uplink-totals")
            tg.create_task(self._keep_acks(), name="uplink-acks")
            tg.create_task(self._send_reports(client), name="uplink-update-reports")

    # --- listeners (called in the box's commit path: never block) ------------------------

    def _on_events(self, events: list[Event]) -> None:
        tail = self._tail
        tail.extend(events)
        while len(tail) > self.settings.window:
            tail.popleft()
        self._wake.set()
        self._live_dirty.set()
        if any(e["type"] == "day_opened" for e in events):
            self._totals_wake.set()

    def _on_health(self, status: Any) -> None:
        self._health_dirty.set()

    # --- sending events --------------------------------------------------------------------

    async def _send(self, client: aiomqtt.Client) -> None:
        box, s = self._box(), self.settings
        loop = asyncio.get_running_loop()
        while True:
            still_cancelling()
            self._wake.clear()
            if self.sent > self.acked and loop.time() - self._ack_progress > s.ack_timeout_s:
                log.warning("uplink: no ack beyond %d for %.0fs; sending again", self.acked,
                            s.ack_timeout_s)
                self.counters.timeouts += 1
                self.counters.retries += 1
                self.sent = self.acked
                self._ack_progress = loop.time()
            room = s.window - (self.sent - self.acked)
            if self.sent < box.last_seq and room > 0:
                if self.sent == self.acked:
                    self._ack_progress = loop.time()
                if await self._publish_events(client, self.sent, min(s.batch_size, room)) \
                        == self.sent:
                    await box.settled()  # numbered, not yet committed: wait for the disk
                continue
            # Woken by the box's listener; but a caller cancelled mid-commit leaves its
            # events durable and unheard of, so look at the journal now and then anyway.
            wait = s.idle_look_s
            if self.sent > self.acked:
                wait = max(0.01, self._ack_progress + s.ack_timeout_s - loop.time())
            await _wait(self._wake, min(wait, s.idle_look_s * _jitter()))

    async def _publish_events(self, client: aiomqtt.Client, after: int, limit: int,
                              through: int | None = None) -> int:
        box = self._box()
        events = self._from_tail(after, limit) if through is None else None
        if not events:
            events = [r.event for r in await box.read_events(after, limit, through)]
        if not events:
            return after
        msg = proto.events_batch(box.config.branch.code, box.epoch, events)
        await client.publish(proto.topic(box.config.branch.code, "events"), proto.encode(msg),
                             qos=1)
        self.counters.batches_sent += 1
        self.counters.events_sent += len(events)
        last = int(events[-1]["seq"])
        if through is None:  # the outbox's own progress (replays leave it alone)
            self.sent = max(self.sent, last)
        return last

    def _from_tail(self, after: int, limit: int) -> list[Event]:
        """Events ``after+1…`` from those the box's listener handed over (committed), without
        a journal read; empty when they are not all there (the journal has them)."""
        tail = self._tail
        while tail and tail[0]["seq"] <= min(after, self.acked):
            tail.popleft()
        out: list[Event] = []
        for e in tail:
            if e["seq"] <= after:
                continue
            if e["seq"] != after + len(out) + 1 or len(out) == limit:
                break
            out.append(e)
        return out

    async def replay(self, first: int, through: int) -> dict[str, Any]:
        """Send events ``first..through`` again (a replay command); returns what went."""
        client, box = self._client, self._box()
        if client is None:
            raise CommandRefused("offline", "未连接", "not connected")
        through = min(through, box.last_seq, first + MAX_REPLAY - 1)
        after, sent = first - 1, 0
        while after < through:
            last = await self._publish_events(client, after, self.settings.batch_size, through)
            if last == after:
                break
            sent += 1
            after = last
        self.counters.replays += 1
        return {"from": first, "through": through, "batches": sent}

    # --- receiving -----------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                where, msg = proto.decode(str(message.topic), bytes(message.payload or b""))
            except proto.ProtocolError as exc:
                self.counters.rejected += 1
                log.warning("uplink: dropped a message on %s: %s", message.topic, exc)
                await self._refuse_malformed(client, str(message.topic), message.payload, exc)
                continue
            if where.kind == "ack":
                await self._on_ack(msg)
            elif where.kind == "cmd" and where.name is not None:
                for (name, refused), refusal in self.inbox.offer(where.name, msg):
                    log.warning("command %s %s: %s", name, refused["id"], refusal.message_en)
                    await self._reply(client, proto.reply(
                        refused["id"], name, error=refusal.to_json(), at=self._box().clock.now()))
                self._inbox_ready.set()

    async def _refuse_malformed(self, client: aiomqtt.Client, topic: str, payload: Any,
                                exc: proto.ProtocolError) -> None:
        """A command we cannot read still gets an answer if it has a readable id."""
        if "/cmd/" not in topic:
            return
        try:
            cmd_id = json.loads(payload)["id"]
        except (ValueError, KeyError, TypeError, IndexError):
            return
        if isinstance(cmd_id, str) and 0 < len(cmd_id) <= 64:
            err = {"code": "invalid_command", "message": "命令格式错误",
                   "message_en": f"invalid command: {exc}"}
            await self._reply(client, proto.reply(cmd_id, topic.rsplit("/", 1)[-1], error=err))

    async def _on_ack(self, msg: dict[str, Any]) -> None:
        box = self._box()
        if msg["epoch"] != box.epoch:
            log.info("uplink: ack for epoch %s ignored (ours is %s)", msg["epoch"], box.epoch)
            return
        through = min(msg["acked_through"], box.last_seq)
        if through <= self.acked:
            return
        self.acked = through
        self._ack_dirty.set()
        self.sent = max(self.sent, through)
        self._ack_progress = asyncio.get_running_loop().time()
        self._wake.set()
        self._totals_wake.set()

    async def _keep_acks(self) -> None:
        """Store the centre's acks in the journal, at most every ``ack_persist_s``: one
        write per ack would double the box's disk writes. Losing the latest on a crash
        only means those events go again, and the centre ignores them."""
        while True:
            still_cancelling()
            await self._ack_dirty.wait()
            self._ack_dirty.clear()
            await self._store_ack()
            await asyncio.sleep(self.settings.ack_persist_s)

    async def _store_ack(self) -> None:
        if self.acked > self._persisted:
            through = self.acked
            await self._box().acknowledge(through)
            self._persisted = through

    async def _commands(self, client: aiomqtt.Client) -> None:
        desk = self.desk
        assert desk is not None
        while True:
            still_cancelling()
            taken = self.inbox.take()
            if taken is None:
                self._inbox_ready.clear()
                await self._inbox_ready.wait()
                continue
            name, msg = taken
            result, refusal = await desk.run(name, msg)
            now = self._box().clock.now()
            answer = proto.reply(msg["id"], name, result=result,
                                 error=refusal.to_json() if refusal else None, at=now)
            log.info("command %s %s: %s", name, msg["id"],
                     refusal.code if refusal else "done")
            await self._reply(client, answer)

    async def _send_reports(self, client: aiomqtt.Client) -> None:
        """The updater's reports, in order, as replies to their ``cmd/update``."""
        while True:
            still_cancelling()
            await self._reports_ready.wait()
            while self._reports:
                report = self._reports[0]
                answer = proto.reply(str(report.get("id", "update")), "update", result=report,
                                     at=self._box().clock.now())
                await self._reply(client, answer)
                self._reports.popleft()
            self._reports_ready.clear()

    async def _reply(self, client: aiomqtt.Client, answer: dict[str, Any]) -> None:
        branch = self._box().config.branch.code
        await client.publish(proto.topic(branch, "reply"), proto.encode(answer), qos=1)

    # --- status, live, health --------------------------------------------------------------

    async def _publish_birth(self) -> None:
        box, client = self._box(), self._client
        if client is None:
            return
        msg = proto.birth(box.config.branch.code, box.epoch, box.last_seq, __version__,
                          box.config.version, box.clock.now())
        await client.publish(proto.topic(box.config.branch.code, "status"), proto.encode(msg),
                             qos=1, retain=True)

    async def _config_changed(self) -> None:
        self._live_dirty.set()
        await self._publish_birth()

    async def _live(self, client: aiomqtt.Client) -> None:
        box = self._box()
        while True:
            still_cancelling()
            await self._live_dirty.wait()
            self._live_dirty.clear()
            await box.settled()
            now = box.clock.now()
            msg = {"v": proto.SCHEMA_VERSION, "branch": box.config.branch.code, "at": now,
                   "status": status_view(box.engine.state, box.config, now)}
            await client.publish(proto.topic(box.config.branch.code, "live"),
                                 proto.encode(msg), qos=1, retain=True)
            await asyncio.sleep(self.settings.live_interval_s)  # coalesce: ≤ 1/interval

    async def _health(self, client: aiomqtt.Client) -> None:
        box = self._box()
        while True:
            still_cancelling()
            await _wait(self._health_dirty, self.settings.health_interval_s * _jitter())
            self._health_dirty.clear()
            await client.publish(proto.topic(box.config.branch.code, "health"),
                                 proto.encode(await self.health_report()), qos=1, retain=True)
            await asyncio.sleep(1.0)  # coalesce bursts of device changes

    async def health_report(self) -> dict[str, Any]:
        box = self._box()
        self.counters.roll(self._today(), self.state_dir / "link-days.jsonl")
        return {
            "v": proto.SCHEMA_VERSION, "branch": box.config.branch.code, "at": box.clock.now(),
            "epoch": box.epoch, "last_seq": box.last_seq, "devices": box.health.snapshot(),
            "link": {"connected": self.connected, **self.counters.to_dict(),
                     "commands_waiting": len(self.inbox),
                     "commands_refused": dict(self.inbox.refused)},
            "outbox": await self.outbox(),
        }

    async def outbox(self) -> dict[str, Any]:
        """Backlog (events not yet acknowledged) and the age of the oldest of them."""
        box = self._box()
        backlog = max(0, box.last_seq - self.acked)
        age = 0.0
        if backlog:
            first = await box.read_events(self.acked, 1)
            if first:
                age = max(0.0, box.clock.now() - float(first[0].event["at"]))
        return {"backlog": backlog, "oldest_unsent_age_s": round(age, 3),
                "acked_through": self.acked, "last_seq": box.last_seq}

    # --- daily totals ----------------------------------------------------------------------

    async def _totals(self) -> None:
        while True:
            still_cancelling()
            await _wait(self._totals_wake, self.settings.check_every_s * _jitter())
            self._totals_wake.clear()
            self.counters.roll(self._today(), self.state_dir / "link-days.jsonl")
            for day in await self._due_days():
                totals = await self._day_totals(day)
                last = totals["last_seq"]
                if last is not None and self.acked < last:
                    break  # its events are not all settled yet: later, in order
                await self.send_totals(day, totals)
                self._mark_sent(day)

    async def _due_days(self) -> list[str]:
        """Finished days whose totals are due and not yet sent, oldest first."""
        box, s = self._box(), self.settings
        now = box.clock.now()
        today = dt.date.fromisoformat(box.engine.day_of(now))
        if self._first_day is None:
            first = await asyncio.to_thread(self._journal().read, 0, 1)
            if not first:
                return []
            self._first_day = str(first[0].event["day"])
        start = max(dt.date.fromisoformat(self._first_day),
                    today - dt.timedelta(days=s.totals_days))
        sent = self._sent_days()
        hh, mm = map(int, s.totals_at.split(":"))
        due = []
        day = start
        while day < today:
            at = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(hh, mm), box.config.tz)
            if day.isoformat() not in sent and now >= at.timestamp() \
                    and box.engine.state.day > day.isoformat():
                due.append(day.isoformat())
            day += dt.timedelta(days=1)
        return due

    async def _day_totals(self, day: str) -> dict[str, Any]:
        cached = self._totals_cache.get(day)
        if cached is None:
            # The engine applies a day's closing events before they are durable: wait for
            # them, or the day would be read without its end.
            await self._box().settled()
            records = await asyncio.to_thread(self._journal().day, day)
            cached = proto.day_totals(r.event for r in records)
            self._totals_cache = {day: cached}  # one closed day at a time is enough
        return cached

    async def send_totals(self, day: str, totals: dict[str, Any] | None = None
                          ) -> dict[str, Any]:
        """Publish ``day``'s totals (F3); also the ``totals`` command's handler."""
        client, box = self._client, self._box()
        if client is None:
            raise CommandRefused("offline", "未连接", "not connected")
        totals = totals or await self._day_totals(day)
        msg = {"v": proto.SCHEMA_VERSION, "branch": box.config.branch.code,
               "epoch": box.epoch, "day": day, **totals}
        await client.publish(proto.topic(box.config.branch.code, "totals"), proto.encode(msg),
                             qos=1)
        log.info("totals for %s sent: %d events", day, totals["events"])
        return {"day": day, "events": totals["events"]}

    def _sent_days(self) -> set[str]:
        """Days whose totals went out (kept in ``uplink/totals-sent.json``)."""
        if self._sent is None:
            try:
                data = json.loads((self.state_dir / "totals-sent.json").read_text())
                self._sent = {d for d in data if isinstance(d, str)}
            except (OSError, ValueError):
                self._sent = set()
        return self._sent

    def _mark_sent(self, day: str) -> None:
        days = sorted({*self._sent_days(), day})[-120:]
        self._sent = set(days)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "totals-sent.json").write_text(json.dumps(days))

    # --- helpers ---------------------------------------------------------------------------

    def _box(self) -> Box:
        assert self.box is not None
        return self.box

    def _today(self) -> str:
        box = self._box()
        return box.engine.day_of(box.clock.now())

    async def metrics(self) -> list[Metric]:
        """The uplink's part of the box's ``/metrics``."""
        out = await self.outbox()
        c = self.counters
        found = [
            Metric("paidui_uplink_connected", "gauge", "1 when the link to the broker is up")
            .add(1 if self.connected else 0),
            Metric("paidui_outbox_backlog_events", "gauge",
                   "journal events not yet acknowledged by the centre").add(out["backlog"]),
            Metric("paidui_outbox_oldest_unsent_age_seconds", "gauge",
                   "age of the oldest event not yet acknowledged").add(out["oldest_unsent_age_s"]),
            Metric("paidui_outbox_acked_through", "gauge",
                   "the centre's cumulative acknowledgement").add(self.acked),
        ]
        refused = Metric("paidui_uplink_commands_refused_total", "counter",
                         "centre commands answered without running (busy, superseded)")
        for code in ("busy", "superseded"):
            refused.add(self.inbox.refused[code], code=code)
        found += [Metric("paidui_uplink_commands_waiting", "gauge",
                         "centre commands waiting to run").add(len(self.inbox)), refused]
        for name in ("connects", "connection_failures", "disconnects", "timeouts", "retries",
                     "replays", "events_sent"):
            found.append(Metric(f"paidui_uplink_{name}_today", "gauge",
                                f"uplink {name.replace('_', ' ')} today ({c.day})")
                         .add(getattr(c, name)))
        return found


def _jitter() -> float:
    """Spread periodic work: boxes started together (a power cut, a broker restart) must not
    all report in the same second."""
    return random.uniform(0.75, 1.25)


async def _wait(event: asyncio.Event, timeout: float | None) -> None:
    """Wait for ``event`` at most ``timeout`` seconds (``asyncio.timeout``: unlike
    ``wait_for`` on Python 3.11 it never loses a cancellation that races the event)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


def still_cancelling() -> None:
    """Re-raise a cancellation that a library swallowed (``wait_for`` on 3.11 can)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
