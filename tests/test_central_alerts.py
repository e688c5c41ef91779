"""Alert rules, thresholds inherited down the org tree, de-duplication, rate limits,
delivery (lobby push, SMS), acknowledgement and the API — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from central.alerts import (
    DEFAULTS,
    effective_thresholds,
    load_thresholds,
    set_thresholds,
)
from central.config import load_centre_config
from central.orgs import add_org
from central.reports.scope import EVERYWHERE
from central.service import Centre
from central.store import Inbound, Store
from protocols.uplink import day_totals
from tests.alerts_support import T0, Desk, alerts, live, store
from tests.office_support import ADMIN_SEED, CENTRE_TOML, add_user, admin_client
from tests.reports_support import (
    B1,
    B2,
    B3,
    B4,
    TZ,
    DayLog,
    at,
    hand_day,
    ingest_all,
)
from tests.scope_support import Caller, head_office_client
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401

__all__ = ["store"]  # fixtures

PHONE, PHONE2 = "13812345678", "13900001111"
SEED_A8 = "请注意,目前网点排队等待人数已经超过30个。"  # the seed's words (A8)
PUSH_A8 = ["waiting_over", "long_wait"]  # the centre's A8 pop-up too (the box has its own)


@pytest.fixture
async def desk(store_url: str) -> AsyncIterator[Desk]:
    d = Desk(store_url, T0)
    yield d
    await d.desk.close()


# --- thresholds ----------------------------------------------------------------------------


def test_thresholds_inherit_key_by_key_down_the_tree(store: Store) -> None:
    set_thresholds(store, "", {"waiting_over": 30, "sms_to": [PHONE]}, "admin")
    set_thresholds(store, "1001", {"waiting_over": 10, "wait_over_min": 15}, "admin")
    set_thresholds(store, "100101", {"waiting_over": 50, "sms_to": [PHONE2]}, "admin")
    nodes = load_thresholds(store)
    b1 = effective_thresholds(nodes, B1)  # 1001010001: under 100101
    assert (b1["waiting_over"], b1["wait_over_min"], b1["sms_to"]) == (50, 15, [PHONE2])
    b4 = effective_thresholds(nodes, B4)  # 1001020001: under 1001 only
    assert (b4["waiting_over"], b4["wait_over_min"], b4["sms_to"]) == (10, 15, [PHONE])
    b3 = effective_thresholds(nodes, B3)  # 1002…: the province's
    assert (b3["waiting_over"], b3["wait_over_min"]) == (30, DEFAULTS["wait_over_min"])
    assert effective_thresholds({}, B1) == DEFAULTS


async def test_the_most_specific_threshold_decides_who_alerts(store: Store, desk: Desk
                                                              ) -> None:
    set_thresholds(store, "1001", {"waiting_over": 10}, "admin")
    set_thresholds(store, "100101", {"waiting_over": 50}, "admin")
    for b in (B1, B3, B4):
        live(store, b, T0, waiting=20)
    await desk.round()
    assert [a["branch"] for a in alerts(store, "waiting_over")] == [B4]


# --- the rules -----------------------------------------------------------------------------


async def test_waiting_over_threshold_once_until_back_below_the_clear_mark(
        store: Store, desk: Desk) -> None:
    live(store, B1, T0, waiting=31)
    await desk.round()
    await desk.round(T0 + 5)
    [a] = alerts(store)
    assert a["kind"] == "waiting_over" and a["message"] == SEED_A8
    assert a["repeats"] == 1 and a["resolved_at"] is None and a["detail"]["waiting"] == 31
    for i, n in enumerate((30, 31, 28, 31, 25)):  # hovering at the threshold: one alert
        live(store, B1, T0 + 6, waiting=n)
        await desk.round(T0 + 7 + i / 10)
    assert len(alerts(store)) == 1 and alerts(store)[0]["resolved_at"] is None
    live(store, B1, T0 + 6, waiting=24)  # 80 % of 30: cleared, once unseen clear_after_s
    await desk.round(T0 + 10)
    assert alerts(store)[0]["resolved_at"] is None  # last seen at T0 + 7.4: held
    await desk.round(T0 + 68)
    assert alerts(store)[0]["resolved_at"] == T0 + 68
    live(store, B1, T0 + 69, waiting=40)
    await desk.round(T0 + 70)
    assert [(x["kind"], x["resolved_at"]) for x in alerts(store)] == [
        ("waiting_over", T0 + 68), ("waiting_over", None)]


async def test_a_customer_waiting_too_long_without_a_call(store: Store, desk: Desk) -> None:
    d = DayLog(B1)
    d.issue(0, "A001")
    d.issue(40, "A002")
    ingest_all(store, d)
    await desk.round(at("2026-11-25", 45))  # A001 has waited 45 min, A002 5 min
    [a] = alerts(store, "long_wait")
    assert a["detail"]["number"] == "A001"
    assert a["message"] == "请注意,A001号客户已等待超过30分钟,仍未叫号。"
    assert [args["kind"] for _, args in desk.publish.sent] == ["long_wait"]  # to the lobby
    sent = len(d.events)
    d.call(46, "A001", 1, "t1")
    store.ingest(Inbound(batches=[d.batch(d.events[sent:])]))
    await desk.round(at("2026-11-25", 47))
    assert alerts(store, "long_wait")[0]["resolved_at"] is not None
    assert len(alerts(store, "long_wait")) == 1


async def test_a_wait_is_judged_on_the_boxs_own_clock(store: Store, desk: Desk) -> None:
    # The demo's box runs at 10:45 while the centre's clock says 20:45: A002 has waited
    # the 5 minutes the box's clock says, not ten hours, and raises nothing.
    d = DayLog(B1)
    d.issue(0, "A001")
    d.issue(40, "A002")
    ingest_all(store, d)
    box_now, apart = at("2026-11-25", 45), 10 * 3600.0
    store.save_live({B1: {"online": True}},
                    {B1: {"at": box_now, "status": {"waiting_total": 2}}}, {}, box_now + apart)
    await desk.round(box_now + apart)
    assert [a["detail"]["number"] for a in alerts(store, "long_wait")] == ["A001"]


async def test_a_bad_rating_raises_one_alert(store: Store, desk: Desk) -> None:
    ingest_all(store, hand_day())
    await desk.round()
    await desk.round(T0 + 5)
    [a] = alerts(store, "bad_rating")
    assert a["branch"] == B1 and a["detail"]["number"] == "A002"
    assert "A002 号客户评价为“不满意”" in a["message"] and "柜员t2" in a["message"]
    assert store.execute("SELECT count(*) FROM alert_inbox").fetchone()[0] == 0


async def test_no_bad_rating_alert_where_the_node_turned_it_off(store: Store, desk: Desk
                                                                ) -> None:
    set_thresholds(store, "100101", {"bad_rating": False}, "admin")
    ingest_all(store, hand_day())
    await desk.round()
    assert alerts(store, "bad_rating") == []


async def test_a_device_fault_until_the_device_is_back(store: Store, desk: Desk) -> None:
    printer = {"name": "printer", "state": "fault", "detail": "缺纸 paper out"}
    live(store, B1, T0, devices=[printer, {"name": "keypad-1", "state": "ok"}])
    await desk.round()
    await desk.round(T0 + 5)
    [a] = alerts(store, "device_fault")
    assert a["detail"]["device"] == "printer" and "缺纸" in a["message"]
    live(store, B1, T0 + 6, devices=[{**printer, "state": "ok", "detail": ""}])
    await desk.round(T0 + 10)
    assert alerts(store, "device_fault")[0]["resolved_at"] is None  # held clear_after_s
    await desk.round(T0 + 65)
    assert alerts(store, "device_fault")[0]["resolved_at"] == T0 + 65


async def test_a_branch_offline_past_the_grace(store: Store, desk: Desk) -> None:
    live(store, B1, T0, online=False)
    await desk.round(T0 + 60)
    assert alerts(store, "offline") == []
    await desk.round(T0 + 130)
    [a] = alerts(store, "offline")
    assert a["level"] == "critical" and "已离线(自11-25 09:30起)" in a["message"]
    live(store, B1, T0 + 200, online=True)
    await desk.round(T0 + 205)
    assert alerts(store, "offline")[0]["resolved_at"] == T0 + 205


async def test_yesterdays_missing_and_disagreeing_data(store: Store, desk: Desk) -> None:
    good = hand_day()
    ingest_all(store, good, now=0.0)
    store.ingest(Inbound(totals=[{"branch": B1, "epoch": "e1", "day": "2026-11-25",
                                  **day_totals(good.events)}]), 0.0)
    partial = DayLog(B3)
    partial.issue(0, "A001")
    ingest_all(store, partial, now=0.0)  # events, no totals
    store.save_live({B2: {"online": True}}, {}, {}, 0.0)  # known, silent
    morning = dt.datetime(2026, 11, 26, 9, 0, tzinfo=TZ).timestamp()
    await desk.round(morning)
    assert alerts(store, "no_data") == []  # before daily_check_at (10:00)
    await desk.round(morning + 3900)
    assert [(a["branch"], a["detail"]["day"]) for a in alerts(store, "no_data")] == \
        [(B2, "2026-11-25")]
    [m] = alerts(store, "totals_mismatch")
    assert m["branch"] == B3 and "未上传数据总量" in m["message"]
    await desk.round(morning + 4300)  # again 5 minutes later: no new alerts
    assert len(alerts(store, "no_data") + alerts(store, "totals_mismatch")) == 2


async def test_a_tree_branch_that_never_connected_raises_no_data(store: Store, desk: Desk
                                                                  ) -> None:
    morning = dt.datetime(2026, 11, 26, 9, 0, tzinfo=TZ).timestamp()
    add_org(store, "1001", "河南省分行", "head", now=T0 - 30 * 86400)
    add_org(store, B2, "郑州花园路支行", "branch", now=T0 - 30 * 86400)  # its box: never
    add_org(store, "1001010009", "郑州新开支行", "branch", now=morning - 3600)  # added 08:00
    await desk.round(morning + 3900)
    [a] = alerts(store, "no_data")
    assert (a["branch"], a["detail"]["day"]) == (B2, "2026-11-25")
    await desk.round(morning + 86400 + 3900)  # the day it was added is not judged
    await desk.round(morning + 2 * 86400 + 3900)  # the day after is
    assert [(a["branch"], a["detail"]["day"]) for a in alerts(store, "no_data")] == [
        (B2, "2026-11-25"), (B2, "2026-11-26"), (B2, "2026-11-27"), ("1001010009", "2026-11-27")]


# --- de-duplication and rate limits ----------------------------------------------------------


async def test_alerts_beyond_the_hourly_limit_are_kept_but_not_sent(store: Store, desk: Desk
                                                                    ) -> None:
    set_thresholds(store, "", {"max_per_hour": 2, "push_kinds": ["device_fault"],
                               "sms_to": [PHONE]}, "admin")
    live(store, B1, T0, devices=[{"name": f"keypad-{i}", "state": "fault"} for i in (1, 2, 3)])
    await desk.round()
    rows = alerts(store, "device_fault")
    assert [(a["push"], a["sms"]) for a in rows] == [("sent", "queued"), ("sent", "queued"),
                                                     ("limited", "limited")]
    assert len(desk.publish.sent) == 2 and len(desk.sms.sent) == 2


async def test_sms_to_one_phone_are_limited_per_hour(store: Store, desk: Desk) -> None:
    set_thresholds(store, "", {"sms_per_hour": 1, "sms_to": [PHONE]}, "admin")
    live(store, B1, T0, waiting=50, devices=[{"name": "printer", "state": "fault"}])
    await desk.round()
    states = sorted(m["state"] for a in alerts(store) for m in a["sms_messages"])
    assert states == ["limited", "sent"] and len(desk.sms.sent) == 1


# --- delivery ------------------------------------------------------------------------------


async def test_lobby_push_and_sms_carry_the_seed_words(store: Store, desk: Desk,
                                                       caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    set_thresholds(store, "1001", {"sms_to": [PHONE, PHONE2], "push_kinds": PUSH_A8}, "admin")
    live(store, B1, T0, waiting=35)
    with caplog.at_level(logging.INFO):
        await desk.round()
    [(branch, args)] = desk.publish.sent
    assert branch == B1 and args["kind"] == "waiting_over"
    assert args["message"] == SEED_A8
    assert [t for _, t in desk.sms.sent] == ["【测试01网点】" + SEED_A8] * 2
    assert [p for p, _ in desk.sms.sent] == ["138****5678", "139****1111"]
    assert PHONE not in caplog.text and PHONE2 not in caplog.text
    a = alerts(store)[0]
    assert a["push"] == "sent" and a["push_id"] == args["id"]
    assert [m["phone"] for m in a["sms_messages"]] == ["138****5678", "139****1111"]


async def test_a_push_waits_for_the_broker_link(store: Store, desk: Desk) -> None:
    desk.publish.down = True
    set_thresholds(store, "", {"push_kinds": PUSH_A8}, "admin")
    live(store, B1, T0, waiting=35)
    await desk.round()
    await desk.round(T0 + 5)
    a = alerts(store)[0]
    assert (a["push"], a["push_attempts"]) == ("pending", 0)  # not a try: no link yet
    desk.publish.down = False
    await desk.round(T0 + 10)
    assert alerts(store)[0]["push"] == "sent" and len(desk.publish.sent) == 1


async def test_a_push_that_fails_is_tried_again_then_given_up(store_url: str, store: Store
                                                              ) -> None:
    d = Desk(store_url, T0, "alerts.max_attempts=2")
    try:
        d.publish.refuse = True
        set_thresholds(store, "", {"push_kinds": PUSH_A8, "escalate_after_min": 0}, "admin")
        live(store, B1, T0, waiting=35)
        await d.round()
        a = alerts(store)[0]
        assert (a["push"], a["push_attempts"]) == ("pending", 1)
        await d.round(T0 + 10)  # not yet due (30 s)
        assert alerts(store)[0]["push_attempts"] == 1
        await d.round(T0 + 31)
        assert (alerts(store)[0]["push"], alerts(store)[0]["push_attempts"]) == ("failed", 2)
        d.publish.refuse = False
        await d.round(T0 + 3600)
        assert d.publish.sent == []
    finally:
        await d.desk.close()


async def test_two_desks_deliver_each_alert_once(store_url: str, store: Store) -> None:
    a, b = Desk(store_url, T0), Desk(store_url, T0)
    try:
        b.publish = a.publish
        b.desk.publish = a.publish
        set_thresholds(store, "", {"push_kinds": PUSH_A8}, "admin")
        live(store, B1, T0, waiting=35)
        await a.desk._db(a.desk.evaluate, T0)
        await b.desk._db(b.desk.evaluate, T0)  # the same alert: a repeat, not a new one
        await a.desk.deliver()
        await b.desk.deliver()
        assert len(a.publish.sent) == 1 and len(alerts(store)) == 1
    finally:
        await a.desk.close()
        await b.desk.close()


# --- the API -------------------------------------------------------------------------------


@pytest.fixture
async def api(store_url: str, store: Store) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    live(store, B1, T0, waiting=35)
    live(store, B3, T0, waiting=35)
    d = Desk(store_url, T0)
    await d.round()
    await d.desk.close()
    centre = Centre(load_centre_config(None, [f"store.url={store_url}"]))
    # These branches span two provinces (1001, 1002): see them all, as a centre-wide
    # caller would. The alert API on its own (no back-office user): the body names who
    # acknowledges; the back office's user is tested below and in test_central_scopes.py.
    caller = Caller()
    async with head_office_client(centre, caller) as client:
        yield client, caller
    await centre.close()


async def test_list_poll_and_acknowledge(api: Any) -> None:
    client, _ = api
    listed = (await client.get("/api/alerts", params={"state": "unacked"})).json()
    assert [a["branch"] for a in listed["alerts"]] == [B3, B1]  # newest first
    first = listed["alerts"][-1]["id"]
    polled = (await client.get("/api/alerts", params={"after": first})).json()
    assert [a["branch"] for a in polled["alerts"]] == [B3] and polled["last_id"] > first
    assert (await client.post(f"/api/alerts/{first}/ack", json={})).status_code == 422
    res = await client.post(f"/api/alerts/{first}/ack", json={"user": "王经理"})
    assert res.status_code == 200, res.text
    done = res.json()
    assert done["acked_by"] == "王经理" and done["acked_at"] is not None
    again = (await client.post(f"/api/alerts/{first}/ack", json={"user": "李四"})).json()
    assert again["acked_by"] == "王经理"  # the first acknowledgement stays
    left = (await client.get("/api/alerts", params={"state": "unacked"})).json()["alerts"]
    assert [a["branch"] for a in left] == [B3]
    assert (await client.post("/api/alerts/999999/ack", json={"user": "x"})).status_code == 404


async def test_the_back_office_names_the_user_and_the_scope(api: Any) -> None:
    client, caller = api
    caller.user, caller.allowed = "logged-in-user", ["1001"]
    rows = (await client.get("/api/alerts")).json()["alerts"]
    assert {a["branch"] for a in rows} == {B1}
    mine = rows[0]["id"]
    done = (await client.post(f"/api/alerts/{mine}/ack", json={"user": "forged"})).json()
    assert done["acked_by"] == "logged-in-user"
    other = (await client.get("/api/alerts", params={"org": "1002"}))
    assert other.status_code == 403
    caller.allowed = list(EVERYWHERE)
    peer = next(a for a in (await client.get("/api/alerts")).json()["alerts"]
                if a["branch"] == B3)["id"]
    caller.allowed = ["1001"]
    assert (await client.post(f"/api/alerts/{peer}/ack", json={})).status_code == 404
    assert (await client.get(f"/api/alerts/{peer}")).status_code == 404


async def test_two_sub_branch_managers_each_see_only_their_own_alerts(
        store_url: str, store: Store) -> None:
    """Real back-office sessions (no dependency override): the managers of 金水路 (B1) and
    花园路 (B2) each list, read and acknowledge only their own branch's alert (as
    themselves); the other's branch, node or thresholds answer 403, its alert 404 (not even
    its existence)."""
    live(store, B1, T0, waiting=35)
    live(store, B2, T0, waiting=35)
    d = Desk(store_url, T0)
    await d.round()
    await d.desk.close()
    raised = {a["branch"]: a["id"] for a in alerts(store, "waiting_over")}
    assert set(raised) == {B1, B2}
    centre = Centre(load_centre_config(CENTRE_TOML, [
        f"store.url={store_url}", "http.enabled=false", ADMIN_SEED]))
    try:
        async with admin_client(centre) as (http, _):
            admin = {"Authorization": http.headers.pop("Authorization")}
            managers = {B1: await add_user(http, admin, "jinshui", "manager", B1),
                        B2: await add_user(http, admin, "huayuan", "manager", B2)}
            for mine, other in ((B1, B2), (B2, B1)):
                me = managers[mine]
                listed = await http.get("/api/alerts", headers=me)
                assert listed.status_code == 200, listed.text
                assert [a["branch"] for a in listed.json()["alerts"]] == [mine]
                for params in ({"branch": other}, {"org": other}, {"org": "100101"}):
                    r = await http.get("/api/alerts", headers=me, params=params)
                    assert r.status_code == 403, (mine, params, r.text)
                for method in ("GET", "PUT"):
                    r = await http.request(method, f"/api/alerts/thresholds/{other}",
                                           headers=me, json={"waiting_over": 1})
                    assert r.status_code == 403, (mine, method, r.text)
                assert (await http.get(f"/api/alerts/{raised[other]}", headers=me)
                        ).status_code == 404
                assert (await http.post(f"/api/alerts/{raised[other]}/ack", headers=me)
                        ).status_code == 404
                done = await http.post(f"/api/alerts/{raised[mine]}/ack", headers=me,
                                       json={"user": "forged"})
                assert done.status_code == 200, done.text
                assert done.json()["acked_by"] == ("jinshui" if mine == B1 else "huayuan")
            assert (await http.get("/api/alerts")).status_code == 401
    finally:
        await centre.close()


async def test_thresholds_over_http_mask_phones(api: Any) -> None:
    client, caller = api
    put = await client.put("/api/alerts/thresholds/1001",
                           json={"waiting_over": 12, "sms_to": [PHONE]})
    assert put.status_code == 200, put.text
    body = put.json()
    assert body["own"] == {"waiting_over": 12, "sms_to": ["138****5678"]}
    assert body["effective"]["wait_over_min"] == DEFAULTS["wait_over_min"]
    at_branch = (await client.get(f"/api/alerts/thresholds/{B1}")).json()
    assert at_branch["own"] == {} and at_branch["effective"]["waiting_over"] == 12
    assert PHONE not in (await client.get("/api/alerts/thresholds")).text
    bad = await client.put("/api/alerts/thresholds/1001", json={"sms_to": ["call me"]})
    assert bad.status_code == 422 and "call me" not in bad.text
    assert (await client.put("/api/alerts/thresholds/1001",
                             json={"waiting_over": -1})).status_code == 422
    assert (await client.put("/api/alerts/thresholds/1001",
                             json={"colour": "red"})).status_code == 422
    province = await client.put("/api/alerts/thresholds/province", json={"waiting_over": 40})
    assert province.json()["org"] == "province"
    caller.allowed = ["100101"]
    assert (await client.put("/api/alerts/thresholds/province",
                             json={"waiting_over": 1})).status_code == 403
    assert (await client.put("/api/alerts/thresholds/1001",
                             json={"waiting_over": 1})).status_code == 403
    assert (await client.delete("/api/alerts/thresholds/100101")).status_code == 200


async def test_threshold_changes_and_acknowledgements_are_in_the_audit_log(
        store_url: str, store: Store) -> None:
    live(store, B1, T0, waiting=35)
    d = Desk(store_url, T0)
    await d.round()
    await d.desk.close()
    [raised] = alerts(store, "waiting_over")
    centre = Centre(load_centre_config(CENTRE_TOML, [
        f"store.url={store_url}", "http.enabled=false", ADMIN_SEED]))
    try:
        async with admin_client(centre) as (http, _):
            admin = {"Authorization": http.headers.pop("Authorization")}
            boss = await add_user(http, admin, "zzboss", "manager", "100101")
            reader = await add_user(http, admin, "zzaudit", "auditor", "1001")
            peer = await add_user(http, admin, "lyaudit", "auditor", "100102")
            r = await http.put("/api/alerts/thresholds/100101", headers=boss,
                               json={"waiting_over": 12, "sms_to": [PHONE]})
            assert r.status_code == 200, r.text
            r = await http.put("/api/alerts/thresholds/100101", headers=boss,
                               json={"waiting_over": 20})
            assert r.status_code == 200, r.text
            assert (await http.delete("/api/alerts/thresholds/100101",
                                      headers=boss)).status_code == 200
            r = await http.post(f"/api/alerts/{raised['id']}/ack", headers=boss, json={})
            assert r.status_code == 200 and r.json()["acked_by"] == "zzboss"
            await http.post(f"/api/alerts/{raised['id']}/ack", headers=admin, json={})
            rows = (await http.get("/api/audit?action=alert", headers=reader)).json()["rows"]
            theirs = (await http.get("/api/audit?action=alert", headers=peer)).json()["rows"]
    finally:
        await centre.close()
    assert [(a["user"], a["action"], a["org"], a["target"]) for a in reversed(rows)] == [
        ("zzboss", "alert.thresholds.save", "100101", "100101"),
        ("zzboss", "alert.thresholds.save", "100101", "100101"),
        ("zzboss", "alert.thresholds.delete", "100101", "100101"),
        ("zzboss", "alert.ack", B1, str(raised["id"])),  # the admin's second ack: no row
    ]
    first, second, deleted, ack = (a["detail"] for a in reversed(rows))
    assert first == {"before": {}, "after": {"waiting_over": 12, "sms_to": ["138****5678"]}}
    assert second == {"before": {"waiting_over": 12, "sms_to": ["138****5678"]},
                      "after": {"waiting_over": 20}}
    assert deleted == {"before": {"waiting_over": 20}}
    assert ack["kind"] == "waiting_over" and "超过30个" in ack["message"]
    assert all(a["address"] for a in rows)
    assert theirs == []  # an auditor of the Luoyang subtree does not see Zhengzhou's rows
