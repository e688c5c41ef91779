"""Jobs done once across centre instances: one holder of a lease at a time, taken over when
the holder stops renewing (central/leases.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from central.broker import LocalBroker
from central.leases import Leases
from common.clock import ManualClock
from tests.office_support import office_running
from tests.uplink_support import broker_fixture, pg_url_fixture, store_url_fixture, wait_for

__all__ = ["broker_fixture", "pg_url_fixture", "store_url_fixture"]


async def test_one_holder_until_its_hold_runs_out(store_url: str) -> None:
    clock = ManualClock(1_000_000.0)
    a = Leases(store_url, lease_s=4.0, holder="a", clock=clock)
    b = Leases(store_url, lease_s=4.0, holder="b", clock=clock)
    try:
        first = await a.try_take("alerts")
        assert first is not None and first.fence == 1
        assert await b.try_take("alerts") is None  # held: the other instance waits
        assert await b.try_take("appointments") is not None  # another job: its own lease
        clock.advance(3.0)
        renewed = await a.try_take("alerts")  # the holder renews: same fence, later end
        assert renewed is not None and renewed.fence == 1
        clock.advance(3.0)
        assert await b.try_take("alerts") is None  # renewed 3 s ago: still held
        clock.advance(1.5)  # 4.5 s since a's last renewal: it is dead to the others
        taken = await b.try_take("alerts")
        assert taken is not None and taken.fence == 2  # a new holder, a new fence
        assert await a.try_take("alerts") is None  # the old holder cannot take it back
    finally:
        await a.close()
        await b.close()


async def test_a_clean_stop_hands_the_lease_over_at_once(store_url: str) -> None:
    a = Leases(store_url, lease_s=30.0, holder="a")
    b = Leases(store_url, lease_s=30.0, holder="b")
    try:
        async with a.leader("alerts"):
            assert await b.try_take("alerts") is None
        taken = await b.try_take("alerts")  # given up on leaving: no 30 s wait
        assert taken is not None
    finally:
        await a.close()
        await b.close()


async def test_the_job_runs_on_one_instance_and_moves_when_its_holder_stops(
        store_url: str) -> None:
    """Two instances run the same leased job; it runs on one; when that one stops renewing
    (its process is killed: here its renewals are cancelled with nothing given up), the
    other starts it within the lease's seconds."""
    running: dict[str, int] = {"a": 0, "b": 0}

    def job(name: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            running[name] += 1
            try:
                await asyncio.Event().wait()  # runs until cancelled
            finally:
                running[name] -= 1
        return run

    # 3 s: a renewal (every 0.75 s) may lag on a loaded test machine; a 1 s lease lapsed
    a = Leases(store_url, lease_s=3.0, holder="a")
    b = Leases(store_url, lease_s=3.0, holder="b")
    ta = asyncio.create_task(a.run("alerts", job("a")))
    await wait_for(lambda: running["a"] == 1, timeout=10)
    tb = asyncio.create_task(b.run("alerts", job("b")))
    try:
        await asyncio.sleep(6.5)  # over two lease periods: b must not have started it
        assert running == {"a": 1, "b": 0}
        a.held.clear()  # a dies: nothing is given up, the row simply stops being renewed
        ta.cancel()
        await asyncio.gather(ta, return_exceptions=True)
        loop = asyncio.get_running_loop()
        died = loop.time()
        await wait_for(lambda: running["b"] == 1, timeout=10)
        assert loop.time() - died < 3.0 + 0.75 + 2.0  # lease + one try + slack
        assert running["a"] == 0
    finally:
        tb.cancel()
        await asyncio.gather(tb, return_exceptions=True)
        await a.close()
        await b.close()


async def test_a_holder_that_cannot_renew_stops_its_job(store_url: str) -> None:
    """Another process took the lease (this one was paused past its hold): the job here is
    cancelled at the next renewal, so the two never run on together."""
    a = Leases(store_url, lease_s=0.4, holder="a", clock=ManualClock(2_000_000.0))
    # b's clock is 10 s on: to b, a's hold ran out long ago (as if a had been paused)
    b = Leases(store_url, lease_s=0.4, holder="b", clock=ManualClock(2_000_010.0))
    stopped = asyncio.Event()

    async def job() -> None:
        try:
            await asyncio.Event().wait()  # runs until cancelled
        finally:
            stopped.set()

    ta = asyncio.create_task(a.run("alerts", job))
    try:
        await wait_for(lambda: "alerts" in a.held, timeout=10)
        assert await b.try_take("alerts") is not None
        await asyncio.wait_for(stopped.wait(), 10)
    finally:
        ta.cancel()
        await asyncio.gather(ta, return_exceptions=True)
        await a.close()
        await b.close()


@pytest.mark.parametrize("lease_s", [0.5, 121.0])
def test_the_lease_length_is_bounded(lease_s: float) -> None:
    from pydantic import ValidationError

    from central.config import CentreConfig

    with pytest.raises(ValidationError):
        CentreConfig.model_validate({"ha": {"lease_s": lease_s}})


async def test_one_of_two_instances_publishes_the_dashboards_aggregates(
        broker: LocalBroker, store_url: str) -> None:
    """Both run the live board; one publishes the retained aggregates; when it stops, the
    other takes over at once (a clean stop gives the lease up)."""
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(office_running(broker, store_url, "ha.lease_s=3"))
        await wait_for(lambda: a.office.board.publishes(), 10, "a publishing")
        async with office_running(broker, store_url, "ha.lease_s=3") as b:
            await asyncio.sleep(3.5)  # over a lease's length: b must still not publish
            assert a.office.board.publishes() and not b.office.board.publishes()
            await stack.aclose()  # a stops
            await wait_for(lambda: b.office.board.publishes(), 10, "b taking over")
