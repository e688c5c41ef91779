"""The staff views (controller/web/staff.py): what a teller's soft caller shows of their
own day and of the numbers waiting for their window (issue 17, "Screens that help")."""

from __future__ import annotations

from common.clock import ManualClock
from controller.box import Box
from controller.engine import IssueTicket, Login
from controller.engine.commands import CallNext, Finish, InsertFront, Rate
from controller.web.staff import HISTORY_S, WAITING_SHOWN, lobby_alerts, window_panel


async def test_the_panel_shows_the_tellers_own_day(box: Box, clock: ManualClock) -> None:
    await box.execute(Login(1, "t1", "1234"))
    await box.execute(Login(2, "t2", "1234"))
    for seconds, score in ((120, 5), (240, None)):  # t1 serves two: 2 and 4 minutes
        await box.execute(IssueTicket(queue="A"))
        await box.execute(CallNext(1))
        clock.advance(seconds)
        await box.execute(Finish(1))
        if score is not None:
            await box.execute(Rate(1, score))
    await box.execute(IssueTicket(queue="A"))
    await box.execute(CallNext(2))  # t2's customer: not t1's figure
    clock.advance(60)
    await box.execute(Finish(2))
    state, cfg = box.engine.state, box.config
    mine = window_panel(state, cfg, 1, clock.now())["today"]
    assert mine == {"served": 2, "avg_handle_s": 180, "ratings": 1, "avg_rating": 5.0}
    theirs = window_panel(state, cfg, 2, clock.now())["today"]
    assert theirs == {"served": 1, "avg_handle_s": 60, "ratings": 0, "avg_rating": None}
    assert window_panel(state, cfg, 3, clock.now())["today"] is None  # nobody logged in


async def test_the_panel_lists_the_numbers_waiting_for_the_window(
        box: Box, clock: ManualClock) -> None:
    await box.execute(Login(4, "t3", "1234"))  # window 4 serves business B only
    for q in "ABAB":
        await box.execute(IssueTicket(queue=q))
    await box.execute(InsertFront("B002"))
    panel = window_panel(box.engine.state, box.config, 4, clock.now())
    assert panel["waiting_numbers"] == ["B002", "B001"]  # put in front first, no A
    for _ in range(WAITING_SHOWN + 5):
        await box.execute(IssueTicket(queue="B"))
    panel = window_panel(box.engine.state, box.config, 4, clock.now())
    assert len(panel["waiting_numbers"]) == WAITING_SHOWN  # bounded, however long the queue
    assert panel["waiting"] == WAITING_SHOWN + 7


async def test_the_lobby_alerts_hold_the_last_hour_and_whether_over_now(
        box: Box, clock: ManualClock) -> None:
    cfg = box.config
    limit = cfg.thresholds.lobby_alert_waiting
    await box.execute(Login(5, "t1", "1234"))
    await box.execute(IssueTicket(queue="V"))
    await box.execute(CallNext(5))
    await box.execute(Finish(5))
    await box.execute(Rate(5, 1))  # a bad rating at 10:00
    clock.advance(HISTORY_S - 60)
    for _ in range(limit + 1):  # over the threshold at 10:59
        await box.execute(IssueTicket(queue="A"))
    centre = {"kind": "waiting", "level": "warning", "message": "中心:等待过多",
              "message_en": "Centre: too many waiting", "at": clock.now()}
    old = {**centre, "message": "昨天的提醒", "at": clock.now() - 2 * HISTORY_S}
    shown = lobby_alerts(box.engine.state, cfg, [old, centre], clock.now())
    assert shown["over_threshold"] and shown["threshold"] == limit
    assert [(h["kind"], h["time"]) for h in shown["history"]] == [
        ("lobby_alert", "10:59"), ("waiting", "10:59"), ("bad_rating", "10:00")]
    assert "V001" in shown["history"][2]["message"]
    clock.advance(120)  # an hour after the rating: it is no longer shown
    later = lobby_alerts(box.engine.state, cfg, [], clock.now())
    assert [h["kind"] for h in later["history"]] == ["lobby_alert"]
