"""The centre's MQTT 3.1.1 client: one connection, on the event loop, nothing else.

Why not paho (through aiomqtt), as before: paho reads a packet with three ``recv`` calls
(its type, its length, its body), answers each received QoS 1 message with its own PUBACK
written on a later turn of the loop (a wake-up through the loop's self-pipe, a writer
registered and removed), and aiomqtt hands each message over as a task's wait. At a few
hundred messages a second that cost the centre ~0.37 ms a message on the project's VM;
this client reads whatever the socket holds in one call, frames every packet in it
(:mod:`protocols.mqtt`), hands each message to ``on_message`` at once and answers all of
that read's QoS 1 messages in one write: ~0.13 ms a message at the same trickle, ~5 µs
in a burst (docs/performance.md, "A lean MQTT client for the consumers").

What it does, and only that (the centre's consumers need no more):

* clean sessions (the boxes send again whatever has no ack), no Will;
* received messages at QoS 0 or 1, acknowledged as they are handed to ``on_message`` (as
  paho did): the consumer's own ``ack`` topic, published after its commit, is what tells
  a box its events are stored;
* publishes at QoS 0 or 1 (``await`` returns once the broker's PUBACK is in), at most
  ``max_inflight`` QoS 1 publishes unanswered at a time, waiting while the socket's
  buffer is full;
* keep-alive: a PINGREQ when nothing was sent, or nothing heard, for half the keep-alive,
  and the connection is given up when nothing was heard for one and a half (the
  broker's own rule);
* every failure — refused, lost, a malformed packet, no answer in time — is an
  :class:`MqttError`, and every waiting call gets it; :meth:`MqttClient.wait_closed`
  raises it, so a task group around a session ends with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from protocols import mqtt

__all__ = ["MqttClient", "MqttError"]

log = logging.getLogger(__name__)

CONNACK_REASONS = {1: "protocol version not accepted", 2: "client id rejected",
                   3: "server unavailable", 4: "bad user name or password",
                   5: "not authorised"}


class MqttError(ConnectionError):
    """The broker refused, dropped or broke the connection, or did not answer in time."""


class MqttClient(asyncio.Protocol):
    """``async with MqttClient(...) as client:`` connects, and disconnects on the way out."""

    def __init__(self, host: str, port: int, *, client_id: str,
                 on_message: Callable[[str, bytes], None],
                 username: str | None = None, password: str | None = None,
                 keepalive: int = 30, tls: ssl.SSLContext | None = None,
                 max_inflight: int = 100, max_packet: int = 1 << 20,
                 timeout: float = 10.0) -> None:
        self.host, self.port = host, port
        self.client_id = client_id
        self.on_message = on_message
        self.username, self.password = username, password
        self.keepalive, self.tls, self.timeout = keepalive, tls, timeout
        self._reader = mqtt.Reader(max_packet)
        self._transport: asyncio.Transport | None = None
        self._closed: asyncio.Future[None] | None = None
        self._connack: asyncio.Future[int] | None = None
        # packet id → the type of its answer, and the answer
        self._waiting: dict[int, tuple[int, asyncio.Future[bytes]]] = {}
        self._late: set[int] = set()  # ids given up on whose answer may still come
        self._slots = asyncio.Semaphore(max_inflight)
        self._writable = asyncio.Event()
        self._writable.set()
        self._pid = 0
        self._out: list[bytes] = []  # to send at the end of this turn of the loop
        self._sent = self._heard = 0.0
        self._pinger: asyncio.Task[None] | None = None

    # --- connecting and closing ------------------------------------------------------------

    async def __aenter__(self) -> MqttClient:
        await self.connect()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        self._closed = _future(loop)
        self._connack = _future(loop)
        try:
            async with asyncio.timeout(self.timeout):
                await loop.create_connection(
                    lambda: self, self.host, self.port, ssl=self.tls,
                    server_hostname=self.host if self.tls is not None else None)
                self._write(mqtt.connect(self.client_id, keepalive=self.keepalive,
                                         username=self.username, password=self.password))
                code = await asyncio.shield(self._connack)
        except TimeoutError:
            self._abort(MqttError(f"no CONNACK from {self.host}:{self.port} within "
                                  f"{self.timeout:g} s"))
            raise self._failure() from None
        except OSError as exc:  # refused, unreachable, TLS; or lost before the CONNACK
            self._abort(exc if isinstance(exc, MqttError)
                        else MqttError(f"cannot connect to {self.host}:{self.port}: {exc}"))
            raise self._failure() from exc
        except BaseException:  # cancelled while connecting: nothing left open
            self._abort(MqttError("connecting was cancelled"))
            raise
        if code:
            self._abort(MqttError(f"the broker refused the connection: "
                                 f"{CONNACK_REASONS.get(code, f'code {code}')}"))
            raise self._failure()
        self._pinger = loop.create_task(self._keep_alive(), name="mqtt-keepalive")

    async def close(self) -> None:
        """DISCONNECT (when still connected) and close; never raises."""
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pinger
        t = self._transport
        if t is not None and not t.is_closing():
            self._flush()
            t.write(mqtt.DISCONNECT)
            t.close()
        self._lose(MqttError("the client closed the connection"))

    async def wait_closed(self) -> None:
        """Wait until the connection ends; raise why (an :class:`MqttError`)."""
        assert self._closed is not None, "not connected"
        await asyncio.shield(self._closed)

    @property
    def connected(self) -> bool:
        return self._closed is not None and not self._closed.done()

    # --- what the centre calls -------------------------------------------------------------

    async def subscribe(self, topics: list[tuple[str, int]],
                        timeout: float | None = None) -> list[int]:
        """Subscribe; the granted QoS of each. MqttError if the broker refuses any."""
        answer = await self._ask(mqtt.SUBACK, lambda pid: mqtt.subscribe(pid, topics),
                                 timeout)
        granted = list(answer[2:])
        refused = [t for (t, _), g in zip(topics, granted, strict=False) if g == 0x80]
        if refused or len(granted) != len(topics):
            raise MqttError(f"the broker refused the subscription to {refused or topics}")
        return granted

    async def unsubscribe(self, topics: list[str], timeout: float | None = None) -> None:
        await self._ask(mqtt.UNSUBACK, lambda pid: mqtt.unsubscribe(pid, topics), timeout)

    async def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                      timeout: float | None = None) -> None:
        """Publish; at QoS 1, return once the broker has acknowledged it."""
        if qos == 0:
            try:
                async with asyncio.timeout(timeout if timeout is not None else self.timeout):
                    await self._room()
            except TimeoutError:
                raise MqttError("the socket took nothing within "
                                f"{timeout or self.timeout:g} s") from None
            self._write(mqtt.publish(topic, payload, retain=retain))
            return
        await self._ask(mqtt.PUBACK, lambda pid: mqtt.publish(
            topic, payload, qos=1, retain=retain, packet_id=pid), timeout)

    # --- asking and answering ----------------------------------------------------------------

    async def _ask(self, kind: int, packet: Callable[[int], bytes],
                   timeout: float | None) -> bytes:
        """Send the packet with a fresh packet id and wait for the answer of type ``kind``
        with that id; the timeout covers the wait for an in-flight slot and for room in
        the socket's buffer too. An id whose answer did not come in time is not used again
        on this connection before that answer comes."""
        pid = 0
        try:
            async with asyncio.timeout(timeout if timeout is not None else self.timeout):
                async with self._slots:
                    await self._room()
                    pid = self._next_pid()
                    answer: asyncio.Future[bytes] = _future(asyncio.get_running_loop())
                    self._waiting[pid] = (kind, answer)
                    self._write(packet(pid))
                    body = await answer
                    pid = 0
                    return body
        except TimeoutError:
            raise MqttError(f"no answer from the broker within "
                            f"{timeout or self.timeout:g} s") from None
        finally:
            if pid and self._waiting.pop(pid, None) is not None and self.connected:
                self._late.add(pid)

    async def _room(self) -> None:
        self._fail_if_closed()
        if not self._writable.is_set():
            closed = self._closed
            assert closed is not None
            room: asyncio.Future[Any] = asyncio.ensure_future(self._writable.wait())
            either: list[asyncio.Future[Any]] = [room, closed]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            room.cancel()
            self._fail_if_closed()

    def _next_pid(self) -> int:
        for _ in range(65535):
            self._pid = self._pid % 65535 + 1
            if self._pid not in self._waiting and self._pid not in self._late:
                return self._pid
        raise MqttError("every packet id is waiting for an answer")  # inflight ≤ 65535

    def _fail_if_closed(self) -> None:
        if self._closed is None or self._closed.done():
            raise self._failure()

    def _failure(self) -> MqttError:
        closed = self._closed
        exc = closed.exception() if closed is not None and closed.done() else None
        return exc if isinstance(exc, MqttError) else MqttError("not connected")

    def _write(self, data: bytes) -> None:
        """Send ``data`` with whatever else this turn of the loop sends: a commit's acks,
        published together, leave in one system call rather than one each."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)
        self._sent = time.monotonic()

    def _flush(self) -> None:
        out, self._out = self._out, []
        t = self._transport
        if out and t is not None and not t.is_closing():
            t.write(b"".join(out))

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._heard = time.monotonic()

    def data_received(self, data: bytes) -> None:
        self._heard = time.monotonic()
        try:
            for p in self._reader.feed(data):
                if p.kind == mqtt.PUBLISH:
                    m = mqtt.read_publish(p)
                    self.on_message(m.topic, m.payload)
                    if m.packet_id is not None:  # leaves with the rest of this turn's
                        self._write(mqtt.puback(m.packet_id))
                elif p.kind in (mqtt.PUBACK, mqtt.SUBACK, mqtt.UNSUBACK):
                    pid = mqtt.packet_id(p)
                    kind, answer = self._waiting.get(pid, (p.kind, None))
                    if kind != p.kind:
                        raise mqtt.MqttProtocolError(f"packet type {p.kind} answers "
                                                     f"packet id {pid}, which awaits {kind}")
                    if answer is None:
                        self._late.discard(pid)  # came after its caller gave up
                        continue
                    del self._waiting[pid]
                    if not answer.done():
                        answer.set_result(p.body)
                elif p.kind == mqtt.CONNACK:
                    if self._connack is None or self._connack.done():
                        raise mqtt.MqttProtocolError("a second CONNACK")
                    self._connack.set_result(p.body[1])
        except mqtt.MqttProtocolError as exc:
            self._abort(MqttError(f"broker sent a malformed packet: {exc}"))
        except Exception as exc:  # on_message failed: a bug; the connection starts again
            log.exception("MQTT message handler failed")
            self._abort(MqttError(f"message handler failed: {exc!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose(MqttError(f"connection to {self.host}:{self.port} lost"
                             + (f": {exc}" if exc else "")))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # --- keep-alive and endings --------------------------------------------------------------

    async def _keep_alive(self) -> None:
        half = self.keepalive / 2
        while self.connected:
            await asyncio.sleep(min(half, 1.0))  # checked every second, or more often
            now = time.monotonic()
            if now - self._heard > 1.5 * self.keepalive:
                self._abort(MqttError(f"nothing from the broker for "
                                      f"{1.5 * self.keepalive:g} s"))
                return
            if (now - self._sent >= half or now - self._heard >= half) \
                    and self._transport is not None:
                self._write(mqtt.PINGREQ)

    def _abort(self, exc: MqttError) -> None:
        self._lose(exc)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    def _lose(self, exc: MqttError) -> None:
        """The connection is over: say why to whoever waits, once."""
        if self._closed is not None and not self._closed.done():
            self._closed.set_exception(exc)
        for f in (self._connack, *(answer for _, answer in self._waiting.values())):
            if f is not None and not f.done():
                f.set_exception(exc)
        self._waiting.clear()
        self._late.clear()
        self._writable.set()  # writers wake, and find it closed


def _future(loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
    """A future whose failure is read even when nobody waits for it any more (an ended
    connection fails every one of them; that is not an unhandled error)."""
    f = loop.create_future()
    f.add_done_callback(_retrieve)
    return f


def _retrieve(f: asyncio.Future[Any]) -> None:
    if not f.cancelled():
        f.exception()
