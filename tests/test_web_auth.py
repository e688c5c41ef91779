"""Staff logins and who may do what (controller/web/auth.py; contract in docs/api.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from common.clock import ManualClock
from controller.box import Box
from controller.engine import IssueTicket, Logout
from controller.web import create_app
from controller.web.auth import Auth, load_secret, rule_for


@pytest.fixture
async def client(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(box)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://box") as c:
        yield c


async def teller_login(client: httpx.AsyncClient, window: int = 1, teller: str = "t1"
                       ) -> dict[str, str]:
    r = await client.post(f"/api/windows/{window}/login",
                          json={"teller": teller, "password": "1234"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_window_routes_need_that_windows_teller(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/windows/1/call-next")
    assert r.status_code == 401 and r.json()["error"]["code"] == "login_required"
    login = await teller_login(client, 1, "t1")
    assert login["window"] == 1 and login["teller"] == "t1" and login["token"]
    r = await client.post("/api/windows/1/call-next", headers=bearer(login["token"]))
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_waiting"  # the engine's
    r = await client.post("/api/windows/2/call-next", headers=bearer(login["token"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_window"


async def test_a_wrong_password_gets_no_token(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/windows/1/login", json={"teller": "t1", "password": "x"})
    assert r.status_code == 401 and "token" not in r.json()
    assert "set-cookie" not in r.headers


async def test_a_page_session_is_an_httponly_strict_cookie_needing_a_csrf_token(
    client: httpx.AsyncClient, box: Box
) -> None:
    login = await teller_login(client)
    cookie = client.cookies.get("paidui_teller")
    assert cookie == login["token"]
    r = await client.post("/api/windows/1/login", json={"teller": "t1", "password": "1234"})
    header = r.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/" in header
    await box.execute(IssueTicket(queue="A"))
    r = await client.post("/api/windows/1/call-next")  # the cookie alone is not enough
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    session = (await client.get("/api/auth/session?kind=teller")).json()
    assert session["window"] == 1 and session["name"] == "王丽"
    csrf = {"X-CSRF-Token": session["csrf_token"]}
    r = await client.post("/api/windows/1/call-next", headers={**csrf, "Origin": "http://evil"})
    assert r.status_code == 403
    r = await client.post("/api/windows/1/call-next", headers=csrf)
    assert r.status_code == 200 and r.json()["current"]["number"] == "A001"
    assert (await client.get("/api/windows/1/panel")).json()["current"]["number"] == "A001"


async def test_a_logout_at_the_keypad_ends_the_page_session(
    client: httpx.AsyncClient, box: Box
) -> None:
    token = (await teller_login(client))["token"]
    await box.execute(Logout(1))
    r = await client.get("/api/windows/1/panel", headers=bearer(token))
    assert r.status_code == 401


async def test_a_logout_through_the_api_ends_the_session_even_after_a_new_login(
    client: httpx.AsyncClient,
) -> None:
    token = (await teller_login(client))["token"]
    r = await client.post("/api/windows/1/logout", headers=bearer(token))
    assert r.status_code == 200 and "Max-Age=0" in r.headers["set-cookie"]
    await teller_login(client)  # logged in again: the old token stays revoked
    assert (await client.get("/api/windows/1/panel", headers=bearer(token))).status_code == 401


async def test_branch_controls_need_a_lobby_manager(client: httpx.AsyncClient) -> None:
    teller = (await teller_login(client))["token"]
    pause = {"reason": "系统升级"}
    r = await client.post("/api/queues/A/pause", json=pause, headers=bearer(teller))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await client.post("/api/auth/lobby", json={"user": "lm1", "password": "1234"})
    assert r.status_code == 200 and r.json()["name"] == "赵经理"
    lobby = r.json()["token"]
    assert (await client.post("/api/queues/A/pause", json=pause,
                              headers=bearer(lobby))).status_code == 200
    assert (await client.post("/api/kiosk/sign-out", headers=bearer(lobby))).status_code == 200
    overview = (await client.get("/api/lobby/overview", headers=bearer(lobby))).json()
    assert overview["queues"][0]["paused"] and not overview["kiosk_open"]
    r = await client.get("/api/windows/1/panel", headers=bearer(lobby))
    assert r.status_code == 401  # a lobby manager is not the teller of a window


async def test_the_kiosk_can_take_tickets_and_read_but_change_nothing_else(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/api/tickets", json={"queue": "A"})
    assert r.status_code == 201
    token = r.json()["reprint_token"]
    assert (await client.post("/api/tickets/A001/reprint", json={"token": token})
            ).status_code == 200
    assert (await client.get("/api/status")).status_code == 200
    assert (await client.get("/api/tickets/A001")).status_code == 200
    for path in ("/api/queues/A/pause", "/api/kiosk/sign-out", "/api/tickets/A001/insert-front",
                 "/api/windows/1/rating", "/api/anything/new"):
        r = await client.post(path, json={"reason": "x", "score": 1})
        assert r.status_code == 401, path


async def test_only_the_issuing_kiosk_or_staff_can_print_a_number_again(
        client: httpx.AsyncClient) -> None:
    """Somebody else's number cannot be duplicated from a browser on the branch network."""
    mine = (await client.post("/api/tickets", json={"queue": "A"})).json()
    await client.post("/api/tickets", json={"queue": "A"})
    for body in (None, {"token": "guess"}, {"token": mine["reprint_token"]}):  # A002's?
        r = await client.post("/api/tickets/A002/reprint", json=body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "reprint_refused"
    r = await client.post("/api/tickets/A001/reprint", json={"token": mine["reprint_token"]})
    assert r.status_code == 200 and r.json()["reprint"] is True
    lobby = (await client.post("/api/auth/lobby", json={"user": "lm1", "password": "1234"})
             ).json()["token"]
    assert (await client.post("/api/tickets/A002/reprint", headers=bearer(lobby))
            ).status_code == 200


async def test_who_the_customers_are_needs_a_staff_login(client: httpx.AsyncClient) -> None:
    await client.post("/api/tickets", json={"card": "6225880137001237"})  # 陈先生, 5 stars
    public = (await client.get("/api/tickets")).json()["tickets"][0]
    assert public["number"] == "V001" and public["state"] == "waiting"
    assert public["vip_name"] is None and public["stars"] is None
    assert (await client.get("/api/tickets/V001")).json()["vip_name"] is None
    token = (await teller_login(client, 3, "t3"))["token"]
    staff = (await client.get("/api/tickets", headers=bearer(token))).json()["tickets"][0]
    assert staff["vip_name"] == "陈先生" and staff["stars"] == 5


async def test_insert_front_takes_any_staff_session(client: httpx.AsyncClient) -> None:
    await client.post("/api/tickets", json={"queue": "A"})
    token = (await teller_login(client, 3, "t3"))["token"]
    r = await client.post("/api/tickets/A001/insert-front", headers=bearer(token))
    assert r.status_code == 200 and r.json()["front"] is True


async def test_failed_logins_are_throttled_then_forgiven(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    wrong = {"teller": "t1", "password": "nope"}
    for _ in range(5):
        assert (await client.post("/api/windows/1/login", json=wrong)).status_code == 401
    r = await client.post("/api/windows/1/login", json={"teller": "t1", "password": "1234"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert r.json()["error"]["message"].startswith("登录失败次数过多")
    r = await client.post("/api/auth/lobby", json={"user": "lm1", "password": "1234"})
    assert r.status_code == 429  # the same address, whichever login
    clock.advance(301)
    await teller_login(client)


async def test_tokens_outlive_a_restart_but_not_their_expiry_or_a_forger(
    box: Box, clock: ManualClock
) -> None:
    web = create_app(box).state.screens["web"]
    auth = Auth(box, web, load_secret(box.data_dir))
    again = Auth(box, web, load_secret(box.data_dir))  # a restarted box reads the same secret
    s = auth.issue("lobby", "lm1")
    token = auth.token(s)
    assert again.parse(token) == s
    head, body, mac = token.split(".")
    assert again.parse(f"{head}.{body}x.{mac}") is None
    forged = ("B" if mac[0] == "A" else "A") + mac[1:]  # (not the tail: it once was "AA")
    assert again.parse(f"{head}.{body}.{forged}") is None
    clock.advance(web.session_hours * 3600 + 1)
    assert again.parse(token) is None
    assert (box.data_dir / "web.secret").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("method,path,role", [
    ("POST", "/api/windows/3/login", "window"),  # decided by the window routes themselves
    ("POST", "/api/windows/3/call-next", "window"),
    ("GET", "/api/windows/3/panel", "window"),
    ("POST", "/api/windows/+3/call-next", "window"),  # never "public" (it was)
    ("POST", "/api/auth/lobby", "public"),  # throttled in its route
    ("POST", "/api/tickets", "public"),
    ("POST", "/api/appointments/redeem", "public"),
    ("GET", "/api/tickets", "public"),
    ("GET", "/api/events/stream", "public"),
    ("POST", "/api/tickets/A001/insert-front", "staff"),
    ("GET", "/api/lobby/overview", "lobby"),
    ("POST", "/api/queues/A/resume", "lobby"),
    ("DELETE", "/api/tickets", "lobby"),
])
def test_who_may_do_what(method: str, path: str, role: str) -> None:
    assert rule_for(method, path) == role


# --- failed logins: per address and per account, growing back-off ---------------------------

WRONG = {"teller": "t1", "password": "nope"}
RIGHT = {"teller": "t1", "password": "1234"}
LOGINS = {  # path, a wrong try, the right one
    "teller": ("/api/windows/1/login", WRONG, RIGHT),
    "lobby manager": ("/api/auth/lobby", {"user": "lm1", "password": "nope"},
                      {"user": "lm1", "password": "1234"}),
}


def at(app: Any, address: str) -> httpx.AsyncClient:
    """A client on the branch LAN at ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 50123))
    return httpx.AsyncClient(transport=transport, base_url="http://box")


async def in_within(client: httpx.AsyncClient, clock: ManualClock, path: str,
                    body: dict[str, str]) -> int:
    """Log in with the right password; the seconds it had to wait first (429s)."""
    waited = 0
    for _ in range(3):
        r = await client.post(path, json=body)
        if r.status_code == 200:
            return waited
        assert r.status_code == 429, r.text
        wait = int(r.headers["Retry-After"])
        waited += wait
        clock.advance(wait)
    raise AssertionError("never let in")


@pytest.mark.parametrize("who", sorted(LOGINS))
async def test_a_client_spraying_wrong_passwords_locks_itself_out_ever_longer_not_the_staff(
    box: Box, clock: ManualClock, who: str
) -> None:
    """One client on the LAN guesses a teller's (or the lobby manager's) password without
    pause: each lock of its address is twice the last, up to an hour; the teller at another
    address is let in within a minute every time, and so resets the account."""
    path, wrong, right = LOGINS[who]
    app = create_app(box)
    attacker_waits, staff_waits = [], []
    async with at(app, "10.0.0.66") as attacker, at(app, "10.0.0.21") as staff:
        while len(attacker_waits) < 9:
            r = await attacker.post(path, json=wrong)
            if r.status_code == 401:
                continue
            assert r.status_code == 429, r.text
            attacker_waits.append(int(r.headers["Retry-After"]))
            staff_waits.append(await in_within(staff, clock, path, right))
            clock.advance(attacker_waits[-1] - staff_waits[-1])
    assert attacker_waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert max(staff_waits) <= 60


async def test_guesses_from_many_addresses_still_count_against_the_account(
    box: Box, clock: ManualClock
) -> None:
    app = create_app(box)
    for i in range(5):  # five addresses, one wrong guess each: no address is over its limit
        async with at(app, f"10.0.1.{i}") as guesser:
            assert (await guesser.post("/api/windows/1/login", json=WRONG)).status_code == 401
    async with at(app, "10.0.1.99") as guesser:
        r = await guesser.post("/api/windows/1/login", json=WRONG)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) <= 5
    async with at(app, "10.0.0.21") as teller:
        assert await in_within(teller, clock, "/api/windows/1/login", RIGHT) <= 5
    for i in range(4):  # the teller's success cleared the account: free guesses again
        async with at(app, f"10.0.2.{i}") as guesser:
            assert (await guesser.post("/api/windows/1/login", json=WRONG)).status_code == 401


async def test_spelling_the_window_differently_skips_no_throttle(client: httpx.AsyncClient
                                                                 ) -> None:
    for _ in range(5):
        assert (await client.post("/api/windows/1/login", json=WRONG)).status_code == 401
    for spelled in ("+1", "01", "1.0", "%31", "%201"):
        r = await client.post(f"/api/windows/{spelled}/login", json=RIGHT)
        assert r.status_code == 404 and "token" not in r.text, spelled
    r = await client.post("/api/windows/2/login", json={"teller": "t2", "password": "1234"})
    assert r.status_code == 429  # the address is held whatever window it names


async def test_concurrent_guesses_cannot_outrun_the_throttle(client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(*(client.post("/api/windows/1/login", json=WRONG)
                                     for _ in range(20)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [401] * 5 + [429] * 15


async def test_an_ipv6_client_is_held_by_its_64_not_one_address(box: Box) -> None:
    """A host on an IPv6 LAN may take any address of its /64: they count as one."""
    app = create_app(box)
    for i in range(5):
        async with at(app, f"2001:db8:0:7::{i + 1:x}") as guesser:
            assert (await guesser.post("/api/auth/lobby", json={"user": "x", "password": "y"})
                    ).status_code == 401
    async with at(app, "2001:db8:0:7:ffff::1") as guesser:
        r = await guesser.post("/api/auth/lobby", json={"user": "x", "password": "y"})
        assert r.status_code == 429
    async with at(app, "2001:db8:0:8::1") as other:  # another /64
        assert (await other.post("/api/auth/lobby", json=LOGINS["lobby manager"][2])
                ).status_code == 200


async def test_failed_logins_are_remembered_in_bounded_memory(box: Box) -> None:
    """A spray of addresses keeps at most MAX_KEYS of them, the latest still held; names
    nobody has configured never enter the per-account table."""
    from common.throttle import MAX_KEYS, LoginThrottle

    web = create_app(box).state.screens["web"]
    throttle, now = LoginThrottle(web), 0.0
    for i in range(3 * MAX_KEYS):
        for _ in range(web.login_attempts):
            throttle.failed(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", None, now)
        now += 0.01
    assert len(throttle.addresses.keys) <= MAX_KEYS and not throttle.accounts.keys
    last = 3 * MAX_KEYS - 1
    assert throttle.wait(f"10.{last >> 16}.{(last >> 8) & 255}.{last & 255}", None, now) > 0
    app = create_app(box)
    auth = app.state.screens["auth"]
    async with at(app, "10.0.0.66") as guesser:
        for i in range(4):
            await guesser.post("/api/windows/1/login", json={"teller": f"x{i}", "password": "1"})
    assert not auth.throttle.accounts.keys and len(auth.throttle.addresses.keys) == 1


# --- origins ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("base", "origin", "same"), [
    ("http://box:8080", "http://box:8080", True),
    ("http://box:8080", "http://BOX:8080", True),
    ("http://box", "http://box:80", True),  # a missing port is the scheme's default
    ("https://box", "https://box:443", True),
    ("http://box:8080", "http://evil.example:8080", False),
    ("http://box:8080", "https://box:8080", False),  # another scheme, same host:port
    ("http://box", "https://box", False),
    ("https://box", "http://box", False),
    ("http://box", "http://box:8080", False),
    ("http://box:8080", "http://box", False),
    ("http://box:8080", "box:8080", False),  # no scheme at all
    ("http://box:8080", "null", False),
    ("http://box:8080", "http://box:8080.evil.example", False),
    ("http://box:8080", "http://user@box:8080", False),
    ("http://box:8080", "http://box:8080/", False),
])
async def test_a_page_request_must_come_from_the_box_itself(
    box: Box, base: str, origin: str, same: bool
) -> None:
    """Scheme, host and port of ``Origin`` against the box as the request reached it."""
    app = create_app(box)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as c:
        csrf = (await teller_login(c))["csrf_token"]
        r = await c.post("/api/windows/1/call-next",
                         headers={"X-CSRF-Token": csrf, "Origin": origin})
    code = r.json()["error"]["code"]
    assert code == ("no_waiting" if same else "csrf_failed"), r.text  # no_waiting: let in
