"""Who comes to a simulated branch: cards that the engine maps where the deck says,
the windows a few tellers staff, the VIP share, the day's customers at a speed."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from controller.config import Config
from controller.engine import Engine, IssueTicket
from controller.errors import Refused
from protocols.cards import parse_swipe
from queueing import Stream, default_scenario
from sim.live.people import CardDeck, DayPlan, customer_type, pick_windows, with_vip_share
from tests.branches import T0
from tests.conftest import example_config

DAY = dt.date(2026, 11, 25)


def test_every_card_in_the_deck_takes_its_holder_where_the_deck_says(config: Config) -> None:
    deck = CardDeck(config)
    rng = random.Random(7)
    engine = Engine(config)
    assert set(deck.cards) >= {("V", "vip"), ("B", "corporate"), ("A", "normal")}
    kinds = set()
    for (queue, ctype), _ in deck.cards.items():
        for _ in range(25):
            line = deck.swipe(queue, ctype, rng)
            assert line is not None
            read = parse_swipe(line)  # what the kiosk's reader makes of it: checksums hold
            kinds.add(read.kind)
            events = engine.handle(IssueTicket(card=read.number, channel="card"), T0)
            issued = next(e for e in events if e["type"] == "ticket_issued")
            assert (issued["queue"], issued["customer_type"]) == (queue, ctype), line
    assert kinds == {"magstripe", "ic", "id_card"}


def test_the_vips_own_cards_are_in_the_deck(config: Config) -> None:
    deck = CardDeck(config)
    rng = random.Random(1)
    seen = {deck.swipe("V", "vip", rng) for _ in range(200)}
    numbers = {parse_swipe(line).number for line in seen if line}
    assert {"6225880137001237", "6217000010001234569"} <= numbers
    assert any(n.startswith("622588") and n != "6225880137001237" for n in numbers)  # gold


def test_no_card_for_a_business_no_card_holder_has(config: Config) -> None:
    deck = CardDeck(config)
    assert deck.swipe("F", "normal", random.Random(1)) is None
    assert not deck.has("T", "normal")


def test_a_card_type_shadowed_by_longer_prefixes_gives_no_cards() -> None:
    cfg = example_config('card_types=[{id="a",name="a",prefix="6",queue="A"},'
                         '{id="b",name="b",prefix="6",queue="B"}]')
    deck = CardDeck(cfg)
    assert deck.has("A", "normal") and not deck.has("B", "normal")


def test_three_tellers_staff_the_windows_covering_every_business(config: Config) -> None:
    demand = {s.queue: s.expected for s in default_scenario(config, DAY).arrivals}
    assert pick_windows(config, demand, 3) == [3, 5, 6]  # A, B, V, F, T all served
    assert pick_windows(config, {"A": 1.0}, 1) == [1]
    assert pick_windows(config, demand, 9) == [1, 2, 3, 4, 5, 6]


def test_the_vip_share_moves_customers_without_changing_how_many(config: Config) -> None:
    sc = default_scenario(config, DAY)
    total = sum(s.expected for s in sc.arrivals)
    out = with_vip_share(config, sc, 0.3)
    vip = sum(s.expected for s in out.arrivals
              if customer_type(config, s.queue, s.customer_type) == "vip")
    assert sum(s.expected for s in out.arrivals) == pytest.approx(total)
    assert vip == pytest.approx(0.3 * total)


def test_a_vip_share_without_vip_customers_adds_them_at_the_vip_business(config: Config) -> None:
    sc = default_scenario(config, DAY)
    plain = sc.__class__(sc.date, (Stream("A", None, sc.arrivals[0].per_hour),), sc.service,
                         sc.staffing)
    out = with_vip_share(config, plain, 0.25)
    assert [s.queue for s in out.arrivals] == ["A", "V"]
    assert out.arrivals[1].expected == pytest.approx(0.25 * plain.arrivals[0].expected)


def test_at_speed_n_n_times_as_many_customers_come(config: Config) -> None:
    def expected(plan: DayPlan) -> float:
        return sum(s.expected for s in plan.scenario_for(DAY).arrivals)

    base = expected(DayPlan(config, seed=3))
    assert expected(DayPlan(config, seed=3, staffed=0.5)) == pytest.approx(base / 2)
    fast = DayPlan(config, seed=3, speed=10).customers(DAY)[1]
    assert abs(len(fast) - 10 * base) < 4 * (10 * base) ** 0.5  # Poisson, 4 sigma
    assert [c.at for c in fast] == sorted(c.at for c in fast)


def test_a_card_refused_by_the_engine_is_not_in_the_deck(config: Config) -> None:
    """Sanity of the premise: a number no card type matches is refused by the engine."""
    cfg = example_config("card_types=[]", "vip_customers=[]")
    assert CardDeck(cfg).cards == {}
    with pytest.raises(Refused):
        Engine(cfg).handle(IssueTicket(card="6225880137001237", channel="card"), T0)
