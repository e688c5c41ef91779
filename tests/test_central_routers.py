"""The centre's routers are module-level and take their services as typed dependencies
(central/deps.py): one router, on a bare app holding fakes in ``app.state``, answers on
its own — no centre, store or broker built."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from central import pages, staffing, web
from central.alerts import api as alerts_api
from central.auth import ApiError, Principal, User
from central.config import load_centre_config
from central.releases import ReleaseStore, mount_releases
from central.service import Centre
from central.web import create_app
from tests.office_support import CENTRE_TOML

ROW = {"online": True, "epoch": 1, "last_seq": 7, "version": "1.0", "config_version": 3,
       "status_at": 1.0, "live_at": 1.0, "health_at": 1.0, "live": None, "health": None}


class FakeStore:
    def branches(self, codes: Any = None) -> list[dict[str, Any]]:
        rows = [{**ROW, "branch": "100101"}, {**ROW, "branch": "200101"}]
        return [r for r in rows if codes is None or r["branch"] in codes]

    def branch_codes(self) -> list[str]:
        return ["100101", "200101"]

    def lags(self, codes: Any = None) -> list[tuple[str, int, int, int]]:
        return [r for r in [("100101", 0, 0, 2)] if codes is None or r[0] in codes]

    def execute(self, sql: str) -> Any:  # report_settings.timezone, for the pages' zone
        return type("Cursor", (), {"fetchone": lambda _: ("Asia/Shanghai",)})()


class FakeCentre:
    async def read(self, fn: Any) -> Any:
        return fn(FakeStore())


class FakeGate:
    """Lets the one principal in (or nobody: 401)."""

    def __init__(self, who: Principal | None) -> None:
        self.who = who

    async def require(self, request: Request, permission: str) -> Principal:
        if self.who is None:
            raise ApiError("login_required")
        if not self.who.can(permission):
            raise ApiError("forbidden")
        return self.who


def bare_app(router: Any, **state: Any) -> httpx.AsyncClient:
    app = FastAPI()

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return exc.response()

    for name, value in state.items():
        setattr(app.state, name, value)
    app.include_router(router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c")


async def test_a_router_answers_on_its_own_with_the_services_it_is_handed() -> None:
    viewer = Principal(User("v", "Viewer", "viewer", "1001"), "csrf", by_cookie=False)
    async with bare_app(web.router, centre=FakeCentre(), gate=FakeGate(viewer)) as http:
        r = await http.get("/api/branches")
        assert r.status_code == 200
        assert [(b["branch"], b["lag"]) for b in r.json()["branches"]] == [("100101", 2)]
        assert (await http.get("/api/branches/200101")).status_code == 403  # not theirs
        assert (await http.get("/api/dead-letters")).status_code == 403  # not an admin
    async with bare_app(web.router, centre=FakeCentre(), gate=FakeGate(None)) as http:
        assert (await http.get("/api/branches")).status_code == 401


async def test_the_alerts_routes_included_without_their_binding_answer_403() -> None:
    """``alerts_router`` binds the routes to a centre and a caller's scope; included bare,
    they refuse everything (fail closed), as a router built with no scope does."""
    async with bare_app(alerts_api.routes) as http:
        for path in ("/api/alerts", "/api/alerts/thresholds", "/api/alerts/1"):
            r = await http.get(path)
            assert r.status_code == 403, path
            assert r.json()["error"]["code"] == "out_of_scope"


async def test_every_centre_route_is_a_module_level_handler(tmp_path: Path) -> None:
    """No closure inside a factory: each handler of the whole app (the releases' and the
    customers' too) is found by its module and name. The one exception is by design: the
    reports are built with the caller's scope as an explicit argument
    (:func:`central.reports.api.reports_router`); the alerts bind theirs without closures."""
    centre = Centre(load_centre_config(CENTRE_TOML, [
        f"store.url=sqlite:///{tmp_path / 'centre.db'}", "http.enabled=false",
        f"releases.files={tmp_path / 'releases'}"]))
    centre.releases = ReleaseStore.open(f"sqlite:///{tmp_path / 'centre.db'}",
                                        tmp_path / "releases")
    try:
        app = create_app(centre)
        ours: list[Any] = [r for r in fastapi.routing.iter_route_contexts(app.routes)
                if r.endpoint is not None and isinstance(r.path, str)
                and not r.endpoint.__module__.startswith("fastapi.")]
        by_scope = [r for r in ours if r.endpoint.__module__ == "central.reports.api"]
        assert {r.path for r in by_scope} == {"/api/reports", "/api/reports/{report}",
                                              "/api/reports/{report}/xlsx",
                                              "/api/reports/{report}/csv"}
        checked = set()
        for route in ours:
            if route in by_scope:
                continue
            endpoint = route.endpoint
            assert "<locals>" not in endpoint.__qualname__, route.path
            module = sys.modules[endpoint.__module__]
            assert getattr(module, endpoint.__name__) is endpoint, route.path
            checked.add(route.path)
        assert {"/live", "/login", "/office/staffing", "/api/office/staffing",
                "/api/office/staffing.csv", "/api/releases", "/api/releases/offer/{branch}",
                "/api/alerts", "/api/branches", "/m"} <= checked
        assert len(checked) >= 80
    finally:
        centre.releases.close()
        await centre.close()


async def test_the_staff_pages_and_staffing_answer_on_their_own() -> None:
    """The pages' and the staffing advice's routers on a bare app: a viewer of 1001 gets
    their page, a page of another org is refused, staffing refuses a branch of another org
    before reading anything, and without a session the page is refused too."""
    viewer = Principal(User("v", "Viewer", "viewer", "1001"), "csrf", by_cookie=False)
    async with bare_app(pages.router, centre=FakeCentre(), gate=FakeGate(viewer)) as http:
        r = await http.get("/reports")
        assert r.status_code == 200 and "统计报表" in r.text and '"zone": "Asia/Shanghai"' in r.text
        assert (await http.get("/reports?org=2001")).status_code == 403
        assert (await http.get("/office/users")).status_code == 403  # not a users admin
        r = await http.get("/office/appointments")  # customer channels off: no day
        assert r.status_code == 200 and '"enabled": false' in r.text
    async with bare_app(staffing.router, centre=FakeCentre(), gate=FakeGate(viewer)) as http:
        r = await http.get("/api/office/staffing", params={"branch": "2001010001"})
        assert r.status_code == 403
    async with bare_app(pages.router, centre=FakeCentre(), gate=FakeGate(None)) as http:
        assert (await http.get("/reports")).status_code == 401


async def test_the_releases_serve_from_a_bare_app(tmp_path: Path) -> None:
    """The releases' router serves whatever store ``mount_releases`` puts on the app
    (the standalone ``python -m central.releases serve`` does just that)."""
    store = ReleaseStore.open(f"sqlite:///{tmp_path / 'rel.db'}", tmp_path / "files")
    app = FastAPI()
    mount_releases(app, store, base_url="http://releases.example")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://c") as http:
            assert (await http.get("/api/releases")).json() == []
            assert (await http.get("/api/releases/offer/1001010001")).status_code == 204
            assert (await http.get("/api/releases/offer/x")).status_code == 422
            assert (await http.get("/api/releases/0.2.0/manifest.json")).status_code == 404
    finally:
        store.close()
