"""Work done once across centre instances: a lease row per job, chosen through the store.

Several centre processes may run against one database (docs/deploy.md, "High
availability"). Ingest and the web API run on all of them; the jobs that must run on one
at a time (the alert desk's evaluation and deliveries with the daily check of yesterday's
reconciliation, the push of the booking lists to the branches, the near-turn watcher, the
delivery of bookings' forms, the dashboards' retained aggregates) run under a *lease*: a row
of the ``leases`` table naming its holder and when its hold runs out.

* A process takes a lease that is free, its own, or expired, in one statement (an upsert
  with a condition), so two processes can never both hold it; each new holder bumps the
  lease's ``fence``.
* The holder renews it every ``lease_s / 4``; a process that cannot renew (the store is
  away, another took over) stops the job before its hold runs out, so that at no moment
  do two processes run it.
* A holder stopped cleanly gives it up at once; one killed (SIGKILL, a power cut) leaves
  it to expire: another process takes it over within ``lease_s`` plus one try
  (``lease_s / 4``). With the default 4 s, within 5 s.

A lease row rather than PostgreSQL advisory locks: the single-instance SQLite centre runs
the same code, the holder and its age are visible to an operator (``SELECT * FROM
leases``), and a hold does not depend on one connection staying open. Times come from the
injected clock of each process: hosts keep their clocks in step (NTP), far inside the
lease's seconds. That clock is the real time, never the centre's demo clock
(``clock.start``): a started clock is real time plus an offset fixed when each process
built it, so two instances started moments apart would disagree by those moments and a
lease row written by one would be misread by the other (the Centre builds its Leases
without its clock on purpose).

Jobs under a lease must tolerate running twice over a hand-over (a job cut mid-way is
started again by the next holder): the alert desk claims each delivery in the store and
raises an alert once per open key; the booking push claims each branch-day list.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from common.clock import Clock, SystemClock
from common.tasks import still_cancelling

if TYPE_CHECKING:
    from .store import Store

__all__ = ["Lease", "Leases"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_TAKE = (
    "INSERT INTO leases (name, holder, expires_at, fence, taken_at) VALUES (?, ?, ?, 1, ?) "
    "ON CONFLICT (name) DO UPDATE SET expires_at = excluded.expires_at, "
    "fence = CASE WHEN leases.holder = excluded.holder THEN leases.fence "
    "ELSE leases.fence + 1 END, "
    "taken_at = CASE WHEN leases.holder = excluded.holder THEN leases.taken_at "
    "ELSE excluded.taken_at END, holder = excluded.holder "
    "WHERE leases.holder = excluded.holder OR leases.expires_at < ? RETURNING fence")


@dataclass
class Lease:
    """One held lease: its ``fence`` (one more for every new holder) and ``lost``, set when
    this process no longer holds it (the job must stop)."""

    name: str
    fence: int
    until: float  # by the process's clock: the hold runs out then unless renewed
    lost: asyncio.Event = field(default_factory=asyncio.Event)


class Leases:
    """The leases of one centre process: one store connection on its own thread.

    ``async with leases.leader("alerts") as lease:`` waits until this process holds the
    lease and keeps it renewed inside the block (``lease.lost`` is set if it is lost);
    :meth:`run` runs a job only while the lease is held, starting it again on each new
    hold. ``holder`` names the process (default: host, pid and a random tag).
    """

    def __init__(self, store_url: str, *, lease_s: float = 4.0, holder: str | None = None,
                 clock: Clock | None = None) -> None:
        self.store_url = store_url
        self.lease_s = lease_s
        self.every_s = lease_s / 4
        self.holder = holder or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.clock = clock or SystemClock()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="centre-leases")
        self._store: Store | None = None
        self.held: dict[str, Lease] = {}
        self.taken = 0  # holds this process started (a metric and for tests)

    # --- the store ---------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _storage(self) -> Store:
        if self._store is None:
            from .store import open_store

            self._store = open_store(self.store_url)
        return self._store

    def _take(self, name: str, now: float) -> int | None:
        try:
            row = self._storage().execute(
                _TAKE, (name, self.holder, now + self.lease_s, now, now)).fetchone()
        except Exception:
            self._drop_store()
            raise
        return int(row[0]) if row else None

    def _give_up(self, name: str) -> None:
        self._storage().execute("UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?",
                                (name, self.holder))

    def _drop_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

    async def close(self) -> None:
        """Give up every lease still held and close the store connection."""
        for name in list(self.held):
            with contextlib.suppress(Exception):
                await self._db(self._give_up, name)
        await self._db(self._drop_store)
        await asyncio.to_thread(self._executor.shutdown, True)

    # --- holding -----------------------------------------------------------------------------

    async def try_take(self, name: str) -> Lease | None:
        """Take or renew ``name`` once; None when another process holds it (or the store
        cannot be reached)."""
        now = self.clock.now()
        try:
            fence = await self._db(self._take, name, now)
        except Exception as exc:
            log.warning("lease %s: store unavailable: %s", name, exc)
            return None
        if fence is None:
            return None
        return Lease(name, fence, now + self.lease_s)

    @contextlib.asynccontextmanager
    async def leader(self, name: str) -> AsyncIterator[Lease]:
        """Wait until this process holds ``name``; hold it (renewed) inside the block."""
        while True:
            still_cancelling()
            lease = await self.try_take(name)
            if lease is not None:
                break
            await asyncio.sleep(self.every_s)  # a period: the store has no signal for it
        self.held[name] = lease
        self.taken += 1
        log.info("lease %s taken by %s (fence %d)", name, self.holder, lease.fence)
        renewing = asyncio.create_task(self._renew(lease), name=f"lease-{name}")
        try:
            yield lease
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            self.held.pop(name, None)
            if not lease.lost.is_set():
                with contextlib.suppress(Exception):
                    await self._db(self._give_up, name)
                log.info("lease %s given up by %s", name, self.holder)

    async def _renew(self, lease: Lease) -> None:
        """Renew every ``every_s``; set ``lost`` when another took it, or when the hold
        would run out before the next renewal could land (the store is away)."""
        while True:
            await asyncio.sleep(self.every_s)  # a period: renewal
            now = self.clock.now()
            try:
                fence = await self._db(self._take, lease.name, now)
            except Exception as exc:
                log.warning("lease %s: cannot renew: %s", lease.name, exc)
                if self.clock.now() + self.every_s < lease.until:
                    continue  # still held for a while: try again
                fence = None
            if fence == lease.fence:
                lease.until = now + self.lease_s
                continue
            lease.lost.set()
            log.warning("lease %s lost by %s", lease.name, self.holder)
            return

    async def run(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job()`` whenever this process holds ``name``, until cancelled: a job that
        ends or fails is started again (while the lease is held); a lost lease cancels it."""
        while True:
            still_cancelling()
            async with self.leader(name) as lease:
                while not lease.lost.is_set():
                    still_cancelling()
                    task = asyncio.create_task(_logged(name, job), name=f"leased-{name}")
                    lost = asyncio.create_task(lease.lost.wait())
                    try:
                        await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for t in (task, lost):
                            t.cancel()
                        for t in (task, lost):
                            with contextlib.suppress(asyncio.CancelledError):
                                await t
                    if not lease.lost.is_set():
                        await asyncio.sleep(self.every_s)  # a job that ended: not a spin


async def _logged(name: str, job: Callable[[], Awaitable[None]]) -> None:
    try:
        await job()
    except Exception as exc:  # never ends the runner: started again while held
        log.error("leased job %s failed: %r", name, exc, exc_info=exc)
