"""MQTT 3.1.1 packets (pure): what a client sends, and reading what a broker sends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import mqtt

topics = st.text(st.characters(codec="utf-8", exclude_characters="+#\x00"),
                 min_size=1, max_size=40)
publishes = st.builds(
    lambda topic, payload, qos, pid, retain: mqtt.Publish(topic, payload, qos,
                                                          pid if qos else None, retain),
    topics, st.binary(max_size=300), st.sampled_from([0, 1]),
    st.integers(1, 65535), st.booleans())


def encode(p: mqtt.Publish) -> bytes:
    return mqtt.publish(p.topic, p.payload, qos=p.qos, retain=p.retain, packet_id=p.packet_id)


def read_all(data: bytes, cuts: list[int], max_packet: int = 1 << 20) -> list[mqtt.Packet]:
    reader, out, last = mqtt.Reader(max_packet), [], 0
    for cut in [*sorted({min(c, len(data)) for c in cuts}), len(data)]:
        out += reader.feed(data[last:cut])
        last = cut
    assert reader.pending == 0
    return out


@given(st.lists(publishes, max_size=8), st.lists(st.integers(0, 4000), max_size=12))
def test_publishes_read_back_whatever_pieces_the_socket_hands_over(
        sent: list[mqtt.Publish], cuts: list[int]) -> None:
    stream = b"".join(encode(p) for p in sent)
    assert [mqtt.read_publish(p) for p in read_all(stream, cuts)] == sent


@pytest.mark.parametrize("length, header", [
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"), (2_097_151, b"\xff\xff\x7f"),
    (2_097_152, b"\x80\x80\x80\x01"), (268_435_455, b"\xff\xff\xff\x7f")])
def test_remaining_length_as_the_standard_writes_it(length: int, header: bytes) -> None:
    # the examples of OASIS MQTT 3.1.1, table 2.4
    assert mqtt._length(length) == header
    if length <= 20_000:
        body = bytes(length)
        assert mqtt.Reader().feed(b"\x30" + header + body) == [mqtt.Packet(3, 0, body)]


def test_a_packet_longer_than_allowed_is_refused_before_its_body_arrives() -> None:
    with pytest.raises(mqtt.MqttProtocolError, match="at most 1000"):
        mqtt.Reader(max_packet=1000).feed(b"\x30\xe9\x07")  # says 1001 bytes; none sent


def test_a_fifth_length_byte_is_malformed() -> None:
    with pytest.raises(mqtt.MqttProtocolError, match="four bytes"):
        mqtt.Reader().feed(b"\x30\xff\xff\xff\xff\x01")


@pytest.mark.parametrize("data, why", [
    (b"\x10\x00", "not one a client receives"),  # CONNECT: a client's, never a broker's
    (b"\x82\x00", "not one a client receives"),  # SUBSCRIBE
    (b"\xf0\x00", "not one a client receives"),  # type 15 is reserved
    (b"\x36\x00", "QoS 3"),
    (b"\x34\x00", "QoS 2"),  # never sent to a client that subscribed at QoS 1 at most
    (b"\x38\x00", "DUP"),  # DUP on a QoS 0 message
    (b"\x30\x80\x00", "fewest bytes"),  # a length of 0 said in two bytes
    (b"\x20\x02\x02\x00", "reserved bits"),  # CONNACK
    (b"\x90\x03\x00\x01\x03", "unknown one"),  # SUBACK return code 3
    (b"\x41\x02\x00\x01", "flags"),  # PUBACK's flags are 0
    (b"\x40\x03\x00\x01\x00", "3 bytes, not 2"),
    (b"\x20\x01\x00", "1 bytes, not 2"),  # CONNACK
    (b"\x90\x02\x00\x01", "without a return code"),  # SUBACK
])
def test_what_a_broker_may_not_send_a_client_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(mqtt.MqttProtocolError, match=why):
        mqtt.Reader().feed(data)


@pytest.mark.parametrize("body, qos, why", [
    (b"\x00", 0, "without a topic"),
    (b"\x00\x05abc", 0, "shorter"),
    (b"\x00\x01a\x00", 1, "shorter"),  # no room for the packet id
    (b"\x00\x01a\x00\x00", 1, "packet id 0"),
    (b"\x00\x02\xff\xfe", 0, "not UTF-8"),
    (b"\x00\x00", 0, "empty"),
    (b"\x00\x03a/#", 0, "wildcard"),
    (b"\x00\x03a\x00b", 0, "U\\+0000"),
])
def test_a_malformed_publish_is_refused(body: bytes, qos: int, why: str) -> None:
    with pytest.raises(mqtt.MqttProtocolError, match=why):
        mqtt.read_publish(mqtt.Packet(mqtt.PUBLISH, qos << 1, body))


@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=6))
def test_any_bytes_are_packets_or_a_protocol_error_never_a_crash(
        data: bytes, cuts: list[int]) -> None:
    reader, last = mqtt.Reader(max_packet=300), 0
    try:
        for cut in [*sorted({min(c, len(data)) for c in cuts}), len(data)]:
            for p in reader.feed(data[last:cut]):
                if p.kind == mqtt.PUBLISH:
                    mqtt.read_publish(p)
                elif p.kind in (mqtt.PUBACK, mqtt.SUBACK, mqtt.UNSUBACK):
                    assert 0 <= mqtt.packet_id(p) <= 65535
            last = cut
    except mqtt.MqttProtocolError:
        pass


def test_connect_bytes_as_the_standard_lays_them_out() -> None:
    # protocol name, level 4, flags (user, password, clean session), keep-alive 60
    assert mqtt.connect("c1", keepalive=60, username="u", password="p") == (
        b"\x10\x14\x00\x04MQTT\x04\xc2\x00\x3c\x00\x02c1\x00\x01u\x00\x01p")
    assert mqtt.connect("c", keepalive=5, will=("w/t", b"x", 1, True))[8:10] == b"\x04\x2e"


def test_subscribe_unsubscribe_puback_and_publish_bytes() -> None:
    assert mqtt.subscribe(10, [("a/+", 1), ("b", 0)]) == (
        b"\x82\x0c\x00\x0a\x00\x03a/+\x01\x00\x01b\x00")
    assert mqtt.unsubscribe(11, ["a/+"]) == b"\xa2\x07\x00\x0b\x00\x03a/+"
    assert mqtt.puback(258) == b"\x40\x02\x01\x02"
    assert mqtt.publish("t", b"hi", qos=1, retain=True, packet_id=1) == (
        b"\x33\x07\x00\x01t\x00\x01hi")
    with pytest.raises(ValueError, match="packet id"):
        mqtt.publish("t", b"", qos=1)
    with pytest.raises(ValueError, match="packet id"):
        mqtt.publish("t", b"", qos=2, packet_id=1)
