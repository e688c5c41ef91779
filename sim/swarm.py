"""``python -m sim swarm``: thousands of lightweight branches speaking the real uplink.

A fleet (:mod:`sim.fleet`) runs a real box core per branch — engine, SQLite journal, uplink —
which costs about a core per 2,000 branches on this machine. A swarm branch is only what
the centre sees of a box: its own MQTT connection (user name = branch code, its own
password: the broker's ACL lets it write only under ``qms/v1/{code}/``), a retained birth
``status`` with a Last Will, journal events in batches with strictly increasing ``seq``
(``protocols/uplink.py`` builds and encodes every payload), a retained ``live`` snapshot
after each change, and the centre's ``ack`` settling them. What it does not have: a
journal on disk (nothing is fsynced on the branch side) and an engine deciding what
happens next — the events are a real branch-day played by the real engine
(``queueing.simulate_day`` on ``examples/branch.toml``), replayed in order, each stamped
with the moment it is sent (``at``: the box's commit time) and today's date.

The MQTT client is a small one written here on asyncio streams (MQTT 3.1.1: CONNECT with
a Will, SUBSCRIBE, PUBLISH QoS 1, PUBACK, PINGREQ), so that 10,000 connections fit in one
process. An event without an ``ack`` after ``ack_timeout_s`` is sent again (as the box's
outbox does); the centre stores it once whatever arrives twice.

Branch codes: ``{province}{city:02d}{n:04d}``, branch i in city ``i % cities + 1``
(:func:`branch_codes`); password: :func:`branch_password` of a shared secret, so that the
benchmark writes the broker's password file and the swarm logs in without exchanging a list.

Run by ``bench/bench_scale.py``, which starts the broker and the centres; by hand::

    python -m sim swarm --broker mqtt://127.0.0.1:1883 --branches 1000 --secret S \\
        --rate 0.12 --duration 30 --out result.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.clock import Clock, SystemClock
from protocols import mqtt
from protocols import uplink as proto

__all__ = ["MqttLink", "Swarm", "SwarmBranch", "SwarmSettings", "branch_codes",
           "branch_password", "main", "template_day"]

log = logging.getLogger(__name__)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "branch.toml"
MORNING = ("day_opened", "teller_login")  # sent at connect, before the measured traffic
EVENING = ("teller_logout", "day_closed")  # not replayed: the swarm's day does not end
ZONE = dt.timezone(dt.timedelta(hours=8))  # the example branch's zone (Asia/Shanghai)


# --- who the branches are --------------------------------------------------------------------


def branch_codes(n: int, province: str = "1001", cities: int = 20) -> list[str]:
    """``n`` branch codes spread over ``cities`` cities of ``province`` (round robin)."""
    return [f"{province}{i % cities + 1:02d}{i // cities + 1:04d}" for i in range(n)]


def branch_password(secret: str, code: str) -> str:
    """Branch ``code``'s broker password, derived from the run's ``secret``."""
    return hmac.new(secret.encode(), code.encode(), hashlib.sha256).hexdigest()[:24]


def template_day(seed: int = 1, day: str = "2026-11-25") -> list[dict[str, Any]]:
    """A default branch-day of the example branch as the real engine plays it (~1,460
    events: logins, tickets issued, called, finished, rated, recalled, …), without seq."""
    from controller.config import load_config
    from queueing.day import simulate_day
    from queueing.scenario import default_scenario

    cfg = load_config(EXAMPLE)
    run = simulate_day(cfg, default_scenario(cfg, dt.date.fromisoformat(day)), seed=seed)
    return [dict(e) for e in run.events]


# --- a minimal MQTT 3.1.1 client -------------------------------------------------------------


class MqttError(Exception):
    """The broker refused or dropped a connection."""


class MqttLink:
    """One MQTT 3.1.1 connection: QoS 1 publishes, one subscription, incoming messages to
    ``on_message(topic, payload)``. Unacknowledged PUBLISHes are counted, not re-sent
    (the uplink's own ack decides what is sent again)."""

    def __init__(self, on_message: Any) -> None:
        self.on_message = on_message
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._pid = 0
        self.inflight: set[int] = set()
        self.closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connack: asyncio.Future[int] | None = None
        self._suback: asyncio.Future[None] | None = None

    async def connect(self, host: str, port: int, client_id: str, user: str, password: str,
                      will_topic: str, will: bytes, keepalive: int = 120) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        self.writer.write(mqtt.connect(client_id, keepalive=keepalive, username=user,
                                       password=password, will=(will_topic, will, 1, True)))
        self._task = asyncio.create_task(self._read(), name="swarm-mqtt-read")
        async with asyncio.timeout(30):
            rc = await self._connack
        if rc != 0:
            raise MqttError(f"CONNACK {rc} for {user}")

    async def subscribe(self, topic: str) -> None:
        assert self.writer is not None
        self._suback = asyncio.get_running_loop().create_future()
        self.writer.write(mqtt.subscribe(self._next(), [(topic, 1)]))
        async with asyncio.timeout(30):
            await self._suback

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        if self.writer is None or self.closed.is_set():
            raise MqttError("not connected")
        pid = self._next()
        self.inflight.add(pid)
        self.writer.write(mqtt.publish(topic, payload, qos=1, retain=retain, packet_id=pid))

    def ping(self) -> None:
        if self.writer is not None and not self.closed.is_set():
            self.writer.write(mqtt.PINGREQ)

    def _next(self) -> int:
        self._pid = self._pid % 65535 + 1
        return self._pid

    async def _read(self) -> None:
        assert self.reader is not None and self.writer is not None
        frames = mqtt.Reader()
        try:
            while data := await self.reader.read(65536):
                for p in frames.feed(data):
                    if p.kind == mqtt.CONNACK and self._connack is not None:
                        self._connack.set_result(p.body[1])
                    elif p.kind == mqtt.SUBACK and self._suback is not None:
                        self._suback.set_result(None)
                    elif p.kind == mqtt.PUBACK:
                        self.inflight.discard(mqtt.packet_id(p))
                    elif p.kind == mqtt.PUBLISH:
                        m = mqtt.read_publish(p)
                        if m.packet_id is not None:
                            self.writer.write(mqtt.puback(m.packet_id))
                        self.on_message(m.topic, m.payload)
        except (mqtt.MqttProtocolError, ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            if self._connack is not None and not self._connack.done():
                self._connack.set_exception(MqttError("connection closed before CONNACK"))

    async def close(self) -> None:
        if self.writer is not None and not self.closed.is_set():
            with contextlib.suppress(OSError):
                self.writer.write(mqtt.DISCONNECT)  # no Will
                await self.writer.drain()
        if self.writer is not None:
            self.writer.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# --- one branch ------------------------------------------------------------------------------


@dataclass
class SwarmBranch:
    """What the centre sees of one box: an epoch, a seq, events waiting for an ack."""

    code: str
    epoch: str
    template: list[dict[str, Any]]
    link: MqttLink | None = None
    seq: int = 0
    acked: int = 0
    next_event: int = 0  # index into the template
    unacked: dict[int, dict[str, Any]] = field(default_factory=dict)
    sent_at: float = 0.0  # when the oldest unacked batch went out (monotonic)
    issued_at: list[float] = field(default_factory=list)  # each ticket_issued's ``at``
    issued: int = 0
    waiting: int = 0
    retries: int = 0
    ack_errors: int = 0

    def on_message(self, topic: str, payload: bytes) -> None:
        if not topic.endswith("/ack"):
            return  # cmd/#: not subscribed; the centre's announcement: not needed here
        try:
            _, msg = proto.decode(topic, payload)
        except proto.ProtocolError:
            self.ack_errors += 1
            return
        if msg["epoch"] != self.epoch:
            return
        through = int(msg["acked_through"])
        if through > self.seq:
            self.ack_errors += 1  # the centre acknowledged what was never sent
            return
        if through > self.acked:
            for s in range(self.acked + 1, through + 1):
                self.unacked.pop(s, None)
            self.acked = through
            self.sent_at = time.monotonic()

    def take(self, now: float, day: str, keep_times: bool) -> dict[str, Any]:
        """The next event of the replayed day, as the engine would journal it now."""
        while True:
            e = self.template[self.next_event % len(self.template)]
            self.next_event += 1
            if e["type"] not in EVENING and (e["type"] not in MORNING
                                             or self.next_event <= len(self.template)):
                break
        self.seq += 1
        event = {**e, "seq": self.seq, "at": round(now, 3), "day": day}
        if e["type"] == "ticket_issued":
            self.issued += 1
            self.waiting += 1
            if keep_times:
                self.issued_at.append(event["at"])
        elif e["type"] in ("ticket_called",):
            self.waiting = max(0, self.waiting - 1)
        self.unacked[self.seq] = event
        return event

    def send(self, events: list[dict[str, Any]]) -> None:
        assert self.link is not None
        if not self.unacked or len(self.unacked) == len(events):
            self.sent_at = time.monotonic()
        self.link.publish(proto.topic(self.code, "events"),
                          proto.encode(proto.events_batch(self.code, self.epoch, events)))

    def send_live(self, now: float) -> None:
        assert self.link is not None
        status = {"now": dt.datetime.fromtimestamp(now, ZONE).isoformat(),
                  "branch_name": f"网点 {self.code}", "waiting_total": self.waiting,
                  "kiosk_open": True, "queues": [], "windows": []}
        self.link.publish(proto.topic(self.code, "live"),
                          proto.encode({"v": proto.SCHEMA_VERSION, "branch": self.code,
                                        "at": round(now, 3), "status": status}), retain=True)


# --- the swarm -------------------------------------------------------------------------------


@dataclass
class SwarmSettings:
    broker: str = "mqtt://127.0.0.1:1883"
    codes: list[str] = field(default_factory=list)
    secret: str = "swarm"
    rate: float = 0.12  # events per second per branch (a busy day's peak: 120 tickets/h)
    templates: int = 4  # different real branch-days, shared round robin
    ack_timeout_s: float = 20.0  # no ack progress: sent again (the box's uplink.ack_timeout_s)
    connect_per_s: float = 250.0  # new connections (and mornings) per second at start
    keepalive: int = 120
    keep_times: frozenset[str] = frozenset()  # branches whose issue times are reported
    seed: int = 1


class Swarm:
    """``async with Swarm(settings) as s: await s.morning(); await s.run(seconds)``."""

    def __init__(self, settings: SwarmSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.branches: list[SwarmBranch] = []
        self.connect_failures = 0
        self.lost_connections = 0
        self._keepalive: asyncio.Task[None] | None = None
        self._resender: asyncio.Task[None] | None = None

    def _day(self, now: float) -> str:
        return dt.datetime.fromtimestamp(now, ZONE).date().isoformat()

    async def __aenter__(self) -> Swarm:
        s = self.settings
        _, host, port = proto.parse_broker_url(s.broker)
        days = [template_day(k + 1) for k in range(max(1, s.templates))]
        epoch = f"swarm{int(self.clock.now())}"
        self.branches = [SwarmBranch(code, epoch, days[i % len(days)])
                         for i, code in enumerate(s.codes)]
        step = 1.0 / s.connect_per_s
        pending: list[asyncio.Task[None]] = []
        for b in self.branches:
            pending.append(asyncio.create_task(self._connect(b, host, port)))
            await asyncio.sleep(step)  # pacing: a storm of thousands of CONNECTs at once
        await asyncio.gather(*pending)
        self._keepalive = asyncio.create_task(self._ping(), name="swarm-ping")
        self._resender = asyncio.create_task(self._resend(), name="swarm-resend")
        return self

    async def _connect(self, b: SwarmBranch, host: str, port: int) -> None:
        s = self.settings
        b.link = MqttLink(b.on_message)
        try:
            await b.link.connect(host, port, f"swarm-{b.code}", b.code,
                                 branch_password(s.secret, b.code),
                                 proto.topic(b.code, "status"),
                                 proto.encode(proto.will(b.code, b.epoch)), s.keepalive)
            await b.link.subscribe(proto.topic(b.code, "ack"))
            b.link.publish(proto.topic(b.code, "status"),
                           proto.encode(proto.birth(b.code, b.epoch, 0, "swarm", "swarm",
                                                    self.clock.now())), retain=True)
        except (OSError, MqttError, TimeoutError) as exc:
            self.connect_failures += 1
            log.warning("branch %s: %s", b.code, exc)

    async def __aexit__(self, *exc: object) -> None:
        for t in (self._keepalive, self._resender):
            if t is not None:
                t.cancel()
        await asyncio.gather(*(t for t in (self._keepalive, self._resender) if t),
                             return_exceptions=True)
        await asyncio.gather(*(b.link.close() for b in self.branches if b.link),
                             return_exceptions=True)

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.settings.keepalive / 2)  # MQTT keep-alive timer
            for b in self.branches:
                if b.link is not None:
                    b.link.ping()

    async def _resend(self) -> None:
        """The outbox: whatever has had no ack for ``ack_timeout_s`` goes out again."""
        while True:
            await asyncio.sleep(1.0)  # a timer: ack timeouts are whole seconds
            limit = time.monotonic() - self.settings.ack_timeout_s
            for b in self.branches:
                if b.unacked and b.sent_at < limit and b.link and not b.link.closed.is_set():
                    events = [b.unacked[s] for s in sorted(b.unacked)][:proto.MAX_BATCH_EVENTS]
                    b.retries += 1
                    b.send(events)
                    b.sent_at = time.monotonic()

    async def morning(self) -> int:
        """Every branch opens its day and logs its tellers in (one batch each); returns
        how many windows were opened in all (what a dashboard shows once every branch's
        morning is folded)."""
        now = self.clock.now()
        day = self._day(now)
        windows = 0
        for b in self.branches:
            if b.link is None or b.link.closed.is_set():
                continue
            batch = []
            while b.template[b.next_event]["type"] in MORNING:
                batch.append(b.take(now, day, False))
            windows += len({e["window"] for e in batch if e["type"] == "teller_login"})
            if batch:
                b.send(batch)
            b.send_live(now)
            await asyncio.sleep(1.0 / self.settings.connect_per_s)  # paced as the connects
        return windows

    async def run(self, seconds: float) -> int:
        """Events at ``rate`` per branch per second (one Poisson stream over all branches,
        each arrival at a branch drawn at random: the same as a stream per branch), each
        sent at once as a batch of one with a live snapshot after it; returns how many."""
        s = self.settings
        rng = random.Random(s.seed)
        live = [b for b in self.branches if b.link is not None and not b.link.closed.is_set()]
        total_rate = s.rate * len(live)
        loop = asyncio.get_running_loop()
        start = loop.time()
        due, sent = start, 0
        while True:
            due += rng.expovariate(total_rate)
            if due - start > seconds:
                break
            delay = due - loop.time()
            if delay > 0.002:
                await asyncio.sleep(delay)  # the arrival process's own clock
            b = rng.choice(live)
            if b.link is None or b.link.closed.is_set():
                continue
            now = self.clock.now()
            b.send([b.take(now, self._day(now), b.code in s.keep_times)])
            b.send_live(now)
            sent += 1
        return sent

    async def drained(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if all(b.acked == b.seq for b in self.branches if b.link is not None):
                return True
            await asyncio.sleep(0.2)  # polling thousands of branches: no single event
        return False

    def stats(self) -> dict[str, Any]:
        bs = self.branches
        self.lost_connections = sum(1 for b in bs if b.link is not None and b.link.closed.is_set())
        return {
            "branches": len(bs), "connect_failures": self.connect_failures,
            "lost_connections": self.lost_connections,
            "events": sum(b.seq for b in bs), "acked": sum(b.acked for b in bs),
            "issued": sum(b.issued for b in bs),
            "backlog": sum(b.seq - b.acked for b in bs),
            "retries": sum(b.retries for b in bs), "ack_errors": sum(b.ack_errors for b in bs),
            "pubacks_missing": sum(len(b.link.inflight) for b in bs if b.link is not None),
        }


# --- the command -----------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sim swarm",
                                description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    p.add_argument("--branches", type=int, default=100, help="how many codes in all")
    p.add_argument("--part", default="0/1", metavar="K/N",
                   help="run the K-th of N equal parts of the branches (several processes)")
    p.add_argument("--province", default="1001")
    p.add_argument("--cities", type=int, default=20)
    p.add_argument("--secret", default="swarm", help="the branches' passwords derive from it")
    p.add_argument("--rate", type=float, default=0.12, help="events/s per branch")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of traffic")
    p.add_argument("--drain", type=float, default=300.0, help="seconds to wait for acks")
    p.add_argument("--connect-per-s", type=float, default=250.0,
                   help="new connections (and mornings) per second at start")
    p.add_argument("--keep-times", default="", metavar="CODES",
                   help="comma list of branch codes whose ticket issue times are reported")
    p.add_argument("--wait-go", action="store_true",
                   help="print 'ready' after the morning, start the traffic on a line on stdin")
    p.add_argument("--out", type=Path, default=None, help="the result as JSON here too")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


def part_of(codes: list[str], part: str) -> list[str]:
    k, n = (int(x) for x in part.split("/"))
    if not 0 <= k < n:
        raise ValueError(f"--part {part}: K from 0 to N-1")
    return codes[k::n]


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    codes = part_of(branch_codes(args.branches, args.province, args.cities), args.part)
    keep = frozenset(filter(None, args.keep_times.split(",")))
    settings = SwarmSettings(broker=args.broker, codes=codes, secret=args.secret,
                             rate=args.rate, keep_times=keep, seed=args.seed,
                             connect_per_s=args.connect_per_s)
    started = time.monotonic()
    async with Swarm(settings) as swarm:
        windows = await swarm.morning()
        morning_ok = await swarm.drained(args.drain)
        ready_s = time.monotonic() - started
        if args.wait_go:
            print(json.dumps({"ready": True, "morning_drained": morning_ok, "windows": windows,
                              "ready_s": round(ready_s, 1)}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        before = swarm.stats()["events"]
        cpu = time.process_time()
        t0 = time.monotonic()
        sent = await swarm.run(args.duration)
        traffic_s = time.monotonic() - t0
        cpu = time.process_time() - cpu
        drained = await swarm.drained(args.drain)
        result = {**swarm.stats(), "traffic_events": sent, "events_before": before,
                  "traffic_s": round(traffic_s, 2), "traffic_cpu_s": round(cpu, 1),
                  "ready_s": round(ready_s, 1), "morning_drained": morning_ok,
                  "drained": drained,
                  "issued_at": {b.code: b.issued_at for b in swarm.branches
                                if b.code in keep},
                  "per_branch": {b.code: [b.seq, b.issued] for b in swarm.branches}}
    return result


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sim.fleet import raise_file_limit

    raise_file_limit()
    result = asyncio.run(_main(args))
    text = json.dumps(result)
    if args.out is not None:
        args.out.write_text(text)
    print(json.dumps({k: v for k, v in result.items()
                      if k not in ("issued_at", "per_branch")}), flush=True)
    return 0 if result["drained"] and not result["connect_failures"] else 1
