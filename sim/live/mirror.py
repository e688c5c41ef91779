"""What the simulator knows of the box: its event stream, followed across restarts.

:func:`follow` reads ``GET /api/events/stream`` (Server-Sent Events, docs/screens.md) and
keeps a :class:`Mirror` up to date: each ``status`` snapshot replaces the windows and the
waiting counts, each ``box`` event updates them at once and is counted. When the stream
ends (the box restarts, the link drops) it reconnects with back-off and says where it was
(``after=EPOCH:SEQ``), so the box replays what was missed.

Tellers and customers wait on the mirror (:meth:`Mirror.wait_for`) instead of polling.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Mirror", "WindowView", "follow", "sse_messages"]

log = logging.getLogger(__name__)

_ENDS = frozenset({"ticket_finished", "ticket_no_show", "ticket_held", "ticket_transferred"})


@dataclass(slots=True)
class WindowView:
    """One window as the box last told us: who is logged in, whom they serve."""

    teller: str | None = None
    ticket: str | None = None  # the current ticket's id (``20261125-A001``)
    number: str | None = None
    queue: str | None = None


class Mirror:
    """The box's windows, waiting counts and event counts, as far as the stream told us."""

    def __init__(self) -> None:
        self.up = False
        self.epoch = ""
        self.seq = 0
        self.day = ""
        self.windows: dict[int, WindowView] = {}
        self.waiting: dict[str, int] = {}
        self.counts: Counter[str] = Counter()  # box events seen, by type
        self.score_sum = 0
        self.connects = 0
        self.version = 0  # bumped on every change
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._box_now: tuple[float, float] | None = None  # (box epoch s, monotonic)
        self._waiters: list[asyncio.Future[None]] = []

    # --- reading ------------------------------------------------------------------------

    def window(self, number: int) -> WindowView:
        return self.windows.setdefault(number, WindowView())

    def window_of(self, teller: str) -> int | None:
        return next((n for n, w in self.windows.items() if w.teller == teller), None)

    def tickets_in(self) -> int:
        """Events that may give a window someone to call: issued, transferred, put in front."""
        c = self.counts
        return c["ticket_issued"] + c["ticket_transferred"] + c["ticket_front"]

    def box_now(self) -> float | None:
        """The box's clock now (epoch s), from its last report plus the time since."""
        if self._box_now is None:
            return None
        at, mono = self._box_now
        return at + time.monotonic() - mono

    async def wait_for(self, check: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``check()`` (re-checked on every change) or ``timeout``; its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                async with asyncio.timeout(remaining):
                    await fut
            except TimeoutError:
                return check()
        return True

    async def changed(self, timeout: float) -> bool:
        """Wait for the next change (or ``timeout``)."""
        seen = self.version
        return await self.wait_for(lambda: self.version != seen, timeout)

    # --- writing ------------------------------------------------------------------------

    def _notify(self) -> None:
        self.version += 1
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def connected(self) -> None:
        self.up = True
        self.connects += 1
        self._notify()

    def lost(self) -> None:
        if self.up:
            self.up = False
            self._notify()

    def clock(self, iso: Any) -> None:
        if isinstance(iso, str):
            try:
                self._box_now = (dt.datetime.fromisoformat(iso).timestamp(), time.monotonic())
            except ValueError:
                log.warning("the box sent a time I cannot read: %r", iso)

    def _position(self, epoch: str, seq: int) -> None:
        """Where the box's journal is; a new journal (epoch) starts counting again."""
        if epoch != self.epoch:
            self.epoch, self.seq = epoch, seq
        else:
            self.seq = max(self.seq, seq)

    def status(self, snap: dict[str, Any]) -> None:
        """A ``status`` snapshot: the windows and waiting counts as they are now."""
        self.day = str(snap.get("day", self.day))
        self._position(str(snap.get("epoch", self.epoch)), int(snap.get("seq", 0)))
        self.clock(snap.get("now"))
        self.waiting = {str(q["id"]): int(q.get("waiting", 0)) for q in snap.get("queues", [])}
        day = self.day.replace("-", "")
        for w in snap.get("windows", []):
            number = w.get("current")
            self.windows[int(w["number"])] = WindowView(
                w.get("teller"), f"{day}-{number}" if number else None, number,
                w.get("current_queue"),
            )
        self._notify()

    def event(self, e: dict[str, Any], event_id: str | None) -> None:
        """A committed ``box`` event (live or replayed)."""
        if event_id and ":" in event_id:
            epoch, _, seq = event_id.rpartition(":")
            if seq.isdigit():
                self._position(epoch, int(seq))
        kind = str(e.get("type"))
        self.counts[kind] += 1
        if kind == "ticket_rated":
            self.score_sum += int(e.get("score", 0))
        if kind == "day_opened":
            self.day = str(e.get("day", self.day))
        self._window_event(kind, e)
        for listener in self.listeners:
            listener(e)
        self._notify()

    def _window_event(self, kind: str, e: dict[str, Any]) -> None:
        window = e.get("window")
        if kind == "ticket_closed":
            for w in self.windows.values():
                if w.ticket == e.get("ticket"):
                    w.ticket = w.number = w.queue = None
        if not isinstance(window, int):
            return
        w = self.window(window)
        if kind == "teller_login":
            w.teller = e.get("teller")
        elif kind == "teller_logout":
            w.teller = w.ticket = w.number = w.queue = None
        elif kind == "ticket_called":
            w.ticket, w.number, w.queue = e.get("ticket"), e.get("number"), e.get("queue")
        elif kind in _ENDS and w.ticket == e.get("ticket"):
            w.ticket = w.number = w.queue = None


async def sse_messages(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str, str | None]]:
    """``(event, data, id)`` for each message of a Server-Sent Events stream."""
    kind, event_id = "message", None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield kind, "\n".join(data), event_id
            kind, data, event_id = "message", [], None
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            kind = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value


async def follow(client: httpx.AsyncClient, url: str, mirror: Mirror) -> None:
    """Keep ``mirror`` up to date from the box at ``url`` until cancelled (reconnecting)."""
    backoff = 0.2
    while True:
        params = {"page": "sim"}
        if mirror.epoch and mirror.seq:
            params["after"] = f"{mirror.epoch}:{mirror.seq}"
        try:
            async with client.stream("GET", f"{url}/api/events/stream", params=params,
                                     timeout=httpx.Timeout(5.0, read=50.0)) as r:
                r.raise_for_status()
                async for kind, data, event_id in sse_messages(r.aiter_lines()):
                    if not mirror.up:
                        mirror.connected()
                    backoff = 0.2
                    _apply(mirror, kind, data, event_id)
        except (httpx.HTTPError, httpx.StreamError, OSError) as exc:
            log.debug("event stream: %s", exc)
        mirror.lost()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 2.0)


def _apply(mirror: Mirror, kind: str, data: str, event_id: str | None) -> None:
    try:
        body = json.loads(data)
    except json.JSONDecodeError:
        log.warning("event stream: not JSON: %.80r", data)
        return
    if not isinstance(body, dict):
        return
    try:
        if kind == "status":
            mirror.status(body)
        elif kind == "box":
            mirror.event(body, event_id)
        elif kind == "ping":
            mirror.clock(body.get("now"))
    except (KeyError, TypeError, ValueError) as exc:  # a box we do not understand: say so
        mirror.counts["unreadable"] += 1
        log.warning("event stream: cannot read a %s message (%s): %.80r", kind, exc, data)
