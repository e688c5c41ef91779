"""Simulated tellers at the keypads of a running box, and the customers they serve.

A teller is one task per window. It logs in on the window's keypad (登入: keypad code,
password), presses 呼叫 when something it serves is waiting, and serves the called
customer the way :mod:`queueing` drew them: there at once, or absent — 重呼 every
``recall_every_s`` until they answer, or 确认 after 6 (弃号) once ``recall_limit`` recalls
went unanswered. Then the service time passes and the teller presses 评价 (finish and ask
for a rating; now and then 办结, finish only); a customer who rates presses a score on the
evaluator a few seconds later. On stop the teller finishes whoever is at the window and
logs out.

Every step is checked against what the box says (:class:`~sim.live.mirror.Mirror`), never
assumed: a call that brought nobody, a number that left the window (the day closed, a
lobby manager's transfer) or a box that restarted mid-service are all picked up from the
box's own state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from common.tasks import wait_at_most
from controller.config import Config, TellerConfig, WindowConfig
from queueing.arrivals import Customer
from sim.rs485_control import press_async, rate_async

from .mirror import Mirror

__all__ = ["ASK_RATING", "Keypad", "Pace", "Roster", "Teller", "Unavailable"]

log = logging.getLogger(__name__)

ASK_RATING = 0.9  # share of services the teller ends with 评价 (else 办结)
THINK_S = (3.0, 10.0)  # modeled seconds a customer takes to press a score
IDLE_RETRY_S = 5.0  # a call that brought nobody is tried again after this (wall seconds)
ANSWER_S = 2.0  # how long the box may take to act on a key (wall seconds)


class Unavailable(Exception):
    """The simulated box did not take a key (not running, restarting, keypad offline)."""


@dataclass(frozen=True, slots=True)
class Pace:
    """Modeled seconds → wall seconds at ``speed``; ``key_gap``: the same key again on one
    keypad never sooner (a 68-frame keypad's repeat within ``rs485.dedupe_s`` is taken
    for a resend and ignored)."""

    speed: float = 1.0
    key_gap: float = 0.0

    def wall(self, modeled_s: float) -> float:
        return modeled_s / self.speed


class Keypad:
    """One window's keypad, pressed through the box's control socket."""

    def __init__(self, data_dir: Path, window: int, pace: Pace) -> None:
        self.data_dir, self.window, self.pace = data_dir, window, pace
        self.presses = 0
        self.latencies: deque[float] = deque(maxlen=4096)  # press → the box took it (s)
        self._last: dict[tuple[str, ...], float] = {}

    async def press(self, *keys: str) -> None:
        loop = asyncio.get_running_loop()
        wait = self._last.get(keys, -math.inf) + self.pace.key_gap - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        started = loop.time()
        try:
            await press_async(self.data_dir, self.window, list(keys), timeout=10.0)
        except (OSError, RuntimeError, TimeoutError, ValueError) as exc:
            raise Unavailable(f"window {self.window}: {' '.join(keys)}: {exc}") from exc
        finally:
            self._last[keys] = loop.time()
        self.latencies.append(loop.time() - started)
        log.debug("window %d: %s (%.3f s)", self.window, keys[0], self.latencies[-1])
        self.presses += 1


@dataclass
class Roster:
    """Who holds which ticket: kiosk tickets by the number the box answered, card tickets
    by the box's ``ticket_issued`` event (the oldest swipe of that business first).
    A ticket nobody here took (someone at the real kiosk, or before we started) gets a
    customer like today's others of its business."""

    rng: random.Random
    card_wait_s: float = 10.0  # a swipe without a ticket after this long was refused
    by_ticket: dict[str, Customer] = field(default_factory=dict)
    today: list[Customer] = field(default_factory=list)
    swiped: deque[tuple[float, Customer]] = field(default_factory=deque)
    card_tickets: int = 0
    card_refused: int = 0
    strangers: int = 0

    def issued(self, ticket: str, c: Customer) -> None:
        self.by_ticket[ticket] = c

    def swipe(self, c: Customer, now: float) -> None:
        self.swiped.append((now, c))

    def on_event(self, e: dict[str, object]) -> None:
        """The mirror's listener: a card ticket belongs to the oldest swipe for it."""
        if e.get("type") != "ticket_issued" or e.get("channel") != "card":
            return
        pick = next((i for i, (_, c) in enumerate(self.swiped) if c.queue == e.get("queue")),
                    0 if self.swiped else None)
        if pick is None:
            return
        _, c = self.swiped[pick]
        del self.swiped[pick]
        self.by_ticket[str(e.get("ticket"))] = c
        self.card_tickets += 1

    def expire(self, now: float) -> None:
        """Swipes that brought no ticket in ``card_wait_s``: the reader or box refused."""
        while self.swiped and now - self.swiped[0][0] > self.card_wait_s:
            self.swiped.popleft()
            self.card_refused += 1

    def customer(self, ticket: str, queue: str | None, config: Config) -> Customer:
        known = self.by_ticket.get(ticket)
        if known is not None:
            return known
        self.strangers += 1
        alike = [c for c in self.today if c.queue == queue] or self.today
        if alike:
            c = self.rng.choice(alike)
        else:
            q = config.queue(queue or "")
            c = Customer(0, 0.0, queue or "", None, (q.service_minutes if q else 5) * 60, 0, 0)
        self.by_ticket[ticket] = c
        return c

    def new_day(self, day: dt.date, people: list[Customer]) -> None:
        """Today's customers; forget tickets older than yesterday's."""
        self.today = people
        keep = f"{day - dt.timedelta(days=1):%Y%m%d}"
        for ticket in [t for t in self.by_ticket if t[:8] < keep]:
            del self.by_ticket[ticket]


@dataclass
class Desk:
    """What every teller shares: the box's data directory, the mirror, pace and rules."""

    config: Config
    data_dir: Path
    mirror: Mirror
    roster: Roster
    pace: Pace
    recall_every_s: float
    recall_limit: int
    prompt_always: bool
    stop: asyncio.Event
    seed: int | str = 1


class Teller:
    """One simulated teller at one window (see the module docstring)."""

    def __init__(self, desk: Desk, teller: TellerConfig, window: WindowConfig,
                 password: str) -> None:
        self.desk, self.teller, self.window = desk, teller, window
        self.n = window.number
        self.password = password
        self.keypad = Keypad(desk.data_dir, self.n, desk.pace)
        self.rng = random.Random(f"{desk.seed}/teller/{self.n}")
        self.failures = 0
        self.unrated = 0  # customers who wanted to rate but the evaluator did not ask
        self.last_error = ""
        self._tried: tuple[float, int] | None = None  # last call that brought nobody
        self._progress: tuple[str, str] = ("", "")  # (ticket, called | there | served)
        self.call_latencies: deque[float] = deque(maxlen=4096)  # 呼叫 → ticket_called seen

    @property
    def logged_in(self) -> bool:
        return self.desk.mirror.window(self.n).teller == self.teller.id

    async def run(self) -> None:
        """Work until the desk's stop is set, then finish the customer and log out."""
        while True:
            try:
                if await self._step():
                    return
            except Unavailable as exc:
                self.failures += 1
                self.last_error = str(exc)
                log.info("teller %s: %s", self.teller.id, exc)
                await self._sleep(1.0)
            except Exception as exc:  # a bug here must not silently end the teller's day
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("teller %s", self.teller.id)
                await self._sleep(1.0)

    async def _step(self) -> bool:
        """One thing a teller does; True when the day's work is over."""
        mirror, stop = self.desk.mirror, self.desk.stop
        if not mirror.up:
            await mirror.wait_for(lambda: mirror.up or stop.is_set(), 1.0)
            return stop.is_set() and not mirror.up
        w = mirror.window(self.n)
        if w.teller != self.teller.id:
            if stop.is_set():
                return True
            await self._login()
        elif w.ticket is not None:
            await self._serve(w.ticket, w.queue)
        elif stop.is_set():
            await self.keypad.press("logout")
            await mirror.wait_for(lambda: not self.logged_in, ANSWER_S)
            return not self.logged_in
        else:
            await self._call_next()
        return False

    # --- logging in -----------------------------------------------------------------------

    async def _login(self) -> None:
        mirror = self.desk.mirror
        occupant = mirror.window(self.n).teller
        if occupant is not None:  # someone else's session from an earlier run: end it
            await self.keypad.press("logout")
        elsewhere = mirror.window_of(self.teller.id)
        if elsewhere is not None and elsewhere != self.n:
            await Keypad(self.desk.data_dir, elsewhere, self.desk.pace).press("logout")
        await self.keypad.press("login", str(self.teller.keypad_code), self.password)
        if not await mirror.wait_for(lambda: self.logged_in, ANSWER_S + 2):
            self.failures += 1
            self.last_error = f"window {self.n}: {self.teller.id} could not log in"
            log.warning("%s (the keypad shows why)", self.last_error)
            await self._sleep(5.0)

    # --- calling ------------------------------------------------------------------------

    def _worth_calling(self) -> bool:
        """Something this window serves is waiting (or, for a balancing window, some
        business has reached the balancing count), and after a call that brought nobody
        (another window was quicker) a ticket has come since, or a while has passed."""
        mirror = self.desk.mirror
        waiting = mirror.waiting
        mine = any(waiting.get(q, 0) for q in self.window.queues)
        balance = self.desk.config.thresholds.balance_waiting
        helps = self.window.balancing and any(v >= balance for v in waiting.values())
        if not (mine or helps):
            return False
        if self._tried is None:
            return True
        at, tickets = self._tried
        return mirror.tickets_in() != tickets or (
            asyncio.get_running_loop().time() - at >= IDLE_RETRY_S)

    async def _call_next(self) -> None:
        mirror = self.desk.mirror
        if not self._worth_calling():
            await mirror.changed(1.0)
            return
        before = (asyncio.get_running_loop().time(), mirror.tickets_in())
        await self.keypad.press("call_next")
        called = await mirror.wait_for(lambda: mirror.window(self.n).ticket is not None,
                                       ANSWER_S)
        self._tried = None if called else before
        if called:
            self.call_latencies.append(asyncio.get_running_loop().time() - before[0])

    # --- serving ------------------------------------------------------------------------

    def _still(self, ticket: str) -> bool:
        return self.desk.mirror.window(self.n).ticket == ticket

    async def _serve(self, ticket: str, queue: str | None) -> None:
        """Serve the customer holding ``ticket``. Taken up again after a failed key (the
        box restarting), it goes on from where it was: an answered recall is not made
        again, a service time that has passed does not pass twice."""
        desk = self.desk
        c = desk.roster.customer(ticket, queue, desk.config)
        if self._progress[0] != ticket:
            self._progress = (ticket, "called")
        if self._progress[1] == "called":
            if c.answers_at != 0 and not await self._recalls(ticket, c):
                return
            self._progress = (ticket, "there")
        if self._progress[1] == "there":
            await self._pause(c.service_s)
            self._progress = (ticket, "served")
        if not self._still(ticket):
            return
        ask = not desk.stop.is_set() and self.rng.random() < ASK_RATING
        await self.keypad.press("rate" if ask else "finish")
        done = await desk.mirror.wait_for(lambda: not self._still(ticket), ANSWER_S)
        if done and c.score and not desk.stop.is_set() and (ask or desk.prompt_always):
            await self._pause(self.rng.uniform(*THINK_S))
            try:
                asked = await rate_async(desk.data_dir, self.n, c.score, wait=2.0)
            except (OSError, RuntimeError, TimeoutError) as exc:
                raise Unavailable(f"evaluator {self.n}: {exc}") from exc
            self.unrated += not asked

    async def _recalls(self, ticket: str, c: Customer) -> bool:
        """Recall an absent customer; True once they answer, False when given up (弃号)."""
        for k in range(1, self.desk.recall_limit + 1):
            await self._pause(self.desk.recall_every_s)
            if not self._still(ticket):
                return False
            if self.desk.stop.is_set():
                break
            await self.keypad.press("recall")
            if c.answers_at == k:
                return True
        await self.keypad.press("no_show")
        await self.desk.mirror.wait_for(lambda: not self._still(ticket), ANSWER_S)
        return False

    async def _pause(self, modeled_s: float) -> None:
        """Let ``modeled_s`` pass (compressed by the speed); cut short by the stop."""
        await self._sleep(self.desk.pace.wall(modeled_s))

    async def _sleep(self, wall_s: float) -> None:
        stop = self.desk.stop
        if wall_s > 0 and not stop.is_set():
            await wait_at_most(stop, wall_s)
