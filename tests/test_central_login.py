"""Staff logins back off per address and per account, and cannot be turned into a
lock-out (G1): SQLite and PostgreSQL, the real app, the gate's clock driven by the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from central.auth import BackOff, address_key, prune_backoff
from central.config import load_centre_config
from central.service import Centre
from central.store import open_store
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401

PW = "admin-pw-for-tests"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def centre(store_url: str) -> AsyncIterator[tuple[Centre, Clock]]:
    c = Centre(load_centre_config(None, [f"store.url={store_url}",
                                         f'web.admin.password="{PW}"']))
    await c.office.prepare()
    clock = Clock()
    c.office.gate.clock = clock
    try:
        yield c, clock
    finally:
        await c.close()


@contextlib.asynccontextmanager
async def client(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://centre") as http:
        yield http


async def try_login(app: Any, address: str, password: str, user: str = "admin"
                    ) -> httpx.Response:
    async with client(app, address) as http:
        return await http.post("/api/auth/login", json={"user": user, "password": password})


def test_the_schedule_doubles_from_the_last_free_failure_to_its_cap() -> None:
    rule = BackOff(free=5, first_s=30, cap_s=3600, forget_s=300)
    assert [rule.delay(n) for n in range(1, 13)] == [
        0, 0, 0, 0, 30, 60, 120, 240, 480, 960, 1920, 3600]
    assert rule.delay(10_000) == 3600


def test_ipv6_clients_count_by_their_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:10.0.0.7") == "10.0.0.7" and address_key("x" * 99) == "x" * 64


async def test_one_address_is_slowed_down_doubling(centre: Any) -> None:
    from central.web import create_app

    c, clock = centre
    app = create_app(c)
    waits = []
    for _ in range(9):
        r = await try_login(app, "203.0.113.9", "wrong")
        while r.status_code == 429:  # wait exactly as told, then try again
            waits.append(int(r.headers["retry-after"]))
            assert r.json()["error"]["message"].startswith("登录失败次数过多")
            clock.now += waits[-1]
            r = await try_login(app, "203.0.113.9", "wrong")
        assert r.status_code == 401
    # four free failures, then 30 s; the account (1 s doubling) is never the longer wait
    assert waits == [30, 60, 120, 240]
    r = await try_login(app, "203.0.113.9", PW)  # the right password waits too
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 480
    clock.now += c.config.web.login_account_max_s  # the account's wait, at most
    elsewhere = await try_login(app, "198.51.100.1", PW)
    assert elsewhere.status_code == 200  # the account itself is not locked
    clock.now += 480 + 300  # the address's wait, then the quiet spell: forgotten
    assert (await try_login(app, "203.0.113.9", "wrong")).status_code == 401


async def test_fifty_addresses_cannot_keep_the_real_user_out(centre: Any) -> None:
    """An attacker spraying the account from 50 addresses every 5 s for 5 minutes: few
    guesses reach the password check and the account's wait never passes a minute; the
    real user at an address they logged in from before is not held by it at all, and from
    a new address is in within that minute once the spraying stops."""
    from central.web import create_app

    c, clock = centre
    s = c.config.web
    app = create_app(c)
    assert (await try_login(app, "192.0.2.200", PW)).status_code == 200  # yesterday, at work
    clock.now += 86400
    attackers = [f"198.51.100.{i}" for i in range(1, 51)]
    checked = longest = 0
    for round_ in range(60):
        for address in attackers:
            r = await try_login(app, address, "guess")
            if r.status_code == 401:
                checked += 1
            else:
                assert r.status_code == 429
                longest = max(longest, int(r.headers["retry-after"]))
        if round_ % 20 == 19:  # now and then, the real user at their desk
            at_work = await try_login(app, "192.0.2.200", PW)
            assert at_work.status_code == 200, at_work.text  # known address: never held
        clock.now += 5
    assert longest >= s.login_address_first_s  # attacking addresses back off on their own
    assert checked < 60  # of 3,000 guesses (without the back-off: all 3,000)
    r = await try_login(app, "192.0.2.77", PW)  # a new address, while the account waits
    if r.status_code == 429:
        wait = int(r.headers["retry-after"])
        assert wait <= s.login_account_max_s
        clock.now += wait
        r = await try_login(app, "192.0.2.77", PW)
    assert r.status_code == 200, r.text


async def test_failures_stay_bounded_in_the_store(centre: Any, store_url: str) -> None:
    """One row per address (none for accounts that do not exist); rows are forgotten after
    their wait and quiet spell, and past ``web.login_max_rows`` the table is trimmed."""
    from central.web import create_app

    c, clock = centre
    app = create_app(c)
    for i in range(30):
        r = await try_login(app, f"10.0.{i}.1", "x", user=f"ghost{i}")
        assert r.status_code == 401
    store = open_store(store_url)
    try:
        keys = [k for k, in store.execute("SELECT key FROM login_backoff ORDER BY key")]
        assert len(keys) == 30 and all(k.startswith("addr:") for k in keys)
        clock.now += c.config.web.login_window_s + 1
        assert (await try_login(app, "10.9.9.9", "x")).status_code == 401
        left = [k for k, in store.execute("SELECT key FROM login_backoff ORDER BY key")]
        assert left == ["addr:10.9.9.9", "user:admin"]  # the 30 forgotten
        now = clock.now
        store.execute("INSERT INTO login_backoff (key, failures, wait_until, expires) "
                      "SELECT 'addr:x' || a.n || b.n || c.n, 1, ?, ? FROM "
                      "(SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL "
                      "SELECT 3 UNION ALL SELECT 4) a, "
                      "(SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL "
                      "SELECT 3 UNION ALL SELECT 4) b, "
                      "(SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL "
                      "SELECT 3 UNION ALL SELECT 4) c", (now, now + 10))
        prune_backoff(store, now, 100)
        count, = store.execute("SELECT count(*) FROM login_backoff").fetchone()
        assert count == 75  # 127 rows > 100: down to three quarters
        assert store.execute("SELECT 1 FROM login_backoff WHERE key = 'user:admin'"
                             ).fetchone() is not None  # the longest-lived kept
    finally:
        store.close()
