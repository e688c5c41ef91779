"""The broker is not a single point of failure: a box given two independent brokers
(``uplink.broker`` a list) moves to the other when the one it is on is SIGKILLed, and
back when that one dies in turn; the centre consumes both (``broker.urls``) and ends with
exactly the journal, none lost, none twice. A command reaches the box on whichever broker
it is, and runs once. (docs/uplink.md, "Several brokers"; docs/deploy.md.)"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from central.broker import MOSQUITTO, LocalBroker
from common.clock import ManualClock
from controller.box import Box
from controller.uplink import Uplink, UplinkSettings
from tests.uplink_support import (
    BRANCH,
    TEST_LINK,
    assert_exactly_the_journal,
    centre_running,
    drive,
    listen,
    next_on,
    pg_url_fixture,
    running,
    settled_everything,
    store_url_fixture,
    wait_for,
)

__all__ = ["pg_url_fixture", "store_url_fixture"]

PASSWORD = "branch-pw-both"


@contextlib.contextmanager
def two_brokers(tmp_path: Path) -> Iterator[tuple[LocalBroker, LocalBroker]]:
    """Two independent Mosquittos (no bridge, nothing shared), the same users on each."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    brokers = (LocalBroker(tmp_path / "broker-a"), LocalBroker(tmp_path / "broker-b"))
    try:
        for b in brokers:
            b.add_user("centre", "centre-pw")
            b.add_user(BRANCH, PASSWORD)
            b.start()
        yield brokers
    finally:
        for b in brokers:
            b.kill()


def on(uplink: Uplink, broker: LocalBroker) -> bool:
    return uplink.connected and uplink.session.port == broker.port


@pytest.mark.slow
async def test_the_box_moves_to_the_other_broker_and_nothing_is_lost_or_doubled(
        box: Box, clock: ManualClock, store_url: str, tmp_path: Path) -> None:
    with two_brokers(tmp_path) as (a, b):
        uplink = Uplink(UplinkSettings(broker=[a.url, b.url], password=PASSWORD,
                                       **TEST_LINK))
        urls = f'broker.urls=["{a.url}", "{b.url}"]'
        async with centre_running(a, store_url, urls) as centre, running(uplink.run(box)):
            assert {c.port for c in centre.consumers} == {a.port, b.port}
            await wait_for(lambda: on(uplink, a), 20, "the box on the first broker")
            await drive(box, clock, 120, seed=1)
            a.kill()  # SIGKILL: what was in flight on it is gone
            await drive(box, clock, 120, seed=2)  # served on meanwhile
            await wait_for(lambda: on(uplink, b), 20, "the box on the second broker")
            await drive(box, clock, 120, seed=3)
            await exactly_the_journal(box, uplink, store_url, tmp_path)

            a.start()  # back (empty); the second one stops, keeping the box's session
            await consumer_on(centre, a)
            b.stop()
            await drive(box, clock, 60, seed=4)
            await wait_for(lambda: on(uplink, a), 20, "the box back on the first broker")
            await exactly_the_journal(box, uplink, store_url, tmp_path)
            b.start()  # the box's persistent session there is back, the box is not
            await consumer_on(centre, b)

            # A command goes out on both: the box runs it on the first; the second keeps
            # a copy in the box's session and hands it over when the box moves there.
            runs: list[str] = []

            async def note(_: Box, msg: dict[str, object]) -> dict[str, object]:
                runs.append(str(msg["id"]))
                return {"queue": msg["queue"], "paused": False}

            uplink.register_command("resume", note)
            async with listen(b, f"qms/v1/{BRANCH}/reply") as replies_on_b:
                cmd = await centre.send_command(BRANCH, "resume", {"queue": "A"})
                await wait_for(lambda: runs == [cmd], 20, "the command run on the box")
                a.kill()
                await drive(box, clock, 60, seed=5)
                await wait_for(lambda: on(uplink, b), 20, "the box on the second again")
                reply = await next_on(replies_on_b, "reply", lambda m: m["id"] == cmd, 20)
            assert reply["ok"] and runs == [cmd]  # the copy was answered, not run again
            await exactly_the_journal(box, uplink, store_url, tmp_path)
        assert uplink.counters.broker_switches >= 3


async def exactly_the_journal(box: Box, uplink: Uplink, store_url: str, tmp: Path) -> None:
    await settled_everything(box, uplink)
    await assert_exactly_the_journal(store_url, tmp / "data")


async def consumer_on(centre: Any, broker: LocalBroker) -> None:
    await wait_for(lambda: any(c.client is not None and c.port == broker.port
                               for c in centre.consumers), 30, "the centre on it again")


def test_one_address_or_a_list() -> None:
    one = UplinkSettings(broker="mqtt://127.0.0.1:1883")
    assert one.brokers == ("mqtt://127.0.0.1:1883",)
    two = UplinkSettings(broker=["mqtt://a:1883", "mqtts://b:8883"])
    assert two.brokers == ("mqtt://a:1883", "mqtts://b:8883")
    for bad in ([], ["mqtt://a:1883", "mqtt://a:1883"], ["http://a"], ["mqtt://a"] * 9):
        with pytest.raises(ValidationError):
            UplinkSettings(broker=bad)


def test_the_centre_takes_a_list_of_brokers() -> None:
    from central.config import CentreConfig

    c = CentreConfig.model_validate({"broker": {"urls": ["mqtt://a:1883", "mqtt://b:1883"]}})
    assert c.broker.all_urls == ("mqtt://a:1883", "mqtt://b:1883")
    assert CentreConfig().broker.all_urls == ("mqtt://127.0.0.1:1883",)
    with pytest.raises(ValidationError):
        CentreConfig.model_validate({"broker": {"urls": ["mqtt://a:1883", "mqtt://a:1883"]}})
