"""A branch's live figures folded from its events, checked against a small day by hand.

The events come from the real engine (the example branch): what the centre folds is
exactly what a box sends.
"""

from __future__ import annotations

from typing import Any

from central.figures import SLOT_S, BranchDay, utc_offset
from controller.config import Config
from controller.engine import Engine
from controller.engine import commands as c

from .conftest import at

VIP_CARD = "6225880137001237"  # 陈先生, vip-0001, five stars (examples/branch.toml)


def a_morning(config: Config) -> list[dict[str, Any]]:
    """10:00 A001, 10:01 A002, 10:02 a VIP's card (V001), 10:04 window 1 calls A001,
    10:05 window 5 calls V001, 10:10 window 1 finishes A001 and calls A002, 10:14 A003,
    10:20 window 1 finishes A002."""
    engine = Engine(config)
    steps: list[tuple[float, c.Command]] = [
        (at(10, 0), c.IssueTicket(queue="A")), (at(10, 1), c.IssueTicket(queue="A")),
        (at(10, 2), c.IssueTicket(card=VIP_CARD, channel="card")),
        (at(10, 3), c.Login(1, "t1", "1234")), (at(10, 3), c.Login(5, "t2", "1234")),
        (at(10, 4), c.CallNext(1)), (at(10, 5), c.CallNext(5)), (at(10, 10), c.CallNext(1)),
        (at(10, 14), c.IssueTicket(queue="A")), (at(10, 20), c.Finish(1)),
    ]
    events: list[dict[str, Any]] = []
    for now, cmd in steps:
        events += engine.handle(cmd, now)
    return events


def test_counts_waits_and_distribution_of_a_hand_checked_morning(config: Config) -> None:
    day = BranchDay()
    for e in a_morning(config):
        day.fold(e)
    n = day.counts()
    assert (n["day"], n["issued"], n["waiting"], n["serving"], n["served"]) == (
        "2026-11-25", 4, 1, 1, 2)
    # waits: A001 4 min, V001 3 min, A002 9 min
    assert n["called"] == 3 and n["wait_sum_s"] == 960.0 and n["max_called_wait_s"] == 540.0
    assert n["wait_hist"] == {"le2": 0, "2to5": 2, "5to10": 1, "gt10": 0}
    assert n["oldest_waiting_at"] == at(10, 14)  # A003
    assert day.hourly[10] == 4 and sum(day.hourly) == 4


def test_waiting_over_the_day_is_the_count_at_each_slots_end(config: Config) -> None:
    day = BranchDay()
    for e in a_morning(config):
        day.fold(e)
    series = day.waiting_series(until=at(10, 25))
    ten = 10 * 3600 // SLOT_S
    assert series[ten - 1] is None  # nothing before the first ticket
    assert series[ten] == 1  # 10:00–10:15 ends with A003 waiting
    assert series[ten + 1] == 1  # 10:15–10:30: no change, carried
    assert series[ten + 2] is None  # after "now"


def test_vip_customers_waiting_or_served_have_their_names_masked(config: Config) -> None:
    day = BranchDay()
    for e in a_morning(config):
        day.fold(e)
    (vip,) = day.vips({"V": "VIP业务"})
    assert vip["number"] == "V001" and vip["state"] == "called" and vip["window"] == 5
    assert vip["stars"] == 5 and vip["queue_name"] == "VIP业务"
    assert vip["name"] == "陈先生"  # a surname and an honorific: nothing to hide
    assert VIP_CARD not in repr(day.vips({}))


def test_a_new_day_starts_from_zero(config: Config) -> None:
    day = BranchDay()
    for e in a_morning(config):
        day.fold(e)
    engine = Engine(config)
    for e in engine.handle(c.IssueTicket(queue="B"), at(9, 0, day=26)):
        day.fold(e)
    n = day.counts()
    assert (n["day"], n["issued"], n["waiting"], n["called"]) == ("2026-11-26", 1, 1, 0)
    assert day.hourly[9] == 1 and day.hourly[10] == 0


def test_the_utc_offset_comes_from_the_boxs_own_clock_text() -> None:
    assert utc_offset("2026-11-25T10:00:00+08:00") == 8 * 3600
    assert utc_offset("2026-11-25T10:00:00-05:00") == -5 * 3600
    assert utc_offset(None) == 8 * 3600 and utc_offset("garbage") == 8 * 3600
