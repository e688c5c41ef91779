"""The shipped broker configuration: a branch writes only its own topics and reads only its
own commands and acks; strangers are refused; dashboards read over websockets."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiomqtt
import pytest

from central.broker import LocalBroker, provision, render_config
from central.errors import CentreError
from protocols import uplink as proto
from tests.uplink_support import broker_fixture  # noqa: F401

B1, B2 = "1001010001", "1001010002"
ROOT = Path(__file__).resolve().parent.parent


def client(broker: LocalBroker, user: str | None, password: str | None = None,
           **kw: object) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", kw.pop("port", broker.port),  # type: ignore[arg-type]
                          username=user, password=password,
                          protocol=aiomqtt.ProtocolVersion.V5, **kw)  # type: ignore[arg-type]


async def received_until(c: aiomqtt.Client, marker: bytes, timeout: float = 10.0
                         ) -> list[tuple[str, bytes]]:
    """Everything ``c`` receives up to and including the ``marker`` payload. Messages from
    one publisher arrive in order, so anything forbidden would have come before it."""
    got: list[tuple[str, bytes]] = []

    async def read() -> None:
        async for m in c.messages:
            got.append((str(m.topic), bytes(m.payload or b"")))
            if m.payload == marker:
                return

    await asyncio.wait_for(read(), timeout)
    return got


async def test_a_branch_cannot_publish_into_another_branchs_topics(
        broker: LocalBroker) -> None:
    p1 = broker.add_user(B1)
    async with client(broker, "centre", "centre-pw") as centre, \
            client(broker, B1, p1) as one:
        await centre.subscribe("qms/v1/#", qos=1)
        for kind in ("events", "status", "totals", "live"):
            await one.publish(proto.topic(B2, kind), b"forged", qos=1)
        await one.publish(proto.topic(B2, "cmd", "config"), b"forged", qos=1)
        await one.publish(proto.topic(B1, "events"), b"mine", qos=1)
        got = await received_until(centre, b"mine")
    assert got == [(f"qms/v1/{B1}/events", b"mine")]


async def test_a_branch_cannot_read_another_branchs_commands_or_acks(
        broker: LocalBroker) -> None:
    p1 = broker.add_user(B1)
    async with client(broker, "centre", "centre-pw") as centre, \
            client(broker, B1, p1) as one:
        await one.subscribe(f"qms/v1/{B2}/cmd/#", qos=1)
        await one.subscribe(f"qms/v1/{B2}/ack", qos=1)
        await one.subscribe("qms/v1/+/cmd/#", qos=1)
        await one.subscribe(f"qms/v1/{B1}/cmd/#", qos=1)
        await centre.publish(proto.topic(B2, "cmd", "pause"), b"theirs", qos=1)
        await centre.publish(proto.topic(B2, "ack"), b"theirs", qos=1)
        await centre.publish(proto.topic(B1, "cmd", "pause"), b"mine", qos=1)
        got = await received_until(one, b"mine")
    assert [payload for _, payload in got] == [b"mine"]


async def test_a_branch_cannot_read_other_branchs_data(broker: LocalBroker) -> None:
    p1, p2 = broker.add_user(B1), broker.add_user(B2)
    async with client(broker, B1, p1) as one, client(broker, B2, p2) as two:
        await one.subscribe("qms/v1/#", qos=1)
        await two.publish(proto.topic(B2, "events"), b"secret", qos=1)
        await two.publish(proto.topic(B2, "status"), b"secret", qos=1, retain=True)
        await one.publish(proto.topic(B1, "events"), b"own", qos=1)  # not readable either
        # B1 may read its own acks: the marker comes that way.
        async with client(broker, "centre", "centre-pw") as centre:
            await centre.publish(proto.topic(B1, "ack"), b"marker", qos=1)
        got = await received_until(one, b"marker")
    assert got == [(f"qms/v1/{B1}/ack", b"marker")]


@pytest.mark.parametrize(("user", "password"), [(None, None), (B1, "wrong"), ("nobody", "x")])
async def test_strangers_are_refused(broker: LocalBroker, user: str | None,
                                     password: str | None) -> None:
    broker.add_user(B1, "right")
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker, user, password):
            pass


async def test_dashboards_read_the_live_picture_over_websockets(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "ws-broker", websockets=True)
    broker.add_user("dashboard", "dash-pw")
    broker.add_user("centre", "centre-pw")
    p1 = broker.add_user(B1)
    broker.start()
    try:
        async with client(broker, B1, p1) as box:
            await box.publish(proto.topic(B1, "status"), b"online", qos=1, retain=True)
        async with client(broker, "dashboard", "dash-pw", port=broker.ws_port,
                          transport="websockets") as dash, \
                client(broker, "centre", "centre-pw") as centre:
            await dash.subscribe(f"qms/v1/{B1}/status", qos=1)
            got = await received_until(dash, b"online")
            await centre.subscribe(f"qms/v1/{B1}/cmd/#", qos=1)
            # The broker answers the PUBACK after routing, so a forbidden command that got
            # through would reach the centre before the centre's own marker.
            await dash.publish(proto.topic(B1, "cmd", "pause"), b"not allowed", qos=1)
            await centre.publish(proto.topic(B1, "cmd", "resume"), b"marker", qos=1)
            commands = await received_until(centre, b"marker")
        assert got == [(f"qms/v1/{B1}/status", b"online")]
        assert [p for _, p in commands] == [b"marker"]
    finally:
        broker.kill()


def test_provisioning_writes_hashed_passwords(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    password = provision(passwd, B1)
    assert len(password) >= 20 and password not in passwd.read_text()
    assert passwd.read_text().startswith(f"{B1}:$")
    assert provision(passwd, B1, "chosen") == "chosen"  # replaced, not added twice
    assert passwd.read_text().count(f"{B1}:") == 1
    for bad in ("+", "a/b", "100101#", "", "x" * 40):
        with pytest.raises(CentreError):
            provision(passwd, bad)


def test_provision_and_broker_config_from_the_command_line(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "central"]
    out = subprocess.run([*run, "broker-config", "--dir", str(tmp_path / "etc"), "--port",
                          "18883"], capture_output=True, text=True, cwd=ROOT, check=True)
    conf = Path(out.stdout.strip()).read_text()
    assert "listener 18883 127.0.0.1" in conf and "allow_anonymous false" in conf
    assert "max_queued_messages 100000" in conf and "persistence true" in conf
    assert "protocol websockets" in conf
    out = subprocess.run([*run, "provision", "--passwd", str(tmp_path / "etc" / "passwd"), B1],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.startswith(f"uplink.username={B1}\nuplink.password=")


def test_a_tls_listener_needs_its_certificate(tmp_path: Path) -> None:
    with pytest.raises(CentreError):
        render_config(tmp_path, tls_port=8883)
    files = render_config(tmp_path, tls_port=8883, tls_cert="/etc/ssl/c.pem",
                          tls_key="/etc/ssl/k.pem")
    assert "listener 8883" in files.conf.read_text()
    assert "certfile /etc/ssl/c.pem" in files.conf.read_text()



async def test_a_branch_added_to_a_busy_broker_connects_at_once(broker: LocalBroker) -> None:
    # Mosquitto reloads its password file at its next loop turn, which a flooded broker
    # reaches late (CI once saw it refuse a fresh branch): add_user waits for the reload.
    assert broker.process is not None
    broker.process.send_signal(signal.SIGSTOP)  # a broker too busy to turn its loop
    adding = ThreadPoolExecutor(1).submit(broker.add_user, "1001019001", "its-password")
    await asyncio.sleep(0.5)  # a stopped broker cannot answer: add_user must still wait
    assert not adding.done(), "add_user returned before the broker had reloaded"
    broker.process.send_signal(signal.SIGCONT)
    password = await asyncio.wrap_future(adding)
    async with client(broker, "1001019001", password) as c:
        await c.publish(proto.topic("1001019001", "status"), b"{}", qos=1)
