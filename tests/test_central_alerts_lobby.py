"""An alert goes from the centre to the branch's lobby-manager screen over a real broker,
and an SMS through a real HTTP gateway, with retries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from central.alerts import AlertDesk, list_alerts, set_thresholds
from central.broker import LocalBroker
from central.config import load_centre_config
from central.reports.scope import Scope
from central.sms import HttpSms, LogSms, make_gateway
from central.store import open_store
from controller.box import Box
from controller.engine import commands as c
from controller.notices import notices
from controller.web.events import Batch, EventHub
from tests.reports_support import B1, T0_ALERTS
from tests.sms_support import Gateway
from tests.uplink_support import (  # noqa: F401
    BRANCH,
    broker_fixture,
    centre_running,
    pg_url_fixture,
    running,
    store_url_fixture,
    uplink_for,
    wait_for,
)


async def next_notice(queue: asyncio.Queue[Batch]) -> dict[str, Any]:
    """The next notice a screen is sent (a screen's queue holds batches of messages)."""
    while True:
        for kind, _, message in await queue.get():
            if kind == "notice":
                data = message.split("data: ", 1)[1]
                return json.loads(data)  # type: ignore[no-any-return]


async def test_an_alert_pops_up_on_the_lobby_screen(box: Box, broker: LocalBroker,
                                                    store_url: str) -> None:
    assert BRANCH == B1
    store = open_store(store_url)
    set_thresholds(store, "1001", {"waiting_over": 2, "push_kinds": ["waiting_over"]}, "admin")
    hub = EventHub(box).attach()  # the screens' push channel, as the lobby page gets it
    screen = hub.subscribe("lobby")
    uplink = uplink_for(broker)
    try:
        async with centre_running(broker, store_url) as centre, running(uplink.run(box)):
            for _ in range(3):
                await box.execute(c.IssueTicket(queue="A"))
            desk = AlertDesk(centre.config.alerts, store_url, gateway=LogSms(),
                             publish=lambda b, a: centre.send_command(b, "alert", a))
            try:
                async def pushed() -> list[dict[str, Any]]:
                    await desk.round()
                    return [a for a in list_alerts(store, Scope()) if a["push"] == "sent"]

                [alert] = await wait_for(pushed, 20, "the alert pushed to the branch")
                notice = await asyncio.wait_for(next_notice(screen.queue), 10)
                assert notice["message"] == "请注意,目前网点排队等待人数已经超过2个。"
                assert notice["kind"] == "waiting_over" and notice["alert_id"] == alert["id"]

                async def replied() -> dict[str, Any] | None:
                    return await asyncio.to_thread(store.reply, BRANCH, alert["push_id"])

                reply = await wait_for(replied, 10, "the box's reply")
                assert reply["ok"] is True and reply["result"] == {"screens": 1}
            finally:
                await desk.close()
    finally:
        store.close()
    assert list(notices(box).recent)[-1]["message"] == notice["message"]


async def test_an_sms_the_gateway_refuses_is_sent_again(store_url: str) -> None:
    gateway = Gateway()
    store = open_store(store_url)
    now = [T0_ALERTS]
    cfg = load_centre_config(None, [f"store.url={store_url}", "sms.adapter=http",
                                    f"sms.url={gateway.url}/send"])

    async def nowhere(branch: str, args: dict[str, Any]) -> str:
        return "unused"

    desk = AlertDesk(cfg.alerts, store_url, publish=nowhere, gateway=make_gateway(cfg.sms),
                     clock=lambda: now[0])
    assert isinstance(desk.gateway, HttpSms)
    try:
        set_thresholds(store, "", {"sms_to": ["13812345678"]}, "admin")
        store.save_live({B1: {"online": True}}, {B1: {"status": {"waiting_total": 45}}}, {},
                        now[0])
        gateway.status = 500
        await desk.round()
        [sms] = list_alerts(store, Scope())[0]["sms_messages"]
        assert (sms["state"], sms["attempts"], sms["phone"]) == ("pending", 1, "138****5678")
        gateway.status = 200
        now[0] += 31
        await desk.round()
        [sms] = list_alerts(store, Scope())[0]["sms_messages"]
        assert (sms["state"], sms["attempts"]) == ("sent", 2)
        bodies = [json.loads(r["body"]) for r in gateway.requests]
        assert bodies == [{"to": "13812345678",
                           "text": "【1001010001】请注意,目前网点排队等待人数已经超过30个。"}] * 2
    finally:
        await desk.close()
        store.close()
        gateway.close()


async def test_python_m_central_runs_the_alert_desk(broker: LocalBroker, tmp_path: Any
                                                    ) -> None:
    """The centre process evaluates and delivers alerts next to its consumers, and stops
    cleanly on SIGTERM."""
    import contextlib
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.ingest_support import as_branch

    url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    store = open_store(url)
    store.save_live({B1: {"online": True}}, {B1: {"status": {"waiting_total": 44}}}, {})
    set_thresholds(store, "", {"push_kinds": ["waiting_over"]}, "admin")
    store.close()
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([
        sys.executable, "-m", "central", "--set", f"store.url={url}",
        "--set", f"broker.url={broker.url}", "--set", "broker.username=centre",
        "--set", "broker.password=centre-pw", "--set", "http.enabled=false",
        "--set", "alerts.interval_s=0.2", "--log-level", "WARNING"], cwd=root,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        async with as_branch(broker, B1) as branch:
            await branch.subscribe(f"qms/v1/{B1}/cmd/alert", qos=1)

            async def first() -> dict[str, Any]:
                async for m in branch.messages:
                    return json.loads(bytes(m.payload or b"{}"))  # type: ignore[no-any-return]
                raise AssertionError("no message")

            try:
                msg = await asyncio.wait_for(first(), 30)
            except TimeoutError:
                proc.kill()
                raise AssertionError(proc.communicate(timeout=5)[1][-3000:]) from None
        assert msg["message"] == "请注意,目前网点排队等待人数已经超过30个。"
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, timeout=30)
        assert proc.returncode == 0, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            proc.communicate(timeout=5)


def test_the_alert_command_schema() -> None:
    import pytest

    from protocols import uplink as proto

    topic = proto.topic(B1, "cmd", "alert")
    good = proto.command("alert-1", kind="waiting_over", level="warning",
                         message="请注意,目前网点排队等待人数已经超过30个。", alert_id=1, at=1.0)
    where, msg = proto.decode(topic, proto.encode(good))
    assert where.name == "alert" and msg["message"].startswith("请注意")
    for bad in ({"level": "loud"}, {"message": "x" * 201}, {"kind": "Bad Kind"},
                {"message": None}):
        with pytest.raises(proto.ProtocolError):
            proto.decode(topic, proto.encode({**good, **bad}))
