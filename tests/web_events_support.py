"""Reading the box's server-sent events: shared by the web event and kiosk tests."""

from __future__ import annotations

import json
import weakref
from collections.abc import AsyncIterator
from typing import Any


def parse(message: str) -> dict[str, Any]:
    """One SSE message as {'event', 'id', 'data'}."""
    out: dict[str, Any] = {}
    for line in message.strip().splitlines():
        key, _, value = line.partition(": ")
        out[key] = json.loads(value) if key == "data" else value
    return out


# per stream: the messages of a write not yet taken
_unread: weakref.WeakKeyDictionary[AsyncIterator[str], list[str]] = weakref.WeakKeyDictionary()


async def take(stream: AsyncIterator[str], kind: str) -> dict[str, Any]:
    """The next message of ``kind`` (others, e.g. health, are skipped). One write can hold
    several messages (a tick's events and the status after them)."""
    unread = _unread.setdefault(stream, [])
    while True:
        if not unread:
            unread += [m + "\n\n" for m in (await anext(stream)).split("\n\n") if m]
        msg = parse(unread.pop(0))
        if msg.get("event") == kind:
            return msg
