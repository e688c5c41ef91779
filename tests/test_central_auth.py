"""Who may use the centre: logins, sessions, CSRF, throttling, roles and org scope (G1).

A centre on the demo organisation (examples/centre.toml: 1001 → 100101, 100102 → seven
sub-branches), on SQLite and on PostgreSQL, spoken to through its real ASGI app.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from central.broker import LocalBroker
from central.store import open_store
from tests.auth_support import _routes

from .office_support import (
    ADMIN,
    ADMIN_PW,
    B1,
    B2,
    B3,
    add_user,
    http_client,
    login,
    office_running,
)
from .uplink_support import broker_fixture, pg_url_fixture, store_url_fixture

__all__ = ["broker_fixture", "pg_url_fixture", "store_url_fixture"]

pytestmark = pytest.mark.network


async def test_login_sets_a_strict_httponly_cookie_and_the_password_is_a_scrypt_hash(
        broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        r = await http.post("/api/auth/login", json={"user": ADMIN, "password": ADMIN_PW})
        assert r.status_code == 200
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("paidui_centre=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
        body = r.json()
        assert body["user"]["role"] == "admin" and body["user"]["scope"] == "1001"
        me = await http.get("/api/auth/session")  # the cookie alone is enough to read
        assert me.json()["user"]["id"] == ADMIN and me.json()["csrf_token"] == body["csrf_token"]
    store = open_store(store_url)
    try:
        digest, = store.execute("SELECT password_hash FROM users WHERE id = ?",
                                (ADMIN,)).fetchone()
        tokens = [r[0] for r in store.execute("SELECT token_hash FROM sessions")]
    finally:
        store.close()
    assert re.match(r"^scrypt\$16384\$8\$1\$", digest) and ADMIN_PW not in digest
    assert body["token"] not in tokens  # only its hash is kept


async def test_cookies_are_secure_over_https(broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url) as centre, \
            http_client(centre, "https://centre") as http:
        r = await http.post("/api/auth/login", json={"user": ADMIN, "password": ADMIN_PW})
        assert "Secure" in r.headers["set-cookie"]


async def test_state_changes_by_cookie_need_the_csrf_token_and_the_same_origin(
        broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        r = await http.post("/api/auth/login", json={"user": ADMIN, "password": ADMIN_PW})
        csrf = r.json()["csrf_token"]
        node = {"code": "100103", "name": "开封分行", "kind": "city"}
        bare = await http.post("/api/orgs", json=node)
        assert bare.status_code == 403 and bare.json()["error"]["code"] == "csrf_failed"
        other = await http.post("/api/orgs", json=node,
                                headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
        assert other.status_code == 403
        ok = await http.post("/api/orgs", json=node, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 201, ok.text
        bearer = await login(http)  # a script with a token needs no CSRF token
        r = await http.post("/api/orgs", headers=bearer,
                            json={"code": "100104", "name": "安阳分行", "kind": "city"})
        assert r.status_code == 201


async def test_failed_logins_are_throttled_per_user_and_per_address(
        broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url, "web.login_attempts=3") as centre, \
            http_client(centre) as http:
        for _ in range(3):
            r = await http.post("/api/auth/login", json={"user": ADMIN, "password": "nope"})
            assert r.status_code == 401
            assert r.json()["error"]["message"] == "用户名或密码错误。"
        r = await http.post("/api/auth/login", json={"user": ADMIN, "password": ADMIN_PW})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "登录失败次数过多" in r.json()["error"]["message"]
        nobody = await http.post("/api/auth/login", json={"user": "ghost", "password": "x"})
        assert nobody.status_code == 429  # the same address is throttled too
    store = open_store(store_url)
    try:
        actions = [r[0] for r in store.execute("SELECT action FROM audit ORDER BY id")]
    finally:
        store.close()
    assert actions.count("login.failed") == 3


async def test_a_sub_branch_manager_gets_403_on_a_peer_branch_everywhere(
        broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        sm1 = await add_user(http, admin, "sm1", "manager", B1)
        city = await add_user(http, admin, "zz", "manager", "100101")
        for path in (f"/api/branches/{B2}", f"/api/live?org={B2}", "/api/live?org=100101",
                     f"/api/live/charts?org={B2}", f"/api/live/stream?org={B2}",
                     f"/api/branches/{B2}/replies/x1"):
            r = await http.get(path, headers=sm1)
            assert r.status_code == 403, path
            assert r.json()["error"]["code"] == "out_of_scope"
        r = await http.post(f"/api/branches/{B2}/commands/pause", headers=sm1,
                            json={"queue": "A", "reason": "系统维护"})
        assert r.status_code == 403
        own = await http.get(f"/api/live?org={B1}", headers=sm1)
        assert own.status_code == 200 and own.json()["node"]["name"] == "郑州金水路支行"
        orgs = (await http.get("/api/orgs", headers=sm1)).json()["orgs"]
        assert [o["code"] for o in orgs] == [B1]
        city_orgs = {o["code"] for o in (await http.get("/api/orgs", headers=city)).json()["orgs"]}
        assert B1 in city_orgs and B2 in city_orgs and B3 not in city_orgs
        assert (await http.get(f"/api/live?org={B3}", headers=city)).status_code == 403
        assert (await http.get("/api/users", headers=sm1)).status_code == 403  # not an admin


async def test_peers_cannot_see_or_change_each_other(broker: LocalBroker, store_url: str
                                                     ) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        root = await login(http)
        a1 = await add_user(http, root, "a1", "admin", "100101")
        await add_user(http, root, "a2", "admin", "100101")
        await add_user(http, root, "ly", "admin", "100102")
        listed = {u["id"]: u for u in (await http.get("/api/users", headers=a1)).json()["users"]}
        assert set(listed) == {"a1", "a2"}  # not 洛阳's, not the province's
        assert listed["a2"]["manageable"] is False
        r = await http.put("/api/users/a2", headers=a1, json={"disabled": True})
        assert r.status_code == 403
        assert (await http.put("/api/users/ly", headers=a1, json={"name": "x"})).status_code \
            == 404  # out of scope: not even its existence
        peer = await http.post("/api/users", headers=a1, json={
            "id": "a3", "name": "a3", "role": "admin", "scope": "100101",
            "password": "secret-pass-1"})
        assert peer.status_code == 403  # an admin at one's own node would be a peer
        out = await http.post("/api/users", headers=a1, json={
            "id": "m9", "name": "m9", "role": "manager", "scope": "100102",
            "password": "secret-pass-1"})
        assert out.status_code == 403 and out.json()["error"]["code"] == "out_of_scope"
        below = await add_user(http, a1, "m1", "manager", "100101")  # same node, lower role
        assert (await http.get("/api/auth/session", headers=below)).status_code == 200
        r = await http.put("/api/users/m1", headers=a1, json={"disabled": True})
        assert r.status_code == 200
        assert (await http.get("/api/auth/session", headers=below)).status_code == 401
        node = await http.post("/api/orgs", headers=a1,
                               json={"code": "1001020009", "name": "x", "kind": "branch"})
        assert node.status_code == 403  # 洛阳's subtree


async def test_every_route_needs_a_session(broker: LocalBroker, store_url: str) -> None:
    """Each API route declares a permission (the ``need`` dependency) and answers 401
    without a session; the only exceptions are the login, the metrics scrape, and the
    customers' own routes, which declare that they are public (``outside_sessions``)."""
    from central.web import create_app

    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        app = create_app(centre)
        open_routes = {"/api/auth/login", "/metrics", "/login"}
        checked = pages = public = 0
        for route, inherited in _routes(app.routes):
            if not isinstance(route, APIRoute) or route.path in open_routes:
                continue
            overrides = app.dependency_overrides
            marks = (_permissions(route.dependant, overrides) | {
                getattr(overrides.get(d.dependency, d.dependency), "permission", None)
                for d in inherited}) - {None}
            assert marks, f"{route.path} has no permission dependency"
            if all(str(m).startswith("public:") for m in marks):
                public += 1  # a customer's page or API: open on purpose, and says so
                continue
            if not route.path.startswith("/api/"):  # a page: to the login, and back
                r = await http.get(route.path + "?org=1001")
                assert r.status_code == 303, route.path
                assert r.headers["location"].startswith("/login?next=%2F")
                pages += 1
                continue
            path = re.sub(r"\{code\}", B1, route.path)
            path = re.sub(r"\{[^}]+\}", "x1", path)
            for method in route.methods:
                r = await http.request(method, path + ("?org=1001&day=2026-11-25"))
                assert r.status_code == 401, (method, path, r.status_code)
                checked += 1
        assert checked >= 15 and pages >= 8 and public >= 10
        for evil in ("//evil.example/x", "/\\evil.example", "https://evil.example"):
            page = (await http.get("/login", params={"next": evil})).text
            assert "evil" not in page.split('id="boot"')[1]  # the login goes home instead
        assert (await http.get("/metrics")).status_code == 401


def _permissions(dependant: Any, overrides: dict[Any, Any]) -> set[Any]:
    """The permissions the dependencies (or their overrides) declare (``need``'s mark)."""
    out: set[Any] = set()
    for d in dependant.dependencies:
        out.add(getattr(overrides.get(d.call, d.call), "permission", None))
        out |= _permissions(d, overrides)
    return out


async def test_a_locked_out_administrator_gets_a_new_password_from_the_command_line(
        broker: LocalBroker, store_url: str) -> None:
    import asyncio
    import subprocess
    import sys

    from .office_support import CENTRE_TOML, ROOT

    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        old = await login(http)
        cli = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "central", "set-password", ADMIN, "--password",
            "brand-new-pw-1", "--config", str(CENTRE_TOML), "--set", f"store.url={store_url}"],
            capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert (await http.get("/api/auth/session", headers=old)).status_code == 401
        r = await http.post("/api/auth/login", json={"user": ADMIN, "password": ADMIN_PW})
        assert r.status_code == 401
        await login(http, ADMIN, "brand-new-pw-1")
        rows = (await http.get("/api/audit?action=password",
                               headers=await login(http, ADMIN, "brand-new-pw-1"))).json()
        assert rows["rows"][0]["user"] == "cli" and rows["rows"][0]["target"] == ADMIN


async def test_boxes_fetch_releases_freely_and_only_a_province_admin_lists_them(
        broker: LocalBroker, store_url: str, tmp_path: Any) -> None:
    """What a box fetches (offer, signed manifest, files) needs no session; the operators'
    views of the software releases need an administrator of a whole province."""
    async with office_running(broker, store_url, f"releases.files={tmp_path / 'rel'}"
                              ) as centre, http_client(centre) as http:
        root = await login(http)
        city = await add_user(http, root, "zzadmin", "admin", "100101")
        assert (await http.get(f"/api/releases/offer/{B1}")).status_code == 204
        assert (await http.get("/api/releases/0.2.0/manifest.json")).status_code == 404
        assert (await http.get("/api/releases/0.2.0/files/x.whl")).status_code == 404
        assert (await http.get("/api/releases")).status_code == 401
        assert (await http.get("/api/releases/0.2.0/branches")).status_code == 401
        assert (await http.get("/api/releases", headers=city)).status_code == 403
        assert (await http.get("/api/releases", headers=root)).json() == []
