"""Staff list and search of bookings (预约管理, H2): by time, name, area, ID number, phone;
exact and fuzzy; masked in every answer, the CSV export and the log."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from central.appointments import Customer
from central.service import Centre
from common.clock import ManualClock
from tests.customer_support import an_id, bearer, plain_centre, put_catalogue, staff
from tests.uplink_support import BRANCH, pg_url_fixture, store_url_fixture  # noqa: F401

TZ = ZoneInfo("Asia/Shanghai")
PEOPLE = [  # name, phone, ID region, queue, day, slot
    ("张伟", "13800000001", "410105", "A", "2026-11-25", 4),
    ("张伟华", "13800000002", "410102", "B", "2026-11-25", 5),
    ("李娜", "13800000003", "110101", "A", "2026-11-26", 3),
    ("王芳", "13800000004", "410105", "F", "2026-11-27", 6),
]


@pytest.fixture
async def booked(store_url: str, tmp_path: Path, clock: ManualClock
                 ) -> AsyncIterator[tuple[Centre, httpx.AsyncClient, list[str]]]:
    async with plain_centre(store_url, tmp_path, clock) as (centre, api):
        assert centre.customers is not None
        a = centre.customers.appointments
        await put_catalogue(a, clock)
        ids = []
        for i, (name, phone, region, queue, day, slot) in enumerate(PEOPLE):
            number = an_id(i + 1, region=region)
            ids.append(number)
            who = Customer(a.vault.digest(phone), phone, None, None)
            profile = await a.register(who, name, None, number)
            who = Customer(who.phone_digest, phone, profile["id"], name)
            await a.book(who, BRANCH, queue, day, slot)
        yield centre, api, ids



async def search(api: httpx.AsyncClient, **params: object) -> list[dict]:
    r = await api.get("/api/staff/appointments", params=params, headers=await session(api))
    assert r.status_code == 200, r.text
    return list(r.json()["bookings"])


def names(rows: list[dict]) -> list[str]:
    return sorted(r["name"] for r in rows)


async def test_search_by_time_name_area_and_number_exact_and_fuzzy(
        booked: tuple[Centre, httpx.AsyncClient, list[str]]) -> None:
    _, api, ids = booked
    assert len(await search(api)) == 4
    assert names(await search(api, day_from="2026-11-26")) == ["李娜", "王芳"]
    assert names(await search(api, day_from="2026-11-25", day_to="2026-11-25", slot=5)) == \
        ["张伟华"]
    assert names(await search(api, name="张伟")) == ["张伟"]
    assert names(await search(api, name="张伟", fuzzy=True)) == ["张伟", "张伟华"]
    assert names(await search(api, area="4101")) == ["张伟", "张伟华", "王芳"]
    assert names(await search(api, area="410105")) == ["张伟", "王芳"]
    assert names(await search(api, id_number=ids[2])) == ["李娜"]
    assert names(await search(api, id_number=ids[2][-4:])) == []  # partial: only fuzzy
    assert names(await search(api, id_number=ids[2][-4:], fuzzy=True)) == ["李娜"]
    assert names(await search(api, phone="13800000004")) == ["王芳"]
    assert names(await search(api, queue="A", state="booked")) == ["张伟", "李娜"]
    assert await search(api, name="%", fuzzy=True) == []  # LIKE wildcards are literal


async def test_the_answer_counts_every_match_by_the_state_staff_see(
        booked: tuple[Centre, httpx.AsyncClient, list[str]], clock: ManualClock) -> None:
    centre, api, _ = booked
    assert centre.customers is not None
    a = centre.customers.appointments
    [wang] = await search(api, name="王芳")
    owner = await a.pool.run(lambda st: st.execute(
        "SELECT customer FROM bookings WHERE id = ?", (wang["id"],)).fetchone()[0])
    await a.cancel(Customer(a.vault.digest("13800000004"), "13800000004", owner, "王芳"),
                   wang["id"])
    clock.set(dt.datetime(2026, 11, 25, 12, 30, tzinfo=TZ))  # slot 4 (11-12) is over

    r = await api.get("/api/staff/appointments", params={"limit": 1},
                      headers=await session(api))
    answer = r.json()
    assert answer["states"] == {"booked": 2, "redeemed": 0, "missed": 1, "cancelled": 1}
    assert answer["total"] == 4 and len(answer["bookings"]) == 1  # counts: not just the page
    assert [b["state"] for b in answer["bookings"]] == ["missed"]  # 张伟, 11-25 slot 4
    one_day = await api.get("/api/staff/appointments", headers=await session(api), params={
        "day_from": "2026-11-25", "day_to": "2026-11-25"})
    assert one_day.json()["states"] == {"booked": 1, "redeemed": 0, "missed": 1,
                                        "cancelled": 0}


async def test_the_business_filter_offers_what_the_branches_offer_for_booking(
        booked: tuple[Centre, httpx.AsyncClient, list[str]]) -> None:
    _, api, _ = booked
    r = await api.get("/api/staff/businesses", headers=await session(api))
    offered = {q["id"]: q["name"] for q in r.json()["businesses"]}
    assert offered["A"] == "个人业务" and {"A", "B", "F"} <= set(offered)


async def test_every_answer_export_and_log_line_is_masked(
        booked: tuple[Centre, httpx.AsyncClient, list[str]],
        caplog: pytest.LogCaptureFixture) -> None:
    _, api, ids = booked
    caplog.set_level(logging.DEBUG)
    rows = await search(api)
    csv = (await api.get("/api/staff/appointments.csv", headers=await session(api))).text
    text = str(rows) + csv + caplog.text
    for number in ids:
        assert number not in text and number[:4] + "*" * 10 + number[-4:] in str(rows) + csv
    for _, phone, *_ in PEOPLE:
        assert phone not in text and phone[:3] + "****" + phone[-4:] in csv
    assert all("code" not in r for r in rows)  # staff never see the codes
    assert csv.startswith("\ufeffday,slot_label,branch") and csv.count("\n") == 5


async def test_staff_routes_need_a_back_office_session(
        booked: tuple[Centre, httpx.AsyncClient, list[str]]) -> None:
    _, api, _ = booked
    for headers in ({}, bearer("guess"), {"Authorization": "Basic abc"}):
        r = await api.get("/api/staff/appointments", headers=headers)
        assert r.status_code == 401, r.text


async def test_staff_see_only_their_own_subtree(
        booked: tuple[Centre, httpx.AsyncClient, list[str]]) -> None:
    _, api, _ = booked
    other = await api.get("/api/staff/appointments", params={"branch": "1002"},
                          headers=await session(api))
    assert other.status_code == 403  # the administrator's scope is 1001


async def session(api: httpx.AsyncClient) -> dict[str, str]:
    """A back-office session (the province's first administrator) for one request."""
    return await staff(api)
