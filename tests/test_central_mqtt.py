"""The centre's MQTT client: against the shipped Mosquitto, and against a scripted broker
for what a real one does not do on demand (malformed packets, silence)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from central.broker import LocalBroker
from central.mqtt import MqttClient, MqttError
from protocols import mqtt
from tests.uplink_support import broker_fixture, wait_for

__all__ = ["broker_fixture"]

pytestmark = pytest.mark.network

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CONNACK_OK = b"\x20\x02\x00\x00"


def centre(broker: LocalBroker, got: list[tuple[str, bytes]], **kw: object) -> MqttClient:
    return MqttClient("127.0.0.1", broker.port, client_id="centre-test", username="centre",
                      password="centre-pw", on_message=lambda t, p: got.append((t, p)),
                      **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[int]:
    """A one-connection 'broker' on loopback that does what ``script`` says."""
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def read_packet(r: asyncio.StreamReader) -> bytes:
    first = await r.readexactly(1)
    length, shift, head = 0, 0, b""
    while True:
        b = await r.readexactly(1)
        head += b
        length |= (b[0] & 0x7F) << shift
        shift += 7
        if not b[0] & 0x80:
            return first + head + await r.readexactly(length)


async def test_subscribes_publishes_at_qos_1_and_receives_from_the_real_broker(
        broker: LocalBroker) -> None:
    got: list[tuple[str, bytes]] = []
    async with centre(broker, got) as client:
        assert await client.subscribe([("$share/g/qms/v1/+/events", 1),
                                       ("qms/v1/+/live", 1)]) == [1, 1]
        for n in range(300):  # more than the broker's in-flight window
            await client.publish(f"qms/v1/100{n % 3}/events", b"%d" % n, qos=1)
        await client.publish("qms/v1/1001/live", b"latest", qos=0, retain=True)
        await wait_for(lambda: len(got) == 301, 10, "every message back")
        assert [p for t, p in got if t.endswith("/events")] == [b"%d" % n for n in range(300)]
        await client.unsubscribe(["qms/v1/+/live"])
    async with centre(broker, got) as again:  # a retained message comes with a subscription
        await again.subscribe([("qms/v1/+/live", 1)])
        await wait_for(lambda: got[-1] == ("qms/v1/1001/live", b"latest"), 10, "retained")


async def test_a_refused_login_is_an_mqtt_error_that_says_why(broker: LocalBroker) -> None:
    client = MqttClient("127.0.0.1", broker.port, client_id="x", username="centre",
                        password="wrong", on_message=lambda t, p: None)
    with pytest.raises(MqttError, match=r"not authorised|bad user name"):
        await client.connect()
    assert not client.connected
    assert client._transport is not None and client._transport.is_closing()  # not left open


async def test_a_refused_subscription_is_an_error() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_packet(r)
        w.write(CONNACK_OK)
        sub = await read_packet(r)
        w.write(b"\x90\x04" + sub[2:4] + b"\x01\x80")  # the first granted, the second not
        await r.read()

    async with scripted(script) as port, MqttClient("127.0.0.1", port, client_id="x",
                          on_message=lambda t, p: None) as client:
        with pytest.raises(MqttError, match=r"refused the subscription to \['\$SYS/#'\]"):
            await client.subscribe([("a/#", 1), ("$SYS/#", 1)])


async def test_nobody_listening_is_an_mqtt_error() -> None:
    async with scripted(lambda r, w: asyncio.sleep(0)) as port:  # sleep: a handler doing nothing
        pass  # the port is free again: nobody listens there
    with pytest.raises(MqttError, match="cannot connect"):
        await MqttClient("127.0.0.1", port, client_id="x", on_message=lambda t, p: None,
                         timeout=2).connect()


async def test_the_broker_killed_ends_the_session_and_fails_whoever_waits(
        broker: LocalBroker) -> None:
    async with centre(broker, []) as client:
        await client.subscribe([("a/b", 1)])
        broker.kill()
        with pytest.raises(MqttError, match="lost"):
            await asyncio.wait_for(client.wait_closed(), 10)
        with pytest.raises(MqttError):
            await client.publish("a/b", b"x", qos=1)
        broker.start()  # the fixture's cleanup kills it again


async def test_every_message_of_one_read_is_acknowledged_in_one_write() -> None:
    written: list[bytes] = []

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_packet(r)  # CONNECT
        w.write(CONNACK_OK)
        w.write(b"".join(mqtt.publish(f"t/{n}", b"x", qos=1, packet_id=100 + n)
                         for n in range(3)) + mqtt.publish("t/q0", b"y"))
        written.append(await r.readexactly(12))  # three PUBACKs
        written.append(await r.read(100))  # then DISCONNECT: no PUBACK for the QoS 0 one
        w.close()

    got: list[tuple[str, bytes]] = []
    async with scripted(script) as port:
        async with MqttClient("127.0.0.1", port, client_id="x",
                              on_message=lambda t, p: got.append((t, p))):
            await wait_for(lambda: written, 5, "the PUBACKs")
        await wait_for(lambda: len(written) == 2, 5, "what followed them")
    assert got == [("t/0", b"x"), ("t/1", b"x"), ("t/2", b"x"), ("t/q0", b"y")]
    assert written[0] == mqtt.puback(100) + mqtt.puback(101) + mqtt.puback(102)
    assert written[1] == mqtt.DISCONNECT


async def test_a_malformed_packet_closes_the_connection_and_fails_a_waiting_publish() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_packet(r)
        w.write(CONNACK_OK)
        await read_packet(r)  # the PUBLISH; instead of its PUBACK, a packet type 15
        w.write(b"\xf0\x00")
        await r.read()

    async with scripted(script) as port, MqttClient("127.0.0.1", port, client_id="x",
                          on_message=lambda t, p: None) as client:
        with pytest.raises(MqttError, match="malformed packet"):
            await client.publish("t", b"x", qos=1)
        assert not client.connected


def counting_pings(answer: bool) -> tuple[Script, list[int]]:
    """A broker that accepts, reads everything, counts the PINGREQs and answers them or
    not."""
    pings: list[int] = []

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_packet(r)
        w.write(CONNACK_OK)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                if await read_packet(r) == mqtt.PINGREQ:
                    pings.append(1)
                    if answer:
                        w.write(b"\xd0\x00")  # PINGRESP

    return script, pings


async def test_a_silent_broker_is_given_up_after_one_and_a_half_keep_alives() -> None:
    script, pings = counting_pings(answer=False)
    async with scripted(script) as port, MqttClient(
            "127.0.0.1", port, client_id="x", keepalive=1,
            on_message=lambda t, p: None) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(MqttError, match=r"nothing from the broker for 1\.5 s"):
            await asyncio.wait_for(client.wait_closed(), 10)
        assert 1.4 <= loop.time() - start <= 4
    assert pings


async def test_no_connack_in_time_is_an_mqtt_error() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()  # reads the CONNECT and says nothing

    async with scripted(script) as port:
        with pytest.raises(MqttError, match="no CONNACK"):
            await MqttClient("127.0.0.1", port, client_id="x", timeout=0.5,
                             on_message=lambda t, p: None).connect()


async def test_a_failing_message_handler_restarts_the_connection_not_the_centre() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_packet(r)
        w.write(CONNACK_OK + mqtt.publish("t", b"x"))
        await r.read()

    def handler(topic: str, payload: bytes) -> None:
        raise RuntimeError("a bug")

    async with scripted(script) as port, MqttClient(
            "127.0.0.1", port, client_id="x", on_message=handler) as client:
        with pytest.raises(MqttError, match="handler failed"):
            await asyncio.wait_for(client.wait_closed(), 5)


async def test_publishes_made_together_leave_in_one_write() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_packet(r)
        w.write(CONNACK_OK)
        for pid in range(1, 51):
            await read_packet(r)
            w.write(mqtt.puback(pid))
        await r.read()

    async with scripted(script) as port, MqttClient(
            "127.0.0.1", port, client_id="x", on_message=lambda t, p: None) as client:
        writes: list[bytes] = []
        transport = client._transport
        assert transport is not None
        send = transport.write
        transport.write = lambda data: (writes.append(bytes(data)), send(data))[1]  # type: ignore[method-assign]
        # a commit's acks: published together, each awaiting its PUBACK
        await asyncio.gather(*(client.publish(f"qms/v1/{n}/ack", b"{}", qos=1)
                               for n in range(50)))
    assert writes[0] == b"".join(mqtt.publish(f"qms/v1/{n}/ack", b"{}", qos=1,
                                              packet_id=n + 1) for n in range(50))


async def test_a_publish_waiting_for_an_in_flight_slot_times_out_too() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_packet(r)
        w.write(CONNACK_OK)
        await r.read()  # takes every PUBLISH and acknowledges none

    async with scripted(script) as port, MqttClient(
            "127.0.0.1", port, client_id="x", max_inflight=1,
            on_message=lambda t, p: None) as client:
        first = asyncio.create_task(client.publish("t", b"1", qos=1, timeout=5))
        await asyncio.sleep(0.1)  # the first holds the one slot
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(MqttError, match="no answer"):
            await client.publish("t", b"2", qos=1, timeout=0.5)
        assert loop.time() - start < 2
        first.cancel()


async def test_a_client_that_only_sends_still_pings_and_stays_connected() -> None:
    script, pings = counting_pings(answer=True)
    async with scripted(script) as port, MqttClient(
            "127.0.0.1", port, client_id="x", keepalive=2,
            on_message=lambda t, p: None) as client:
        for _ in range(16):  # acks at QoS 0, every 0.25 s, for 4 s: the broker says nothing
            await client.publish("t", b"x")
            await asyncio.sleep(0.25)  # a steady sender
        assert client.connected and pings


async def test_an_answer_of_the_wrong_kind_breaks_the_connection() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_packet(r)
        w.write(CONNACK_OK)
        sub = await read_packet(r)
        w.write(b"\x40\x02" + sub[2:4])  # a PUBACK for the SUBSCRIBE's packet id
        await r.read()

    async with scripted(script) as port, MqttClient(
            "127.0.0.1", port, client_id="x", on_message=lambda t, p: None) as client:
        with pytest.raises(MqttError, match="awaits 9"):
            await client.subscribe([("a", 1)])


def test_a_config_that_still_names_the_consumers_mqtt_version_starts(
        caplog: pytest.LogCaptureFixture) -> None:
    from central.config import load_centre_config

    config = load_centre_config(None, ['broker.consumer_mqtt="5"'])
    assert config.broker.url  # read, the old key set aside with a warning
    assert "broker.consumer_mqtt is no longer read" in caplog.text
