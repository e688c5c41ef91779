"""Every report and export route holds a caller to their scope, and fails closed (G1).

The routes are enumerated from the real app, so a new report or export route without a
case here fails :func:`test_every_report_and_export_route_holds_the_callers_scope`. Each is
asked, through real back-office sessions, by the manager of one branch (金水路, B1): their
own branch answers and names no other; the neighbour's (花园路, B2) is refused; without a
session, 401. The head-office router built with no scope sees nothing (403 everywhere).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.routing import APIRoute

from central.config import load_centre_config
from central.service import Centre
from central.store import open_store
from tests.alerts_support import T0, Desk, alerts, live
from tests.auth_support import _routes
from tests.office_support import ADMIN_SEED, CENTRE_TOML, add_user, admin_client
from tests.reports_support import B1, B2, hand_day, ingest_all, other_days
from tests.scope_support import head_office_client
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401

DAY = {"period": "day", "date": "2026-11-25"}
REPORT_OR_EXPORT = re.compile(r"^/api/(reports|alerts|office/staffing|staff/appointments|"
                              r"reconcile|audit)|[./](csv|xlsx)$")


@dataclass
class Case:
    """How the B1 manager asks a route about their own branch and about B2's."""

    own: dict[str, Any]
    other: dict[str, Any] | None  # None: the route takes no org (a list, filtered)
    refused: tuple[int, ...] = (403,)  # what asking about B2 answers
    own_ok: tuple[int, ...] = (200,)
    json: dict[str, Any] = field(default_factory=dict)


REPORT = "/api/reports/branch-summary"
CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/reports"): Case({}, None),
    ("GET", "/api/reports/{report}"): Case({"branch": B1, **DAY}, {"branch": B2, **DAY}),
    ("GET", "/api/reports/{report}/xlsx"): Case({"branch": B1, **DAY}, {"branch": B2, **DAY}),
    ("GET", "/api/reports/{report}/csv"): Case({"branch": B1, **DAY}, {"branch": B2, **DAY}),
    ("GET", "/api/alerts"): Case({}, {"branch": B2}),
    ("GET", "/api/alerts/thresholds"): Case({}, None),
    ("GET", "/api/alerts/thresholds/{org}"): Case({}, {}),
    ("PUT", "/api/alerts/thresholds/{org}"): Case({}, {}, json={"waiting_over": 9}),
    ("DELETE", "/api/alerts/thresholds/{org}"): Case({}, {}),
    ("GET", "/api/alerts/{alert_id}"): Case({}, {}, refused=(404,)),
    ("POST", "/api/alerts/{alert_id}/ack"): Case({}, {}, refused=(404,)),
    ("GET", "/api/office/staffing"): Case({"branch": B1, "days": 1, "seeds": 1},
                                          {"branch": B2, "days": 1, "seeds": 1},
                                          own_ok=(200, 404, 422)),
    ("GET", "/api/office/staffing.csv"): Case({"branch": B1, "days": 1, "seeds": 1},
                                              {"branch": B2, "days": 1, "seeds": 1},
                                              own_ok=(200, 404, 422)),
    ("GET", "/api/staff/appointments"): Case({"branch": B1}, {"branch": B2}),
    ("GET", "/api/staff/appointments.csv"): Case({"branch": B1}, {"branch": B2}),
    ("GET", "/api/reconcile"): Case({"day": DAY["date"]}, None),
    ("GET", "/api/audit"): Case({"org": B1}, {"org": B2}),
}


def _path(template: str, branch: str, alert: dict[str, int]) -> str:
    return (template.replace("{report}", "branch-summary").replace("{org}", branch)
            .replace("{alert_id}", str(alert[branch])))


@pytest.fixture
async def office(store_url: str) -> Any:
    """A centre on the demo organisation with reports for B1, B2 (and another province's
    B3), an open alert at B1 and one at B2."""
    store = open_store(store_url)
    try:
        ingest_all(store, hand_day(), *other_days())
        live(store, B1, T0, waiting=35)
        live(store, B2, T0, waiting=35)
        d = Desk(store_url, T0)
        await d.round()
        await d.desk.close()
        raised = {a["branch"]: a["id"] for a in alerts(store, "waiting_over")}
    finally:
        store.close()
    centre = Centre(load_centre_config(CENTRE_TOML, [
        f"store.url={store_url}", "http.enabled=false", ADMIN_SEED]))
    try:
        async with admin_client(centre) as (http, app):
            admin = {"Authorization": http.headers.pop("Authorization")}
            # B1's administrator: every permission (the audit log too), one branch's scope
            me = await add_user(http, admin, "jinshui", "admin", B1)
            yield http, app, me, raised
    finally:
        if centre.customers is not None:  # its pool: the staff search ran on it
            await centre.customers.appointments.pool.close()
        await centre.close()


async def test_every_report_and_export_route_holds_the_callers_scope(office: Any) -> None:
    http, app, me, raised = office
    routes = {(m, r.path) for r, _ in _routes(app.routes) if isinstance(r, APIRoute)
              and REPORT_OR_EXPORT.search(r.path) for m in r.methods or ()}
    assert routes == set(CASES), "a report or export route without a case here"
    for (method, template), case in CASES.items():
        own = _path(template, B1, raised)
        r = await http.request(method, own, params=case.own, json=case.json or None,
                               headers=me)
        assert r.status_code in case.own_ok, (method, own, r.status_code, r.text[:200])
        if r.status_code == 200:
            assert B2 not in r.text and "1002" not in r.text, (method, own)
        if case.other is not None:
            other = _path(template, B2, raised)
            r = await http.request(method, other, params=case.other, json=case.json or None,
                                   headers=me)
            assert r.status_code in case.refused, (method, other, r.status_code, r.text[:200])
        bare = await http.request(method, own, params=case.own, json=case.json or None)
        assert bare.status_code == 401, (method, own, bare.status_code)


async def test_a_head_office_router_built_with_no_scope_sees_nothing(office: Any) -> None:
    """``scope=None`` (or a caller with no prefix) is not "everything": 403 on every
    report and alert route, the data never read."""
    _, app, _, raised = office
    centre = app.state.office.centre
    async with head_office_client(centre, None) as bare:
        paths = (await bare.get("/openapi.json")).json()["paths"]
        asked = 0
        for template, methods in paths.items():
            for method in methods:
                case = CASES[(method.upper(), template)]
                r = await bare.request(method.upper(), _path(template, B1, raised),
                                       params=case.own, json=case.json or None)
                assert r.status_code == 403, (method, template, r.text[:200])
                assert r.json()["error"]["code"] == "out_of_scope"
                assert B1 not in r.text
                asked += 1
        assert asked == 11


async def test_a_scope_function_answering_no_prefix_sees_nothing(office: Any) -> None:
    from tests.scope_support import Caller

    _, app, _, raised = office
    async with head_office_client(app.state.office.centre, Caller(allowed=[])) as client:
        for path in ("/api/reports", "/api/alerts", REPORT, f"/api/alerts/{raised[B1]}"):
            r = await client.get(path, params=DAY)
            assert r.status_code == 403, (path, r.text[:200])


def test_no_production_code_overrides_dependencies() -> None:
    """Scope is wired by arguments, never by ``app.dependency_overrides``."""
    from pathlib import Path

    import central

    root = Path(central.__file__).parent
    users = [str(p.relative_to(root)) for p in root.rglob("*.py")
             if "dependency_overrides" in p.read_text(encoding="utf-8")]
    assert users == []

