"""Helpers for asyncio tasks that both the box and the centre run.

``asyncio.wait_for`` is not used outside tests (ruff bans it, pyproject.toml): on Python
3.11, when a task waiting in it is cancelled in the same loop turn as what it waits for
completes, it returns the result and the cancellation is lost. A loop around it then runs
on for ever and the process does not stop on SIGTERM (the hall display did, 1 run in 20
under load). ``asyncio.timeout`` counts cancellations and never loses one; use it, or
:func:`wait_at_most` for a flag.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["still_cancelling", "wait_at_most"]


def still_cancelling() -> None:
    """Re-raise a cancellation that a library swallowed (``wait_for`` on 3.11 can)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def wait_at_most(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds (None: for as long as it takes);
    True when it is set, False when the time ran out."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()
