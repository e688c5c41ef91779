"""The box's HTTP API: every endpoint, and bad input answered with a clear 4xx, never 500."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from common.clock import ManualClock
from controller.box import Box
from controller.web import create_app


class StaffTokens(httpx.Auth):
    """Sends the bearer token the API wants (docs/api.md): the teller's of the window the
    request is for, else the lobby manager's."""

    def __init__(self) -> None:
        self.windows: dict[int, str] = {}
        self.lobby: str | None = None

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        m = re.match(r"^/api/windows/(\d+)/", request.url.path)
        token = self.windows.get(int(m.group(1))) if m else self.lobby
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


@pytest.fixture
async def api(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(box), raise_app_exceptions=True)
    tokens = StaffTokens()
    async with httpx.AsyncClient(transport=transport, base_url="http://box",
                                 auth=tokens) as client:
        r = await client.post("/api/auth/lobby", json={"user": "lm1", "password": "1234"})
        tokens.lobby = r.json()["token"]
        yield client


async def ticket(api: httpx.AsyncClient, queue: str = "A") -> dict:
    r = await api.post("/api/tickets", json={"queue": queue})
    assert r.status_code == 201, r.text
    return r.json()


async def login(api: httpx.AsyncClient, window: int = 1, teller: str = "t1") -> None:
    r = await api.post(f"/api/windows/{window}/login", json={"teller": teller, "password": "1234"})
    assert r.status_code == 200, r.text
    api.auth.windows[window] = r.json()["token"]  # type: ignore[attr-defined]


def error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code
    assert body["message"] and body["message_en"]
    return body


# --- tickets ------------------------------------------------------------------------------------


async def test_issue_a_ticket(api: httpx.AsyncClient) -> None:
    first, second = await ticket(api), await ticket(api)
    assert (first["number"], first["ahead"]) == ("A001", 0)
    assert (second["number"], second["ahead"]) == ("A002", 1)
    assert second["id"] == "20261125-A002"
    assert second["issued_at"] == "2026-11-25T10:00:00+08:00"
    assert second["queue_name"] == "个人业务"
    assert second["printed"] is None  # this box has no printer


async def test_issue_by_card(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/tickets", json={"card": "6225880137001237"})
    assert r.status_code == 201
    assert (r.json()["queue"], r.json()["stars"]) == ("V", 5)


async def test_special_range_ticket_carries_its_notice(api: httpx.AsyncClient) -> None:
    t = await ticket(api, "T")
    assert (t["number"], t["notice"]) == ("T0001", "该叫号纸只能办理挂失改密业务")


async def test_list_and_get_tickets(api: httpx.AsyncClient) -> None:
    await ticket(api)
    await ticket(api, "B")
    listing = (await api.get("/api/tickets", params={"day": "2026-11-25"})).json()
    assert [t["number"] for t in listing["tickets"]] == ["A001", "B001"]
    assert {t["state"] for t in listing["tickets"]} == {"waiting"}
    one = (await api.get("/api/tickets/a001")).json()
    assert (one["number"], one["ahead"]) == ("A001", 0)


async def test_list_a_past_day_from_the_journal(api: httpx.AsyncClient, clock: ManualClock
                                                ) -> None:
    await ticket(api)
    clock.advance(86400)
    await ticket(api)
    yesterday = (await api.get("/api/tickets", params={"day": "2026-11-25"})).json()
    assert [(t["number"], t["state"]) for t in yesterday["tickets"]] == [("A001", "not_served")]
    today = (await api.get("/api/tickets")).json()
    assert [t["number"] for t in today["tickets"]] == ["A001"] and today["day"] == "2026-11-26"


async def test_insert_front(api: httpx.AsyncClient) -> None:
    for _ in range(3):
        await ticket(api)
    r = await api.post("/api/tickets/A003/insert-front")
    assert r.json()["ahead"] == 0


# --- windows ------------------------------------------------------------------------------------


async def test_a_teller_serves_a_customer_end_to_end(api: httpx.AsyncClient) -> None:
    await ticket(api)
    await login(api)
    called = (await api.post("/api/windows/1/call-next")).json()
    assert called["current"]["number"] == "A001"
    assert (await api.post("/api/windows/1/recall")).json()["events"] == ["ticket_recalled"]
    done = await api.post("/api/windows/1/finish", json={"ask_rating": True})
    assert done.json()["current"] is None
    rated = (await api.post("/api/windows/1/rating", json={"score": 5})).json()
    assert (rated["number"], rated["level"], rated["bad"]) == ("A001", "非常满意", False)
    assert rated["message"] == "谢谢您对我们工作的支持,再见"
    assert (await api.post("/api/windows/1/logout")).json()["state"] == "closed"


async def test_no_show_pause_resume_hold_call_back(api: httpx.AsyncClient) -> None:
    await ticket(api)
    await ticket(api)
    await login(api)
    await api.post("/api/windows/1/call-next")
    assert (await api.post("/api/windows/1/no-show")).json()["events"] == ["ticket_no_show"]
    await api.post("/api/windows/1/call-next")
    assert (await api.post("/api/windows/1/hold")).json()["current"] is None
    back = (await api.post("/api/windows/1/call-back", json={"number": "A001"})).json()
    assert back["current"]["number"] == "A001"
    assert (await api.post("/api/windows/1/pause")).json()["state"] == "paused"
    assert (await api.post("/api/windows/1/resume")).json()["state"] == "open"


async def test_transfer_to_a_window_and_to_a_business(api: httpx.AsyncClient) -> None:
    await ticket(api)
    await login(api, 1, "t1")
    await login(api, 4, "t2")
    await api.post("/api/windows/1/call-next")
    r = await api.post("/api/windows/1/transfer", json={"to_queue": "B"})
    assert r.json()["events"] == ["ticket_transferred"]
    called = (await api.post("/api/windows/4/call-next")).json()
    assert called["current"]["number"] == "A001"  # keeps its number, now in 对公业务
    r = await api.post("/api/windows/4/transfer", json={"to_window": 1})
    assert r.status_code == 200


async def test_status(api: httpx.AsyncClient) -> None:
    await ticket(api)
    await ticket(api, "B")
    await login(api)
    await api.post("/api/windows/1/call-next")
    s = (await api.get("/api/status")).json()
    assert s["waiting_total"] == 1
    assert {q["id"]: q["waiting"] for q in s["queues"]}["B"] == 1
    w1 = next(w for w in s["windows"] if w["number"] == 1)
    assert (w1["state"], w1["current"], w1["teller_name"]) == ("serving", "A001", "王丽")


async def test_pause_a_business_and_the_kiosk_refuses_in_its_words(api: httpx.AsyncClient
                                                                   ) -> None:
    r = await api.post("/api/queues/A/pause", json={"reason": "网络故障"})
    assert r.status_code == 200
    body = error(await api.post("/api/tickets", json={"queue": "A"}), 409, "queue_paused")
    assert "因网络故障原因暂时不能办理" in body["message"]
    await api.post("/api/queues/A/resume")
    assert (await ticket(api))["number"] == "A001"


async def test_kiosk_sign_out_and_in(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/kiosk/sign-out")).json() == {"kiosk_open": False}
    error(await api.post("/api/tickets", json={"queue": "A"}), 409, "kiosk_signed_out")
    assert (await api.post("/api/kiosk/sign-in")).json() == {"kiosk_open": True}


async def test_openapi_and_public_config(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    assert "/api/tickets" in spec["paths"] and "/api/windows/{n}/call-next" in spec["paths"]
    conf = (await api.get("/api/config")).json()
    assert [q["id"] for q in conf["queues"]] == ["A", "B", "V", "T", "F"]
    assert "password_hash" not in str(conf) and "6225880137001237" not in str(conf)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", "/api/tickets", {"queue": "Z"}, 404, "unknown_queue"),
        ("post", "/api/tickets", {}, 422, "invalid_request"),
        ("post", "/api/tickets", {"queue": "A", "card": "1"}, 422, "invalid_request"),
        ("post", "/api/tickets", {"queue": 5}, 422, "invalid_request"),
        ("post", "/api/tickets", {"card": "12ab"}, 422, "invalid_card"),
        ("post", "/api/windows/1/login", {"teller": "t1", "password": "0000"}, 401,
         "wrong_password"),
        ("post", "/api/windows/1/login", {"teller": "t1"}, 422, "invalid_request"),
        ("post", "/api/windows/99/call-next", None, 404, "unknown_window"),
        ("post", "/api/windows/0/call-next", None, 404, "not_found"),  # not a plain 1-999
        ("post", "/api/windows/x/call-next", None, 404, "not_found"),
        ("post", "/api/windows/1/call-next", None, 401, "login_required"),
        ("post", "/api/windows/1/rating", {"score": 3}, 401, "login_required"),
        ("get", "/api/tickets/A999", None, 404, "unknown_ticket"),
        ("get", "/api/tickets/%00", None, 422, "invalid_request"),
        ("get", "/api/tickets?day=yesterday", None, 422, "invalid_request"),
        ("post", "/api/queues/A/pause", {"reason": ""}, 422, "invalid_request"),
        ("post", "/api/queues/Q/pause", {"reason": "x"}, 404, "unknown_queue"),
        ("get", "/api/nothing-here", None, 404, "not_found"),
    ],
)
async def test_bad_requests_get_a_clear_error(api: httpx.AsyncClient, method: str, path: str,
                                              body: dict | None, status: int, code: str) -> None:
    r = await api.request(method.upper(), path, json=body)
    error(r, status, code)


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/api/windows/1/rating", {"score": 0}, 422, "invalid_request"),
        ("/api/windows/1/rating", {"score": 3}, 404, "no_service_to_rate"),
        ("/api/windows/1/transfer", {}, 422, "invalid_request"),
    ],
)
async def test_bad_window_requests_of_a_logged_in_teller(
    api: httpx.AsyncClient, path: str, body: dict, status: int, code: str
) -> None:
    await login(api)
    error(await api.post(path, json=body), status, code)


async def test_malformed_json(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/tickets", content=b'{"queue": ',
                       headers={"content-type": "application/json"})
    error(r, 400, "malformed_json")


async def test_second_rating_is_refused(api: httpx.AsyncClient) -> None:
    await ticket(api)
    await login(api)
    await api.post("/api/windows/1/call-next")
    await api.post("/api/windows/1/finish")
    assert (await api.post("/api/windows/1/rating", json={"score": 4})).status_code == 200
    body = error(await api.post("/api/windows/1/rating", json={"score": 1}), 409,
                 "already_rated")
    assert "谢谢您对我们工作的支持,再见" in body["message"]


async def test_call_next_on_a_paused_window(api: httpx.AsyncClient) -> None:
    await ticket(api)
    await login(api)
    await api.post("/api/windows/1/pause")
    error(await api.post("/api/windows/1/call-next"), 409, "window_paused")


async def test_outside_hours(api: httpx.AsyncClient, clock: ManualClock) -> None:
    clock.advance(9 * 3600)  # 19:00
    body = error(await api.post("/api/tickets", json={"queue": "A"}), 409, "outside_hours")
    assert "08:30-17:00" in body["message"]
