"""The centre's pruning job: what the branches sent, kept for ``[retention]``'s ages
(central/store/retention.py says which table is kept how long; docs/store.md,
"Retention").

It runs on one instance at a time, under the ``retention`` lease (central/service.py): at
once when the lease is taken, then every ``retention.every_s``. It has its own store
connection and thread, so a batch never waits behind, or holds up, the web's reads. A
batch is one short transaction; a lost lease stops the job between batches, and the next
holder starts again from the top (a pruned row is simply not found again).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import TypeVar

from common.tasks import still_cancelling

from .config import RetentionSettings
from .store import Store
from .store.retention import BATCH, cutoffs, prune_batch, steps

__all__ = ["keep_records"]

log = logging.getLogger(__name__)
T = TypeVar("T")


async def keep_records(open_store: Callable[[], Store], settings: RetentionSettings,
                       today: Callable[[], dt.date], now: Callable[[], float]) -> None:
    """Until cancelled: prune every table to the ages of ``settings``, counted back from
    ``today()`` (the centre's business day) and ``now()`` (the centre's clock). A failure
    (the store away) is logged and tried again next time."""
    executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="centre-retention")
    loop = asyncio.get_running_loop()
    held: list[Store] = []

    def store() -> Store:
        if not held:
            held.append(open_store())
        return held[0]

    async def run(fn: Callable[[Store], T]) -> T:
        return await loop.run_in_executor(executor, lambda: fn(store()))

    try:
        while True:
            try:
                cut = cutoffs(today(), now(), **settings.model_dump(exclude={"every_s"}))
                todo = await run(functools.partial(steps, cut=cut))
                gone: dict[str, int] = {}
                for shelf, cutoff, branch in todo:
                    batch = functools.partial(prune_batch, shelf=shelf, cutoff=cutoff,
                                              branch=branch)
                    while n := await run(batch):
                        gone[shelf.table] = gone.get(shelf.table, 0) + n
                        if n < BATCH:
                            break
                if gone:
                    log.info("retention: rows older than %s (detail), %s (days), %s (months) "
                             "pruned: %s", cut["detail"], cut["day"], cut["month"],
                             ", ".join(f"{t} {n}" for t, n in gone.items()))
            except Exception as exc:  # the store is away: next time
                still_cancelling()
                log.warning("retention: %s", exc)
            await asyncio.sleep(settings.every_s)  # a timer: nothing to wait on
    finally:
        executor.submit(_close, held)  # after whatever is in flight, an opening included
        executor.shutdown(wait=False)


def _close(held: list[Store]) -> None:
    for st in held:
        st.close()
