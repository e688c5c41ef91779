"""The box's core service: the engine behind the journal.

:meth:`Box.execute` is the only way anything changes: the engine decides, the events get
their ``seq`` and are committed (group commit, off the event loop), and only then does the
caller get them back and do the listeners hear of them. A number is therefore durable
before it is printed, shown or answered.

If a commit fails (disk full, I/O error), the events already applied in memory are thrown
away: the state is rebuilt from the journal and the callers get :class:`JournalError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from common.clock import Clock
from common.passwords import verify_password

from .config import Config
from .disk import DiskBudget
from .engine import Engine, Event, Request, State
from .engine import commands as c
from .errors import JournalError, Refused
from .health import Health
from .journal import GroupCommitter, Journal, Record
from .keypad import Keypads
from .kiosk import Desk
from .notices import Boards, Voice
from .ports import (
    CardRedeemer,
    CustomerDirectory,
    Listener,
    TicketDesk,
    TicketPrinter,
    WindowKeys,
)
from .views import ServiceTimes

__all__ = ["Box", "Listener"]

log = logging.getLogger(__name__)


class Box:
    """One branch: engine + journal + the clock. Use as an async context manager.

    The box is the :class:`~controller.ports.Host` its device components run in. What it
    holds of the devices is given here or filled by the components the composition root
    built (controller/compose.py): ``printer`` (the printer component sets it while it
    runs; with ``[[kiosks]]`` each kiosk's printer component fills ``printers[kiosk]``
    instead), ``appointment_redeemer`` (the appointments component), ``boards`` (what the
    screens show). A test passes its fakes the same way.
    """

    def __init__(self, config: Config, data_dir: str | Path, clock: Clock, *,
                 tick_s: float = 20.0, printer: TicketPrinter | None = None,
                 boards: Boards | None = None, tickets: TicketDesk | None = None,
                 keys: WindowKeys | None = None) -> None:
        self.config = config
        self.tick_s = tick_s  # how often the day boundary and the kiosk schedule are looked at
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.journal: Journal | None = None
        self._reader: Journal | None = None
        self._committer: GroupCommitter | None = None
        self.engine = Engine(config)
        self.services = ServiceTimes()  # recent handling times, for the wait on a ticket
        self.listeners: list[Listener] = [self.services.on_events]
        self.health = Health(clock)
        self.disk = DiskBudget(self.data_dir, config.journal, health=self.health,
                               notify=lambda n: self.boards.notices.post(n), clock=clock.now)
        self.boards = boards if boards is not None else Boards()
        self.printer: TicketPrinter | None = printer  # or set by the printer component
        # [[kiosks]]: each kiosk's printer, set by its printer component (controller/kiosk.py)
        self.printers: dict[str, TicketPrinter] = {}
        self.appointment_redeemer: CardRedeemer | None = None  # set by the appointments
        self.customers: CustomerDirectory | None = None  # set by controller/customers.py
        self.tickets: TicketDesk = tickets if tickets is not None else Desk(self)
        self.keys: WindowKeys = keys if keys is not None else Keypads(self)  # RS485 windows
        self.refusals: Counter[str] = Counter()
        self.journal_failures = 0
        self._next_seq = 1
        self._snapshot_seq = 0
        self._last: asyncio.Future[None] | None = None
        self._recovering: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._pruned_day: str | None = None  # the day retention last ran for

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Box:
        path = self.data_dir / "journal.sqlite3"
        self.journal = await asyncio.to_thread(Journal, path)
        self._reader = await asyncio.to_thread(Journal, path)
        await asyncio.to_thread(self._rebuild)
        self._committer = GroupCommitter(self.journal)
        self._committer.start()
        self._ticker = asyncio.create_task(self._tick_loop(self.tick_s), name="box-tick")
        await self.execute(c.VoidUndelivered())  # numbers nobody holds (docs/journal.md)
        await self.execute(c.SignIn())  # 启动排队机,自动进入正常工作状态 (A9)
        await self._retain()
        self.disk.check()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the tick loop, flush the journal, close it. Safe to call twice."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        committer, self._committer = self._committer, None
        if committer is not None:
            await asyncio.to_thread(committer.stop)
        for j in (self.journal, self._reader):
            if j is not None:
                j.close()
        self.journal = self._reader = None

    def _rebuild(self) -> None:
        """State = newest snapshot + the events after it (runs in a worker thread)."""
        assert self.journal is not None
        snap = self.journal.latest_snapshot()
        state = State.from_dict(snap[1]) if snap else State()
        after = snap[0] if snap else 0
        for rec in self.journal.iter_all(after):
            state.apply(rec.event)
        self.engine = Engine(self.config, state)
        self._next_seq = self.journal.last_seq + 1
        self._snapshot_seq = after

    @property
    def epoch(self) -> str:
        assert self.journal is not None
        return self.journal.epoch

    @property
    def voice(self) -> Voice:
        """What the voice is saying (the announcer tells it; the hall pages show it)."""
        return self.boards.voice

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    # --- commands ----------------------------------------------------------------------

    async def execute(self, cmd: c.Command, request: Request | None = None) -> list[Event]:
        """Run ``cmd`` now; return its events once they are durable.

        ``request`` (who asked, their key): a repeat of the asker's latest request is not
        acted on again (:meth:`Engine.handle`). Raises :class:`Refused` (after journaling
        any events produced on the way) or :class:`JournalError` when the journal cannot
        take them.
        """
        if self._recovering is not None or self._committer is None:
            raise JournalError("the journal is recovering from a failed write; try again")
        if isinstance(cmd, c.Login):
            cmd = await self._verified_login(cmd)
        try:
            events = self.engine.handle(cmd, self.clock.now(), request)
        except Refused as refusal:
            self.refusals[refusal.code] += 1
            pending = getattr(refusal, "events", None)
            if pending:
                await self._commit(pending)
            raise
        if events:
            await self._commit(events)
        return events

    async def _verified_login(self, cmd: c.Login) -> c.Login:
        """scrypt takes ~0.1 s on purpose: check in a thread, not on the event loop (where
        it would stall the RS485 bus and every page), and hand the engine the answer as the
        command's verified-login fact (a caller's own ``verified`` is never trusted)."""
        teller = self.config.teller(cmd.teller)
        ok = teller is not None and await asyncio.to_thread(
            verify_password, teller.password_hash, cmd.password)
        return replace(cmd, verified=ok)

    async def _commit(self, events: list[Event]) -> None:
        assert self._committer is not None
        records = []
        for e in events:
            e["seq"] = self._next_seq
            records.append(Record(self._next_seq, e))
            self._next_seq += 1
        snapshot = None
        # A snapshot costs in proportion to the day's tickets: on a day of very many, they
        # are taken further apart (as many events as tickets), so their cost per event
        # stays bounded however long the day, and a restart replays at most that many.
        every = max(self.config.journal.snapshot_every, len(self.engine.state.tickets))
        if self.last_seq - self._snapshot_seq >= every:
            state = self.engine.state.to_dict()  # encoded on the writer thread, not here
            snapshot = (self.last_seq, state["day"], state)
            self._snapshot_seq = self.last_seq
        fut = self._committer.submit(records, snapshot)
        self._last = fut
        try:
            await asyncio.shield(fut)
        except JournalError:
            self.journal_failures += 1
            await self._recover()
            raise
        for listener in self.listeners:
            try:
                listener(events)
            except Exception:  # a device's bug must never stop ticketing
                log.exception("event listener %r failed", listener)

    async def _recover(self) -> None:
        if self._recovering is None:
            self._recovering = asyncio.create_task(self._do_recover(), name="journal-recover")
        await asyncio.shield(self._recovering)

    async def _do_recover(self) -> None:
        assert self._committer is not None
        try:
            await self._committer.recover()
            await asyncio.to_thread(self._rebuild)
            log.error("journal write failed: state rebuilt from the journal (seq %d)",
                      self.last_seq)
        finally:
            self._recovering = None

    async def settled(self) -> None:
        """Wait until everything executed so far is durable (before showing state)."""
        fut = self._last
        if fut is not None and not fut.done():
            with contextlib.suppress(JournalError):
                await asyncio.shield(fut)

    async def acknowledge(self, acked_through: int) -> None:
        """Record the centre's cumulative acknowledgement (in order with the commits)."""
        assert self._committer is not None
        await self._committer.call(lambda j: j.set_acked_through(acked_through))

    async def prune(self, keep_days: int | None = None) -> int:
        """Delete acknowledged events older than the retention (default from config)."""
        assert self._committer is not None
        days = keep_days if keep_days is not None else self.config.journal.keep_days
        today = dt.date.fromisoformat(self.engine.state.day or "1970-01-01")
        cutoff = (today - dt.timedelta(days=days)).isoformat()
        return int(await self._committer.call(lambda j: j.prune(cutoff)))

    async def blank_forms(self, keep_days: int | None = None) -> int:
        """Blank the pre-filled forms older than their retention (``forms.keep_days``,
        default 30) that the centre has acknowledged (:meth:`Journal.blank_forms`)."""
        assert self._committer is not None
        days = keep_days if keep_days is not None else self.config.form_settings.keep_days
        today = dt.date.fromisoformat(self.engine.state.day or "1970-01-01")
        cutoff = (today - dt.timedelta(days=days)).isoformat()
        return int(await self._committer.call(lambda j: j.blank_forms(cutoff)))

    async def _retain(self) -> None:
        """Retention in production: :meth:`prune` at start and once per business day
        (called from the tick loop; docs/journal.md, "Outbox and retention")."""
        day = self.engine.state.day
        if day == self._pruned_day:
            return
        self._pruned_day = day
        try:
            blanked = await self.blank_forms()
            pruned = await self.prune()
        except JournalError as exc:  # retried tomorrow; never worth stopping for
            log.warning("journal retention: %s", exc)
            return
        if blanked:
            log.info("form retention: %d pre-filled forms older than %d days blanked",
                     blanked, self.config.form_settings.keep_days)
        if pruned:
            log.info("journal retention: %d acknowledged events older than %d days deleted",
                     pruned, self.config.journal.keep_days)

    # --- reading -----------------------------------------------------------------------

    async def read_day(self, day: str) -> State:
        """The state of a past (or the current) day, rebuilt from the journal."""
        await self.settled()
        assert self._reader is not None
        reader = self._reader

        def load() -> State:
            state = State()
            state.apply({"type": "day_opened", "day": day, "at": 0.0})
            for rec in reader.day(day):
                state.apply(rec.event)
            return state

        return await asyncio.to_thread(load)

    async def read_events(self, after: int, limit: int, through: int | None = None
                          ) -> list[Record]:
        assert self._reader is not None
        return await asyncio.to_thread(self._reader.read, after, limit, through)

    # --- time --------------------------------------------------------------------------

    async def _tick_loop(self, period: float = 20.0) -> None:
        """Close the day at the boundary and sign kiosks in/out on schedule (A3, A9)."""
        kiosk = self.config.kiosk
        last_desired: bool | None = None
        while True:
            await asyncio.sleep(period)
            try:
                await self.execute(c.Tick())
                await self._retain()
                self.disk.check()
                if kiosk.sign_in and kiosk.sign_out:
                    local = dt.datetime.fromtimestamp(self.clock.now(), self.config.tz)
                    desired = kiosk.sign_in <= local.strftime("%H:%M") < kiosk.sign_out
                    if last_desired is not None and desired != last_desired:
                        await self.execute(c.SignIn() if desired else c.SignOut())
                    last_desired = desired
            except (Refused, JournalError) as exc:
                log.warning("tick: %s", exc)

    def describe(self) -> dict[str, Any]:
        return {
            "branch": self.config.branch.code,
            "epoch": self.epoch,
            "last_seq": self.last_seq,
            "config_version": self.config.version,
        }
