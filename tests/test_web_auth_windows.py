"""Nobody drives a window without its teller, however the window's number is spelled.

The number is read once, strictly (``1``–``999`` in plain decimal), by the dependency the
window routes take it through, which checks the teller's session for exactly that number;
any other spelling under ``/api/windows/`` is 404 before a handler runs
(controller/web/auth.py, docs/api.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from common.clock import ManualClock
from controller.box import Box
from controller.config import Config
from controller.engine import IssueTicket
from controller.web import create_app

from .uplink_support import wait_for

# Every route takes this body: valid for each of them, so a refusal is never the body's.
BODY = {"teller": "t1", "password": "1234", "to_queue": "B", "score": 5, "ask_rating": False}
SPELLINGS_OF_1 = ["+1", "1.0", "%201", "1%20", "01", "001", "%31", "%2B1", "%2b1", "-1", "1.",
                  "1e0", "0x1", " 1", "1 ", "%091", "１", "١", "१", "¹", "1_0", "1%2F", "%2F1"]


def engine_state(box: Box) -> tuple[int, dict[str, Any]]:
    """What a served command would change: the journal's last event and the engine's state."""
    return box.last_seq, box.engine.state.to_dict()


def window_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route under /api/windows/, included routers' too."""
    return sorted((m, r.path) for r in fastapi.routing.iter_route_contexts(app.routes)
                  if str(getattr(r, "path", "")).startswith("/api/windows/")
                  for m in r.methods or ())


@pytest.fixture
async def app(box: Box) -> Any:
    return create_app(box)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://box") as c:
        yield c


async def logged_in_with_a_customer(client: httpx.AsyncClient, box: Box) -> str:
    """Teller t1 at window 1 (a session there to hijack) and a customer waiting."""
    r = await client.post("/api/windows/1/login", json={"teller": "t1", "password": "1234"})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    await box.execute(IssueTicket(queue="A"))
    return str(r.json()["token"])


@pytest.mark.parametrize("spelling", SPELLINGS_OF_1)
async def test_a_window_spelled_otherwise_is_not_found_and_nothing_happens(
    client: httpx.AsyncClient, box: Box, spelling: str
) -> None:
    await logged_in_with_a_customer(client, box)
    before = engine_state(box)
    for action in ("call-next", "logout", "pause", "panel"):
        method = "GET" if action == "panel" else "POST"
        r = await client.request(method, f"/api/windows/{spelling}/{action}", json=BODY)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (action, r.text)
    assert engine_state(box) == before
    assert box.engine.state.window(1).teller == "t1"


async def test_the_right_teller_spelling_the_window_otherwise_gets_404_too(
    client: httpx.AsyncClient, box: Box
) -> None:
    token = await logged_in_with_a_customer(client, box)
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/api/windows/+1/call-next", headers=auth)).status_code == 404
    r = await client.post("/api/windows/1/call-next", headers=auth)
    assert r.status_code == 200 and r.json()["current"]["number"] == "A001"


async def test_a_window_nobody_configured_is_404_whoever_asks(
    client: httpx.AsyncClient, box: Box
) -> None:
    await logged_in_with_a_customer(client, box)
    for path in ("/api/windows/99/call-next", "/api/windows/999/login", "/api/windows/0/login",
                 "/api/windows/1000/call-next"):
        r = await client.post(path, json=BODY)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] in ("unknown_window", "not_found")


async def test_every_window_route_reads_its_window_through_the_teller_check(
    app: Any, box: Box
) -> None:
    from controller.web.auth import guard_window_routes

    assert {path.rsplit("/", 1)[1] for _, path in window_routes(app)} >= {
        "login", "logout", "call-next", "recall", "no-show", "finish", "pause", "resume",
        "transfer", "hold", "call-back", "rating", "panel"}
    guard_window_routes(app)  # the real app passes

    @app.post("/api/windows/{n}/open-the-safe")
    async def careless(n: int) -> dict[str, int]:  # a route added later without the check
        return {"window": n}

    with pytest.raises(RuntimeError, match="open-the-safe"):
        guard_window_routes(app)


PLAIN = {str(i): i for i in range(1, 1000)}


@given(st.one_of(st.text(max_size=5), st.sampled_from(sorted(PLAIN)),
                 st.integers(-10**6, 10**6).map(str)))
def test_only_a_plain_number_from_1_to_999_names_a_window(text: str) -> None:
    from controller.web.auth import window_number

    assert window_number(text) == PLAIN.get(text)


# --- generated spellings ---------------------------------------------------------------------

_DIGITS = {"1": "1١١१¹𝟏", "2": "2２٢२²𝟐"}


@st.composite
def spellings(draw: st.DrawFn) -> tuple[int, str]:
    """(the window meant, a path segment for it): signs, zeros, dots, spaces, other scripts'
    digits, percent-encodings (either case), slashes, huge numbers; sometimes plain."""
    meant = draw(st.sampled_from([1, 2]))
    digits = draw(st.one_of(
        st.just(str(meant)),
        st.sampled_from(_DIGITS[str(meant)]),
        st.builds(lambda z: "0" * z + str(meant), st.integers(1, 3)),
        st.builds(lambda k: str(meant) + "0" * k + str(meant), st.integers(2, 30)),
        st.sampled_from([str(meant + 1000), str(2**64 + meant), "1" * 40]),
    ))
    prefix = draw(st.sampled_from(["", "", "+", "-", " ", "\t", "0x", "/", ".", "%"]))
    suffix = draw(st.sampled_from(["", "", ".0", ".", " ", "\n", "e0", "/", "/.", "%00", "j"]))
    text = prefix + digits + suffix
    encode = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    upper = draw(st.booleans())
    out = "".join(
        "".join(f"%{b:02X}" if upper else f"%{b:02x}" for b in ch.encode()) if enc else ch
        for ch, enc in zip(text, encode, strict=True))
    return meant, draw(st.one_of(st.just(out), st.text(max_size=6)))


def test_no_spelling_drives_a_window_without_its_tellers_session(
    config: Config, clock: ManualClock, tmp_path: Path
) -> None:
    """For every route under /api/windows/ (read from the app, so new ones are covered),
    every spelling and every credential short of the teller's own for a plainly spelled
    window: never served, and nothing in the engine or the journal changes."""
    with asyncio.Runner() as runner:
        box = Box(config, tmp_path / "data", clock)
        runner.run(box.__aenter__())
        app = create_app(box)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://box")
        try:
            creds = runner.run(_credentials(client, box))
            routes = window_routes(app)

            @settings(max_examples=400, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])
            @given(route=st.sampled_from(routes), spelled=spellings(),
                   cred=st.sampled_from(sorted(creds)))
            def never_served(route: tuple[str, str], spelled: tuple[int, str], cred: str
                             ) -> None:
                method, template = route
                url = _url(template.replace("{n}", spelled[1]))
                plain = _plain_window(template, url)  # as sent: the client may have tidied it
                rightful = template.endswith("/login") or cred in (f"bearer{plain}", f"page{plain}")
                assume(not (plain and rightful))
                runner.run(_check(client, box, method, url, creds[cred], bool(plain)))

            never_served()
        finally:
            runner.run(client.aclose())
            runner.run(box.__aexit__(None, None, None))


async def _credentials(client: httpx.AsyncClient, box: Box) -> dict[str, dict[str, str]]:
    creds: dict[str, dict[str, str]] = {"none": {}}
    for window in (1, 2):
        r = await client.post(f"/api/windows/{window}/login",
                              json={"teller": f"t{window}", "password": "1234"})
        creds[f"bearer{window}"] = {"Authorization": f"Bearer {r.json()['token']}"}
    csrf = r.json()["csrf_token"]
    cookie = client.cookies["paidui_teller"]  # window 2's page session, complete
    client.cookies.clear()
    creds["page2"] = {"Cookie": f"paidui_teller={cookie}", "X-CSRF-Token": csrf,
                      "Origin": "http://box"}
    r = await client.post("/api/auth/lobby", json={"user": "lm1", "password": "1234"})
    creds["lobby"] = {"Authorization": f"Bearer {r.json()['token']}"}
    client.cookies.clear()
    for name in ("bearer1", "bearer2", "page2"):  # each works where it should
        r = await client.get(f"/api/windows/{name[-1]}/panel", headers=creds[name])
        assert r.status_code == 200, (name, r.text)
    for _ in range(3):
        await box.execute(IssueTicket(queue="A"))
    return creds


def _plain_window(template: str, url: httpx.URL) -> int:
    """The window ``url`` names plainly in ``template``'s place for it (any window, not only
    those with a teller logged in: ``/api/windows/3/…`` is refused, not unknown), else 0."""
    from controller.web.auth import window_number

    before, after = template.split("{n}")
    raw = url.raw_path.decode("ascii")
    if not (raw.startswith(before) and raw.endswith(after)):
        return 0
    return window_number(raw[len(before):len(raw) - len(after)]) or 0


def _url(path: str) -> httpx.URL:
    """The URL a client sends for ``path`` (control characters must go percent-encoded)."""
    return httpx.URL("http://box" + "".join(
        f"%{ord(ch):02X}" if ch.isascii() and not ch.isprintable() else ch for ch in path))


async def _check(client: httpx.AsyncClient, box: Box, method: str, url: httpx.URL,
                 headers: dict[str, str], plain: bool) -> None:
    before = engine_state(box)
    r = await client.request(method, url, json=BODY, headers=headers)
    assert r.status_code in ((401, 403, 404) if plain else (404,)), (method, url, r.text)
    assert engine_state(box) == before, (method, url)


# --- on the wire ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[int]:
    """``app`` on the box's own HTTP server (common/httpserver.py) on a loopback port,
    on this test's loop; yields the port."""
    from common.httpserver import http_server
    from tests.browser import free_port

    port = free_port()
    server = http_server(app, "127.0.0.1", port, graceful_s=2)
    task = asyncio.ensure_future(server.serve())
    try:
        await wait_for(lambda: server.started or task.done(), 15, "the server to listen")
        assert not task.done(), task.result()
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def raw_request(port: int, target: bytes, token: str | None = None) -> int:
    """The status of ``POST <target>`` sent byte for byte, as no client library would."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = f"Authorization: Bearer {token}\r\n".encode() if token else b""
    writer.write(b"POST " + target + b" HTTP/1.1\r\nHost: 127.0.0.1:" + str(port).encode()
                 + b"\r\n" + auth + b"Content-Type: application/json\r\nContent-Length: 2"
                 b"\r\nConnection: close\r\n\r\n{}")
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


WIRE_SPELLINGS = [
    b"/api/windows/%2B1/call-next", b"/api/windows/+1/call-next",
    b"/api/windows/%2b1/call-next", b"/api/windows/1.0/call-next",
    b"/api/windows/%201/call-next", b"/api/windows/1%20/call-next",
    b"/api/windows/%31/call-next", b"/api/windows/01/call-next",
    b"/api/windows/1%2Fcall-next", b"/api/windows/1%2fcall-next",
    b"/api/windows/./1/call-next", b"/api/windows/2/../1/call-next",
    b"/api/windows/1/./call-next", b"/api/windows//1/call-next",
    b"/api/windows/%EF%BC%91/call-next", b"/api/windows/\xef\xbc\x91/call-next",
    b"/api/windows/1/call%2Dnext", b"/api/windows/1/call-next%00",
    b"/api/windows/+1/call-next?x=1", b"/api/%77indows/1/call-next",
]


async def test_on_the_wire_no_spelling_is_served_even_to_the_teller(box: Box) -> None:
    app = create_app(box)
    async with serving(app) as port, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}") as http:
        r = await http.post("/api/windows/1/login", json={"teller": "t1", "password": "1234"})
        token = r.json()["token"]
        for _ in range(2):
            await box.execute(IssueTicket(queue="A"))
        before = engine_state(box)
        for target in [*WIRE_SPELLINGS, f"http://127.0.0.1:{port}".encode() + WIRE_SPELLINGS[0]]:
            for cred in (None, token):
                status = await raw_request(port, target, cred)
                assert status in (400, 404), (target, cred, status)
        assert engine_state(box) == before
        # the plain spelling reaches the handler: the check above could have seen a call
        assert await raw_request(port, b"/api/windows/1/call-next") == 401
        assert await raw_request(port, b"/api/windows/1/call-next", token) == 200
        assert box.engine.state.window(1).current is not None
