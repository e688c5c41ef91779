"""The box's MQTT session with the centre's broker: one connection at a time.

With several brokers (``uplink.broker`` a list) it is on one at a time and moves to the
next after a failed or lost connection; each broker keeps the box's persistent session.
It builds the client (MQTT v5, persistent session so commands wait for an offline box,
a retained Last Will saying offline, TLS for ``mqtts://``), subscribes to ``ack`` and
``cmd/+``, publishes the retained birth on ``status``, counts connects and failures, and
paces reconnecting with a randomised, capped exponential back-off. What runs while the
session is up is the caller's (:class:`~controller.uplink.link.Uplink`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common import __version__
from protocols import uplink as proto

from .counters import LinkCounters
from .settings import UplinkSettings

if TYPE_CHECKING:
    from ..box import Box

__all__ = ["LINK_ERRORS", "Session"]

log = logging.getLogger(__name__)

LINK_ERRORS = (aiomqtt.MqttError, OSError, TimeoutError)  # a lost link; anything else is a bug
UP_A_WHILE_S = 30  # a connection up this long starts the back-off afresh


class Session:
    """Connect, subscribe, birth and Last Will; the back-off between connections.

    ``roll`` brings the day's link counters to today before they are counted.
    """

    name = "uplink"  # the box's health entry

    def __init__(self, settings: UplinkSettings, counters: LinkCounters,
                 roll: Callable[[], None]) -> None:
        self.settings = settings
        self.brokers = settings.brokers
        self.at = 0  # the broker tried now: the next one after each failure or loss
        self.host, self.port, self.tls = "", 0, False
        self._aim()
        self.counters, self._roll = counters, roll
        self.client: aiomqtt.Client | None = None  # while connected
        self.connected = False
        self._up_since: float | None = None  # loop time the current connection came up
        self._delay = settings.reconnect_min_s

    def _aim(self) -> None:
        url = self.brokers[self.at]
        _, self.host, self.port = proto.parse_broker_url(url)
        self.tls = url.startswith("mqtts://")

    @contextlib.asynccontextmanager
    async def up(self, box: Box) -> AsyncIterator[aiomqtt.Client]:
        """Connected and subscribed, the birth published; disconnects on the way out."""
        self._up_since = None
        try:
            async with self._make_client(box) as client:
                self._up_since = asyncio.get_running_loop().time()
                await self._subscribe(box, client)
                yield client
        finally:
            self.connected = False
            self.client = None

    async def _subscribe(self, box: Box, client: aiomqtt.Client) -> None:
        branch = box.config.branch.code
        client.pending_calls_threshold = 1000
        await client.subscribe([(proto.topic(branch, "ack"), 1),
                                (f"{proto.ROOT}/{branch}/cmd/+", 1),
                                (proto.CENTRE_TOPIC, 1)])
        self.client = client
        self.connected = True
        self._roll()
        self.counters.connects += 1
        await self.publish_birth(box)
        box.health.report(self.name, "ok", f"connected to {self.host}:{self.port}")

    def lost(self, box: Box, exc: BaseException) -> None:
        """Count and report a connection that failed or dropped."""
        was_up = self._up_since is not None
        self._roll()
        if was_up:
            self.counters.disconnects += 1
        else:
            self.counters.connection_failures += 1
        if isinstance(exc, TimeoutError) or "timed out" in str(exc):
            self.counters.timeouts += 1
        log.warning("uplink to %s:%d %s: %s", self.host, self.port,
                    "lost" if was_up else "failed", exc)
        box.health.report(self.name, "offline", str(exc)[:120] or type(exc).__name__)
        if len(self.brokers) > 1:  # the next broker: its own persistent session
            self.at = (self.at + 1) % len(self.brokers)
            self._aim()
            self.counters.broker_switches += 1
            if was_up:  # a working broker went away: try the next one promptly
                self._delay = self.settings.reconnect_min_s
            log.info("uplink: trying broker %s:%d next", self.host, self.port)

    def next_delay(self) -> float:
        """How long to wait before connecting again (randomised, doubling to the cap)."""
        s, up = self.settings, self._up_since
        if up is not None and asyncio.get_running_loop().time() - up > UP_A_WHILE_S:
            self._delay = s.reconnect_min_s  # it was up a good while: start afresh
        delay = self._delay * random.uniform(0.5, 1.5)
        self._delay = min(self._delay * 2, s.reconnect_max_s)
        return delay

    async def publish_birth(self, box: Box) -> None:
        """The retained ``status``: online, epoch, last seq, versions (when connected)."""
        client = self.client
        if client is None:
            return
        msg = proto.birth(box.config.branch.code, box.epoch, box.last_seq, __version__,
                          box.config.version, box.clock.now())
        await client.publish(proto.topic(box.config.branch.code, "status"), proto.encode(msg),
                             qos=1, retain=True)

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
