"""The org tree a page at a time (issue 19): a node's children, a picker's search, the
names of the codes on screen; each answers staff only, within the caller's scope, bounded.

A centre on the demo organisation (examples/centre.toml: 1001 → 100101, 100102 → seven
sub-branches), spoken to through its real ASGI app.
"""

from __future__ import annotations

import pytest

from central.broker import LocalBroker

from .office_support import B1, B2, B3, add_user, http_client, login, office_running
from .uplink_support import broker_fixture, pg_url_fixture, store_url_fixture

__all__ = ["broker_fixture", "pg_url_fixture", "store_url_fixture"]

pytestmark = pytest.mark.network

ROUTES = ("/api/orgs", "/api/orgs/children", "/api/orgs/children?parent=1001",
          "/api/orgs/search?q=1001", f"/api/orgs/names?codes={B1}")


async def test_nobody_without_a_session_gets_any_of_the_tree(broker: LocalBroker,
                                                             store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        for path in ROUTES:
            r = await http.get(path)
            assert r.status_code == 401, path
            assert "orgs" not in r.json()


async def test_the_dashboard_opens_a_node_by_loading_its_children(broker: LocalBroker,
                                                                   store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        roots = (await http.get("/api/orgs/children", headers=admin)).json()
        assert [(o["code"], o["branches"], o["has_children"]) for o in roots["orgs"]] == [
            ("1001", 7, True)]
        cities = (await http.get("/api/orgs/children?parent=1001", headers=admin)).json()
        assert [(o["code"], o["name"], o["branches"]) for o in cities["orgs"]] == [
            ("100101", "郑州分行", 4), ("100102", "洛阳分行", 3)]
        first = (await http.get("/api/orgs/children?parent=100101&limit=3",
                                headers=admin)).json()
        assert [o["code"] for o in first["orgs"]] == [B1, B2, "1001010003"]
        assert first["more"] is True and first["next"] == "1001010003"
        rest = (await http.get("/api/orgs/children?parent=100101&limit=3&after=1001010003",
                               headers=admin)).json()
        assert [o["code"] for o in rest["orgs"]] == ["1001010004"] and rest["more"] is False
        assert (await http.get("/api/orgs/children?parent=1001990000",
                               headers=admin)).status_code == 404


async def test_a_viewer_gets_nothing_outside_its_own_subtree(broker: LocalBroker,
                                                            store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        city = await add_user(http, admin, "zz", "viewer", "100101")
        roots = (await http.get("/api/orgs/children", headers=city)).json()
        assert [o["code"] for o in roots["orgs"]] == ["100101"]  # its own node, not 1001
        for path in ("/api/orgs/children?parent=1001", "/api/orgs/children?parent=100102"):
            r = await http.get(path, headers=city)
            assert r.status_code == 403 and r.json()["error"]["code"] == "out_of_scope"
        found = (await http.get("/api/orgs/search?q=支行", headers=city)).json()["orgs"]
        assert {o["code"] for o in found} == {B1, B2, "1001010003", "1001010004"}
        assert (await http.get("/api/orgs/search?q=洛阳", headers=city)).json()["orgs"] == []
        names = (await http.get(f"/api/orgs/names?codes={B1},{B3},1001",
                                headers=city)).json()["orgs"]
        assert [o["code"] for o in names] == [B1]  # 洛阳's branch and the province left out
        listed = (await http.get("/api/orgs", headers=city)).json()["orgs"]
        assert B1 in {o["code"] for o in listed} and B3 not in {o["code"] for o in listed}


async def test_every_answer_is_bounded_and_odd_questions_are_refused(broker: LocalBroker,
                                                                     store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        for path in ("/api/orgs/children?limit=0", "/api/orgs/children?limit=1001",
                     "/api/orgs/children?parent=10a1", "/api/orgs?limit=5000",
                     "/api/orgs?after=x", "/api/orgs/search?limit=51",
                     "/api/orgs/search?q=%25", "/api/orgs/search?q=" + "金" * 41,
                     "/api/orgs/search?q=a_b", "/api/orgs/search?kind=bank",
                     "/api/orgs/names", "/api/orgs/names?codes=1001,abc",
                     "/api/orgs/names?codes=" + ",".join(str(10000 + n) for n in range(501))):
            r = await http.get(path, headers=admin)
            assert r.status_code == 422, (path, r.status_code)
        some = (await http.get("/api/orgs/search?q=&limit=2", headers=admin)).json()
        assert len(some["orgs"]) == 2 and some["more"] is True
        many = ",".join(str(10000 + n) for n in range(500))
        assert (await http.get(f"/api/orgs/names?codes={many}",
                               headers=admin)).json()["orgs"] == []
        page = (await http.get("/api/orgs?limit=4", headers=admin)).json()
        assert [o["code"] for o in page["orgs"]] == ["1001", "100101", B1, B2]
        assert page["more"] is True
