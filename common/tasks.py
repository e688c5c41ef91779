"""Helpers for asyncio tasks that both the box and the centre run."""

from __future__ import annotations

import asyncio

__all__ = ["still_cancelling"]


def still_cancelling() -> None:
    """Re-raise a cancellation that a library swallowed (``wait_for`` on 3.11 can)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
