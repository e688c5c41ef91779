"""Behind a load balancer each request may reach another centre instance: a session and its
CSRF token made on one work on every other (both live in the store), and every instance
must share the customers' secret (an instance with another one is refused at start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.__main__ import main
from central.broker import LocalBroker
from central.privacy import Vault, check_shared
from central.store import open_store
from tests.office_support import ADMIN, ADMIN_PW, http_client, office_running
from tests.uplink_support import broker_fixture, pg_url_fixture, store_url_fixture

__all__ = ["broker_fixture", "pg_url_fixture", "store_url_fixture"]


async def test_log_in_on_one_instance_act_on_the_other(broker: LocalBroker,
                                                      store_url: str) -> None:
    async with office_running(broker, store_url) as a, office_running(broker, store_url) as b, \
            http_client(a) as on_a, http_client(b) as on_b:
        r = await on_a.post("/api/auth/login", json={"user": ADMIN, "password": ADMIN_PW})
        assert r.status_code == 200
        csrf = r.json()["csrf_token"]
        on_b.cookies.update(on_a.cookies)  # the browser's cookie, sent to the other instance
        node = {"code": "100103", "name": "开封分行", "kind": "city"}
        bare = await on_b.post("/api/orgs", json=node)  # B knows the session: CSRF still asked
        assert bare.status_code == 403 and bare.json()["error"]["code"] == "csrf_failed"
        ok = await on_b.post("/api/orgs", json=node, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 201, ok.text
        seen = await on_a.get("/api/orgs")  # and A sees what was done through B
        assert "100103" in seen.text
        out = await on_b.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code in (200, 204), out.text
        after = await on_a.post("/api/orgs", json={**node, "code": "100104"},
                                headers={"X-CSRF-Token": csrf})
        assert after.status_code == 401  # logged out on B: over on A too


def test_an_instance_with_another_customers_secret_is_refused(tmp_path: Path,
                                                             store_url: str) -> None:
    first, other = tmp_path / "a.key", tmp_path / "b.key"
    store = open_store(store_url)
    try:
        check_shared(store, Vault.from_file(first), first)
        check_shared(store, Vault.from_file(first), first)  # the same secret: fine, again
        from central.errors import CentreConfigError

        with pytest.raises(CentreConfigError, match="secret"):
            check_shared(store, Vault.from_file(other), other)
    finally:
        store.close()


def test_the_centre_does_not_start_with_another_instances_secret(
        tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    first, other = tmp_path / "a.key", tmp_path / "b.key"
    store = open_store(store_url)
    try:
        check_shared(store, Vault.from_file(first), first)
    finally:
        store.close()
    code = main(["--set", f"store.url={store_url}", "--set", f"customers.secret_file={other}",
                 "--set", "broker.url=mqtt://127.0.0.1:1", "--set", "http.enabled=false"])
    assert code == 2
    assert "customers.secret_file" in capsys.readouterr().err
