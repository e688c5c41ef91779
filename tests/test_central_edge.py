"""The centre's HTTP edge (central/edge.py): who the client is behind a proxy, bodies capped
before they are read, 422s that echo nothing, per-address rate limits on the public routes
and their concurrency cap, with staff requests answered through a public flood."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from central.broker import LocalBroker, free_port
from central.edge import Buckets, Edge, client_key, invalid_request, route_kind
from central.service import Centre
from central.web import create_app
from common.clock import ManualClock
from common.httpserver import http_server
from tests.customer_support import CentreProcess, plain_centre, staff
from tests.office_support import server_running
from tests.uplink_support import broker_fixture, wait_for

__all__ = ["broker_fixture"]


@contextlib.asynccontextmanager
async def served(centre: Centre) -> AsyncIterator[tuple[int, Any]]:
    """The centre's app on the real server (common/httpserver.py) on a free loopback
    port, in this process; yields (port, app)."""
    app = create_app(centre)
    port = free_port()
    server = http_server(app, "127.0.0.1", port, graceful_s=1,
                         proxies=centre.config.http.trusted_proxies)
    async with server_running(server):
        yield port, app


def edge_of(app: Any) -> Edge:
    """The app's :class:`Edge` (built with the middleware stack on the first request)."""
    layer = app.middleware_stack
    while not isinstance(layer, Edge):
        layer = layer.app
    return layer


def client(app: Any, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 4321)),
                             base_url="http://centre")


async def exchange(port: int, data: bytes, local: str = "127.0.0.1",
                   timeout: float = 5.0) -> bytes:
    """Send ``data`` on a new connection; what the server answers (until it closes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(data)
            await writer.drain()
        return await asyncio.wait_for(reader.read(1 << 16), timeout)
    finally:
        writer.close()


# --- who the client is ---------------------------------------------------------------------


ACT = ("http.public.act_burst=3", "http.public.act_per_s=0.001")


def posts(url: str, xff: list[str | None], local: str = "127.0.0.1") -> list[int]:
    """POST a sign-in (any answer but 429 is "not limited") once per X-Forwarded-For."""
    out = []
    with httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=local)) as c:
        for fwd in xff:
            headers = {"X-Forwarded-For": fwd} if fwd else {}
            r = c.post("/api/public/login", json={"phone": "13800000000", "code": "000000"},
                       headers=headers)
            out.append(r.status_code)
    return out


def test_forwarded_for_is_believed_only_from_the_named_proxies(
        tmp_path: Path, broker: LocalBroker) -> None:
    spoofed = [f"203.0.113.{i}" for i in range(1, 5)]
    default = CentreProcess(tmp_path / "a", broker, *ACT)
    (tmp_path / "a").mkdir()
    default.start()
    try:  # uvicorn alone believes 127.0.0.1: each spoofed address would get a bucket
        assert posts(default.url, list(spoofed))[-1] == 429
    finally:
        default.stop()
    proxied = CentreProcess(tmp_path / "b", broker, *ACT,
                            'http.trusted_proxies=["127.0.0.2", "10.0.0.0/8"]')
    (tmp_path / "b").mkdir()
    proxied.start()
    try:
        assert posts(proxied.url, list(spoofed))[-1] == 429  # 127.0.0.1 is not a proxy
        through = posts(proxied.url, ["198.51.100.7"] * 4, local="127.0.0.2")
        assert 429 not in through[:3] and through[3] == 429  # the client's own bucket
        assert 429 not in posts(proxied.url, ["198.51.100.8", "203.0.113.1, 198.51.100.9",
                                              None], local="127.0.0.2")
    finally:
        proxied.stop()


def test_the_box_never_believes_forwarded_headers() -> None:
    server = http_server(object(), "127.0.0.1", 0, graceful_s=1)
    assert server.config.proxy_headers is False
    proxied = http_server(object(), "127.0.0.1", 0, graceful_s=1, proxies=["10.0.0.1"])
    assert proxied.config.proxy_headers and proxied.config.forwarded_allow_ips == ["10.0.0.1"]


@given(st.text(max_size=80))
def test_any_forwarded_value_gets_a_short_key(host: str) -> None:
    key = client_key(host)
    assert len(key) <= 64 and key == client_key(host)


def test_ipv6_clients_are_counted_by_their_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == \
        "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("192.0.2.1") != client_key("192.0.2.2")


# --- bodies --------------------------------------------------------------------------------


async def test_big_bodies_are_refused_before_they_are_read(tmp_path: Path,
                                                           clock: ManualClock) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with plain_centre(store_url, tmp_path, clock) as (centre, _), \
            served(centre) as (port, _app):
        for path, method in (("/api/public/login/code", "POST"),  # public
                             ("/api/auth/login", "POST"),  # staff
                             ("/api/orgs/1001/media/big.mp4", "PUT")):  # the media upload
            head = (f"{method} {path} HTTP/1.1\r\nHost: centre\r\nContent-Type: "
                    f"application/json\r\nContent-Length: {300 << 20}\r\n\r\n").encode()
            started = time.monotonic()
            answer = await exchange(port, head + b'{"phone": "')  # and nothing more
            assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
            assert b"body_too_large" in answer and time.monotonic() - started < 4
        chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
        answer = await exchange(port, b"POST /api/public/login/code HTTP/1.1\r\nHost: centre\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 8)  # 128 KiB…
        assert answer.startswith(b"HTTP/1.1 413")
        fits = b'{"phone": "' + b"1" * 60000 + b'"}'  # under 64 KiB: read, then refused
        answer = await exchange(port, b"POST /api/public/login/code HTTP/1.1\r\nHost: c\r\n"
                                b"Content-Type: application/json\r\nContent-Length: "
                                + str(len(fits)).encode() + b"\r\n\r\n" + fits)
        assert answer.startswith(b"HTTP/1.1 422") and b"1111111111" not in answer


async def test_validation_errors_do_not_echo_the_request(tmp_path: Path,
                                                         clock: ManualClock) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with plain_centre(store_url, tmp_path, clock) as (_centre, api):
        secret = "<script>alert(1)</script>\u202e\x1b[31m" + "9" * 2000
        r = await api.post("/api/public/login/code", json={"phone": secret})
        assert r.status_code == 422 and "alert" not in r.text and "9999" not in r.text
        assert r.json()["error"]["code"] == "invalid_request"
        assert "phone" in r.json()["error"]["message_en"] and r.json()["error"]["message"]
        r = await api.post("/api/public/login/code", content=b'{"phone": "secret-' + b"8" * 500,
                           headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "malformed_json"
        assert "secret" not in r.text and "8888" not in r.text
        r = await api.post("/api/public/login/code", json={"phone": "1", "\u202eextra\x00": 1})
        assert r.status_code in (200, 422, 429) and "\u202e" not in r.text


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(min_size=21), st.integers(), st.none(), st.lists(st.text()),
                 st.dictionaries(st.text(), st.text())))
def test_no_value_is_ever_echoed(value: Any) -> None:
    from central.customers import CodeRequest

    with pytest.raises(ValidationError) as caught:
        CodeRequest.model_validate({"phone": value})
    from fastapi.exceptions import RequestValidationError

    answer = asyncio.run(invalid_request(None, RequestValidationError(  # type: ignore[arg-type]
        caught.value.errors())))
    body = bytes(answer.body).decode()
    assert answer.status_code == 422 and "\u202e" not in body
    if isinstance(value, str) and len(value.strip()) > 8:
        assert value not in body


# --- rate limits ---------------------------------------------------------------------------


def test_buckets_refill_and_stay_bounded() -> None:
    now = [0.0]
    b = Buckets(rate=2.0, burst=3, max_keys=100, clock=lambda: now[0])
    assert [b.take("a") for _ in range(3)] == [0, 0, 0]
    assert b.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert b.take("a") == 0 and b.take("a") > 0
    for i in range(1000):
        b.take(f"10.0.{i // 256}.{i % 256}")
    assert len(b.table) == 100 and "a" not in b.table  # least recently used went first


@pytest.mark.parametrize(("method", "path", "kind"), [
    ("GET", "/api/public/branches", "read"), ("HEAD", "/api/public/nearby", "read"),
    ("POST", "/api/public/login/code", "act"), ("POST", "/api/public/bookings", "act"),
    ("POST", "/api/public/tickets", "act"), ("POST", "/api/sms/inbound", "sms"),
    ("GET", "/m", "read"), ("GET", "/m/bookings", "read"), ("GET", "/b/1001010001/t/x", "read"),
    ("GET", "/yy/1001010001/2026-11-25/abc", "read"), ("GET", "/static/customer/app.js", "read"),
    ("GET", "/api/branches", None), ("POST", "/api/auth/login", None), ("GET", "/login", None),
    ("GET", "/media", None), ("GET", "/mx", None), ("PUT", "/api/orgs/1001/media/a.png", None),
    ("GET", "/api/staff/appointments", None), ("GET", "/static/app.js", None)])
def test_route_kinds(method: str, path: str, kind: str | None) -> None:
    assert route_kind(method, path) == kind


async def test_public_routes_are_limited_per_address_and_staff_never(
        tmp_path: Path, clock: ManualClock) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with plain_centre(store_url, tmp_path, clock, "http.public.act_burst=5",
                            "http.public.read_burst=20", "http.public.max_addresses=50",
                            # no refill while the test runs, however slow the machine
                            "http.public.act_per_s=0.001", "http.public.read_per_s=0.001",
                            ) as (centre, _api):
        app = create_app(centre)
        async with client(app, "198.51.100.1") as one, client(app, "198.51.100.2") as two, \
                client(app, "2001:db8::1") as six, client(app, "2001:db8::2:1") as six_b:
            codes = [(await one.post("/api/public/login/code", json={"phone": "1"})).status_code
                     for _ in range(6)]
            assert 429 not in codes[:5] and codes[5] == 429
            refused = await one.post("/api/public/login", json={"phone": "1", "code": "1"})
            assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
            error = refused.json()["error"]
            assert error["code"] == "rate_limited" and "秒后再试" in error["message"]
            assert "try again in" in error["message_en"]
            assert (await one.get("/api/public/branches")).status_code == 200  # reads: own bucket
            assert (await two.post("/api/public/login/code",  # another address: its own
                                   json={"phone": "1"})).status_code != 429
            for _ in range(5):
                await six.post("/api/public/login/code", json={"phone": "1"})
            assert (await six_b.post("/api/public/login/code",  # the same /64
                                     json={"phone": "1"})).status_code == 429
            for _ in range(25):
                await one.get("/api/public/branches")
            assert (await one.get("/m")).status_code == 429  # pages share the reads' bucket
            # the staff routes of a limited address: never this edge's 429
            admin = await staff(one)
            for _ in range(30):
                r = await one.get("/api/branches", headers=admin)
                assert r.status_code == 200
            for i in range(200):  # many addresses: the table keeps at most 50 per kind
                async with client(app, f"10.9.{i // 200}.{i % 200}") as many:
                    await many.get("/api/public/branches")
            assert len(edge_of(app).buckets["read"].table) == 50
            assert edge_of(app).refused["rate_limited"] >= 3


# --- load shedding -------------------------------------------------------------------------


async def public_flood(port: int, n: int) -> list[int]:
    """``n`` public requests at once from n loopback addresses; their statuses."""
    async def one(i: int) -> int:
        local = f"127.0.{1 + i // 250}.{1 + i % 250}"
        answer = await exchange(port, b"GET /api/public/branches HTTP/1.1\r\nHost: c\r\n"
                                b"Connection: close\r\n\r\n", local=local, timeout=30)
        return int(answer.split(b" ", 2)[1]) if answer else 0

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def test_public_load_is_shed_and_staff_answered(tmp_path: Path,
                                                      clock: ManualClock) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with plain_centre(store_url, tmp_path, clock, "http.public.max_in_flight=4",
                            "customers.status_ttl_s=0.0001") as (centre, api), \
            served(centre) as (port, app):
        admin = await staff(api)
        flood = asyncio.ensure_future(public_flood(port, 400))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=admin) as s:
            await wait_for(lambda: app.middleware_stack is not None
                           and edge_of(app).refused["busy"] > 0, 10,
                           "the public flood at its cap")
            started = time.monotonic()
            r = await s.get("/api/branches")
            took = time.monotonic() - started
        statuses = await flood
        assert r.status_code == 200 and took < 10  # generous: figures in bench/
        assert set(statuses) <= {200, 503} and statuses.count(200) >= 4
        assert statuses.count(503) > 0 and edge_of(app).in_flight == 0
        busy = await exchange(port, b"GET /api/public/branches HTTP/1.1\r\nHost: c\r\n\r\n")
        assert busy.startswith(b"HTTP/1.1 200")  # the cap frees as requests end


async def test_a_refused_connection_is_kept_and_not_read_for_retry_after(
        tmp_path: Path, clock: ManualClock) -> None:
    from tests.flood_support import read_response

    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    get = b"GET /api/public/branches HTTP/1.1\r\nHost: c\r\n\r\n"
    async with plain_centre(store_url, tmp_path, clock, "http.public.read_burst=1",
                            "http.public.read_per_s=1") as (  # no refill before the 2nd
            centre, _), served(centre) as (port, _app):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            statuses = []
            for _ in range(2):
                writer.write(get)
                statuses.append((await asyncio.wait_for(read_response(reader), 5))[0])
            assert statuses == [200, 429]
            started = time.monotonic()
            writer.write(get)  # at once, on the same connection: held for Retry-After (1 s)
            status, _ = await asyncio.wait_for(read_response(reader), 5)
            assert status == 200 and time.monotonic() - started >= 0.8
        finally:
            writer.close()
