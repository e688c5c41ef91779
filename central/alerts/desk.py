"""The alert desk: evaluates the rules every round and delivers new alerts (lobby
screen pushes, SMS) from the alerts table."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from common.clock import FunctionClock
from common.tasks import still_cancelling
from protocols.appointment import mask_phone

from ..reports.labels import labels_from_store
from ..sms import LogSms, SmsError, SmsGateway
from ..store.summary import report_timezone
from .rules import (
    LEASE_S,
    Verdict,
    bad_rating_rule,
    daily_rules,
    flooding_rule,
    live_rules,
    load_thresholds,
    long_wait_rule,
    raise_alerts,
)

if TYPE_CHECKING:
    from ..config import AlertSettings
    from ..leases import Leases
    from ..store import Store


log = logging.getLogger(__name__)
T = TypeVar("T")


# --- the desk: evaluating and delivering -----------------------------------------------------

Publish = Callable[[str, dict[str, Any]], Awaitable[str]]


class AlertDesk:
    """Evaluates the rules and delivers new alerts, every ``interval_s`` (a centre task).

    ``publish(branch, args)`` sends ``cmd/alert`` to a branch and returns the command id
    (the centre's :meth:`~central.service.Centre.send_command`); ``gateway`` sends SMS
    (the centre's one gateway, :func:`central.sms.make_gateway`; without one, to the log).
    """

    def __init__(self, settings: AlertSettings, store_url: str, *, publish: Publish,
                 gateway: SmsGateway | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store_url = store_url
        self.publish = publish
        self.gateway = gateway or LogSms()
        self.clock = clock  # the centre's one clock (central/__main__.py hands it)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="centre-alerts")
        self._store: Store | None = None
        self._daily_done: str | None = None
        self.stats = {"raised": 0, "pushed": 0, "sms_sent": 0, "sms_failed": 0}

    async def run(self, leases: Leases | None = None) -> None:
        """Evaluate and deliver until cancelled; a failed round is logged, never fatal.
        With ``leases`` (several centre instances), only while this process holds the
        ``alerts`` lease (central/leases.py)."""
        try:
            if leases is None:
                await self._rounds()
            else:
                await leases.run("alerts", self._rounds)
        finally:
            await self.close()

    async def _rounds(self) -> None:
        while True:
            still_cancelling()  # a delivery's publish may have swallowed the stop
            try:
                await self.round()
            except Exception as exc:  # the store or the broker went away: next round
                log.error("alert round failed: %r", exc, exc_info=exc)
                await self._reopen()
            await asyncio.sleep(self.settings.interval_s)  # a period, not a wait

    async def round(self) -> list[int]:
        """One evaluation and one delivery pass; returns the ids of new alerts."""
        new = await self._db(self.evaluate, self.clock())
        await self.deliver()
        return new

    async def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                await self._db(store.close)
        await asyncio.to_thread(self._executor.shutdown, True)

    async def _reopen(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                await self._db(store.close)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def store(self) -> Store:
        if self._store is None:
            from ..store import open_store

            self._store = open_store(self.store_url, clock=FunctionClock(self.clock))
        return self._store

    # --- evaluating (on the desk's store thread) ---------------------------------------

    def evaluate(self, now: float) -> list[int]:
        """Run every rule and store what they found, in one transaction."""
        store = self.store()
        labels = labels_from_store(store)
        day = self._daily_day(store, now)

        def run() -> list[int]:
            nodes = load_thresholds(store)
            verdict = Verdict()
            branches = store.branches()
            live_rules(store, branches, nodes, labels, now, verdict)
            long_wait_rule(store, branches, nodes, labels, now, verdict)
            bad_rating_rule(store, nodes, labels, verdict)
            flooding_rule(store, nodes, labels, verdict)
            if day is not None:
                daily_rules(store, nodes, labels, day, now, verdict)
            return raise_alerts(store, verdict, nodes, labels, self.settings.sms.template,
                                now)

        new: list[int] = store.retrying(run)
        if day is not None:
            self._daily_done = f"{day}@{int(now // 300)}"
        self.stats["raised"] += len(new)
        return new

    def _daily_day(self, store: Store, now: float) -> str | None:
        """Yesterday, once local time is past ``daily_check_at`` (at most every 5 min)."""
        local = dt.datetime.fromtimestamp(now, report_timezone(store))
        if local.strftime("%H:%M") < self.settings.daily_check_at:
            return None
        day = (local.date() - dt.timedelta(days=1)).isoformat()
        if self._daily_done == f"{day}@{int(now // 300)}":
            return None
        return day

    # --- delivering ------------------------------------------------------------------------

    async def deliver(self) -> None:
        """Push pending alerts to their branches and send pending SMS."""
        now = self.clock()
        store = self.store()
        pushes = await self._db(lambda: store.execute(
            "SELECT id, branch, kind, level, message, message_en, raised_at, push_attempts "
            "FROM alerts WHERE push = 'pending' AND push_next <= ? ORDER BY id LIMIT 100",
            (now,)).fetchall())
        for row in pushes:
            if await self._db(self._claim, "alerts", "push", "push_next", row[0], now):
                await self._push(row, now)
        clears = await self._db(lambda: store.execute(
            "SELECT id, branch, kind, message, message_en, resolved_at, clear_attempts "
            "FROM alerts WHERE clear_push = 'pending' AND clear_next <= ? ORDER BY id "
            "LIMIT 100", (now,)).fetchall())
        for row in clears:
            if await self._db(self._claim, "alerts", "clear_push", "clear_next", row[0], now):
                await self._push_clear(row, now)
        messages = await self._db(lambda: store.execute(
            "SELECT id, phone, text, attempts FROM alert_sms WHERE state = 'pending' "
            "AND next_at <= ? ORDER BY id LIMIT 100", (now,)).fetchall())
        for row in messages:
            if await self._db(self._claim, "alert_sms", "state", "next_at", row[0], now):
                await self._sms(row, now)

    def _claim(self, table: str, state: str, next_at: str, row_id: int, now: float) -> bool:
        """Take a delivery for LEASE_S (another centre process then leaves it alone; if
        this one dies mid-way, the lease runs out and it is tried again)."""
        cur = self.store().execute(
            f"UPDATE {table} SET {next_at} = ? WHERE id = ? AND {state} = 'pending' "
            f"AND {next_at} <= ?", (now + LEASE_S, row_id, now))
        return int(cur.rowcount) == 1

    async def _push(self, row: tuple[Any, ...], now: float) -> None:
        alert_id, branch, kind, level, message, message_en, raised_at, attempts = row
        args = {"id": f"alert-{alert_id}-{uuid.uuid4().hex[:8]}", "alert_id": int(alert_id),
                "kind": kind, "level": level, "message": message[:200],
                "message_en": message_en[:200], "at": float(raised_at)}
        try:
            cmd_id = await self.publish(branch, args)
        except ConnectionError as exc:  # no broker link (MqttError is one): not a try
            log.info("alert %s not pushed yet: %s", alert_id, exc)
            await self._db(lambda: self.store().execute(
                "UPDATE alerts SET push_next = ? WHERE id = ?", (now, alert_id)))
            return
        except (OSError, ValueError) as exc:
            await self._db(self._retry, "alerts", "push", alert_id, attempts, now, str(exc))
            return
        await self._db(lambda: self.store().execute(
            "UPDATE alerts SET push = 'sent', push_id = ?, push_attempts = push_attempts + 1 "
            "WHERE id = ?", (cmd_id, alert_id)))
        self.stats["pushed"] += 1

    async def _push_clear(self, row: tuple[Any, ...], now: float) -> None:
        """Tell the lobby screen that heard an alert that it is over (once; retried like a
        push, given up after ``max_attempts``)."""
        alert_id, branch, kind, message, message_en, resolved_at, attempts = row
        args = {"id": f"alert-{alert_id}-clear-{uuid.uuid4().hex[:8]}",
                "alert_id": int(alert_id), "kind": kind, "level": "clear",
                "message": f"已解除:{message}"[:200], "message_en": f"Cleared: {message_en}"[:200],
                "at": float(resolved_at)}
        state, tries, later = "sent", int(attempts) + 1, now
        try:
            await self.publish(branch, args)
        except ConnectionError:  # no broker link (MqttError is one): not a try
            state, tries = "pending", int(attempts)
        except (OSError, ValueError) as exc:
            give_up = tries >= self.settings.max_attempts
            state, later = ("failed" if give_up else "pending"), now + 30.0 * 2 ** (tries - 1)
            log.warning("alert %s clear not pushed (%s)", alert_id, exc)
        await self._db(lambda: self.store().execute(
            "UPDATE alerts SET clear_push = ?, clear_attempts = ?, clear_next = ? WHERE id = ?",
            (state, tries, later, alert_id)))

    async def _sms(self, row: tuple[Any, ...], now: float) -> None:
        sms_id, phone, text, attempts = row
        try:
            await self.gateway.send(phone, text)
        except (SmsError, OSError, ValueError) as exc:
            log.warning("SMS to %s failed: %s", mask_phone(phone), exc)
            self.stats["sms_failed"] += 1
            await self._db(self._retry, "alert_sms", "state", sms_id, attempts, now, str(exc))
            return
        await self._db(lambda: self.store().execute(
            "UPDATE alert_sms SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
            "error = NULL WHERE id = ?", (self.clock(), sms_id)))
        self.stats["sms_sent"] += 1

    def _retry(self, table: str, column: str, row_id: int, attempts: int, now: float,
               error: str) -> None:
        """Try again later (30 s, doubling, at most 30 min), or give up after the limit."""
        tries = int(attempts) + 1
        give_up = tries >= self.settings.max_attempts
        delay = min(30.0 * 2 ** (tries - 1), 1800.0)
        if table == "alerts":
            self.store().execute(
                "UPDATE alerts SET push = ?, push_attempts = ?, push_next = ? WHERE id = ?",
                ("failed" if give_up else "pending", tries, now + delay, row_id))
        else:
            self.store().execute(
                "UPDATE alert_sms SET state = ?, attempts = ?, next_at = ?, error = ? "
                "WHERE id = ?", ("failed" if give_up else "pending", tries, now + delay,
                                 error[:300], row_id))
        log.warning("alert delivery %s %d failed (%s); %s", table, row_id, error,
                    "giving up" if give_up else f"again in {delay:.0f} s")


