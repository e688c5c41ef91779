"""The box's uplink: the journal is the outbox, the centre's ``ack`` settles it.

One :class:`Uplink` component per box (registered when ``uplink.broker`` is set). It puts
together four parts, each in a module of its own, and runs them while connected, each
round by round under one TaskGroup per connection:

* :class:`~controller.uplink.session.Session` — the MQTT session: connect (persistent, a
  retained Last Will saying offline), subscribe to ``ack`` and ``cmd/+``, the retained
  birth on ``status``, and a randomised, capped exponential back-off between connections.
* :class:`~controller.uplink.outbox.Outbox` — the sender (unacknowledged events, in seq
  order, in batches, at most ``window`` beyond the centre's ``acked_through``; sent again
  from the last ack after ``ack_timeout_s`` without progress and at every connect), the
  acks (cumulative, for this journal's epoch, stored at most every ``ack_persist_s``) and
  replays.
* :class:`~controller.uplink.channel.CommandChannel` — ``cmd/…`` into the bounded
  :class:`~controller.uplink.inbox.CommandInbox`, run one at a time by the
  :class:`~controller.uplink.commands.CommandDesk`, every answer on ``reply``.
* :class:`~controller.uplink.totals.DailyTotals` — each finished day's totals, once all
  its events are acknowledged, at or after ``totals_at`` the next day.

The Uplink itself routes what arrives (``ack`` to the outbox, ``cmd`` to the channel) and
publishes ``live`` (the status view, retained, after each change, at most every
``live_interval_s``) and ``health`` (devices, link counters, outbox; retained; on change
and periodically). Serving customers never waits on any of this: the box's listener only
sets flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt

from common.tasks import still_cancelling, wait_at_most
from protocols import uplink as proto
from protocols.metrics import Metric

from .. import metrics
from ..engine import Event
from ..journal import Journal
from ..views import status_view
from .channel import CommandChannel
from .commands import Handler
from .counters import LinkCounters
from .inbox import CommandInbox
from .outbox import Outbox
from .pacing import jitter
from .session import LINK_ERRORS, Session
from .settings import UplinkSettings
from .totals import DailyTotals

if TYPE_CHECKING:
    from ..box import Box
    from ..update import Updater

__all__ = ["Uplink"]

log = logging.getLogger(__name__)


class Uplink:
    """The MQTT link of one box (a supervisor component): a :class:`Session`, the
    :class:`Outbox`, the :class:`CommandChannel` and the :class:`DailyTotals`, and the
    loops that run them while connected."""

    name = "uplink"

    def __init__(self, settings: UplinkSettings) -> None:
        self.settings = settings
        self.counters = LinkCounters()
        self.session = Session(settings, self.counters, self._roll)
        self.outbox = Outbox(settings, self.counters)
        self.commands = CommandChannel(settings.command_queue)
        self.totals = DailyTotals(settings)
        self._live_dirty = asyncio.Event()
        self._health_dirty = asyncio.Event()
        self._view: Journal | None = None
        self.box: Box | None = None
        self.state_dir = Path("uplink")

    @property
    def connected(self) -> bool:
        """True while the session with the broker is up."""
        return self.session.connected

    @property
    def acked(self) -> int:
        """The centre's acked_through for this journal's epoch."""
        return self.outbox.acked

    @property
    def sent(self) -> int:
        """Events sent through (in flight beyond :attr:`acked`)."""
        return self.outbox.sent

    @property
    def inbox(self) -> CommandInbox:
        """The centre's commands waiting to run."""
        return self.commands.inbox

    def use_updater(self, updater: Updater) -> None:
        """Wire the software updater (F4): ``cmd/update`` goes to :meth:`Updater.offer`,
        and every report it makes (offered, downloading, …, healthy or failed) goes to the
        centre on ``reply`` as the ``result`` for that command id."""
        self.commands.use_updater(updater)

    def register_command(self, name: str, handler: Handler) -> None:
        """Handle centre command ``name`` (e.g. ``update``) with ``handler(box, msg)``."""
        self.commands.register(name, handler)

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self, box: Box) -> None:
        """Keep the link up until cancelled (reconnecting with back-off)."""
        await self._attach(box)
        try:
            await _forever(lambda: self._connect_once(box))
        finally:
            with contextlib.suppress(Exception):
                await self.outbox.store_ack()  # what the centre acknowledged last, on the way out
            self._detach(box)

    async def _attach(self, box: Box) -> None:
        self.box = box
        assert box.journal is not None
        view = self._view = await asyncio.to_thread(Journal, box.journal.path)
        self.outbox.attach(box, await asyncio.to_thread(lambda: view.acked_through))
        self.state_dir = box.data_dir / "uplink"
        self.totals.attach(box, view, self.state_dir)
        self.commands.attach(box, self.state_dir, replay=self.replay, totals=self.send_totals,
                             on_config=self._config_changed)
        self._roll()
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
        self.session.connected = False

    async def _connect_once(self, box: Box) -> None:
        try:
            # In a task of its own: on 3.11 a TaskGroup whose child fails leaves its
            # parent task marked "cancelling"; this keeps that off the long-lived task.
            await asyncio.create_task(self._connection(box), name="uplink-connection")
        except* LINK_ERRORS as group:
            self.session.lost(box, group.exceptions[0])
        # A stop that came as the connection failed (its task ended in a link error, not
        # in the cancel) stops now, not after the back-off.
        still_cancelling()
        await asyncio.sleep(self.session.next_delay())

    async def _connection(self, box: Box) -> None:
        async with self.session.up(box) as client:
            self.outbox.restart()
            log.info("uplink connected to %s:%d (acked through %d of %d)", self.session.host,
                     self.session.port, self.outbox.acked, box.last_seq)
            self._live_dirty.set()
            self._health_dirty.set()
            self.totals.wake.set()
            self.outbox.wake.set()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receive(client), name="uplink-receive")
                for name, step in self._loops(client).items():
                    tg.create_task(_forever(step), name=f"uplink-{name}")

    def _loops(self, client: aiomqtt.Client) -> dict[str, Callable[[], Awaitable[None]]]:
        """What runs while connected (besides receiving), round by round until the
        connection ends."""
        return {
            "send": lambda: self.outbox.send_some(client),
            "commands": lambda: self.commands.run_next(client),
            "live": lambda: self._live(client),
            "health": lambda: self._health(client),
            "totals": self._totals,
            "acks": self.outbox.keep_acks,
            "update-reports": lambda: self.commands.send_reports(client),
        }

    # --- listeners (called in the box's commit path: never block) ------------------------

    def _on_events(self, events: list[Event]) -> None:
        self.outbox.heard(events)
        self._live_dirty.set()
        if any(e["type"] == "day_opened" for e in events):
            self.totals.wake.set()

    def _on_health(self, status: Any) -> None:
        self._health_dirty.set()

    # --- receiving -----------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                where, msg = proto.decode(str(message.topic), bytes(message.payload or b""))
            except proto.ProtocolError as exc:
                self.counters.rejected += 1
                log.warning("uplink: dropped a message on %s: %s", message.topic, exc)
                await self.commands.refuse_malformed(client, str(message.topic),
                                                     message.payload, exc)
                continue
            if where.kind == "ack":
                if self.outbox.on_ack(msg):
                    self.totals.wake.set()
            elif where.kind == "centre":
                self.outbox.centre_seen(str(msg["instance"]))
            elif where.kind == "cmd" and where.name is not None:
                await self.commands.offer(client, where.name, msg)

    # --- commands that reach into the link ------------------------------------------------

    async def replay(self, first: int, through: int) -> dict[str, Any]:
        """Send events ``first..through`` again (a replay command); returns what went."""
        return await self.outbox.replay(self.session.client, first, through)

    async def send_totals(self, day: str) -> dict[str, Any]:
        """Publish ``day``'s totals again (the ``totals`` command's handler)."""
        return await self.totals.send(self.session.client, day)

    async def _config_changed(self) -> None:
        self._live_dirty.set()
        await self.session.publish_birth(self._box())

    # --- status, live, health --------------------------------------------------------------

    async def _live(self, client: aiomqtt.Client) -> None:
        box = self._box()
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
        await wait_at_most(self._health_dirty, self.settings.health_interval_s * jitter())
        self._health_dirty.clear()
        await client.publish(proto.topic(box.config.branch.code, "health"),
                             proto.encode(await self.health_report()), qos=1, retain=True)
        await asyncio.sleep(1.0)  # coalesce bursts of device changes

    async def _totals(self) -> None:
        await wait_at_most(self.totals.wake, self.settings.check_every_s * jitter())
        self.totals.wake.clear()
        self._roll()
        await self.totals.send_due(self.session.client, lambda: self.outbox.acked)

    async def health_report(self) -> dict[str, Any]:
        box = self._box()
        self._roll()
        return {
            "v": proto.SCHEMA_VERSION, "branch": box.config.branch.code, "at": box.clock.now(),
            "epoch": box.epoch, "last_seq": box.last_seq, "devices": box.health.snapshot(),
            "link": {"connected": self.connected, **self.counters.to_dict(),
                     "broker": f"{self.session.host}:{self.session.port}",
                     "commands_waiting": len(self.inbox),
                     "commands_refused": dict(self.inbox.refused)},
            "outbox": await self.outbox.figures(),
        }

    # --- helpers ---------------------------------------------------------------------------

    def _box(self) -> Box:
        assert self.box is not None
        return self.box

    def _roll(self) -> None:
        """Bring the day's link counters to the box's day (the finished one is kept)."""
        box = self._box()
        self.counters.roll(box.engine.day_of(box.clock.now()), self.state_dir / "link-days.jsonl")

    async def metrics(self) -> list[Metric]:
        """The uplink's part of the box's ``/metrics``."""
        out = await self.outbox.figures()
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
                     "replays", "events_sent", "broker_switches"):
            found.append(Metric(f"paidui_uplink_{name}_today", "gauge",
                                f"uplink {name.replace('_', ' ')} today ({c.day})")
                         .add(getattr(c, name)))
        return found


async def _forever(step: Callable[[], Awaitable[None]]) -> None:
    """Run ``step`` round after round until cancelled."""
    while True:
        still_cancelling()
        await step()
