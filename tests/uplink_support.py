"""Fixtures and helpers for the uplink and centre tests: private brokers, stores, waiting.

Import the fixtures you use into the test module (``broker_fixture``, ``store_url_fixture``,
``pg_url_fixture``); pytest finds them there under their names ``broker``, ``store_url``,
``pg_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import pytest

from central.broker import LocalBroker
from common.clock import ManualClock
from controller.box import Box
from controller.config import Config
from controller.engine import commands as c
from controller.errors import Refused

PG_ADMIN = os.environ.get("PAIDUI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
T = TypeVar("T")


def pg_available() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_ADMIN, connect_timeout=2).close()
    except Exception:
        return False
    return True


@pytest.fixture(name="pg_url")
def pg_url_fixture() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_ADMIN else "?"
    try:
        yield f"{PG_ADMIN}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(name="store_url",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(name="broker")
def broker_fixture(tmp_path: Path) -> Iterator[LocalBroker]:
    """This test's own Mosquitto (the shipped config: password file + ACL)."""
    from central.broker import MOSQUITTO, MOSQUITTO_PASSWD

    if not (Path(MOSQUITTO).exists() and Path(MOSQUITTO_PASSWD).exists()):
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    b = LocalBroker(tmp_path / "broker")
    b.add_user("centre", "centre-pw")
    b.start()
    try:
        yield b
    finally:
        b.kill()


async def wait_for(predicate: Callable[[], Awaitable[T] | T], timeout: float = 30.0,
                   what: str = "condition", poll: float = 0.05) -> T:
    """Poll ``predicate()`` (awaiting it when it is a coroutine) until it returns something
    truthy (the system under test is another process or thread, or a task on this loop;
    its state is the signal)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = predicate()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last  # type: ignore[no-any-return]
        await asyncio.sleep(poll)  # polling: the state is the signal
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def journal_rows(data_dir: Path) -> list[tuple[int, dict[str, Any]]]:
    """(seq, event) of every event in a box's journal file, read directly."""
    import json

    db = sqlite3.connect(f"file:{data_dir / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        return [(s, json.loads(b)) for s, b in db.execute("SELECT seq, body FROM events "
                                                          "ORDER BY seq")]
    finally:
        db.close()


def journal_epoch(data_dir: Path) -> str:
    db = sqlite3.connect(f"file:{data_dir / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        return str(db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0])
    finally:
        db.close()


# --- running the pieces in-process ---------------------------------------------------------

BRANCH = "1001010001"
TEST_LINK = dict(ack_timeout_s=2.0, reconnect_min_s=0.05, reconnect_max_s=0.5,
                 live_interval_s=0.1, health_interval_s=1.0, check_every_s=0.2,
                 publish_timeout_s=3.0)


# The tests' data is pinned to their days (2026-11-25, …) while most test centres run on
# the real clock: the retention job (docs/store.md, "Retention") would prune that data
# once those days are old enough. Test centres keep everything; tests/
# test_central_retention.py sets the ages it tests.
KEEP_TEST_DATA = ("retention.detail_days=36600", "retention.day_days=36600",
                  "retention.month_years=100", "retention.records_days=36600",
                  "retention.replies_days=36600")


def centre_config(broker: LocalBroker, store_url: str, *sets: str) -> Any:
    from central.config import load_centre_config

    return load_centre_config(None, [
        f"broker.url={broker.url}", "broker.username=centre", "broker.password=centre-pw",
        f"store.url={store_url}", "http.enabled=false", "ingest.reorder_timeout_s=0.5",
        "ingest.replay_retry_s=0.5", "ingest.live_flush_s=0.1", *KEEP_TEST_DATA, *sets,
    ])


@contextlib.asynccontextmanager
async def running(coro: Awaitable[Any]) -> AsyncIterator[asyncio.Task[Any]]:
    """Run ``coro`` as a task for the block; cancel and await it afterwards."""
    task = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=15)
        if not task.done():  # it swallowed the cancellation: fail, do not hang
            task.print_stack()
            task.cancel()
            raise AssertionError(f"{task!r} did not stop when cancelled")
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def centre_running(broker: LocalBroker, store_url: str, *sets: str
                         ) -> AsyncIterator[Any]:
    """An in-process centre (consumers, no HTTP) on ``broker`` and ``store_url``."""
    from central.service import Centre

    centre = Centre(centre_config(broker, store_url, *sets))
    async with running(centre.run()):
        for c in centre.consumers:
            await asyncio.wait_for(c.ready.wait(), 10)
        # ... and some centre reads the branches' live picture (the live-picture lease)
        await asyncio.wait_for(_live_read(centre), 10)
        yield centre


async def _live_read(centre: Any) -> None:
    import time

    def elsewhere(store: Any) -> bool:
        return store.execute("SELECT 1 FROM leases WHERE name = 'live-picture' AND "
                             "expires_at > ?", (time.time(),)).fetchone() is not None

    while not any(c.live_read.is_set() for c in centre.consumers):
        if await centre.read(elsewhere):
            return  # another centre holds it
        await asyncio.sleep(0.01)  # polling the consumers' events and the lease row


def uplink_for(broker: LocalBroker, branch: str = BRANCH, **settings: Any) -> Any:
    """An Uplink with fast test timings, its branch provisioned on ``broker``."""
    from controller.uplink import Uplink, UplinkSettings

    password = broker.add_user(branch)
    return Uplink(UplinkSettings(broker=broker.url, password=password,
                                 **{**TEST_LINK, **settings}))


@contextlib.asynccontextmanager
async def held_line(centre: Any, uplink: Any, branch: str = BRANCH, waiting: int = 0
                    ) -> AsyncIterator[None]:
    """The box's command line held for the block: a centre command running (its handler
    waits) and ``waiting`` more in line behind it. With ``waiting`` equal to the box's
    ``uplink.command_queue`` the line is full: the box answers the next command ``busy``."""
    release, entered = asyncio.Event(), asyncio.Event()

    async def hold(box: Any, msg: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        await release.wait()
        return {"queue": msg["queue"], "paused": False}

    uplink.register_command("resume", hold)
    try:
        await centre.send_command(branch, "resume", {"queue": "A"})
        await asyncio.wait_for(entered.wait(), 10)  # running: the next ones wait behind it
        for _ in range(waiting):
            await centre.send_command(branch, "resume", {"queue": "A"})
        await wait_for(lambda: len(uplink.inbox) == waiting, 10, f"{waiting} commands in line")
        yield
    finally:
        release.set()


async def settled_everything(box: Any, uplink: Any, timeout: float = 30.0) -> None:
    """Wait until the centre has acknowledged every event of the box's journal."""
    async def done() -> bool:
        await box.settled()
        return bool(uplink.acked == box.last_seq)

    await wait_for(done, timeout, f"acked_through == last_seq ({box.last_seq})")


async def drive(box: Any, clock: Any, steps: int, *, seed: int = 1) -> None:
    """Busy-branch traffic: tickets in four businesses, two windows calling and finishing."""
    import random as _random

    rng = _random.Random(seed)
    for window, teller in ((1, "t1"), (3, "t3")):
        with contextlib.suppress(Refused):
            await box.execute(c.Login(window, teller, "1234"))
    for i in range(steps):
        clock.advance(rng.uniform(1, 20))
        try:
            if i % 3 == 2:
                await box.execute(c.CallNext(rng.choice((1, 3))))
            else:
                await box.execute(c.IssueTicket(queue=rng.choice("AABT")))
        except Refused:
            pass


def centre_rows(store_url: str, branch: str = BRANCH) -> list[dict[str, Any]]:
    from central.store import open_store

    s = open_store(store_url)
    try:
        return s.events(branch)
    finally:
        s.close()


async def assert_exactly_the_journal(store_url: str, data_dir: Path, branch: str = BRANCH,
                                     timeout: float = 60.0) -> None:
    """The centre ends holding exactly the journal's events: each once, none missing."""
    journal = [e for _, e in journal_rows(data_dir)]

    async def same() -> bool:
        rows = await asyncio.to_thread(centre_rows, store_url, branch)
        return rows == journal

    try:
        await wait_for(same, timeout, "the centre's rows to equal the journal")
    except AssertionError:
        rows = centre_rows(store_url, branch)
        got, want = {e["seq"] for e in rows}, {e["seq"] for e in journal}
        raise AssertionError(
            f"centre {len(rows)} rows, journal {len(journal)}; missing "
            f"{sorted(want - got)[:20]}, extra {sorted(got - want)[:20]}") from None


@contextlib.asynccontextmanager
async def listen(broker: LocalBroker, topic: str) -> AsyncIterator[asyncio.Queue[Any]]:
    """Messages on ``topic`` (as the centre user), decoded, in a queue."""
    got: asyncio.Queue[Any] = asyncio.Queue()
    async with aiomqtt.Client("127.0.0.1", broker.port, username="centre",
                              password="centre-pw") as client:
        await client.subscribe(topic, qos=1)

        async def pump() -> None:
            async for m in client.messages:
                got.put_nowait((str(m.topic), json.loads(bytes(m.payload or b"{}"))))

        async with running(pump()):
            yield got


async def next_on(q: asyncio.Queue[Any], kind: str, match: Any = None,
                  timeout: float = 10.0) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        while True:
            topic, msg = await q.get()
            if topic.split("/")[3] == kind and (match is None or match(msg)):
                return msg  # type: ignore[no-any-return]
    return await asyncio.wait_for(find(), timeout)


def without_a(config: Config, **extra: Any) -> dict[str, Any]:
    """The business configuration a centre sends after a manager removed business A
    (个人业务) everywhere the centre edits: queues, windows, card types, kiosk buttons."""
    push = config.model_dump(mode="json")
    for section in ("uplink", "http", "clock"):
        push.pop(section, None)
    push["queues"] = [q for q in push["queues"] if q["id"] != "A"]
    for w in push["windows"]:
        w["queues"].pop("A", None)
    push["card_types"] = [t for t in push["card_types"] if t["queue"] != "A"]
    push["web"]["kiosk"]["buttons"] = [b for b in push["web"]["kiosk"]["buttons"]
                                       if b["target"] != "A"]
    return {**push, **extra}


@pytest.fixture
async def box_b_button(clock: ManualClock, tmp_path: Path) -> AsyncIterator[Box]:
    """The example branch whose one ticket button issues B: A can be removed."""
    from tests.conftest import example_config

    config = example_config('gpio.buttons=[{ pin = 27, queue = "B" }]')
    async with Box(config, tmp_path / "data", clock) as b:
        yield b
