"""Faults on the data path. Each ends with the centre holding exactly the journal's events,
none twice, on SQLite and on PostgreSQL:

* the broker is SIGKILLed mid-load and started again;
* the box (``python -m controller``) is SIGKILLed mid-load and started again;
* the centre (``python -m central``) is SIGKILLed mid-ingest and started again;
* the link is down for a whole (simulated) day and comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from central.broker import LocalBroker, free_port
from central.reconcile import check_branch
from central.store import open_store
from common.clock import ManualClock
from controller.box import Box
from controller.engine import commands as c
from tests.conftest import CST, EXAMPLE
from tests.uplink_support import (  # noqa: F401
    BRANCH,
    assert_exactly_the_journal,
    broker_fixture,
    centre_running,
    drive,
    pg_url_fixture,
    running,
    settled_everything,
    store_url_fixture,
    uplink_for,
    wait_for,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def count_stored(store_url: str) -> int:
    s = open_store(store_url)
    try:
        return s.count_events(BRANCH)
    finally:
        s.close()


# --- the broker dies -------------------------------------------------------------------------


async def test_broker_killed_and_restarted_mid_load(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    uplink = uplink_for(broker)
    async with centre_running(broker, store_url), running(uplink.run(box)):
        # The load comes in two halves around the kill: one drive of 400 steps had often
        # finished (the box serves a command in a fraction of a millisecond) before 150
        # events were acked, leaving nothing to serve while the broker was down.
        await drive(box, clock, 200, seed=2)
        await wait_for(lambda: _at_least(uplink.acked, 150), 20, "150 events acked")
        broker.kill()  # SIGKILL: in-flight messages and queues are gone
        served = box.last_seq
        await drive(box, clock, 200, seed=3)
        assert box.last_seq >= served + 100  # the box served on without its broker
        broker.start()
        await settled_everything(box, uplink)
        await assert_exactly_the_journal(store_url, tmp_path / "data")
    assert uplink.counters.disconnects >= 1


async def _at_least(value: int, bound: int) -> bool:
    return value >= bound


# --- the box dies ----------------------------------------------------------------------------


@contextlib.contextmanager
def box_process(data_dir: Path, port: int, broker: LocalBroker, password: str
                ) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m controller`` on the example branch, its uplink on ``broker``."""
    cmd = [sys.executable, "-m", "controller", "--config", str(EXAMPLE),
           "--data-dir", str(data_dir), "--http", f"127.0.0.1:{port}",
           "--set", "hardware=none", "--set", "clock.start=2026-11-25T10:00:00+08:00",
           "--set", f"uplink.broker={broker.url}", "--set", f'uplink.password="{password}"',
           "--set", "uplink.ack_timeout_s=2", "--set", "uplink.reconnect_max_s=0.5",
           "--log-level", "WARNING"]
    log = (data_dir.parent / f"box-{port}.log").open("ab")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


async def issue_tickets(port: int, n: int) -> int:
    """Take ``n`` tickets over the box's HTTP API; returns how many were answered."""
    done = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        for i in range(n):
            with contextlib.suppress(httpx.HTTPError):
                r = await http.post("/api/tickets", json={"queue": "AB"[i % 2]})
                done += r.status_code == 201
    return done


async def http_up(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1) as http:
            return (await http.get(f"http://127.0.0.1:{port}/api/status")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_box_sigkilled_mid_load_and_restarted(
        broker: LocalBroker, store_url: str, tmp_path: Path) -> None:
    password = broker.add_user(BRANCH)
    data, port = tmp_path / "data", free_port()
    async with centre_running(broker, store_url) as centre:
        with box_process(data, port, broker, password) as proc:
            await wait_for(lambda: http_up(port), 30, "the box's HTTP API")
            async with running(issue_tickets(port, 10_000)) as load:
                await wait_for(lambda: _stored_over(store_url, 100), 30, "100 events stored")
                assert not load.done()  # killed while tickets are still being taken
                proc.send_signal(signal.SIGKILL)
                await asyncio.to_thread(proc.wait)

        async def offline() -> bool:
            rows = await centre.read(lambda s: s.branches())
            return bool(rows and rows[0]["online"] is False)

        await wait_for(offline, 10, "the Last Will at the centre")
        with box_process(data, port, broker, password):
            await wait_for(lambda: http_up(port), 30, "the box's HTTP API again")
            assert await issue_tickets(port, 60) == 60
            await assert_exactly_the_journal(store_url, data)


async def _stored_over(store_url: str, n: int) -> bool:
    return await asyncio.to_thread(count_stored, store_url) > n


# --- the centre dies -------------------------------------------------------------------------


@contextlib.contextmanager
def centre_process(broker: LocalBroker, store_url: str, log_file: Path
                   ) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "central", "--set", f"broker.url={broker.url}",
           "--set", "broker.username=centre", "--set", "broker.password=centre-pw",
           "--set", f"store.url={store_url}", "--set", "http.enabled=false",
           "--set", "ingest.reorder_timeout_s=0.5", "--log-level", "WARNING"]
    with log_file.open("ab") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


async def test_centre_sigkilled_mid_ingest_and_restarted(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    uplink = uplink_for(broker, batch_size=5)
    log = tmp_path / "centre.log"
    async with running(uplink.run(box)), running(drive(box, clock, 600, seed=3)) as load:
        with centre_process(broker, store_url, log) as proc:
            await wait_for(lambda: _stored_over(store_url, 120), 30, "120 events stored")
            proc.send_signal(signal.SIGKILL)  # mid-ingest: a transaction may be cut short
            proc.wait()
        stored = await asyncio.to_thread(count_stored, store_url)
        # the branch serves on without its centre (the first load may be through already)
        before = box.last_seq
        await drive(box, clock, 150, seed=4)
        assert box.last_seq >= max(before, stored) + 100
        with centre_process(broker, store_url, log):
            await load
            await settled_everything(box, uplink, timeout=60)
            await assert_exactly_the_journal(store_url, tmp_path / "data")


# --- a whole day without a link ----------------------------------------------------------------


async def test_link_down_for_a_whole_day_then_back(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    uplink = uplink_for(broker)
    async with centre_running(broker, store_url) as centre, running(uplink.run(box)):
        await drive(box, clock, 60, seed=4)
        await settled_everything(box, uplink)
        broker.kill()
        clock.set(dt.datetime(2026, 11, 26, 8, 45, tzinfo=CST))  # Thursday
        await box.execute(c.Tick())
        await drive(box, clock, 400, seed=5)  # the whole Thursday, offline
        clock.set(dt.datetime(2026, 11, 27, 0, 40, tzinfo=CST))
        await box.execute(c.Tick())
        assert uplink.acked < box.last_seq and uplink.counters.connection_failures >= 1
        broker.start()
        await settled_everything(box, uplink, timeout=60)
        await assert_exactly_the_journal(store_url, tmp_path / "data")

        days = ("2026-11-25", "2026-11-26")

        async def both_days_reported() -> bool:
            totals = await centre.read(lambda s: [s.totals(day) for day in days])
            return all(BRANCH in t for t in totals)

        await wait_for(both_days_reported, 20, "the totals of both days")
        for day in days:
            report = await centre.read(lambda s: check_branch(s, BRANCH, day))  # noqa: B023
            assert report["status"] == "ok", (day, report["problems"])

