"""Two or more ``python -m central`` instances on one store and one broker, a small fleet of
real boxes, and a SIGKILL: the scenario that tests/test_central_ha.py asserts on and
bench/bench_failover.py times.

The instances are real processes (the demo organisation, examples/centre.toml), each with
its HTTP API; the boxes are real box cores (engine, journal on disk, uplink) in this
process, each on its own simulated clock, driven by :func:`tests.uplink_support.drive`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from central.alerts.rules import set_thresholds
from central.broker import LocalBroker
from central.store import open_store
from common.clock import ManualClock
from controller.box import Box
from controller.engine import commands as c

from .conftest import CST, WEDNESDAY_10AM, example_config
from .office_support import CentreProcess
from .uplink_support import (
    KEEP_TEST_DATA,
    TEST_LINK,
    assert_exactly_the_journal,
    drive,
    running,
    wait_for,
)

PHONE = "13800138000"  # the duty manager's phone: every waiting_over alert is texted to it
ALERT_SETS = ("alerts.interval_s=0.3", "sms.adapter=log")


def centre_sets(store_url: str, data: Path, lease_s: float) -> list[str]:
    """What every instance is started with: one store, one customers' secret, the alert
    SMS into one outbox file (the log gateway), fast live timings."""
    return [f"store.url={store_url}", f"customers.secret_file={data / 'customers.key'}",
            f"sms.outbox_file={data / 'sms-outbox.jsonl'}", f"ha.lease_s={lease_s}",
            "ingest.reorder_timeout_s=0.5", "ingest.replay_retry_s=0.5", *ALERT_SETS,
            *KEEP_TEST_DATA]


def alert_on_waiting(store_url: str, over: int) -> None:
    """Province-wide: a branch with more than ``over`` waiting raises waiting_over, texted
    to :data:`PHONE` (escalations far off: one text per alert), no other alert texted."""
    store = open_store(store_url)
    try:
        set_thresholds(store, "", {"waiting_over": over, "sms_to": [PHONE],
                                   "sms_kinds": ["waiting_over"], "sms_per_hour": 100,
                                   "max_per_hour": 100, "escalate_factor": 100.0,
                                   "escalate_after_min": 600.0}, None)
    finally:
        store.close()


def query(store_url: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    store = open_store(store_url)
    try:
        return [tuple(r) for r in store.execute(sql, args).fetchall()]
    finally:
        store.close()


def lease_holder(store_url: str, name: str) -> str | None:
    rows = query(store_url, "SELECT holder FROM leases WHERE name = ? AND expires_at > ?",
                 (name, time.time()))
    return str(rows[0][0]) if rows else None


def pid_of(holder: str) -> int:
    """The process id in a lease's holder (``{host}-{pid}-{tag}``)."""
    return int(holder.rsplit("-", 2)[1])


@dataclass
class Branch:
    code: str
    box: Box
    clock: ManualClock
    uplink: Any
    data: Path


@dataclass
class Fleet:
    """Real boxes on one broker; :meth:`load` keeps some of them busy until stopped."""

    branches: list[Branch] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def branch(self, code: str) -> Branch:
        return next(b for b in self.branches if b.code == code)

    async def load(self, codes: list[str], *, pause_s: float = 0.05) -> None:
        """A few customers at a time at each of ``codes`` until :attr:`stop` is set."""
        seed = 10
        while not self.stop.is_set():
            for code in codes:
                b = self.branch(code)
                seed += 1
                await drive(b.box, b.clock, 3, seed=seed)
            await asyncio.sleep(pause_s)  # paced: a busy hour, not a tight loop

    async def settled(self, timeout: float = 60.0) -> None:
        from .uplink_support import settled_everything

        for b in self.branches:
            await settled_everything(b.box, b.uplink, timeout)

    async def next_day(self) -> None:
        """Every box past the day's end and its totals time: each sends its daily totals."""
        for b in self.branches:
            b.clock.set(dt.datetime(2026, 11, 26, 0, 40, tzinfo=CST))
            await b.box.execute(c.Tick())


@contextlib.asynccontextmanager
async def fleet_running(broker: LocalBroker, root: Path, codes: list[str],
                        **link: Any) -> AsyncIterator[Fleet]:
    from controller.uplink import Uplink, UplinkSettings

    fleet = Fleet()
    async with contextlib.AsyncExitStack() as stack:
        for code in codes:
            clock = ManualClock(WEDNESDAY_10AM)
            data = root / f"box-{code}"
            box = await stack.enter_async_context(
                Box(example_config(f'branch.code="{code}"', f'branch.name="网点{code}"'),
                    data, clock))
            password = broker.add_user(code)
            uplink = Uplink(UplinkSettings(broker=broker.url, password=password,
                                           **{**TEST_LINK, **link}))
            await stack.enter_async_context(running(uplink.run(box)))
            fleet.branches.append(Branch(code, box, clock, uplink, data))
        yield fleet
        fleet.stop.set()


@contextlib.contextmanager
def instances(n: int, root: Path, broker: LocalBroker, store_url: str, lease_s: float
              ) -> Any:
    """``n`` centre processes on one store and broker, started one after the other."""
    procs = [CentreProcess(root / f"centre-{i}", broker,
                           *centre_sets(store_url, root, lease_s)) for i in range(n)]
    try:
        for p in procs:
            p.start(timeout=60)
        yield procs
    finally:
        for p in procs:
            p.stop()


def kill(proc: CentreProcess) -> None:
    """SIGKILL: no lease given up, no transaction finished, no goodbye to the broker."""
    assert proc.proc is not None
    proc.proc.kill()
    proc.proc.wait()
    proc.proc = None


@dataclass
class Sampler:
    """The events stored, sampled: when the count last grew, and the longest stall."""

    store_url: str
    times: list[tuple[float, int]] = field(default_factory=list)

    async def run(self, every_s: float = 0.05) -> None:
        store = await asyncio.to_thread(open_store, self.store_url)
        try:
            while True:
                n = await asyncio.to_thread(
                    lambda: int(store.execute("SELECT count(*) FROM events").fetchone()[0]))
                now = time.monotonic()
                if not self.times or n != self.times[-1][1]:
                    self.times.append((now, n))
                await asyncio.sleep(every_s)  # a sampling period
        finally:
            await asyncio.to_thread(store.close)

    def longest_stall(self, since: float, until: float) -> float:
        """The longest time within [since, until] in which no event was stored."""
        marks = [t for t, _ in self.times if since <= t <= until]
        edges = [since, *marks, until]
        return max(b - a for a, b in itertools.pairwise(edges))


def outbox(root: Path) -> list[dict[str, Any]]:
    path = root / "sms-outbox.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- the scenario ------------------------------------------------------------------------------

DAY = "2026-11-25"  # the boxes' (simulated) business day


@dataclass
class Failover:
    """What a run measured: seconds from the SIGKILL to the survivor holding the alerts
    lease, the longest time in which no event was stored after it, and the events."""

    takeover_s: float
    stall_s: float
    events: int
    branches: int


async def sigkill_the_alerts_holder(broker: LocalBroker, store_url: str, root: Path,
                                    codes: list[str], lease_s: float) -> Failover:
    """Two instances, the fleet of ``codes`` (all but the last busy from the start), the
    instance holding the ``alerts`` lease SIGKILLed mid-load; then the last branch fills
    up (its alert can only come from the survivor). Returns when every branch's journal is
    stored exactly once and every branch's totals of :data:`DAY` are in; AssertionError if
    anything was lost or doubled, or the survivor's dashboard stopped."""
    open_store(store_url).close()  # the schema, before the thresholds go in
    alert_on_waiting(store_url, 3)
    sampler = Sampler(store_url)
    busy, late = codes[:-1], codes[-1]
    with instances(2, root, broker, store_url, lease_s) as (a, b):
        async with fleet_running(broker, root, codes) as fleet, running(sampler.run()), \
                running(fleet.load(busy)):
            await wait_for(lambda: lease_holder(store_url, "alerts"), 30, "an alerts holder")
            await wait_for(lambda: set(waiting_alerts(store_url)) >= set(busy), 60,
                           "the busy branches' alerts, before the kill")
            holder = lease_holder(store_url, "alerts")
            assert holder is not None
            victim, survivor = (a, b) if a.proc and pid_of(holder) == a.proc.pid else (b, a)
            assert victim.proc is not None and pid_of(holder) == victim.proc.pid
            token = survivor.token()
            seen = last_seq(survivor, token, codes[0])

            killed = time.monotonic()
            kill(victim)
            await wait_for(lambda: held_by(store_url, survivor), 30, "the takeover")
            takeover_s = time.monotonic() - killed

            async with running(fleet.load([late])):  # now the last branch fills up
                await wait_for(lambda: waiting_alerts(store_url).get(late) == 1, 60,
                               "the late branch's alert, from the survivor")
            await wait_for(lambda: last_seq(survivor, token, codes[0]) > seen, 30,
                           "the survivor's dashboard moving on")
            fleet.stop.set()
            stall_s = sampler.longest_stall(killed, time.monotonic())
            await fleet.settled(60)
            for br in fleet.branches:
                await assert_exactly_the_journal(store_url, br.data, br.code)
            await fleet.next_day()
            await wait_for(lambda: day_totals(store_url) == len(codes), 60,
                           "every branch's totals")
            events = sum(br.box.last_seq for br in fleet.branches)
    return Failover(takeover_s, stall_s, events, len(codes))


def waiting_alerts(url: str) -> dict[str, int]:
    """waiting_over alerts raised, by branch."""
    rows = query(url, "SELECT branch, count(*) FROM alerts WHERE kind = 'waiting_over' "
                      "GROUP BY branch")
    return {str(b): int(n) for b, n in rows}


def held_by(url: str, proc: CentreProcess) -> bool:
    holder = lease_holder(url, "alerts")
    return holder is not None and proc.proc is not None and pid_of(holder) == proc.proc.pid


def last_seq(centre: CentreProcess, token: str, code: str) -> int:
    """The branch's last event as the instance's dashboard API shows it."""
    status, body = centre.call("GET", f"/api/branches/{code}", token=token)
    assert status == 200, body
    return int(body.get("last_seq") or 0)


def day_totals(url: str) -> int:
    return int(query(url, "SELECT count(*) FROM totals WHERE day = ?", (DAY,))[0][0])
