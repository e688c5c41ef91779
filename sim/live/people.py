"""Who comes to the simulated branch: the day's customers, their cards, the staffed windows.

Customers are drawn by :mod:`queueing` (its arrival profiles, service-time distributions
and behaviour models), so a scenario file means the same here as in ``python -m sim des``.
At ``speed`` N the day is drawn with every arrival rate multiplied by N; service times,
recall intervals and rating delays are divided by N where they are used (see
docs/simulator.md, "Speed").

Cards come from the branch config: the VIP customers' own cards and ID numbers, and
numbers made up for each card type's prefix (Luhn-valid bank cards, or valid ID numbers
for a card type named like an ID card), each checked to map back to its card type by the
engine's own longest-prefix rule.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from controller.config import CardType, Config
from controller.engine.engine import _card_type, _vip_queue  # the engine's own card rule
from protocols.cards import format_track2, id_check_char, luhn_check_digit
from queueing import Scenario, SimError, Stream, default_scenario, load_scenario
from queueing.arrivals import Customer, customers

__all__ = [
    "CardDeck",
    "DayPlan",
    "customer_type",
    "pick_windows",
    "with_vip_share",
]

_ID_WORDS = ("id", "身份证")
_COMBINATIONS_MAX = 20000  # exhaustive window choice up to this many sets, greedy beyond


def customer_type(config: Config, queue: str, ctype: str | None) -> str:
    """The customer type a ticket of ``queue`` gets for a customer of ``ctype`` (None:
    the queue's own)."""
    q = config.queue(queue)
    return ctype or (q.customer_type if q else None) or "normal"


def _is_vip(config: Config, stream: Stream) -> bool:
    return customer_type(config, stream.queue, stream.customer_type) == "vip"


def with_vip_share(config: Config, scenario: Scenario, share: float) -> Scenario:
    """The scenario with VIP customers making ``share`` of the day's expected customers
    (their total unchanged). Without a VIP stream one is added at the VIP business,
    shaped like the whole day."""
    total = sum(s.expected for s in scenario.arrivals)
    streams = list(scenario.arrivals)
    vip = sum(s.expected for s in streams if _is_vip(config, s))
    if not total or (vip == 0 and share == 0):
        return scenario
    if vip == 0:
        queue = _vip_queue(config)
        if queue is None:
            raise SimError("--vip-share: the config has no VIP business (customer_type = vip)")
        shape = tuple(sum(s.per_hour[h] for s in streams) for h in range(24))
        streams.append(Stream(queue, None, shape))
        vip = total
    other = sum(s.expected for s in streams if not _is_vip(config, s))
    out = []
    for s in streams:
        if _is_vip(config, s):
            factor = share * total / vip
        else:
            factor = (1 - share) * total / other if other else 0.0
        out.append(replace(s, per_hour=tuple(r * factor for r in s.per_hour)))
    return replace(scenario, arrivals=tuple(out))


@dataclass(frozen=True)
class DayPlan:
    """How a day's customers are drawn (see the module docstring).

    ``scenario``: a queueing scenario file, else the branch's default day scaled by
    ``staffed`` (the share of windows with a teller) or with ``expected`` customers.
    """

    config: Config
    seed: int | str
    speed: float = 1.0
    scenario: Path | None = None
    expected: float | None = None
    staffed: float = 1.0
    vip_share: float | None = None

    def scenario_for(self, day: dt.date) -> Scenario:
        if self.scenario is not None:
            sc = load_scenario(self.scenario, self.config, day)
        else:
            sc = default_scenario(self.config, day, self.expected)
            if self.expected is None:
                sc = sc.scaled(self.staffed)
        if self.vip_share is not None:
            sc = with_vip_share(self.config, sc, self.vip_share)
        return sc

    def customers(self, day: dt.date) -> tuple[Scenario, list[Customer]]:
        """The day's scenario and its customers in arrival order (``at``: seconds after
        local midnight, arrival rates multiplied by ``speed``)."""
        sc = self.scenario_for(day)
        return sc, customers(self.config, sc.scaled(self.speed), f"{self.seed}/{day}")


# --- cards ------------------------------------------------------------------------------

Maker = Callable[[random.Random], str]


@dataclass(frozen=True, slots=True)
class _Card:
    is_id: bool  # an ID card (the reader sends the 18 characters) or a bank card
    make: Maker


class CardDeck:
    """Cards that take a customer to a business (卡类型 → 队列), from the config."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cards: dict[tuple[str, str], list[_Card]] = {}
        taken = {n for v in config.vip_customers for n in (*v.cards, *v.id_numbers)}
        for v in config.vip_customers:
            numbers = [(False, n) for n in v.cards] + [(True, n) for n in v.id_numbers]
            for is_id, number in numbers:
                ct = _card_type(config, number)
                queue = v.queue or (ct.queue if ct else None) or _vip_queue(config)
                if queue is not None:
                    self._add(queue, v.customer_type, _Card(is_id, _fixed(number)))
        probe = random.Random("card-deck")
        for ct in config.card_types:
            card = _card_for(config, ct, taken, probe)
            if card is not None:
                self._add(ct.queue, ct.customer_type, card)

    def _add(self, queue: str, ctype: str, card: _Card) -> None:
        self.cards.setdefault((queue, ctype), []).append(card)

    def has(self, queue: str, ctype: str) -> bool:
        return bool(self.cards.get((queue, ctype)))

    def swipe(self, queue: str, ctype: str, rng: random.Random) -> str | None:
        """What a reader types for the card of a customer of ``ctype`` at ``queue``: an
        ID number, or a bank card's magnetic-stripe track 2 or IC card number; None if the
        branch has no such card."""
        cards = self.cards.get((queue, ctype))
        if not cards:
            return None
        card = rng.choice(cards)
        number = card.make(rng)
        if card.is_id or rng.random() < 0.5:
            return number
        return format_track2(number, "2812", "101")


def _fixed(number: str) -> Maker:
    return lambda rng: number


def _card_for(config: Config, ct: CardType, taken: set[str], probe: random.Random
              ) -> _Card | None:
    """Numbers that the engine maps to ``ct``, or None if none can be made."""
    is_id = any(w in f"{ct.id} {ct.name}".lower() for w in _ID_WORDS)
    if is_id and len(ct.prefix) > 6:
        return None
    make = _id_number(ct.prefix) if is_id else _bank_card(ct.prefix)

    def maker(rng: random.Random) -> str:
        for _ in range(50):
            number = make(rng)
            if number not in taken and _card_type(config, number) is ct:
                return number
        raise SimError(f"card type {ct.id}: cannot make a number that maps to it")

    try:
        maker(probe)
    except SimError:
        return None  # longer prefixes shadow it everywhere: nobody holds such a card
    return _Card(is_id, maker)


def _bank_card(prefix: str) -> Maker:
    head = prefix or "6"  # a catch-all type: any bank card number
    length = max(16, len(head) + 2)

    def make(rng: random.Random) -> str:
        body = head + "".join(str(rng.randrange(10)) for _ in range(length - 1 - len(head)))
        return body + luhn_check_digit(body)

    return make


def _id_number(prefix: str) -> Maker:
    def make(rng: random.Random) -> str:
        region = prefix + "".join(str(rng.randrange(1, 10)) for _ in range(6 - len(prefix)))
        born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(20000))
        first17 = f"{region}{born:%Y%m%d}{rng.randrange(1000):03d}"
        return first17 + id_check_char(first17)

    return make


# --- windows ----------------------------------------------------------------------------


def pick_windows(config: Config, demand: Mapping[str, float], n: int) -> list[int]:
    """The ``n`` windows that serve the most of ``demand`` (queue → expected customers):
    first the demand covered by at least one window, then the demand weighted by how many
    windows serve it; ties go to the lowest window numbers."""
    windows = sorted(config.windows, key=lambda w: w.number)
    n = min(n, len(windows))

    def score(chosen: Sequence[int]) -> tuple[float, float]:
        serving = [set(w.queues) for w in windows if w.number in chosen]
        covered = sum(d for q, d in demand.items() if any(q in s for s in serving))
        depth = sum(d * sum(q in s for s in serving) for q, d in demand.items())
        return round(covered, 9), round(depth, 9)

    numbers = [w.number for w in windows]
    if math.comb(len(numbers), n) <= _COMBINATIONS_MAX:
        best = max(itertools.combinations(numbers, n), key=score)  # first max: lowest numbers
        return list(best)
    chosen: list[int] = []
    for _ in range(n):
        nxt = max((w for w in numbers if w not in chosen), key=lambda w: score([*chosen, w]))
        chosen.append(nxt)
    return sorted(chosen)
