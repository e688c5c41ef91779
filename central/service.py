"""One centre process: its consumers (in the shared group) and its HTTP API.

Run several processes with the same ``broker.group`` to share the load; give each its own
``http.port`` or ``--set http.enabled=false``. The jobs that must run once (alerts, booking
pushes) run on one of them at a time, under a lease (:mod:`central.leases`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from common.clock import Clock, clock_for
from protocols import uplink as proto
from protocols.metrics import Metric

from .config import CentreConfig
from .customers import CustomerChannels
from .ingest import Consumer, IngestStats
from .leases import Leases
from .store import Store, open_store

if TYPE_CHECKING:
    from .mqtt import MqttClient
    from .releases import ReleaseStore

__all__ = ["Centre"]

log = logging.getLogger(__name__)
T = TypeVar("T")


async def _held() -> None:
    """A lease held for what it gates (the live board asks :attr:`Leases.held`)."""
    await asyncio.Event().wait()


class Centre:
    """Consumers + a reading store connection + the HTTP API, for one process."""

    def __init__(self, config: CentreConfig) -> None:
        self.config = config
        # The centre's ONE clock, built once here (a StartedClock built twice differs): all
        # it stamps and compares runs on it — the store, the live board, ingest, the alert
        # desk, sessions, the customer channels. Leases keep the real time (central/leases.py).
        self.clock: Clock = clock_for(config.clock.start)
        self.stats = IngestStats()
        # ingest.consumers on each broker (several: the boxes fail over between them)
        urls = [u for u in config.broker.all_urls for _ in range(config.ingest.consumers)]
        self.consumers = [Consumer(config, index=i, stats=self.stats, url=u, clock=self.clock)
                          for i, u in enumerate(urls)]
        # The branches' live picture (status, live, health: retained, not shared) is read
        # by one consumer per broker, of one instance at a time (the live-picture lease):
        # every instance reading every branch's every snapshot doubled the messages each
        # had to parse, and wrote the same rows twice.
        for c in self.consumers:
            c.live_wanted = False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="centre-reader")
        self._reader: Store | None = None
        self.releases: ReleaseStore | None = None
        self.started = self.clock.now()
        self.customers = (CustomerChannels(self, clock=self.clock.now) if config.customers.enabled
                          else None)
        from .office import Office

        self.office = Office(self, self.clock)  # logins, the live board, the back office
        # the jobs done once across instances (alerts, booking pushes) run under leases
        self.leases = Leases(config.store.url, lease_s=config.ha.lease_s)
        self.office.board.publishes = lambda: "aggregates" in self.leases.held

    async def run(self) -> None:
        """Run until cancelled (or until the HTTP server is stopped by a signal)."""
        rel = self.config.releases
        if rel.files:  # software releases share the store (central/releases.py)
            from .releases import ReleaseStore

            self.releases = await asyncio.to_thread(ReleaseStore.open, self.config.store.url,
                                                    rel.files)
            for c in self.consumers:
                c.releases = self.releases
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(c.run(), name=f"consumer-{c.index}")
                         for c in self.consumers]
                if self.customers is not None:  # bookings pushed to the branches
                    tasks.append(tg.create_task(self.customers.run(self.leases),
                                                name="customers"))
                tasks.append(tg.create_task(self.office.run(), name="office"))
                tasks.append(tg.create_task(self.leases.run("live-picture",
                                                            self._read_live_picture),
                                            name="live-picture"))
                if self.config.web.live.agg_publish:  # the dashboards' aggregates: one
                    tasks.append(tg.create_task(self.leases.run("aggregates", _held),
                                                name="aggregates"))
                tasks.append(tg.create_task(self._keep_forms(), name="form-retention"))
                tasks.append(tg.create_task(self.leases.run("retention", self._keep_records),
                                            name="retention"))
                if self.config.http.enabled:
                    await self._serve_http()  # returns on SIGINT/SIGTERM
                    for t in tasks:
                        t.cancel()
        finally:
            await self.close()

    async def _read_live_picture(self) -> None:
        """Held: the first consumer on each broker reads the branches' status, live and
        health (their retained latest at once); lost or given up: it stops."""
        readers = list({c.url: c for c in reversed(self.consumers)}.values())
        try:
            for c in readers:
                await c.take_live()
            await asyncio.Event().wait()  # until the lease is lost or the centre stops
        finally:
            for c in readers:
                await c.drop_live()

    def _business_day(self) -> dt.date:
        """The centre's business day: its clock in the customers' zone."""
        return dt.datetime.fromtimestamp(self.clock.now(), self.config.customers.tz).date()

    async def _keep_forms(self) -> None:
        """Blank pre-filled forms past ``forms.keep_days`` (central/forms.py)."""
        from .forms import keep_forms

        await keep_forms(self, self.config.form_settings.keep_days,
                         lambda: self._business_day().isoformat())

    async def _keep_records(self) -> None:
        """Held: prune what is older than ``[retention]`` (central/retention.py)."""
        from .retention import keep_records

        clock, url = self.clock, self.config.store.url
        await keep_records(lambda: open_store(url, clock=clock), self.config.retention,
                           self._business_day, clock.now)

    async def _serve_http(self) -> None:
        from common.httpserver import http_server

        from .web import create_app

        http = self.config.http
        server = http_server(create_app(self), http.host, http.port, graceful_s=3,
                             proxies=http.trusted_proxies)
        log.info("centre HTTP API on http://%s:%d", http.host, http.port)
        await server.serve()

    async def close(self) -> None:
        await self.leases.close()  # given up at once: another instance takes them over
        releases, self.releases = self.releases, None
        if releases is not None:
            await asyncio.to_thread(releases.close)
        reader, self._reader = self._reader, None
        if reader is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, reader.close)
        await asyncio.to_thread(self._executor.shutdown, True)

    async def read(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on the reading connection's thread."""
        def call() -> T:
            if self._reader is None:
                self._reader = open_store(self.config.store.url, clock=self.clock)
            return fn(self._reader)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def mqtt_client(self) -> MqttClient | None:
        """A connected client of this process's consumers, or None while none is."""
        return next((c.client for c in self.consumers if c.client is not None), None)

    def broker_clients(self) -> list[MqttClient]:
        """One connected client per broker (several brokers: the box is on one of them)."""
        found: dict[str, MqttClient] = {}
        for c in self.consumers:
            if c.client is not None:
                found.setdefault(c.url, c.client)
        return list(found.values())

    async def send_command(self, branch: str, name: str, args: dict[str, Any]) -> str:
        """Publish command ``name`` to ``branch``; returns its id. ValueError if invalid.

        With several brokers it goes out on each (the box is on one, and its persistent
        session on another may hold it for later): the box runs a command id once and
        answers it the same again (docs/uplink.md, "Commands")."""
        clients = self.broker_clients()
        if not clients:
            raise ConnectionError("the centre is not connected to the broker")
        cmd_id = str(args.pop("id", "") or f"{name}-{uuid.uuid4().hex[:12]}")
        msg = proto.command(cmd_id, **args)
        topic = proto.topic(branch, "cmd", name)
        try:
            proto.validate(proto.parse_topic(topic), msg)
        except proto.ProtocolError as exc:
            raise ValueError(str(exc)) from None
        payload = proto.encode(msg)
        sent = await asyncio.gather(*(c.publish(topic, payload, qos=1) for c in clients),
                                    return_exceptions=True)
        failed = [r for r in sent if isinstance(r, BaseException)]
        if len(failed) == len(sent):
            raise failed[0]
        log.info("command %s %s sent to %s", name, cmd_id, branch)
        return cmd_id

    async def metrics(self) -> list[Metric]:
        s = self.stats
        lags = await self.read(lambda st: st.lags())
        dead = await self.read(lambda st: st.dead_letter_counts())
        lag = Metric("paidui_centre_branch_lag_events", "gauge",
                     "events a branch has that the centre has not yet stored contiguously")
        for branch, _, _, behind in lags:
            lag.add(behind, branch=branch)
        dead_m = Metric("paidui_centre_dead_letters_total", "counter",
                        "messages rejected into the dead-letter table, by reason")
        for reason, n in dead.items():
            dead_m.add(n, reason=reason)
        dropped = Metric("paidui_centre_ingest_dropped_total", "counter",
                         "messages not taken, by class and reason: rate (over the branch's "
                         "limit; events are sent again), superseded, line_full")
        for (cls, reason), n in sorted(s.dropped.items()):
            dropped.add(n, **{"class": cls, "reason": reason})
        lines = [c.line for c in self.consumers if c.line is not None]
        return [
            dropped,
            Metric("paidui_centre_ingest_line_messages", "gauge",
                   "received messages waiting to be decoded").add(sum(q.qsize() for q in lines)),
            Metric("paidui_centre_ingest_line_bytes", "gauge",
                   "their payloads' bytes").add(sum(q.bytes for q in lines)),
            Metric("paidui_centre_branch_flooding_notes_total", "counter",
                   "branch_flooding rows noted for the alert rules").add(s.flood_notes),
            Metric("paidui_centre_events_ingested_total", "counter",
                   "events stored by this process").add(s.inserted),
            Metric("paidui_centre_events_duplicate_total", "counter",
                   "events received again and ignored").add(s.duplicates),
            Metric("paidui_centre_ingest_rate", "gauge",
                   "events stored per second, last 10 s").add(round(s.rate(), 3)),
            Metric("paidui_centre_messages_total", "counter", "MQTT messages received")
            .add(s.messages),
            Metric("paidui_centre_commits_total", "counter", "store transactions").add(s.commits),
            Metric("paidui_centre_replay_requests_total", "counter",
                   "replays asked of branches").add(s.replay_requests),
            Metric("paidui_centre_consumers_connected", "gauge", "consumers connected")
            .add(s.connected),
            Metric("paidui_centre_leases_held", "gauge",
                   "jobs done once across instances that this process runs now")
            .add(len(self.leases.held)),
            Metric("paidui_centre_leases_taken_total", "counter",
                   "leases this process took (a hand-over counts on the new holder)")
            .add(self.leases.taken),
            lag, dead_m,
            *(self.customers.appointments.metrics() if self.customers else []),
            *(self.customers.near_turn.metrics() if self.customers else []),
            *(self.customers.booking_forms.metrics() if self.customers else []),
        ]
