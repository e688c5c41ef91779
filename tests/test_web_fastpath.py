"""The kiosk's ticket and the teller's call-next past FastAPI's routing
(controller/web/fastpath.py) answer exactly what the routes answer through FastAPI: the
same statuses, bodies and headers, the same refusals to a caller without the window's
session, the same idempotent repeats; whatever the fast path is not sure of is FastAPI's
answer itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from controller.box import Box
from controller.web import create_app, fastpath
from controller.web.fastpath import FastPath

KEY = "k-0123456789abcdef"


def client_of(box: Box, fast: bool) -> httpx.AsyncClient:
    app = create_app(box)
    if not fast:  # the app as it was: every request through FastAPI's routing
        app.user_middleware = [m for m in app.user_middleware if m.cls is not FastPath]
    transport = httpx.ASGITransport(app=app, client=("10.0.0.21", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://box")


@pytest.fixture
async def both(box: Box, monkeypatch: pytest.MonkeyPatch
               ) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, list[str]]]:
    """(the app with the fast path, the app without, the paths the fast path answered)."""
    taken: list[str] = []
    answer = fastpath._answer

    async def counted(scope: Any, *args: Any) -> None:
        taken.append(scope["path"])
        await answer(scope, *args)

    monkeypatch.setattr(fastpath, "_answer", counted)
    async with client_of(box, True) as fast, client_of(box, False) as slow:
        yield fast, slow, taken


def shape(r: httpx.Response) -> tuple[int, Any, str | None, str | None]:
    """What a client sees of an answer, but for the ticket's own values."""
    body = r.json()
    if isinstance(body, dict) and "error" not in body:
        body = sorted(body)
    return (r.status_code, body, r.headers.get("content-type"),
            r.headers.get("idempotent-replayed"))


async def login(api: httpx.AsyncClient, window: int) -> dict[str, str]:
    r = await api.post(f"/api/windows/{window}/login", json={"teller": f"t{window}",
                                                              "password": "1234"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def test_a_ticket_and_a_call_are_answered_as_through_fastapi(both: Any) -> None:
    fast, slow, taken = both
    for keyed in ({}, {"Idempotency-Key": KEY}, {"Idempotency-Key": KEY}):
        a = await fast.post("/api/tickets", json={"queue": "A"}, headers=keyed)
        b = await slow.post("/api/tickets", json={"queue": "A"}, headers=keyed)
        assert shape(a) == shape(b) and a.status_code == 201
    assert a.headers["idempotent-replayed"] == "true"  # the third: a repeat of the second
    for _ in range(4):  # the keyed ones above were one ticket: four more to call
        assert (await fast.post("/api/tickets", json={"queue": "A"})).status_code == 201
    one, two = await login(fast, 1), await login(slow, 2)
    for window, headers in ((1, one), (2, two)):
        a = await fast.post(f"/api/windows/{window}/call-next", headers=headers)
        b = await slow.post(f"/api/windows/{window}/call-next", headers=headers)
        assert a.status_code == 200 and shape(a) == shape(b)
        assert a.json()["window"] == window and a.json()["current"]["number"]
    assert taken == ["/api/tickets"] * 7 + ["/api/windows/1/call-next",
                                            "/api/windows/2/call-next"]


@pytest.mark.parametrize(("path", "headers"), [
    ("/api/windows/1/call-next", {}),  # no session
    ("/api/windows/1/call-next", "window 2"),  # another window's teller
    ("/api/windows/9/call-next", "window 1"),  # no such window
    ("/api/windows/1/call-next", {"Authorization": "Bearer pd1.forged.sig"}),
    ("/api/windows/1/call-next", {"Cookie": "paidui_teller=x"}),
])
async def test_a_call_is_refused_to_whom_fastapi_refuses_it(both: Any, path: str,
                                                           headers: Any) -> None:
    fast, slow, _ = both
    await fast.post("/api/tickets", json={"queue": "A"})
    if isinstance(headers, str):
        headers = await login(fast, int(headers.split()[1]))
    a, b = await fast.post(path, headers=headers), await slow.post(path, headers=headers)
    assert a.status_code in (401, 403, 404) and shape(a) == shape(b)


@pytest.mark.parametrize(("content", "headers"), [
    (b'{"queue": "A"', {"Content-Type": "application/json"}),  # not JSON: 400
    (b'{"queue": "A", "card": "1"}', {"Content-Type": "application/json"}),  # 422
    (b'{"queue": "Z"}', {"Content-Type": "application/json"}),  # no such business
    (b'["A"]', {"Content-Type": "application/json"}),
    (b"", {"Content-Type": "application/json"}),
    (b'{"queue": "A"}', {"Content-Type": "text/plain"}),
    (b'{"queue": "A"}', {"Content-Type": "application/json; charset=utf-8"}),
    (b'{"queue": "A"}', {"Content-Type": "application/json", "Idempotency-Key": "short"}),
    (b'{"queue": "' + "é".encode() * 20 + b'"}', {"Content-Type": "application/json"}),
])
async def test_a_ticket_not_plainly_asked_for_gets_fastapis_answer(
        both: Any, content: bytes, headers: dict[str, str]) -> None:
    fast, slow, _ = both
    a = await fast.post("/api/tickets", content=content, headers=headers)
    b = await slow.post("/api/tickets", content=content, headers=headers)
    assert shape(a) == shape(b)
    assert a.status_code in (201, 400, 404, 415, 422)
