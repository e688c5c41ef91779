"""The box's uplink against a real broker and a real centre (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from central.broker import LocalBroker
from central.reconcile import check_branch
from common.clock import ManualClock
from controller.box import Box
from controller.config import Config
from controller.engine import commands as c
from controller.errors import Refused
from controller.web import create_app
from protocols import uplink as proto
from tests.conftest import CST
from tests.uplink_support import (  # noqa: F401
    BRANCH,
    assert_exactly_the_journal,
    box_b_button,
    broker_fixture,
    centre_running,
    drive,
    journal_rows,
    listen,
    next_on,
    pg_url_fixture,
    running,
    settled_everything,
    store_url_fixture,
    uplink_for,
    wait_for,
    without_a,
)

__all__ = ["box_b_button"]  # fixtures


async def command(broker: LocalBroker, name: str, **args: Any) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port, username="centre",
                              password="centre-pw") as client:
        await client.publish(proto.topic(BRANCH, "cmd", name),
                             proto.encode(proto.command(**args)), qos=1)


# --- the data path -------------------------------------------------------------------------


async def test_tickets_flow_to_the_centre_exactly_once(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    uplink = uplink_for(broker, batch_size=7)  # small batches: many messages, many acks
    async with centre_running(broker, store_url), running(uplink.run(box)):
        await drive(box, clock, 120)
        await settled_everything(box, uplink)
        await assert_exactly_the_journal(store_url, tmp_path / "data")
    assert box.journal is not None and box.journal.acked_through == box.last_seq


async def test_nothing_is_settled_on_the_brokers_word_alone(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    uplink = uplink_for(broker)
    async with running(uplink.run(box)):
        await drive(box, clock, 30)
        last = box.last_seq

        async def all_published() -> bool:
            return bool(uplink.sent >= last)

        await wait_for(all_published, 10, "every event published (PUBACKed)")
        assert uplink.acked == 0  # the broker took them all; the centre has not
        assert box.journal is not None and box.journal.acked_through == 0
        store_url = f"sqlite:///{tmp_path / 'late-centre.sqlite3'}"
        async with centre_running(broker, store_url):  # the box sends again (ack timeout)
            await settled_everything(box, uplink)
            await assert_exactly_the_journal(store_url, tmp_path / "data")
    assert uplink.counters.timeouts >= 1 and uplink.counters.retries >= 1


async def test_what_a_restarted_centre_missed_arrives_without_waiting_for_the_ack_timeout(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    uplink = uplink_for(broker, ack_timeout_s=600)  # the timeout would take ten minutes
    async with running(uplink.run(box)):
        async with centre_running(broker, store_url):
            await drive(box, clock, 10)
            await settled_everything(box, uplink)
        await drive(box, clock, 10, seed=2)  # the centre is away: these reach nobody

        async def all_published() -> bool:
            return bool(uplink.sent >= box.last_seq)

        await wait_for(all_published, 10, "the events sent while the centre was away")
        async with centre_running(broker, store_url):  # it announces itself: sent again
            await settled_everything(box, uplink, timeout=30)
            await assert_exactly_the_journal(store_url, tmp_path / "data")


async def test_a_box_keeps_serving_while_the_broker_is_unreachable(
        box: Box, clock: ManualClock, tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "dead-broker")  # configured but never started
    uplink = uplink_for(broker)
    async with running(uplink.run(box)):
        async def failed_twice() -> bool:
            return uplink.counters.connection_failures >= 2

        await wait_for(failed_twice, 10, "two failed connection attempts")
        events = await asyncio.wait_for(box.execute(c.IssueTicket(queue="A")), 1.0)
        assert events[-1]["number"] == "A001"
        assert box.health.devices["uplink"].state == "offline"
        report = await uplink.health_report()
        assert report["outbox"]["backlog"] == box.last_seq
        assert report["link"]["connection_failures"] >= 2


async def test_events_whose_caller_gave_up_are_sent_all_the_same(
        box: Box, broker: LocalBroker, tmp_path: Path) -> None:
    """A request cancelled mid-commit: its event is durable, no listener heard of it."""
    uplink = uplink_for(broker)
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with centre_running(broker, store_url), running(uplink.run(box)):
        await settled_everything(box, uplink)
        request = asyncio.ensure_future(box.execute(c.IssueTicket(queue="A")))
        await asyncio.sleep(0)  # it reaches the commit and waits there
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request
        await box.settled()
        assert journal_rows(box.data_dir)[-1][1]["number"] == "A001"
        await settled_everything(box, uplink, timeout=10)


# --- status, live, health ------------------------------------------------------------------


async def test_birth_live_and_health_are_retained(
        box: Box, clock: ManualClock, broker: LocalBroker) -> None:
    uplink = uplink_for(broker)
    async with running(uplink.run(box)):
        await box.execute(c.IssueTicket(queue="B"))

        async def live_shows_it() -> bool:
            async with listen(broker, f"qms/v1/{BRANCH}/#") as q:  # a late subscriber
                msg = await next_on(q, "live", lambda m: m["status"]["waiting_total"] == 1)
                return bool(msg)

        await wait_for(live_shows_it, 10, "a retained live snapshot with one waiting")
        async with listen(broker, f"qms/v1/{BRANCH}/#") as q:
            status = await next_on(q, "status")
            health = await next_on(q, "health")
    assert status["online"] is True and status["epoch"] == box.epoch
    assert status["config_version"] == box.config.version and status["version"] == "0.1.0"
    assert health["link"]["connects"] >= 1
    assert {"backlog", "oldest_unsent_age_s"} <= set(health["outbox"])
    assert any(d["name"] == "uplink" for d in health["devices"])


async def test_live_snapshots_are_coalesced_to_two_a_second(
        box: Box, clock: ManualClock, broker: LocalBroker) -> None:
    uplink = uplink_for(broker, live_interval_s=0.5)
    async with running(uplink.run(box)), listen(broker, f"qms/v1/{BRANCH}/live") as q:
        await wait_for(lambda: _true(uplink.connected), 10, "connected")
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(60):
            await box.execute(c.IssueTicket(queue="A"))
        seen = 0
        while True:
            _, msg = await asyncio.wait_for(q.get(), 10)
            seen += 1
            if msg["status"]["waiting_total"] == 60:
                break
        elapsed = loop.time() - start
    assert seen <= elapsed * 2 + 2, f"{seen} snapshots in {elapsed:.2f}s"


async def _true(value: bool) -> bool:
    return value


# --- commands ------------------------------------------------------------------------------


async def test_pause_and_resume_a_business_from_the_centre(
        box: Box, clock: ManualClock, broker: LocalBroker) -> None:
    uplink = uplink_for(broker)
    async with running(uplink.run(box)), listen(broker, f"qms/v1/{BRANCH}/reply") as q:
        await wait_for(lambda: _true(uplink.connected), 10, "connected")
        await command(broker, "pause", cmd_id="p1", queue="F", reason="系统升级")
        reply = await next_on(q, "reply")
        assert reply == {**reply, "id": "p1", "cmd": "pause", "ok": True}
        with pytest.raises(Refused) as refused:
            await box.execute(c.IssueTicket(queue="F"))
        assert refused.value.message.startswith("友情提示:对不起,你选择的业务因系统升级原因")
        await command(broker, "pause", cmd_id="p1", queue="F", reason="系统升级")  # again
        again = await next_on(q, "reply")
        assert again["id"] == "p1" and again["ok"] is True
        paused = [e for _, e in journal_rows(box.data_dir) if e["type"] == "queue_paused"]
        assert len(paused) == 1  # the same id is not run twice
        await command(broker, "resume", cmd_id="r1", queue="F")
        assert (await next_on(q, "reply"))["ok"] is True
        assert (await box.execute(c.IssueTicket(queue="F")))[-1]["number"] == "F001"
        await command(broker, "pause", cmd_id="p2", queue="Z", reason="x")
        bad = await next_on(q, "reply")
        assert bad["ok"] is False and bad["error"]["code"] == "unknown_queue"


async def test_a_malformed_command_is_answered_and_counted(
        box: Box, broker: LocalBroker) -> None:
    uplink = uplink_for(broker)
    async with running(uplink.run(box)), listen(broker, f"qms/v1/{BRANCH}/reply") as q:
        await wait_for(lambda: _true(uplink.connected), 10, "connected")
        async with aiomqtt.Client("127.0.0.1", broker.port, username="centre",
                                  password="centre-pw") as client:
            await client.publish(proto.topic(BRANCH, "cmd", "pause"),
                                 b'{"v": 1, "id": "m1", "queue": "A"}', qos=1)
            await client.publish(proto.topic(BRANCH, "ack"), b"not json", qos=1)
        reply = await next_on(q, "reply")
        assert reply["id"] == "m1" and reply["error"]["code"] == "invalid_command"
        await wait_for(lambda: _true(uplink.counters.rejected == 2), 5, "two rejections")


async def test_a_new_configuration_is_validated_applied_and_kept(
        box: Box, broker: LocalBroker, config: Config, tmp_path: Path) -> None:
    uplink = uplink_for(broker)
    good = config.model_dump(mode="json")
    good["queues"][0]["name"] = "个人综合业务"
    for section in ("uplink", "http", "clock"):
        good.pop(section, None)
    bad = json.loads(json.dumps(good))
    bad["windows"][0]["queues"] = {"NOPE": 1}
    old_version = box.config.version
    async with running(uplink.run(box)), listen(broker, f"qms/v1/{BRANCH}/#") as q:
        await wait_for(lambda: _true(uplink.connected), 10, "connected")
        await command(broker, "config", cmd_id="cfg-bad", config=bad)
        refused = await next_on(q, "reply")
        assert refused["ok"] is False and refused["error"]["code"] == "bad_config"
        assert "windows.0.queues" in refused["error"]["message"]
        assert box.config.version == old_version  # the old one stays
        await command(broker, "config", cmd_id="cfg-good", config=good)
        birth = await next_on(q, "status", lambda m: m["config_version"] != old_version)
        applied = await next_on(q, "reply", lambda m: m["id"] == "cfg-good")
        assert applied["ok"] is True
        new_version = applied["result"]["config_version"]
        assert birth["online"] is True and birth["config_version"] == new_version
    assert box.config.queue("A").name == "个人综合业务" and box.config.version == new_version
    assert box.engine.cfg is box.config
    from controller.components import Startup
    from controller.compose import build_components

    kept = Startup(config, (), box.data_dir,  # what a restart loads
                   build_components).begin(box.clock.now())
    assert kept.config.version == new_version and not kept.set_aside


def unknown_web_key(config: Config) -> dict[str, Any]:
    push = config.model_dump(mode="json")
    push["web"]["kiosk_colour"] = "#ff0000"  # a typo of a [web] key
    return push


def no_windows(config: Config) -> dict[str, Any]:
    return {**config.model_dump(mode="json"), "windows": []}


@pytest.mark.parametrize(("push", "key"), [
    (without_a, "gpio.buttons.0.queue"),  # the branch's ticket button still issues A
    (unknown_web_key, "web.kiosk_colour"),
    (no_windows, "windows"),
])
async def test_a_push_the_box_could_not_start_on_is_refused_and_nothing_is_kept(
        box: Box, broker: LocalBroker, config: Config, push: Any, key: str) -> None:
    from controller.components import Startup
    from controller.compose import build_components
    from controller.uplink.commands import config_command

    uplink = uplink_for(broker)  # checked as python -m controller wires it: with the devices
    uplink.register_command("config", config_command(
        Startup(box.config, (), box.data_dir, build_components)))
    before = box.config.version
    async with running(uplink.run(box)), listen(broker, f"qms/v1/{BRANCH}/reply") as q:
        await wait_for(lambda: _true(uplink.connected), 10, "connected")
        await command(broker, "config", cmd_id="cfg-1", config=push(config))
        reply = await next_on(q, "reply")
    assert reply["ok"] is False and reply["error"]["code"] == "bad_config"
    assert key in reply["error"]["message"] and key in reply["error"]["message_en"]
    assert box.config.version == before and box.engine.cfg is box.config
    assert not (box.data_dir / "pushed-config.json").exists()  # a restart is unchanged


@pytest.mark.parametrize(("rule", "event", "result"), [
    ({"transfer_to": "B"}, "ticket_transferred", "moved"),
    ({"close": True}, "ticket_closed", "closed"),
])
async def test_removing_a_business_with_customers_waiting_says_where_they_go(
        box_b_button: Box, broker: LocalBroker, rule: dict[str, Any], event: str,
        result: str) -> None:
    box = box_b_button
    for queue in "ABA":
        await box.execute(c.IssueTicket(queue=queue))
    before = box.config.version
    uplink = uplink_for(broker)
    async with running(uplink.run(box)), listen(broker, f"qms/v1/{BRANCH}/#") as q:
        await wait_for(lambda: _true(uplink.connected), 10, "connected")
        await command(broker, "config", cmd_id="cfg-silent", config=without_a(box.config))
        refused = await next_on(q, "reply", lambda m: m["id"] == "cfg-silent")
        assert refused["ok"] is False and refused["error"]["code"] == "tickets_waiting"
        assert "removed_queues.A" in refused["error"]["message"]
        assert box.config.version == before and box.config.queue("A") is not None
        assert not (box.data_dir / "pushed-config.json").exists()

        push = without_a(box.config, removed_queues={"A": rule})
        await command(broker, "config", cmd_id="cfg-said", config=push)
        applied = await next_on(q, "reply", lambda m: m["id"] == "cfg-said")
        sent = await next_on(q, "events", lambda m: any(
            e["type"] == event and e["reason"] == "business_removed" for e in m["events"]))
    assert applied["ok"] is True and applied["result"][result] == 2
    assert [e["number"] for e in sent["events"] if e["type"] == event] == ["A001", "A002"]
    assert box.config.queue("A") is None and box.engine.stranded() == {}
    waiting = sorted(box.engine.state.waiting.values(), key=lambda t: t.order)
    left = [(t.number, t.queue) for t in waiting]  # numbers kept, first come first served
    assert left == ([("A001", "B"), ("B001", "B"), ("A002", "B")] if result == "moved"
                    else [("B001", "B")])


async def test_software_update_is_a_hook(box: Box, broker: LocalBroker) -> None:
    uplink = uplink_for(broker)
    async with running(uplink.run(box)), listen(broker, f"qms/v1/{BRANCH}/reply") as q:
        await wait_for(lambda: _true(uplink.connected), 10, "connected")
        url = "http://centre/releases/0.2.0/manifest.json"
        await command(broker, "update", cmd_id="u1", version="0.2.0", manifest_url=url)
        refused = await next_on(q, "reply")
        assert refused["error"]["code"] == "update_unavailable"

        async def update(box: Box, msg: dict[str, Any]) -> dict[str, Any]:
            return {"installing": msg["version"]}

        uplink.register_command("update", update)
        await command(broker, "update", cmd_id="u2", version="0.2.0", manifest_url=url)
        done = await next_on(q, "reply")
        assert done["ok"] is True and done["result"] == {"installing": "0.2.0"}


async def test_update_commands_reach_the_updater_and_its_reports_the_centre(
        box: Box, broker: LocalBroker, tmp_path: Path) -> None:
    """With the real updater wired in (as build_components does): an offer it cannot take
    is answered with its report, and a report it makes later goes out on reply too."""
    import sys

    from controller.slots import write_json_atomic
    from controller.update import Updater, UpdateSettings

    updater = Updater(UpdateSettings(root=tmp_path / "opt", python=sys.executable), [],
                      branch=BRANCH)
    uplink = uplink_for(broker)
    uplink.use_updater(updater)
    async with running(uplink.run(box)), listen(broker, f"qms/v1/{BRANCH}/reply") as q:
        await wait_for(lambda: _true(uplink.connected), 10, "connected")
        await command(broker, "update", cmd_id="up-1", version="0.2.0",
                      manifest_url="ftp://nowhere/manifest.json")
        answer = await next_on(q, "reply", lambda m: m["id"] == "up-1")
        assert answer["cmd"] == "update" and answer["result"]["status"] == "failed"
        assert answer["result"]["reason"] == "bad_command"
        # A report kept across a restart (the new version judged healthy) is told on start.
        write_json_atomic(updater.state_file, {"reports": [{
            "id": "up-0", "version": "0.1.9", "status": "healthy", "running": "0.1.9",
            "at": 1.0}]})
        assert updater.deliver_kept_reports() == 1
        kept = await next_on(q, "reply", lambda m: m["id"] == "up-0")
        assert kept["result"]["status"] == "healthy"


async def test_replay_sends_a_range_again(
        box: Box, clock: ManualClock, broker: LocalBroker) -> None:
    uplink = uplink_for(broker)
    await drive(box, clock, 20)
    async with running(uplink.run(box)), listen(broker, f"qms/v1/{BRANCH}/#") as q:
        await wait_for(lambda: _true(uplink.connected), 10, "connected")
        await command(broker, "replay", cmd_id="rp1", epoch=box.epoch,
                      **{"from": 3, "through": 9})
        batch = await next_on(q, "events", lambda m: m["events"][0]["seq"] == 3)
        assert [e["seq"] for e in batch["events"]] == list(range(3, 10))
        reply = await next_on(q, "reply")
        assert reply["ok"] and reply["result"]["through"] == 9
        await command(broker, "replay", cmd_id="rp2", epoch="other",
                      **{"from": 1, "through": 2})
        assert (await next_on(q, "reply"))["error"]["code"] == "wrong_epoch"


# --- daily totals --------------------------------------------------------------------------


async def test_yesterdays_totals_are_sent_once_its_events_are_settled(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    uplink = uplink_for(broker)
    async with centre_running(broker, store_url) as centre, running(uplink.run(box)):
        await drive(box, clock, 60)
        clock.set(dt.datetime(2026, 11, 26, 0, 45, tzinfo=CST))  # after totals_at (00:30)
        await box.execute(c.Tick())  # the day closes: open tickets become not served

        async def totals_stored() -> Any:
            return (await centre.read(lambda s: s.totals("2026-11-25"))).get(BRANCH)

        sent = await wait_for(totals_stored, 20, "the day's totals at the centre")
        report = await centre.read(lambda s: check_branch(s, BRANCH, "2026-11-25"))
    day = [e for _, e in journal_rows(box.data_dir) if e["day"] == "2026-11-25"]
    assert sent["events"] == len(day) and sent["last_seq"] == day[-1]["seq"]
    assert sent["queues"] == proto.day_totals(day)["queues"]
    assert report["status"] == "ok", report["problems"]
    assert uplink.counters.day == "2026-11-26"


# --- /metrics on the box --------------------------------------------------------------------


async def test_box_metrics_show_waiting_outbox_and_link(
        box: Box, clock: ManualClock, broker: LocalBroker) -> None:
    uplink = uplink_for(broker)
    await box.execute(c.IssueTicket(queue="A"))
    async with running(uplink.run(box)):
        await wait_for(lambda: _true(uplink.connected), 10, "connected")
        transport = httpx.ASGITransport(app=create_app(box))
        async with httpx.AsyncClient(transport=transport, base_url="http://box") as http:
            resp = await http.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert 'paidui_waiting{queue="A"} 1' in text
    assert "paidui_uplink_connected 1" in text
    assert f"paidui_outbox_backlog_events {box.last_seq}" in text  # no centre: nothing acked
    assert "paidui_outbox_oldest_unsent_age_seconds" in text
    assert "paidui_uplink_connection_failures_today 0" in text


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "key"), [
    (["uplink.broker=tcp://centre:1883"], "uplink.broker"),
    (["uplink.broker=mqtt://centre:1883", "uplink.batch_size=0"], "uplink.batch_size"),
    (["uplink.brokr=mqtt://x:1"], "uplink.broker"),  # a typo: broker missing, brokr unknown
])
def test_a_bad_uplink_section_stops_the_start(overrides: list[str], key: str,
                                              tmp_path: Path) -> None:
    from common.errors import ConfigError
    from controller.compose import build_components
    from tests.conftest import example_config

    with pytest.raises(ConfigError) as err:
        build_components(example_config(*overrides), tmp_path)
    assert err.value.key == key


def test_an_uplink_section_adds_the_uplink(tmp_path: Path) -> None:
    from controller.compose import build_components
    from controller.uplink import Uplink
    from tests.conftest import example_config

    comps = build_components(example_config("uplink.broker=mqtt://127.0.0.1:1883"), tmp_path)
    assert [type(c) for c in comps if c.name == "uplink"] == [Uplink]


async def test_a_stop_as_the_connection_fails_does_not_wait_out_the_back_off(box: Box) -> None:
    """The box stops on SIGTERM by cancelling the uplink. When the connection's task ends
    in a link error instead of the cancel (aiomqtt can raise as it disconnects), the link
    still stops at once: not after a back-off of up to 90 s."""
    from controller.uplink import Uplink, UplinkSettings

    class FailsAsItStops(Uplink):
        entered = asyncio.Event()

        async def _connection(self, box: Box) -> None:
            self.entered.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                raise aiomqtt.MqttError("Disconnected during message iteration") from None

    link = FailsAsItStops(UplinkSettings(broker="mqtt://127.0.0.1:9", password="x",
                                         reconnect_min_s=30, reconnect_max_s=60))
    task = asyncio.create_task(link.run(box))
    async with asyncio.timeout(10):
        await link.entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):  # the back-off is 15-45 s
            await task
