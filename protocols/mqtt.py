"""MQTT 3.1.1 packets: the bytes of what a client sends, and a reader of what it receives.

Pure: no sockets, no clock. The centre's consumers (:mod:`central.mqtt`) and the
simulator's swarm (:mod:`sim.swarm`) frame their packets here. Only what a client needs
is covered (OASIS MQTT 3.1.1, section 3): CONNECT, PUBLISH at QoS 0 and 1, PUBACK,
SUBSCRIBE, UNSUBSCRIBE, PINGREQ and DISCONNECT out; CONNACK, PUBLISH, PUBACK, SUBACK,
UNSUBACK and PINGRESP in. Anything else a broker sends a client, or a malformed packet,
(a QoS 2 PUBLISH among them: a client that subscribes at QoS 1 at most is never sent one)
raises :class:`MqttProtocolError`: the connection is then to be closed, as the standard
asks.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = [
    "CONNACK", "DISCONNECT", "PINGREQ", "PINGRESP", "PUBACK", "PUBLISH", "SUBACK",
    "UNSUBACK", "MqttProtocolError", "Packet", "Publish", "Reader", "connect", "packet",
    "packet_id", "puback", "publish", "read_publish", "subscribe", "unsubscribe",
]

# Packet types (the first byte's high nibble).
CONNACK, PUBLISH, PUBACK, SUBACK, UNSUBACK, PINGRESP = 2, 3, 4, 9, 11, 13
PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"
MAX_LENGTH = 268_435_455  # the largest Remaining Length four bytes can say
_H = struct.Struct("!H")
_FIXED_FLAGS = {CONNACK: 0, PUBACK: 0, SUBACK: 0, UNSUBACK: 0, PINGRESP: 0}
_BODY_LENGTH = {CONNACK: 2, PUBACK: 2, UNSUBACK: 2, PINGRESP: 0}


class MqttProtocolError(ValueError):
    """Bytes from the broker that are not a packet a 3.1.1 client may receive."""


class Packet(NamedTuple):
    kind: int  # the type, 1–14
    flags: int  # the first byte's low nibble
    body: bytes  # variable header and payload


class Publish(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    packet_id: int | None  # None at QoS 0
    retain: bool


# --- out --------------------------------------------------------------------------------------


def _length(n: int) -> bytes:
    if not 0 <= n <= MAX_LENGTH:
        raise ValueError(f"a packet of {n} bytes cannot be sent")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _text(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    if len(b) > 0xFFFF:
        raise ValueError("a string of more than 65,535 bytes")
    return _H.pack(len(b)) + b


def packet(first: int, body: bytes) -> bytes:
    """One packet: its first byte, the Remaining Length, the body."""
    return bytes([first]) + _length(len(body)) + body


def connect(client_id: str, *, keepalive: int, clean_session: bool = True,
            username: str | None = None, password: str | None = None,
            will: tuple[str, bytes, int, bool] | None = None) -> bytes:
    """CONNECT; ``will`` is (topic, payload, qos, retain)."""
    flags = 0x02 if clean_session else 0
    rest = b""
    if will is not None:
        topic, payload, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        rest += _text(topic) + _text(payload)
    if username is not None:
        flags |= 0x80
        rest += _text(username)
        if password is not None:
            flags |= 0x40
            rest += _text(password)
    if not 0 <= keepalive <= 0xFFFF:
        raise ValueError("keepalive is 0–65,535 s")
    return packet(0x10, _text("MQTT") + bytes([4, flags]) + _H.pack(keepalive)
                  + _text(client_id) + rest)


def publish(topic: str, payload: bytes, *, qos: int = 0, retain: bool = False,
            packet_id: int | None = None, dup: bool = False) -> bytes:
    """PUBLISH at QoS 0 or 1 (QoS 1 with its ``packet_id``)."""
    if qos not in (0, 1) or (qos == 1) != (packet_id is not None):
        raise ValueError("QoS 0 without a packet id, or QoS 1 with one")
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    head = _text(topic) + (_H.pack(packet_id) if packet_id is not None else b"")
    return packet(first, head + payload)


def puback(pid: int) -> bytes:
    return b"\x40\x02" + _H.pack(pid)


def subscribe(pid: int, topics: list[tuple[str, int]]) -> bytes:
    if not topics:
        raise ValueError("SUBSCRIBE names at least one topic")
    return packet(0x82, _H.pack(pid) + b"".join(_text(t) + bytes([q]) for t, q in topics))


def unsubscribe(pid: int, topics: list[str]) -> bytes:
    if not topics:
        raise ValueError("UNSUBSCRIBE names at least one topic")
    return packet(0xA2, _H.pack(pid) + b"".join(_text(t) for t in topics))


# --- in ---------------------------------------------------------------------------------------


class Reader:
    """Packets out of a byte stream that arrives in pieces of any size.

    ``feed(data)`` returns every packet the bytes so far complete, in order, and keeps the
    rest. A packet longer than ``max_packet`` bytes, or not one a client may receive,
    raises :class:`MqttProtocolError` (and the reader is then of no further use).
    """

    def __init__(self, max_packet: int = 1 << 20) -> None:
        self.max_packet = max_packet
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a packet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._buf
        buf += data
        out: list[Packet] = []
        size, i = len(buf), 0
        while size - i >= 2:
            first = buf[i]
            j, length, shift = i + 1, 0, 0
            while True:
                if j >= size:
                    length = -1  # the length is not all here yet
                    break
                b = buf[j]
                j += 1
                length |= (b & 0x7F) << shift
                if not b & 0x80:
                    if shift and not b:
                        raise MqttProtocolError("a Remaining Length not in its fewest bytes")
                    break
                shift += 7
                if shift > 21:
                    raise MqttProtocolError("a Remaining Length of more than four bytes")
            if length > self.max_packet:
                raise MqttProtocolError(f"a packet of {length} bytes (at most "
                                        f"{self.max_packet})")
            if length < 0 or size - j < length:
                break
            kind, flags = first >> 4, first & 0x0F
            body = bytes(buf[j:j + length])
            _check(kind, flags, body)
            out.append(Packet(kind, flags, body))
            i = j + length
        if i:
            del buf[:i]
        return out


def _check(kind: int, flags: int, body: bytes) -> None:
    if kind == PUBLISH:
        qos = (flags >> 1) & 3
        if qos > 1:  # a client subscribed at QoS 1 at most is never sent QoS 2 (3.8.4)
            raise MqttProtocolError(f"PUBLISH with QoS {qos}")
        if not qos and flags & 0x08:
            raise MqttProtocolError("PUBLISH at QoS 0 with DUP set")
        return
    if kind not in _FIXED_FLAGS:
        raise MqttProtocolError(f"packet type {kind} is not one a client receives")
    if flags != _FIXED_FLAGS[kind]:
        raise MqttProtocolError(f"packet type {kind} with flags {flags:#x}")
    want = _BODY_LENGTH.get(kind)
    if want is not None and len(body) != want:
        raise MqttProtocolError(f"packet type {kind} of {len(body)} bytes, not {want}")
    if kind == SUBACK and (len(body) < 3 or not set(body[2:]) <= {0, 1, 2, 0x80}):
        raise MqttProtocolError("SUBACK without a return code, or with an unknown one")
    if kind == CONNACK and body[0] & 0xFE:
        raise MqttProtocolError("CONNACK with reserved bits set")


def packet_id(p: Packet) -> int:
    """The packet id of a PUBACK, SUBACK or UNSUBACK."""
    return int(_H.unpack_from(p.body)[0])


def read_publish(p: Packet) -> Publish:
    """A received PUBLISH's parts; MqttProtocolError when they do not add up."""
    body, qos = p.body, (p.flags >> 1) & 3
    if len(body) < 2:
        raise MqttProtocolError("PUBLISH without a topic")
    n = (body[0] << 8) | body[1]
    start = 2 + n + (2 if qos else 0)
    if len(body) < start:
        raise MqttProtocolError("PUBLISH shorter than its topic and packet id")
    try:
        topic = body[2:2 + n].decode()
    except UnicodeDecodeError:
        raise MqttProtocolError("PUBLISH topic is not UTF-8") from None
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        raise MqttProtocolError("PUBLISH topic empty, with a wildcard or with U+0000")
    pid = ((body[2 + n] << 8) | body[3 + n]) if qos else None
    if pid == 0:
        raise MqttProtocolError("PUBLISH with packet id 0")
    return Publish(topic, body[start:], qos, pid, bool(p.flags & 1))
