"""Taking tickets (SPEC A1–A3, A5, A7, A8): numbers, cards, refusals, the lobby alert."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from controller.config import Config
from controller.engine import Engine, IssueTicket, PauseQueue, ResumeQueue, SignOut
from controller.errors import Refused
from tests.branches import T0, branch, engine
from tests.conftest import at


def issue(e: Engine, now: float = T0, **kw: object) -> dict:
    events = e.handle(IssueTicket(**kw), now)  # type: ignore[arg-type]
    return next(ev for ev in events if ev["type"] == "ticket_issued")


def refusal(e: Engine, now: float = T0, **kw: object) -> Refused:
    with pytest.raises(Refused) as info:
        e.handle(IssueTicket(**kw), now)  # type: ignore[arg-type]
    return info.value


# --- numbering (A1, A2) --------------------------------------------------------------------


def test_numbers_are_prefix_and_zero_padded_counter_per_queue() -> None:
    e = engine()
    got = [issue(e, queue=q)["number"] for q in "AABAB"]
    assert got == ["A001", "A002", "B001", "A003", "B002"]


def test_special_range_has_its_own_prefix_length_and_notice(config: Config) -> None:
    e = Engine(config)
    first = issue(e, at(10), queue="T")
    assert first["number"] == "T0001"
    assert config.queue("T").notice == "该叫号纸只能办理挂失改密业务"  # type: ignore[union-attr]


def test_a_range_that_is_used_up_is_refused_not_wrapped() -> None:
    e = engine(branch(queues=[{"id": "A", "name": "个人", "prefix": "A", "digits": 1}],
                      windows=[{"number": 1, "queues": {"A": 1}}]))
    assert [issue(e, queue="A")["number"] for _ in range(9)][-1] == "A9"
    assert refusal(e, queue="A").code == "range_exhausted"


def test_first_number_of_a_range_can_be_configured() -> None:
    e = engine(branch(queues=[{"id": "A", "name": "个人", "prefix": "A", "first": 100}],
                      windows=[{"number": 1, "queues": {"A": 1}}]))
    assert issue(e, queue="A")["number"] == "A100"


# --- cards (A5) ----------------------------------------------------------------------------


def test_vip_card_gets_the_vip_queue_priority_and_stars(config: Config) -> None:
    t = issue(Engine(config), at(10), card="6225880137001237")
    assert (t["queue"], t["customer_type"], t["stars"], t["vip_name"]) == ("V", "vip", 5, "陈先生")


def test_vip_id_card_is_recognised_too(config: Config) -> None:
    t = issue(Engine(config), at(10), card="410105198001012311")
    assert t["vip"] == "vip-0001"


def test_card_type_maps_to_its_queue_by_longest_prefix(config: Config) -> None:
    e = Engine(config)
    assert issue(e, at(10), card="6226600000000002")["queue"] == "B"  # 单位结算卡
    assert issue(e, at(10), card="6228480000000007")["queue"] == "A"  # any other 62… debit


def test_card_numbers_never_leave_the_engine_readable(config: Config) -> None:
    t = issue(Engine(config), at(10), card="6225880137001237")
    assert t["card"] == "6225********1237"
    assert "6225880137001237" not in repr(t)


def test_unknown_and_malformed_cards_are_refused(config: Config) -> None:
    e = Engine(config)
    assert refusal(e, at(10), card="9999000011112228").code == "unknown_card"
    assert refusal(e, at(10), card="62-25").code == "invalid_card"


def test_a_card_or_id_number_with_a_wrong_check_digit_is_refused_however_it_came(
        config: Config) -> None:
    """A mistyped number at the kiosk page, the API or a reader: never a ticket."""
    e = Engine(config)
    assert refusal(e, at(10), card="6225880137001238").code == "invalid_card"  # Luhn
    assert refusal(e, at(10), card="410105198001012312").code == "invalid_card"  # GB 11643
    assert issue(e, at(10), card="6225880137001237")["queue"] == "V"  # the right digit


# --- refusals (A7) -------------------------------------------------------------------------


def test_paused_business_is_refused_with_the_reason_in_the_seed_words() -> None:
    e = engine()
    e.handle(PauseQueue("A", "系统升级"), T0)
    r = refusal(e, queue="A")
    assert r.code == "queue_paused"
    assert r.message == (
        "友情提示:对不起,你选择的业务因系统升级原因暂时不能办理,如有疑问请咨询大堂经理。"
    )
    assert "temporarily unavailable" in r.message_en
    e.handle(ResumeQueue("A"), T0)
    assert issue(e, queue="A")["number"] == "A001"


def test_outside_business_hours_is_refused_with_the_hours(config: Config) -> None:
    r = refusal(Engine(config), at(7, 59), queue="A")
    assert r.code == "outside_hours"
    assert "08:30-17:00" in r.message


@pytest.mark.parametrize("day", [29, 28, 30])  # the clocks go forward on the 29th, 02:00
def test_opening_hours_are_wall_clock_minutes_even_when_the_clocks_change(day: int) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    cfg = branch(branch={"code": "1001010001", "name": "测试支行",
                         "timezone": "Europe/Berlin"},
                 hours={"workday": ["08:30-17:00"], "weekend": ["09:00-16:00"],
                        "holiday": []})

    def local(h: int, m: int, s: float = 0.0) -> float:
        return dt.datetime(2026, 3, day, h, m, tzinfo=berlin).timestamp() + s

    opens, closes = ("08:30", "17:00") if day == 30 else ("09:00", "16:00")
    (oh, om), (ch, cm) = (map(int, opens.split(":")), map(int, closes.split(":")))
    e = Engine(cfg)
    assert refusal(e, local(oh, om) - 0.5, queue="A").code == "outside_hours"
    assert issue(e, local(oh, om), queue="A")["number"] == "A001"
    assert issue(e, local(ch, cm) - 0.5, queue="A")["number"] == "A002"
    assert refusal(e, local(ch, cm), queue="A").code == "outside_hours"


def test_a_business_not_offered_on_weekends(config: Config) -> None:
    saturday = at(10, day=28)
    e = Engine(config)
    assert refusal(e, saturday, queue="F").code == "not_offered_today"
    assert issue(e, saturday, queue="A")["number"] == "A001"  # the branch itself is open


def test_holidays_close_the_branch_and_make_up_workdays_open_it(config: Config) -> None:
    assert refusal(Engine(config), at(10, day=1, month=10), queue="A").code == "outside_hours"
    # Saturday 2026-10-10 is a make-up working day (调休): 外汇 is offered.
    assert issue(Engine(config), at(10, day=10, month=10), queue="F")["number"] == "F001"


def test_queue_hours_override_the_branch_hours(config: Config) -> None:
    e = Engine(config)
    assert refusal(e, at(16, 30), queue="F").code == "outside_hours"  # 外汇 09:00-16:00
    assert issue(e, at(16, 30), queue="A")["number"] == "A001"


def test_daily_limit_reached() -> None:
    e = engine(branch(queues=[{"id": "A", "name": "个人", "prefix": "A", "daily_limit": 2}],
                      windows=[{"number": 1, "queues": {"A": 1}}]))
    issue(e, queue="A")
    issue(e, queue="A")
    r = refusal(e, queue="A")
    assert (r.code, "限2个" in r.message) == ("daily_limit_reached", True)


def test_zero_daily_limit_means_no_limit() -> None:
    e = engine()
    assert [issue(e, queue="A")["n"] for _ in range(50)][-1] == 50


def test_branch_waiting_cap() -> None:
    e = engine(branch(thresholds={"branch_waiting_cap": 3}))
    for q in "ABA":
        issue(e, queue=q)
    assert refusal(e, queue="B").code == "branch_full"


def test_signed_out_kiosk_issues_nothing() -> None:
    e = engine()
    e.handle(SignOut(), T0)
    assert refusal(e, queue="A").code == "kiosk_signed_out"


def test_unknown_queue_and_menu_ids_are_refused(config: Config) -> None:
    e = Engine(config)
    assert refusal(e, at(10), queue="Z").code == "unknown_queue"
    assert refusal(e, at(10), queue="more").code == "queue_is_menu"


def test_a_refusal_changes_nothing() -> None:
    e = engine(branch(thresholds={"branch_waiting_cap": 1}))
    issue(e, queue="A")
    before = e.state.to_dict()
    refusal(e, queue="A")
    assert e.state.to_dict() == before


# --- lobby alert (A8) ----------------------------------------------------------------------


def test_lobby_alert_once_per_crossing() -> None:
    e = engine(branch(thresholds={"lobby_alert_waiting": 2, "lobby_alert_clear": 2,
                                  "lobby_alert_repeat_min": 0}), logged_in=(1,))  # no hysteresis
    alerts = []
    for _ in range(5):
        alerts += [ev for ev in e.handle(IssueTicket(queue="A"), T0) if ev["type"] == "lobby_alert"]
    assert [(a["waiting"], a["threshold"]) for a in alerts] == [(3, 2)]
    from controller.engine import CallNext

    for _ in range(3):  # back down to 2 waiting: re-armed
        e.handle(CallNext(1), T0)
    again = [ev for ev in e.handle(IssueTicket(queue="A"), T0) if ev["type"] == "lobby_alert"]
    assert len(again) == 1
