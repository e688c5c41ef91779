"""Sign-in code limits that cannot be turned against everyone (central/code_limits.py): the
number checked before anything is counted; limits per phone (a minute, an hour, a day),
per client network (IPv6 by /64) and a centre-wide budget, counted in the store by every
centre process, 429 with Retry-After."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from central.web import create_app
from common.clock import ManualClock
from tests.customer_support import PHONE, plain_centre, texts
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401


@contextlib.asynccontextmanager
async def from_address(app: Any, host: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the centre's app (``create_app(centre)``) whose requests come from
    ``host``."""
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://centre") as api:
        yield api


async def ask(api: httpx.AsyncClient, phone: str) -> httpx.Response:
    return await api.post("/api/public/login/code", json={"phone": phone})


def refused(r: httpx.Response, code: str) -> int:
    """The 429's Retry-After, after checking its code and words."""
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"] and error["message_en"]
    wait = int(r.headers["Retry-After"])
    assert f"{wait}" in error["message_en"]
    return wait


async def test_a_flood_from_a_hundred_addresses_leaves_a_real_customer_signing_in(
        store_url: str, tmp_path: Path, clock: ManualClock) -> None:
    async with plain_centre(store_url, tmp_path, clock) as (centre, api):
        app = create_app(centre)
        for n in range(100):  # 1,000 requests for an invalid number, ten per address
            async with from_address(app, f"198.51.100.{n}") as attacker:
                for _ in range(10):
                    r = await ask(attacker, "12345678901")
                    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_phone"
        for n in range(20):  # and 200 codes to valid numbers of strangers, ten per address
            async with from_address(app, f"203.0.113.{n}") as attacker:
                for k in range(11):
                    r = await ask(attacker, f"139{n:04d}{k:04d}")
                    assert r.status_code == (200 if k < 10 else 429), r.text
        r = await ask(api, PHONE)
        assert r.status_code == 200, r.text
        assert texts(centre)[-1][0] == "138****5678"


async def test_one_phone_gets_five_codes_an_hour_and_ten_a_day(
        store_url: str, tmp_path: Path, clock: ManualClock) -> None:
    async with plain_centre(store_url, tmp_path, clock) as (centre, api):
        app, start = create_app(centre), clock.now()
        assert (await ask(api, PHONE)).status_code == 200
        assert 55 <= refused(await ask(api, PHONE), "code_too_soon") <= 60
        sent = 1
        for hour in range(3):
            clock.set(start + hour * 3600)
            while True:
                clock.advance(61)
                async with from_address(app, f"192.0.2.{sent}") as other:  # any network
                    r = await ask(other, "+86 138-1234-5678")
                if r.status_code != 200:
                    break
                sent += 1
            if sent < 10:
                assert sent == 5 * (hour + 1)
                assert 0 < refused(r, "codes_per_phone") <= 3600
        assert sent == 10
        wait = refused(r, "codes_per_phone")  # the day's cap, two hours after the 10th
        assert 20 * 3600 < wait <= 24 * 3600
        clock.set(start + 24 * 3600 + 1)
        assert (await ask(api, PHONE)).status_code == 200
        assert len([t for t in texts(centre) if t[0] == "138****5678"]) == 11


async def test_a_network_asks_ten_codes_in_ten_minutes_an_ipv6_64_is_one_network(
        store_url: str, tmp_path: Path, clock: ManualClock) -> None:
    async with plain_centre(store_url, tmp_path, clock) as (centre, _):
        app = create_app(centre)
        for k in range(11):
            async with from_address(app, f"2001:db8:1:2::{k + 1:x}") as api:
                r = await ask(api, f"1380000{k:04d}")
            assert r.status_code == (200 if k < 10 else 429), r.text
        assert 590 <= refused(r, "codes_per_address") <= 600
        async with from_address(app, "2001:db8:1:3::1") as api:  # the next /64
            assert (await ask(api, "13800009999")).status_code == 200
        clock.advance(601)
        async with from_address(app, "2001:db8:1:2::ffff") as api:
            assert (await ask(api, "13800008888")).status_code == 200


async def test_the_counts_are_shared_by_every_centre_process_and_kept_a_day(
        tmp_path: Path, clock: ManualClock) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    async with plain_centre(url, tmp_path, clock) as (one, _), \
            plain_centre(url, tmp_path, clock) as (two, _):
        apps = {one: create_app(one), two: create_app(two)}
        for k in range(10):
            async with from_address(apps[one if k % 2 else two], "192.0.2.7") as api:
                assert (await ask(api, f"1380000{k:04d}")).status_code == 200
        async with from_address(apps[one], "192.0.2.7") as api:
            refused(await ask(api, "13800001111"), "codes_per_address")
        async with from_address(apps[two], "192.0.2.7") as api:
            refused(await ask(api, "13800001111"), "codes_per_address")
        clock.advance(86401)
        async with from_address(apps[one], "192.0.2.8") as api:
            assert (await ask(api, PHONE)).status_code == 200
        assert one.customers is not None
        rows = await one.customers.appointments.pool.read(lambda st: st.execute(
            "SELECT count(*) FROM login_code_sends").fetchone()[0])
        assert rows == 3  # a day later only the last code's rows are left (bounded)


async def test_a_code_the_gateway_did_not_take_is_not_counted(
        tmp_path: Path, clock: ManualClock) -> None:
    async with plain_centre(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path, clock) as (
            centre, api):
        assert centre.customers is not None
        a = centre.customers.appointments
        real = a.sms

        class Down:
            name = "down"

            async def send(self, phone: str, text: str) -> None:
                from central.sms import SmsError
                raise SmsError("gateway unreachable")

        a.sms = Down()
        with contextlib.suppress(Exception):
            await ask(api, PHONE)
        a.sms = real
        assert await a.pool.read(lambda st: st.execute(
            "SELECT count(*) FROM login_code_sends").fetchone()[0]) == 0
