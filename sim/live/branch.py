"""A simulated branch day played against a running box (``python -m sim branch``).

:class:`LiveBranch` runs four kinds of task against the box at ``url`` whose data
directory is ``data_dir``:

* the event follower (:func:`sim.live.mirror.follow`): what the box says is happening;
* the arrivals: the day's customers (:class:`sim.live.people.DayPlan`) arrive at their
  times — the box's clock when we started plus the time since, so a box restarted with
  another clock does not disturb the flow — and take a ticket at the kiosk
  (``POST /api/tickets``) or by card through the simulated reader's pipe; a refusal
  (outside hours, paused business, branch full …) sends them home, counted by its code;
* one teller per staffed window (:class:`sim.live.tellers.Teller`);
* a summary line every few seconds.

Everything copes with the box going away: kiosk customers who cannot reach it leave
(``unreachable``), tellers wait and carry on with whatever the box says after it is back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import logging
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import httpx

from common.errors import ConfigError
from common.passwords import verify_password
from controller.config import Config, TellerConfig, section
from drivers.card_reader import CardReaderConfig
from drivers.rs485.settings import load_settings
from queueing import Behaviour, SimError
from queueing.arrivals import Customer, recall_limit

from .mirror import Mirror, follow
from .people import CardDeck, DayPlan, customer_type, pick_windows
from .tellers import Desk, Pace, Roster, Teller

__all__ = ["LiveBranch", "Options", "run_branch"]

log = logging.getLogger(__name__)

STOP_GRACE_S = 15.0  # tellers get this long to finish and log out on stop
KEY_MARGIN_S = 0.25  # beyond rs485.dedupe_s between two identical key frames


@dataclass(frozen=True)
class Options:
    """How to run (the command line's options; docs/simulator.md)."""

    config: Config
    url: str = "http://127.0.0.1:8080"
    data_dir: Path = Path("data")
    speed: float = 1.0
    tellers: int | None = None  # None: every teller with a keypad code
    windows: tuple[int, ...] = ()  # () : the windows covering the most customers
    duration: float | None = None  # wall seconds; None: until stopped
    seed: int | str = 1
    scenario: Path | None = None
    customers: float | None = None
    vip_share: float | None = None
    card_share: float = 0.2
    password: str = "1234"
    every: float = 5.0
    out: TextIO | None = None  # summary lines (None: stdout)


class LiveBranch:
    """Customers and tellers of one branch against a running box (module docstring).

    Raises :class:`ConfigError` (the key named) or :class:`queueing.SimError` when the
    options cannot work with the config.
    """

    def __init__(self, options: Options) -> None:
        self.options = o = options
        cfg = o.config
        self.url = o.url.rstrip("/")
        settings = load_settings(cfg)
        gap = settings.dedupe_s + KEY_MARGIN_S if settings.profile == "legacy68" else 0.0
        self.stop = asyncio.Event()
        self.mirror = Mirror()
        self.rng = random.Random(f"{o.seed}/kiosk")
        self.roster = Roster(random.Random(f"{o.seed}/strangers"))
        self.mirror.listeners.append(self.roster.on_event)
        self.deck = CardDeck(cfg)
        self.fifo = _card_pipe(cfg, o.data_dir)
        people = self._staff(cfg, o)
        behaviour = Behaviour()
        self.desk = Desk(cfg, o.data_dir, self.mirror, self.roster, Pace(o.speed, gap),
                         behaviour.recall_every_s, recall_limit(cfg, behaviour),
                         settings.evaluator_prompt == "always", self.stop, o.seed)
        self.tellers = [Teller(self.desk, t, w, o.password) for t, w in people]
        self.arrived = 0
        self.kiosk_tickets = 0
        self.kiosks = [k.id for k in cfg.kiosks]  # [[kiosks]]: the ids to take tickets at
        self.swipes = 0
        self.untyped = 0  # customers of a type no card of the branch gives: plain ticket
        self.away: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = time.monotonic()

    def _staff(self, cfg: Config, o: Options) -> list[tuple[TellerConfig, Any]]:
        """The tellers and their windows; the day plan scaled to them."""
        staff = [t for t in cfg.tellers if t.keypad_code is not None]
        n = o.tellers if o.tellers is not None else len(o.windows or staff)
        if not 1 <= n <= min(len(staff), len(cfg.windows)):
            raise ConfigError("--tellers", f"{n} tellers wanted; the config has "
                                           f"{len(staff)} with a keypad_code and "
                                           f"{len(cfg.windows)} windows", "command line")
        numbers = list(o.windows)
        for w in numbers:
            if cfg.window(w) is None:
                raise ConfigError("--windows", f"no window {w} in the config", "command line")
        if numbers and len(numbers) != n:
            raise ConfigError("--windows", f"{len(numbers)} windows for {n} tellers",
                              "command line")
        plan = DayPlan(cfg, o.seed, o.speed, o.scenario, o.customers, 1.0, o.vip_share)
        today = dt.datetime.now(cfg.tz).date()
        if not numbers:
            demand: dict[str, float] = {}
            for s in plan.scenario_for(today).arrivals:
                demand[s.queue] = demand.get(s.queue, 0.0) + s.expected
            numbers = pick_windows(cfg, demand, n)
        self.plan = replace(plan, staffed=len(numbers) / len(cfg.windows))
        for t in staff[:n]:
            if not verify_password(t.password_hash, o.password):
                raise ConfigError("--password", f"not teller {t.id}'s keypad password",
                                  "command line")
        return [(t, cfg.window(w)) for t, w in zip(staff[:n], sorted(numbers), strict=True)]

    # --- running -----------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop: no more arrivals; tellers finish their customer and log out."""
        self.stop.set()

    async def run(self) -> dict[str, Any]:
        """Run until stopped (or ``duration``); the report (:meth:`report`)."""
        o = self.options
        self._started = time.monotonic()
        loop = asyncio.get_running_loop()
        if o.duration is not None:
            loop.call_later(o.duration, self.request_stop)
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0)) as client:
            self.client = client
            follower = self._spawn(follow(client, self.url, self.mirror))
            summary = self._spawn(self._summaries())
            arrivals = self._spawn(self._arrivals())
            tellers = [self._spawn(t.run()) for t in self.tellers]
            await self.stop.wait()
            arrivals.cancel()
            await asyncio.wait(tellers, timeout=STOP_GRACE_S)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, follower, summary, return_exceptions=True)
        self._print(self.line())
        return self.report()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- customers ---------------------------------------------------------------------

    async def _arrivals(self) -> None:
        mirror = self.mirror
        while mirror.box_now() is None:
            await mirror.changed(1.0)
        start = mirror.box_now() or 0.0
        mono = time.monotonic()
        tz = self.options.config.tz

        def now() -> float:  # the box's clock as it was at the start, running on
            return start + time.monotonic() - mono

        while True:
            day = dt.datetime.fromtimestamp(now(), tz).date()
            midnight = dt.datetime.combine(day, dt.time(), tz).timestamp()
            try:
                scenario, people = self.plan.customers(day)
            except SimError as exc:  # e.g. the scenario file was edited into nonsense
                log.error("no customers on %s: %s", day, exc)
                people = []
            else:
                b = scenario.behaviour
                self.desk.recall_every_s = b.recall_every_s
                self.desk.recall_limit = recall_limit(self.options.config, b)
            self.roster.new_day(day, people)
            for c in people:
                wait = midnight + c.at - now()
                if wait < 0:
                    continue
                await asyncio.sleep(wait)
                self._spawn(self._arrive(c))
            tomorrow = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
            await asyncio.sleep(max(0.0, tomorrow.timestamp() - now()) + 0.01)

    async def _arrive(self, c: Customer) -> None:
        self.arrived += 1
        ctype = customer_type(self.options.config, c.queue, c.customer_type)
        line = None
        wants_card = ctype == "vip" or c.customer_type is not None
        if self.fifo is not None and (wants_card or self.rng.random() < self.options.card_share):
            line = self.deck.swipe(c.queue, ctype, self.rng)
        if line is not None:
            if self._swipe(line):
                self.swipes += 1
                self.roster.swipe(c, time.monotonic())
            else:
                self.away["unreachable"] += 1
            return
        if c.customer_type is not None:
            self.untyped += 1
        await self._kiosk(c)

    async def _kiosk(self, c: Customer) -> None:
        ask: dict[str, str] = {"queue": c.queue}
        if self.kiosks:  # several kiosks: customers spread over them in turn
            ask["kiosk"] = self.kiosks[self.kiosk_tickets % len(self.kiosks)]
        try:
            r = await self.client.post(f"{self.url}/api/tickets", json=ask)
        except httpx.HTTPError:
            self.away["unreachable"] += 1
            return
        try:
            body = r.json()
            if r.status_code == 201:
                self.roster.issued(str(body["id"]), c)
                self.kiosk_tickets += 1
                return
            code = str(body["error"]["code"])
        except (ValueError, KeyError, TypeError):
            code = f"http_{r.status_code}"
        self.away[code] += 1

    def _swipe(self, line: str) -> bool:
        """Type ``line`` into the simulated card reader; False if no box reads it."""
        if self.fifo is None:
            return False
        try:
            fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno not in (errno.ENXIO, errno.ENOENT):
                raise
            return False
        try:
            os.write(fd, (line + "\n").encode())
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return True

    # --- what is happening ------------------------------------------------------------

    async def _summaries(self) -> None:
        while True:
            await asyncio.sleep(self.options.every)
            self.roster.expire(time.monotonic())
            self._print(self.line())

    def _print(self, line: str) -> None:
        print(line, file=self.options.out or sys.stdout, flush=True)

    def line(self) -> str:
        """One line: what has happened so far."""
        m, c = self.mirror, self.mirror.counts
        now = m.box_now()
        clock = dt.datetime.fromtimestamp(now, self.options.config.tz).strftime("%H:%M:%S") \
            if now is not None else "--:--:--"
        away = self._away()
        why = ", ".join(f"{k} {v}" for k, v in away.most_common(2))
        rated = c["ticket_rated"]
        mean = f" avg {m.score_sum / rated:.1f}" if rated else ""
        on = sum(t.logged_in for t in self.tellers)
        return (
            f"[{time.monotonic() - self._started:5.0f}s] box {'up' if m.up else 'DOWN'} "
            f"{clock} | arrived {self.arrived} tickets "
            f"{self.kiosk_tickets + self.roster.card_tickets} (card "
            f"{self.roster.card_tickets}) away {sum(away.values())}"
            f"{f' ({why})' if why else ''} | waiting {sum(m.waiting.values())} | called "
            f"{c['ticket_called']} served {c['ticket_finished']} no-show "
            f"{c['ticket_no_show']} recalls {c['ticket_recalled']} | rated {rated}{mean} | "
            f"tellers {on}/{len(self.tellers)}"
        )

    def _away(self) -> Counter[str]:
        away = Counter(self.away)
        if self.roster.card_refused:
            away["card_refused"] += self.roster.card_refused
        return away

    def report(self) -> dict[str, Any]:
        """What the run did, as JSON-ready data."""
        m = self.mirror
        rated = m.counts["ticket_rated"]
        return {
            "seconds": round(time.monotonic() - self._started, 1),
            "speed": self.options.speed,
            "arrived": self.arrived,
            "tickets": {"kiosk": self.kiosk_tickets, "card": self.roster.card_tickets},
            "swipes": self.swipes,
            "untyped": self.untyped,
            "turned_away": dict(self._away()),
            "box_events": dict(m.counts),
            "ratings": {"count": rated, "mean": round(m.score_sum / rated, 2) if rated else None},
            "tellers": {t.teller.id: {"window": t.n, "keys": t.keypad.presses,
                                      "failures": t.failures, "unrated": t.unrated}
                        for t in self.tellers},
            "strangers": self.roster.strangers,
            "connects": m.connects,
        }


def _card_pipe(cfg: Config, data_dir: Path) -> Path | None:
    """The named pipe of the box's first simulated card reader, if it has one (with
    ``[[kiosks]]`` and no reader of its own configured: the first kiosk's)."""
    s = section(cfg, "card_reader", CardReaderConfig)
    if not s.enabled or cfg.hardware != "sim":
        return None
    readers = s.readers or []
    if not readers and cfg.kiosks and not cfg.kiosks[0].card_reader:
        return data_dir / "sim" / "cards" / cfg.kiosks[0].id
    if not readers:
        return data_dir / "sim" / "cards" / "sim"
    name = next((r.name for r in readers if r.kind == "sim"), None)
    return data_dir / "sim" / "cards" / name if name else None


async def run_branch(options: Options) -> dict[str, Any]:
    """Run a :class:`LiveBranch` with ``options``; its report."""
    return await LiveBranch(options).run()

