"""SMS commands at the centre (H4): received from the gateway, answered through it; and the
centre's HTTP gateway as an operator with a bearer token sees it, against a real local HTTP
server."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from central.sms import SmsError
from common.clock import ManualClock
from protocols import sms
from tests.customer_support import ID_NUMBER, plain_centre, put_catalogue, texts
from tests.sms_support import http as http_gateway
from tests.uplink_support import BRANCH

GATEWAY = "gateway-token"
SENDER = "13912345678"


async def test_an_sms_customer_registers_books_lists_and_cancels(
        tmp_path: Path, clock: ManualClock) -> None:
    async with plain_centre(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path, clock,
                            f"customers.sms.inbound_token={GATEWAY}") as (centre, api):
        assert centre.customers is not None
        await put_catalogue(centre.customers.appointments, clock)

        async def send(text: str) -> list[str]:
            r = await api.post("/api/sms/inbound", json={"from": SENDER, "text": text},
                               headers={"Authorization": f"Bearer {GATEWAY}"})
            assert r.status_code == 200, r.text
            assert r.json()["to"] == "139****5678"
            replies: list[str] = r.json()["replies"]
            assert texts(centre)[-len(replies):] == [("139****5678", t) for t in replies]
            assert all(len(t) <= 70 for t in replies)
            return replies

        assert "请发送:ZC 姓名 身份证号" in (await send(f"YY {BRANCH} A 4"))[0]
        assert "注册成功" in (await send(f"ZC 赵六 {ID_NUMBER}"))[0]
        booked = "".join(await send(f"yy+{BRANCH}+a+4"))
        assert "预约成功" in booked and "10:00" not in booked and "11:00-12:00" in booked
        code = booked.split("预约码")[1][:6]
        assert code[0] == "4"
        mine = "".join(await send("CXYY"))
        assert code in mine and "11-25" in mine
        tomorrow = "".join(await send(f"YY {BRANCH} B 1"))  # 08:00 has passed: tomorrow
        assert "2026-11-26" in tomorrow
        assert "已取消" in (await send(f"QXYY {code}"))[0]
        assert "该预约已取消" in (await send(f"QXYY {code}"))[0]
        assert "没有该预约" in (await send("QXYY 999999"))[0]
        helped = "".join(await send("HELLO"))
        assert helped.startswith("(1/") and "未知指令" in helped and "CXPD" in helped
        assert "网点" in (await send(f"CXPD {BRANCH}"))[0]  # no live picture yet: said so


async def test_the_inbound_route_is_for_the_gateway_only(tmp_path: Path,
                                                         clock: ManualClock) -> None:
    async with plain_centre(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path, clock,
                            f"customers.sms.inbound_token={GATEWAY}") as (_, api):
        for headers in ({}, {"Authorization": "Bearer nope"}):
            r = await api.post("/api/sms/inbound", json={"from": SENDER, "text": "BZ"},
                               headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "sms_gateway_only"
        r = await api.post("/api/sms/inbound", json={"from": "12", "text": "BZ"},
                           headers={"Authorization": f"Bearer {GATEWAY}"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_phone"
    async with plain_centre(f"sqlite:///{tmp_path / 'd.sqlite3'}", tmp_path, clock) as (_, api):
        r = await api.post("/api/sms/inbound", json={"from": SENDER, "text": "BZ"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "sms_inbound_off"


# --- the HTTP adapter --------------------------------------------------------------------------


class Operator(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Operator.received.append((self.headers.get("Authorization", ""), body))
        self.send_response(Operator.status)
        self.end_headers()
        self.wfile.write(b'{"ok":true}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def operator() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Operator)
    thread = threading.Thread(target=server.serve_forever, name="sms-operator", daemon=True)
    thread.start()
    Operator.received.clear()
    Operator.status = 200
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sms"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_the_http_gateway_posts_json_with_its_token(operator: str) -> None:
    gw = http_gateway(operator, token="op-token", timeout_s=5)
    await gw.send(SENDER, sms.HELP[:60])
    assert Operator.received == [("Bearer op-token", {"to": SENDER, "text": sms.HELP[:60]})]
    Operator.status = 500
    with pytest.raises(SmsError):
        await gw.send(SENDER, "x")
    with pytest.raises(SmsError) as err:
        await http_gateway("http://127.0.0.1:9/none", timeout_s=1).send(SENDER, "x")
    assert SENDER not in str(err.value)


async def test_cxpd_answers_with_the_branch_queues_from_its_live_picture(
        tmp_path: Path, clock: ManualClock) -> None:
    """H4: 'CXPD <branch>' by SMS gives what the public page shows: waiting per business,
    the estimated wait, a paused business marked."""
    async with plain_centre(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path, clock,
                            f"customers.sms.inbound_token={GATEWAY}") as (centre, api):
        assert centre.customers is not None
        a = centre.customers.appointments
        await put_catalogue(a, clock)
        live = {"v": 1, "branch": BRANCH, "at": clock.now(), "status": {
            "branch_name": "郑州金水路支行", "waiting_total": 4, "day": "2026-11-25",
            "queues": [
                {"id": "A", "name": "个人业务", "waiting": 3, "service_minutes": 4},
                {"id": "F", "name": "外汇业务", "waiting": 1, "paused": True,
                 "service_minutes": 10}],
            "windows": [{"number": 1, "state": "open", "queues": {"A": 1}},
                        {"number": 2, "state": "serving", "queues": {"A": 1}}]}}
        await a.pool.read(lambda st: st.save_live({BRANCH: {"online": True}}, {BRANCH: live}, {}))
        r = await api.post("/api/sms/inbound", json={"from": SENDER, "text": f"cxpd {BRANCH}"},
                           headers={"Authorization": f"Bearer {GATEWAY}"})
        assert r.status_code == 200, r.text
        answer = "".join(r.json()["replies"])
        assert answer.startswith("郑州金水路支行当前等待4人")
        assert "个人业务3人约6分" in answer  # ⌈3 × 4 / 2 windows open⌉
        assert "外汇业务1人约10分(暂停)" in answer  # no window open for it: counted as one
        assert "139****5678" in texts(centre)[-1][0]
