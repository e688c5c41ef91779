"""Many simulated days at once, one per core.

A strategy comparison, a staffing search or a theory check with replications runs the
same branch on many independent days (seeds). Each day is a pure function of its config,
scenario and seed, so the days can run in separate processes and their results come back
in order: the answer is the same whatever ``jobs`` is, only sooner. An error in a day
(a bad override) comes back as itself; a worker that dies (killed, out of memory) is a
:class:`~queueing.errors.SimError` saying so.

Only what is measured travels back (a day's metrics, a staffing hour's waits), never the
day's events: pickling those would cost more than simulating them.

Workers are forked when the calling process has a single thread (the command line, the
benchmark), which starts them in milliseconds with everything already imported; a
process with threads (the centre's web server) spawns fresh interpreters instead, since
forking a threaded process can deadlock the child. ``jobs=1`` runs in the caller's
process: the default for library calls; ``python -m sim des`` takes ``--jobs`` (default:
every core).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import TypeVar

from .errors import SimError

__all__ = ["Batch", "batch", "cores"]

T = TypeVar("T")
R = TypeVar("R")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Batch:
    """Runs a function over tasks, in this process (``jobs=1``) or in worker processes."""

    def __init__(self, jobs: int, pool: Executor | None) -> None:
        self.jobs, self._pool = jobs, pool

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        """``[fn(t) for t in tasks]``, in order; ``fn`` must be a module-level function."""
        if self._pool is None or len(tasks) <= 1:
            return [fn(t) for t in tasks]
        try:
            return list(self._pool.map(fn, tasks))
        except BrokenProcessPool as exc:  # killed (out of memory?), not an error of a day
            raise SimError(f"a simulation worker process stopped unexpectedly ({exc}); "
                           "try again with fewer --jobs") from exc


@contextmanager
def batch(jobs: int | None = 1) -> Iterator[Batch]:
    """A :class:`Batch` of ``jobs`` processes (None: :func:`cores`), shut down on exit."""
    n = cores() if jobs is None else jobs
    if n < 1:
        raise ValueError("jobs must be at least 1")
    if n == 1:
        yield Batch(1, None)
        return
    method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context(method)) as pool:
        yield Batch(n, pool)
