"""The centre's measures from engine events, checked on a day driven by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from common.passwords import hash_password
from controller.engine import CallNext, Engine, Finish, IssueTicket, Login, Tick
from queueing.measures import Period, day_measures, utilisation
from tests.conftest import at, example_config

CST = dt.timezone(dt.timedelta(hours=8))


def hand_day() -> list[dict[str, object]]:
    """Window 1 opens at 9:00. A001 at 9:00 (called 9:00), A002 at 9:02 (called 9:10),
    A003 at 9:05 (called 9:30, 25 min later), A004 at 9:40 never called."""
    cfg = example_config()
    cfg = cfg.model_copy(update={"tellers": [cfg.tellers[0].model_copy(
        update={"password_hash": hash_password("pw", n=2)})]})
    e = Engine(cfg)
    out: list[dict[str, object]] = []
    for cmd, when in [
        (Login(1, "t1", "pw"), at(9)), (IssueTicket("A"), at(9)), (CallNext(1), at(9)),
        (IssueTicket("A"), at(9, 2)), (IssueTicket("A"), at(9, 5)), (CallNext(1), at(9, 10)),
        (CallNext(1), at(9, 30)), (Finish(1), at(9, 40)), (IssueTicket("A"), at(9, 40)),
        (Tick(), at(0, 0, 26)),
    ]:
        out += e.handle(cmd, when)
    return out


def test_waits_target_share_and_bands() -> None:
    m = day_measures(hand_day(), Period(at(0), at(0, 0, 26), CST), target_s=900)
    w = m["wait"]
    assert (w["called"], w["never_called"]) == (3, 1)
    assert w["mean_wait_s"] == pytest.approx((0 + 480 + 1500) / 3, abs=0.1)
    assert w["max_wait_s"] == 1500
    assert w["within_target"] == 0.5  # 2 of 4 tickets called within 15 min
    assert w["bands"] == {"<2": 1, "2-5": 0, "5-10": 1, ">10": 1}
    assert w["over_min"] == {"15": 1, "30": 0, "60": 0}
    assert m["by_queue"]["A"]["called"] == 3
    assert m["not_served"] == 1 and m["served"] == 3


def test_window_utilisation_is_busy_over_logged_in() -> None:
    # measured 9:00-10:00: logged in all hour, busy 9:00-9:40 (three services back to back)
    m = day_measures(hand_day(), Period(at(9), at(10), CST), target_s=900)
    assert m["windows"]["1"]["open_s"] == 3600
    assert m["windows"]["1"]["busy_s"] == 2400
    assert utilisation(m["windows"]) == pytest.approx(2 / 3)


def test_queue_length_over_the_day() -> None:
    m = day_measures(hand_day(), Period(at(9), at(10), CST), target_s=900, every_s=300)
    ql = m["queue_length"]
    # samples at 9:00, 9:05, … : A001 called at once; A002 waits from 9:02, A003 from 9:05
    assert ql["total"][:8] == [0, 2, 1, 1, 1, 1, 0, 0]
    # time-average in hour 09: 1 ticket 9:02-9:05, 2 to 9:10, 1 to 9:30, 1 from 9:40
    assert ql["hourly_mean"]["09"] == pytest.approx((3 + 10 + 20 + 20) / 60, abs=1e-3)
