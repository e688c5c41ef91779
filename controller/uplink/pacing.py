"""How the uplink's loops wait: a flag or a timeout, and jitter for periodic work."""

from __future__ import annotations

import asyncio
import contextlib
import random

__all__ = ["jitter", "wait_at_most"]


def jitter() -> float:
    """Spread periodic work: boxes started together (a power cut, a broker restart) must not
    all report in the same second."""
    return random.uniform(0.75, 1.25)


async def wait_at_most(event: asyncio.Event, timeout: float | None) -> None:
    """Wait for ``event`` at most ``timeout`` seconds (``asyncio.timeout``: unlike
    ``wait_for`` on Python 3.11 it never loses a cancellation that races the event)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
