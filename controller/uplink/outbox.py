"""The journal as the outbox: what is sent, what the centre acknowledged, replays.

Unacknowledged events go out in seq order, in batches, QoS 1, at most ``window`` events
beyond the centre's ``acked_through``. No ack progress for ``ack_timeout_s`` → go back and
send again from the last ack (a *timeout* and a *retry* in the day's counters); every
connect starts again from the last ack (:meth:`Outbox.restart`), and so does a centre that
announces a new subscription (:meth:`Outbox.centre_seen`). An ``ack`` is cumulative
for this journal's epoch and stored with :meth:`Box.acknowledge` at most every
``ack_persist_s``. Events the box's listener hands over are kept (at most ``window``) so
that sending rarely reads the journal.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import aiomqtt

from common.tasks import wait_at_most
from protocols import uplink as proto

from ..engine import Event
from .commands import CommandRefused
from .counters import LinkCounters
from .pacing import jitter
from .settings import UplinkSettings

if TYPE_CHECKING:
    from ..box import Box

__all__ = ["MAX_REPLAY", "Outbox"]

log = logging.getLogger(__name__)

MAX_REPLAY = 200_000  # events one replay command sends at most


class Outbox:
    """Sent and acknowledged marks of one box's journal, and the sending of its events."""

    def __init__(self, settings: UplinkSettings, counters: LinkCounters) -> None:
        self.settings, self.counters = settings, counters
        self.acked = 0  # the centre's acked_through for this journal's epoch
        self.sent = 0  # sent through (since the last ack, in flight)
        self.wake = asyncio.Event()  # new events or an ack: the sender looks again
        self._ack_dirty = asyncio.Event()  # an ack not yet stored in the journal
        self._persisted = 0  # acked_through as stored in the journal
        self._ack_progress = 0.0  # loop time of the last ack progress (or first send)
        self._tail: deque[Event] = deque()  # committed events heard of, not yet acked
        self._centre: str | None = None  # the last centre announcement seen
        self.box: Box | None = None

    def attach(self, box: Box, acked: int) -> None:
        """Start from what the journal says the centre acknowledged."""
        self.box = box
        self.acked = self.sent = self._persisted = acked

    def restart(self) -> None:
        """A new connection: what was in flight goes again, from the last ack."""
        if self.sent > self.acked:
            self.counters.retries += 1
        self.sent = self.acked
        self._ack_progress = asyncio.get_running_loop().time()

    def centre_seen(self, instance: str) -> None:
        """A centre consumer announced its subscription (``qms/v1/centre/online``). A new
        one may have missed what was sent while nobody was subscribed: what has no ack goes
        again now rather than after the ack timeout. The first announcement a box hears
        (the retained one, on connecting) changes nothing: connecting sent again anyway."""
        known, self._centre = self._centre, instance
        if known is None or known == instance or self.sent <= self.acked:
            return
        log.info("uplink: a centre came back; sending again from %d", self.acked)
        self.counters.retries += 1
        self.sent = self.acked
        self._ack_progress = asyncio.get_running_loop().time()
        self.wake.set()

    def heard(self, events: list[Event]) -> None:
        """The box committed ``events`` (called in its commit path: never blocks)."""
        tail = self._tail
        tail.extend(events)
        while len(tail) > self.settings.window:
            tail.popleft()
        self.wake.set()

    # --- sending -------------------------------------------------------------------------

    async def send_some(self, client: aiomqtt.Client) -> None:
        """One round of the sender: a batch if the window has room, else wait for a wake,
        the ack timeout, or a look at the journal now and then."""
        box, s = self._box(), self.settings
        loop = asyncio.get_running_loop()
        self.wake.clear()
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
            if await self._publish(client, self.sent, min(s.batch_size, room)) == self.sent:
                await box.settled()  # numbered, not yet committed: wait for the disk
            return
        # Woken by the box's listener; but a caller cancelled mid-commit leaves its
        # events durable and unheard of, so look at the journal now and then anyway.
        wait = s.idle_look_s
        if self.sent > self.acked:
            wait = max(0.01, self._ack_progress + s.ack_timeout_s - loop.time())
        await wait_at_most(self.wake, min(wait, s.idle_look_s * jitter()))

    async def _publish(self, client: aiomqtt.Client, after: int, limit: int,
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

    async def replay(self, client: aiomqtt.Client | None, first: int, through: int
                     ) -> dict[str, Any]:
        """Send events ``first..through`` again (a replay command); returns what went."""
        box = self._box()
        if client is None:
            raise CommandRefused("offline", "未连接", "not connected")
        through = min(through, box.last_seq, first + MAX_REPLAY - 1)
        after, sent = first - 1, 0
        while after < through:
            last = await self._publish(client, after, self.settings.batch_size, through)
            if last == after:
                break
            sent += 1
            after = last
        self.counters.replays += 1
        return {"from": first, "through": through, "batches": sent}

    # --- acknowledgements ------------------------------------------------------------------

    def on_ack(self, msg: dict[str, Any]) -> bool:
        """Take the centre's ``ack``; True when it moved ``acked`` forward."""
        box = self._box()
        if msg["epoch"] != box.epoch:
            log.info("uplink: ack for epoch %s ignored (ours is %s)", msg["epoch"], box.epoch)
            return False
        through = min(msg["acked_through"], box.last_seq)
        if through <= self.acked:
            return False
        self.acked = through
        self._ack_dirty.set()
        self.sent = max(self.sent, through)
        self._ack_progress = asyncio.get_running_loop().time()
        self.wake.set()
        return True

    async def keep_acks(self) -> None:
        """One round of storing the centre's acks in the journal, at most every
        ``ack_persist_s``: one write per ack would double the box's disk writes. Losing the
        latest on a crash only means those events go again, and the centre ignores them."""
        await self._ack_dirty.wait()
        self._ack_dirty.clear()
        await self.store_ack()
        await asyncio.sleep(self.settings.ack_persist_s)  # the pace of journal writes

    async def store_ack(self) -> None:
        """Store the latest ack in the journal, if it is not there yet."""
        if self.acked > self._persisted:
            through = self.acked
            await self._box().acknowledge(through)
            self._persisted = through

    async def figures(self) -> dict[str, Any]:
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

    def _box(self) -> Box:
        assert self.box is not None
        return self.box
