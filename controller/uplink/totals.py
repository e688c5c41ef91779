"""Each finished day's totals (F3), sent once all its events are acknowledged, at or after
``totals_at`` the next day (branch time zone), oldest first; at most ``totals_days``
back. The days sent are kept in ``{data_dir}/uplink/totals-sent.json``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt

from protocols import uplink as proto

from ..journal import Journal
from .commands import CommandRefused
from .settings import UplinkSettings

if TYPE_CHECKING:
    from ..box import Box

__all__ = ["DailyTotals"]

log = logging.getLogger(__name__)

SENT_KEPT = 120  # days remembered in totals-sent.json


class DailyTotals:
    """Which days' totals are due, their figures (from the journal), and sending them."""

    def __init__(self, settings: UplinkSettings) -> None:
        self.settings = settings
        self.wake = asyncio.Event()  # a day opened or an ack: look again
        self._cache: dict[str, dict[str, Any]] = {}
        self._first_day: str | None = None  # the journal's first day (totals start there)
        self._sent: set[str] | None = None
        self._view: Journal | None = None
        self.state_dir = Path("uplink")
        self.box: Box | None = None

    def attach(self, box: Box, view: Journal, state_dir: Path) -> None:
        """Read ``box``'s days through ``view`` (a journal connection of the uplink's own)."""
        self.box, self._view, self.state_dir = box, view, state_dir

    async def send_due(self, client: aiomqtt.Client | None, acked: Callable[[], int]) -> None:
        """Send the totals that are due, in order, up to the first day whose events are not
        all acknowledged (``acked()``: the centre's acked_through now)."""
        for day in await self._due_days():
            totals = await self._day_totals(day)
            last = totals["last_seq"]
            if last is not None and acked() < last:
                break  # its events are not all settled yet: later, in order
            await self.send(client, day, totals)
            self._mark_sent(day)

    async def send(self, client: aiomqtt.Client | None, day: str,
                   totals: dict[str, Any] | None = None) -> dict[str, Any]:
        """Publish ``day``'s totals; also the ``totals`` command's handler."""
        box = self._box()
        if client is None:
            raise CommandRefused("offline", "未连接", "not connected")
        totals = totals or await self._day_totals(day)
        msg = {"v": proto.SCHEMA_VERSION, "branch": box.config.branch.code,
               "epoch": box.epoch, "day": day, **totals}
        await client.publish(proto.topic(box.config.branch.code, "totals"), proto.encode(msg),
                             qos=1)
        log.info("totals for %s sent: %d events", day, totals["events"])
        return {"day": day, "events": totals["events"]}

    async def _due_days(self) -> list[str]:
        """Finished days whose totals are due and not yet sent, oldest first."""
        box, s = self._box(), self.settings
        now = box.clock.now()
        today = dt.date.fromisoformat(box.engine.day_of(now))
        if self._first_day is None:
            first = await asyncio.to_thread(self._journal().read, 0, 1)
            if not first:
                return []
            self._first_day = str(first[0].event["day"])
        start = max(dt.date.fromisoformat(self._first_day),
                    today - dt.timedelta(days=s.totals_days))
        sent = self._sent_days()
        hh, mm = map(int, s.totals_at.split(":"))
        due = []
        day = start
        while day < today:
            at = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(hh, mm), box.config.tz)
            if day.isoformat() not in sent and now >= at.timestamp() \
                    and box.engine.state.day > day.isoformat():
                due.append(day.isoformat())
            day += dt.timedelta(days=1)
        return due

    async def _day_totals(self, day: str) -> dict[str, Any]:
        cached = self._cache.get(day)
        if cached is None:
            # The engine applies a day's closing events before they are durable: wait for
            # them, or the day would be read without its end.
            await self._box().settled()
            records = await asyncio.to_thread(self._journal().day, day)
            cached = proto.day_totals(r.event for r in records)
            self._cache = {day: cached}  # one closed day at a time is enough
        return cached

    def _sent_days(self) -> set[str]:
        """Days whose totals went out (kept in ``uplink/totals-sent.json``)."""
        if self._sent is None:
            try:
                data = json.loads((self.state_dir / "totals-sent.json").read_text())
                self._sent = {d for d in data if isinstance(d, str)}
            except (OSError, ValueError):
                self._sent = set()
        return self._sent

    def _mark_sent(self, day: str) -> None:
        days = sorted({*self._sent_days(), day})[-SENT_KEPT:]
        self._sent = set(days)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "totals-sent.json").write_text(json.dumps(days))

    def _journal(self) -> Journal:
        assert self._view is not None
        return self._view

    def _box(self) -> Box:
        assert self.box is not None
        return self.box
