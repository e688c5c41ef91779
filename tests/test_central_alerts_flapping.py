"""Alert hysteresis (issue 15): a condition flapping 100 times in a minute is one alert, at
most one escalation and one clear (pushed once to the lobby screen that heard it); and
``branch_flooding`` from the rows the ingest puts in the alert inbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from central.alerts import FLOOD_QUIET_S, set_thresholds
from central.store import Store
from tests.alerts_support import T0, Desk, alerts, live
from tests.reports_support import B1, B2
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401

PRINTER = {"name": "printer", "state": "fault", "detail": "缺纸"}


@pytest.fixture
async def desk(store_url: str) -> AsyncIterator[Desk]:
    d = Desk(store_url, T0)
    yield d
    await d.desk.close()


@pytest.fixture
def store(store_url: str) -> Any:
    from central.store import open_store

    s = open_store(store_url)
    yield s
    s.close()


def flood_row(store: Store, branch: str, at: float, rate: int = 9800) -> None:
    store.execute("INSERT INTO alert_inbox (branch, kind, at, body) VALUES (?, ?, ?, ?)",
                  (branch, "branch_flooding", at, json.dumps(
                      {"class": "status", "limited": 5000, "rate": rate, "limit": 50})))


# each: (kind, the condition on at time t, off at time t)
FLAPS: dict[str, tuple[Callable[[Store, float], None], Callable[[Store, float], None]]] = {
    "waiting_over": (lambda s, t: live(s, B1, t, waiting=70),  # 70 > 2 × 30: worse
                     lambda s, t: live(s, B1, t, waiting=0)),
    "device_fault": (lambda s, t: live(s, B1, t, devices=[PRINTER]),
                     lambda s, t: live(s, B1, t, devices=[{**PRINTER, "state": "ok"}])),
    "offline": (lambda s, t: live(s, B1, T0 - 200, online=False),  # offline since T0 - 200
                lambda s, t: live(s, B1, t, online=True)),
}


@pytest.mark.parametrize("kind", sorted(FLAPS))
async def test_a_condition_flapping_100_times_a_minute_is_one_alert_and_one_clear(
        store: Store, desk: Desk, kind: str) -> None:
    set_thresholds(store, "", {"push_kinds": [kind]}, "admin")
    on, off = FLAPS[kind]
    for i in range(100):  # on, off, on, … every 0.6 s
        t = T0 + i * 0.6
        (on if i % 2 == 0 else off)(store, t)
        await desk.round(t)
    off(store, T0 + 60)
    for t in (T0 + 61, T0 + 100, T0 + 130, T0 + 200):
        await desk.round(t)
    [a] = alerts(store, kind)
    assert a["resolved_at"] == T0 + 130  # last seen at 59.4 s, held clear_after_s (60)
    levels = [args["level"] for _, args in desk.publish.sent]
    clear = "clear"
    expect = {"waiting_over": ["warning", "critical", clear],  # worse: escalated once
              "device_fault": ["warning", clear], "offline": ["critical", clear]}[kind]
    assert levels == expect
    assert desk.publish.sent[-1][1]["message"].startswith("已解除:")
    row = store.execute("SELECT clear_push, escalated_at FROM alerts WHERE id = ?",
                        (a["id"],)).fetchone()
    assert row[0] == "sent" and (row[1] is not None) == (kind == "waiting_over")


async def test_a_lasting_condition_escalates_once(store: Store, desk: Desk) -> None:
    set_thresholds(store, "", {"sms_to": ["13812345678"], "sms_kinds": ["device_fault"]},
                   "admin")
    live(store, B1, T0, devices=[PRINTER])
    for minute in range(0, 91, 5):  # 90 minutes of a broken printer
        await desk.round(T0 + minute * 60)
    [a] = alerts(store, "device_fault")
    assert a["level"] == "critical" and a["message"].startswith("预警升级(已持续超过30分钟)")
    assert a["message_en"].startswith("Escalated (on for over 30 min)")
    assert len(desk.sms.sent) == 2  # the alert, and its escalation: once


async def test_a_branch_being_rate_limited_is_one_alert_until_quiet(store: Store, desk: Desk
                                                                    ) -> None:
    for minute in range(10):  # the ingest's row, once a minute, for 10 minutes
        flood_row(store, B1, T0 + minute * 60)
        for t in range(0, 60, 5):
            await desk.round(T0 + minute * 60 + t)
    [a] = alerts(store, "branch_flooding")
    assert a["branch"] == B1 and a["resolved_at"] is None and a["detail"]["rate"] == 9800
    assert "消息过多,已限流" in a["message"] and "rate-limited" in a["message_en"]
    last = T0 + 9 * 60
    await desk.round(last + FLOOD_QUIET_S - 5)
    assert alerts(store, "branch_flooding")[0]["resolved_at"] is None
    flood_row(store, B2, last + FLOOD_QUIET_S)  # another branch: its own alert
    await desk.round(last + FLOOD_QUIET_S + 1)
    got = {x["branch"]: x["resolved_at"] for x in alerts(store, "branch_flooding")}
    assert got == {B1: last + FLOOD_QUIET_S + 1, B2: None}
    assert store.execute("SELECT count(*) FROM alert_inbox").fetchone()[0] == 0
