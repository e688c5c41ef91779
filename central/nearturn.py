""""Your turn is near" (您前面还有N人, H6): the centre tells remote and booked customers
when their ticket has ``notify_ahead`` or fewer ahead, and again when it is called, with
the window — once each, on the first channel that reaches them.

**Who is followed.** Today's remote tickets (``remote_tickets``, issued, or whose answer
came since) and today's redeemed bookings (a ``ticket_issued`` event of the branch with
``appointment``, matched to ``bookings``): their customer is known. Nobody else is.

**Where the watcher looks** (every ``notify_every_s``, one store read): for each branch
with such tickets today, the events stored since its last look, per journal epoch, by
primary key (``seq`` above what it read, up to the epoch's contiguous mark: an event past
a gap waits for the replay, none is skipped). ``ticket_called`` gives "called" and the
window; a ticket finished, not shown or closed is no longer followed.

**How many ahead** (the cheapest correct source). The engine's exact count under the
selection strategy (VIPs and appointments first, windows serving several businesses) is
only known at the box; the centre's events cannot recount it. So: the count the box put in
the ``ticket_issued`` event (or the remote ticket's answer) when it was issued; after that,
the box's ``cmd/track`` answer through the same :class:`~central.remote.Tracker` the phones
use, asked only for a branch whose queue moved (an event other than an issue or a rating
since its last answer) and never more than once per ``track_ttl_s`` per branch for the
watcher and the phones together. A quiet branch is never asked.

**At most once** per (branch, day, ticket, kind), across processes and restarts: a notice
is claimed in ``notices_sent`` (primary key) before it goes; a claim that is not ours is
not sent. After a restart the watcher reads the day's events again and finds its claims.
A process that dies between the claim and the send loses that notice (at most once, not at
least once). Rows of days older than ``notify_keep_days`` are deleted (at start, then
hourly): the table holds ≤ 2 rows per followed ticket per day kept.

**Channels.** The :class:`~central.notify.Notifier` list in order (WeChat first when that
channel is composed in, then SMS): False means "not reachable here", try the next; an
exception is a transient failure, tried again ``notify_tries`` times with a doubling
back-off from ``notify_backoff_s``, then the next channel. None reached: counted
``unreachable`` (or ``failed``) in ``paidui_centre_notices_total`` and in the row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.tasks import still_cancelling
from protocols.metrics import Metric

from .appointments import StorePool
from .notify import Notice, NoticeKind, Notifier

if TYPE_CHECKING:
    from .appointments import Appointments
    from .remote import Tracker
    from .store import Store

__all__ = ["NearTurn"]

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0
EVENTS_PER_LOOK = 5000  # per branch epoch and look: a backlog is read over several looks
CONCURRENT_SENDS = 8
QUIET = frozenset({"ticket_issued", "ticket_rated", "ticket_print_failed", "ticket_delivered",
                   "lobby_alert"})  # events that cannot bring a waiting ticket nearer
GONE = frozenset({"ticket_finished", "ticket_no_show", "ticket_closed", "ticket_voided"})


@dataclass
class Followed:
    """A ticket of today whose customer the centre knows."""

    customer: str
    branch: str
    ticket: str
    number: str
    queue: str
    ahead: int | None  # the last count known (at issue, then from track); None: unknown
    queue_name: str | None = None
    state: str = "waiting"  # waiting / called / gone
    window: str | None = None


@dataclass
class Look:
    """What one store read found (see :func:`_look`)."""

    remote: list[dict[str, Any]]
    bookings: dict[str, str]  # booking id → customer, of the watched branches today
    events: dict[str, list[dict[str, Any]]]  # branch → new events of today, in order
    cursors: dict[tuple[str, str], int]  # (branch, epoch) → the last seq read


class NearTurn:
    """The watcher: follows today's remote and booked tickets and sends their notices."""

    def __init__(self, appointments: Appointments, tracker: Tracker,
                 notifiers: Sequence[Notifier], *,
                 clock: Callable[[], float] | None = None) -> None:
        self.appointments = appointments
        self.settings = appointments.settings
        self.tracker = tracker
        # Its own store connection: never queued behind the customers' requests, and closed
        # by its own loop (the push's pool closes when the push stops).
        self.pool = StorePool(appointments.pool.url, 1, appointments.pool.clock)
        self.notifiers: list[Notifier] = list(notifiers)
        self.clock = clock or appointments.clock
        self.counts: Counter[tuple[str, str, str]] = Counter()  # (kind, outcome, channel)
        self._day = ""
        self._pruned_at = -PRUNE_EVERY_S
        self._reset()

    def _reset(self) -> None:
        # Everything here is today's and goes at midnight: bounded by the day's tickets of
        # the watched branches (the called ones, and those followed).
        self._followed: dict[tuple[str, str], Followed] = {}
        self._cursors: dict[tuple[str, str], int] = {}
        self._calls: dict[tuple[str, str], str | None] = {}  # (branch, ticket) → window
        self._gone: set[tuple[str, str]] = set()
        self._moved: dict[str, float] = {}  # branch → when its queue was last seen moving
        self._settled: set[tuple[str, str, str, str]] = set()  # notice keys done with

    def add_notifier(self, notifier: Notifier, *, first: bool = True) -> None:
        """Compose another channel in (WeChat goes first: it is tried before SMS)."""
        if first:
            self.notifiers.insert(0, notifier)
        else:
            self.notifiers.append(notifier)

    # --- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Look every ``notify_every_s`` until cancelled; a failed look is logged, not fatal."""
        try:
            while True:
                still_cancelling()
                try:
                    await self.step()
                except Exception as exc:  # the store hiccuped, a branch answered junk: next
                    log.warning("near-turn look failed: %r", exc, exc_info=exc)
                await asyncio.sleep(self.settings.notify_every_s)  # a timer: store polled
        finally:
            await self.close()

    async def close(self) -> None:
        await self.pool.close()

    async def step(self) -> list[Notice]:
        """One look: read what is new, send the notices due; returns those sent."""
        today = self.appointments.today()
        if today != self._day:
            self._day = today
            self._reset()
        now = time.monotonic()
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            await self.prune()
        look = await self.pool.read(_look, today, dict(self._cursors))
        self._cursors.update(look.cursors)
        for row in look.remote:
            self._follow_remote(row)
        for branch, events in look.events.items():
            for e in events:
                self._see(branch, e, look.bookings)
        due = [self._notice_of(f, "called") for f in self._followed.values()
               if f.state == "called" and (*self._key(f), "called") not in self._settled]
        due += await self._near()
        return await self._deliver(due)

    async def prune(self) -> int:
        """Delete notices of days older than ``notify_keep_days``; returns the rows gone."""
        cutoff = (dt.date.fromisoformat(self.appointments.today())
                  - dt.timedelta(days=self.settings.notify_keep_days)).isoformat()
        return await self.pool.run(_prune, cutoff)

    # --- following -------------------------------------------------------------------------

    def _key(self, f: Followed) -> tuple[str, str, str]:
        return (f.branch, self._day, f.ticket)

    def _follow(self, f: Followed) -> None:
        key = (f.branch, f.ticket)
        if key in self._followed:
            return
        if key in self._calls:
            f.state, f.window = "called", self._calls[key]
        if key in self._gone:
            f.state = "gone" if f.state == "waiting" else f.state
        self._followed[key] = f

    def _follow_remote(self, row: dict[str, Any]) -> None:
        result = row.get("result") or {}
        ticket = result.get("ticket") or row["ticket"]
        number = result.get("number") or row["number"]
        if not ticket or not number:
            return
        ahead = result.get("ahead")
        self._follow(Followed(row["customer"], row["branch"], str(ticket), str(number),
                              str(result.get("queue") or row["queue"]),
                              int(ahead) if ahead is not None else None,
                              result.get("queue_name")))

    def _see(self, branch: str, e: dict[str, Any], bookings: dict[str, str]) -> None:
        kind, ticket = e.get("type"), e.get("ticket")
        if kind not in QUIET:
            self._moved[branch] = time.monotonic()
        if not isinstance(ticket, str):
            return
        key = (branch, ticket)
        if kind == "ticket_issued" and e.get("appointment") in bookings:
            ahead = e.get("ahead")
            self._follow(Followed(bookings[e["appointment"]], branch, ticket, str(e["number"]),
                                  str(e.get("queue")), int(ahead) if ahead is not None else None))
        elif kind == "ticket_called":
            window = e.get("window")
            self._calls.setdefault(key, None if window is None else str(window))
            f = self._followed.get(key)
            if f is not None and f.state == "waiting":
                f.state, f.window = "called", self._calls[key]
        elif kind in GONE:
            self._gone.add(key)
            f = self._followed.get(key)
            if f is not None and f.state == "waiting":
                f.state = "gone"

    async def _near(self) -> list[Notice]:
        """The "near" notices due: by the count at issue, else by the branch's answer."""
        n, due = self.settings.notify_ahead, []
        ask: dict[str, list[Followed]] = {}
        for f in self._followed.values():
            if f.state != "waiting" or (*self._key(f), "near") in self._settled:
                continue
            if f.ahead is not None and f.ahead <= n:
                due.append(f)
            elif f.ahead is None or f.branch in self._moved:
                ask.setdefault(f.branch, []).append(f)
        answers = await asyncio.gather(*(  # every branch at once: one slow one delays none
            self.tracker.positions(branch, [f.number for f in waiting])
            for branch, waiting in ask.items()))
        for (branch, waiting), (answer, asked) in zip(ask.items(), answers, strict=True):
            if answer is None:
                continue  # no answer (yet): asked again on a later look
            if asked >= self._moved.get(branch, 0.0):
                self._moved.pop(branch, None)  # asked since the last move: settled until the next
            tickets = answer.get("tickets") or {}
            for f in waiting:
                t = tickets.get(f.number)
                if not t:
                    continue
                if t.get("state") == "waiting" and t.get("ahead") is not None:
                    f.ahead = int(t["ahead"])
                    if f.ahead <= n:
                        due.append(f)
        return [self._notice_of(f, "near") for f in due]

    def _notice_of(self, f: Followed, kind: NoticeKind) -> Notice:
        return Notice(kind=kind, customer=f.customer, branch=f.branch, branch_name="",
                      day=self._day, ticket=f.ticket, number=f.number,
                      queue_name=f.queue_name or f.queue,
                      ahead=f.ahead if kind == "near" else None,
                      window=f.window if kind == "called" else None)

    # --- sending ---------------------------------------------------------------------------

    async def _deliver(self, due: list[Notice]) -> list[Notice]:
        gate = asyncio.Semaphore(CONCURRENT_SENDS)
        named = [await self._named(n) for n in due]

        async def one(notice: Notice) -> Notice | None:
            async with gate:
                return await self._send(notice)

        done = await asyncio.gather(*(one(n) for n in named))
        return [n for n in done if n is not None]

    async def _named(self, n: Notice) -> Notice:
        """The notice with the branch's and the business's names (its catalogue)."""
        a = self.appointments
        cat = await a.catalogue(n.branch) or {}
        queue = next((q for q in cat.get("queues") or [] if q.get("id") == n.queue_name), None)
        return Notice(kind=n.kind, customer=n.customer, branch=n.branch,
                      branch_name=await a.branch_name(n.branch), day=n.day, ticket=n.ticket,
                      number=n.number, queue_name=queue["name"] if queue else n.queue_name,
                      ahead=n.ahead, window=n.window)

    async def _send(self, notice: Notice) -> Notice | None:
        """Claim, deliver on the first channel that reaches the customer, record."""
        pool = self.pool
        claimed = await pool.run(_claim, notice, self.clock())  # a store error: next look
        self._settled.add(notice.key)
        if not claimed:
            return None  # sent (or being sent) already: by us before a restart, or another
        outcome, channel, tries = "unreachable", "", 0
        for notifier in self.notifiers:
            result, used = await self._try(notifier, notice)
            tries += used
            if result is True:
                outcome, channel = "sent", notifier.name
                break
            if result is None:
                outcome = "failed"
        await pool.run(_settle, notice, outcome, channel or None, tries)
        self.counts[notice.kind, outcome, channel] += 1
        if outcome == "sent":
            log.info("told the customer of %s %s (%s) by %s", notice.branch, notice.number,
                     notice.kind, channel)
            return notice
        log.warning("could not tell the customer of %s %s (%s): %s", notice.branch,
                    notice.number, notice.kind, outcome)
        return None

    async def _try(self, notifier: Notifier, notice: Notice) -> tuple[bool | None, int]:
        """(True: taken, False: not reachable there, None: failed every try; tries made)."""
        s = self.settings
        delay = s.notify_backoff_s
        for attempt in range(1, s.notify_tries + 1):
            try:
                return await notifier.send(notice), attempt
            except Exception as exc:  # transient by the contract: tried again, bounded
                log.warning("%s notice by %s, try %d/%d: %s", notice.kind, notifier.name,
                            attempt, s.notify_tries, exc)
                if attempt < s.notify_tries:
                    await asyncio.sleep(delay)  # back-off before the next try
                    delay *= 2
        return None, s.notify_tries

    def metrics(self) -> list[Metric]:
        m = Metric("paidui_centre_notices_total", "counter",
                   "near-turn and called notices by this process, by kind, outcome "
                   "(sent, unreachable, failed) and channel")
        for (kind, outcome, channel), n in sorted(self.counts.items()):
            m.add(n, kind=kind, outcome=outcome, channel=channel)
        return [m]


# --- the store ------------------------------------------------------------------------------


def _look(st: Store, day: str, cursors: dict[tuple[str, str], int]) -> Look:
    """Today's remote tickets, the watched branches' bookings and their new events."""
    remote = []
    for request, customer, branch, queue, state, number, ticket, body in st.execute(
            "SELECT request, customer, branch, queue, state, number, ticket, body FROM "
            "remote_tickets WHERE day = ? AND state IN ('issued', 'pending', 'no_answer')",
            (day,)).fetchall():
        reply = _json(body) if state == "issued" else st.reply(branch, request)
        if not reply or not reply.get("ok"):
            continue  # no ticket (yet)
        remote.append({"customer": customer, "branch": branch, "queue": queue,
                       "number": number, "ticket": ticket, "result": reply.get("result")})
    bookings: dict[str, str] = {}
    branches = {r["branch"] for r in remote}
    for bid, customer, branch in st.execute(
            "SELECT id, customer, branch FROM bookings WHERE day = ?", (day,)).fetchall():
        bookings[bid] = customer
        branches.add(branch)
    events: dict[str, list[dict[str, Any]]] = {}
    moved: dict[tuple[str, str], int] = {}
    for branch in sorted(branches):
        for epoch, contiguous in st.execute("SELECT epoch, contiguous FROM marks WHERE "
                                            "branch = ?", (branch,)).fetchall():
            after = cursors.get((branch, epoch))
            if after is None:  # first look at this epoch today: from today's first event
                first = st.execute("SELECT min(seq) FROM events WHERE branch = ? AND epoch = ? "
                                   "AND day = ?", (branch, epoch, day)).fetchone()[0]
                after = int(first) - 1 if first is not None else int(contiguous)
            rows = st.execute("SELECT seq, day, body FROM events WHERE branch = ? AND epoch = ? "
                              "AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                              (branch, epoch, after, contiguous, EVENTS_PER_LOOK)).fetchall()
            for seq, eday, body in rows:
                after = int(seq)
                if eday == day:
                    events.setdefault(branch, []).append(_json(body))
            moved[branch, epoch] = after
    return Look(remote, bookings, events, moved)


def _claim(st: Store, n: Notice, now: float) -> bool:
    cur = st.execute("INSERT INTO notices_sent (branch, day, ticket, kind, customer, number, "
                     "state, tries, at) VALUES (?, ?, ?, ?, ?, ?, 'sending', 0, ?) "
                     "ON CONFLICT (branch, day, ticket, kind) DO NOTHING",
                     (n.branch, n.day, n.ticket, n.kind, n.customer, n.number, now))
    return bool(cur.rowcount == 1)


def _settle(st: Store, n: Notice, state: str, channel: str | None, tries: int) -> None:
    st.execute("UPDATE notices_sent SET state = ?, channel = ?, tries = ? WHERE branch = ? AND "
               "day = ? AND ticket = ? AND kind = ?",
               (state, channel, tries, n.branch, n.day, n.ticket, n.kind))


def _prune(st: Store, cutoff: str) -> int:
    cur = st.execute("DELETE FROM notices_sent WHERE day < ?", (cutoff,))
    return max(int(cur.rowcount), 0)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
