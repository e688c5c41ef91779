"""The HTTP server of the box and of the centre: uvicorn, stopping cleanly on a signal, with
the limits an appliance on a shared LAN needs against slow and greedy clients.

Either of uvicorn's request parsers (``parser``, docs/config.md ``http.parser``): llhttp
through httptools (C; the default: with uvloop, a sixth less CPU per ticket), or h11
(pure Python) as a fallback. What uvicorn offers, and what this module adds to both:

* request head size (``max_header_bytes``): h11's ``max_incomplete_event_size`` answers 400
  and closes a longer head it holds incomplete (one that arrives whole in one read passes);
  llhttp has no cap at all, so :class:`GuardedHttpTools` counts the bytes of a head not yet
  complete, and the length of a complete one, and answers 400 and closes past it.
* idle keep-alive: uvicorn's ``timeout_keep_alive`` (``keep_alive_s``).
* **no header-read timeout**: uvicorn arms no timer until a first response is sent, so a
  connection that trickles a request head one header at a time is held for ever
  (slowloris). :class:`_Guarded` gives every request head a deadline
  (``head_timeout_s``) from its first byte, or from the connection's start.
* **no write timeout**: a client that stops reading holds its buffers and its task for
  ever. A connection whose send buffer stays full for ``write_stall_s`` is cut. The
  kernel's send buffer of each connection is held at :data:`SEND_BUFFER` (Linux would
  grow it to 4 MiB for a client that reads nothing: 4 GiB of a Pi's memory for 1,000
  of them), and the box's own buffer of it at :data:`WRITE_BUFFER`, so that a client
  that stopped reading is seen as one soon.
* uvicorn's ``limit_concurrency`` is not used: it answers 503 to *every* new request once
  the count of connections (slow ones included) reaches it, turning a slowloris into an
  outage. Instead a new connection over ``per_address`` (from its address) or over
  ``max_connections`` (in all; never above the open-file limit less
  :data:`RESERVED_FILES` for the journal, devices and logs) closes the oldest *idle*
  connection of that address (or of all) — one with no request in flight: a head not yet
  complete, or a keep-alive; failing that, the oldest event stream (a request
  with ``Accept: text/event-stream``: its page reconnects by itself); and when there is
  neither, the new one is closed. A kiosk's ticket is thus never refused for a thousand
  idle or streaming connections, and any other request is never cut for a newcomer.
* ``backlog``: the kernel's accept queue, and how many connections asyncio accepts in one
  go before any is looked at: a sixteenth of the open-file limit (at most uvicorn's 2048);
  four times that is left out of ``max_connections``, so that a burst of connections
  never runs the box out of files.
* request bodies: uvicorn buffers at most 64 KiB ahead of the application; the cap and
  the body's deadline are the application's (common/limits.py).
* an application that refuses a request for load sets ``scope[HOLD_KEY]`` (seconds, its
  ``Retry-After``): once the answer is sent, nothing more is read from that connection for
  that long, so a client that asks again at once waits in the kernel's buffers, costing
  the process nothing (the centre's public routes, central/edge.py).
* ``X-Forwarded-For`` / ``X-Forwarded-Proto``: uvicorn believes them from 127.0.0.1 (or
  ``$FORWARDED_ALLOW_IPS``) unless told otherwise, so any process on the machine could
  pose as any client. Here they are believed only from the ``proxies`` given (the
  centre's ``http.trusted_proxies``); the box names none, so it never believes them.

* one write per answer: uvicorn writes a response's head and its body separately, two
  system calls and two TCP segments (asyncio turns Nagle off) for every small JSON answer;
  :class:`_OneWrite` holds the head until the body follows in the same step of the loop
  (or sends it alone at the next step: a stream's head is not held back).

The process's soft open-file limit is raised to its hard limit at start (systemd's
``LimitNOFILE``, deploy/templates/paidui-box.service).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HOLD_KEY", "PROTOCOLS", "RESERVED_FILES", "SEND_BUFFER", "WRITE_BUFFER",
           "ServerLimits", "accept_burst", "http_server", "open_file_limit"]

log = logging.getLogger(__name__)

SEND_BUFFER = 65536  # bytes per connection in the kernel (a LAN needs far less: 100 Mbit/s × 1 ms)
WRITE_BUFFER = 16384  # bytes per connection queued in the box before it waits (uvicorn: 64 KiB)
RESERVED_FILES = 64  # open files kept for the journal, serial ports, logs, the broker link
EVENT_STREAM = (b"accept", b"text/event-stream")
REPORT_EVERY_S = 60.0  # closed connections are logged at most this often (a flood is long)
HOLD_KEY = "paidui.hold_s"  # set in an ASGI scope: after its answer, read nothing for this long


@dataclass(frozen=True)
class ServerLimits:
    """How long a client may take and how many connections it may hold (see the module
    docstring). ``None``: no cap of that kind but the open-file limit."""

    head_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    write_stall_s: float = 60.0
    max_header_bytes: int = 16384
    max_connections: int | None = None
    per_address: int | None = None
    parser: str = "httptools"  # or "h11" (pure Python, slower): see PROTOCOLS

    @classmethod
    def of(cls, http: Any) -> ServerLimits:
        """The limits of a box's ``[http]`` section (controller/config.py ``HttpConfig``)."""
        return cls(http.head_timeout_s, http.keep_alive_s, http.write_stall_s,
                   http.max_header_bytes, http.max_connections, http.per_address, http.parser)


def accept_burst(files: int) -> int:
    """The listen backlog: also how many connections asyncio accepts in one go, before any
    of them is looked at (and shed). A few such bursts can come before the first of them is
    closed, so four are kept out of the open-file budget."""
    return max(16, min(2048, files // 16))


def open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (as far as allowed); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    return int(soft)


class _Guard:
    """The connections of one server, oldest first, in all and per client address."""

    def __init__(self, limits: ServerLimits, max_connections: int) -> None:
        self.limits, self.max_connections = limits, max_connections
        self.all: dict[_Guarded, None] = {}
        self.by_address: dict[str, dict[_Guarded, None]] = {}
        self.closed: Counter[str] = Counter()  # why, since the last report
        self._reported_at: float | None = None

    def admit(self, conn: _Guarded) -> None:
        self.all[conn] = None
        mine = self.by_address.setdefault(conn.address, {})
        mine[conn] = None
        per = self.limits.per_address
        if per is not None and len(mine) > per:
            self._shed(mine, conn, "per_address")
        if len(self.all) > self.max_connections and conn in self.all:
            self._shed(self.all, conn, "max_connections")

    def leave(self, conn: _Guarded) -> None:
        self.all.pop(conn, None)
        mine = self.by_address.get(conn.address)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self.by_address[conn.address]

    def _shed(self, pool: dict[_Guarded, None], newcomer: _Guarded, why: str) -> None:
        others = [c for c in pool if c is not newcomer]
        victim = next((c for c in others if c.idle()), None) or \
            next((c for c in others if c.streaming()), newcomer)
        self.leave(victim)
        if victim.streaming():
            victim.transport.abort()  # a stalled stream's close() would wait to flush
        else:
            victim.transport.close()
        self.count(why)

    def count(self, why: str) -> None:
        self.closed[why] += 1
        now = asyncio.get_running_loop().time()
        if self._reported_at is None or now - self._reported_at >= REPORT_EVERY_S:
            self._reported_at = now
            detail = ", ".join(f"{k} {n}" for k, n in sorted(self.closed.items()))
            log.warning("http: closed connections (%s); %d open", detail, len(self.all))
            self.closed.clear()


class _OneWrite:
    """A connection's transport that sends a response's head together with what follows it
    (the body, written in the same step of the loop), else alone at the loop's next step.
    Everything else is the transport's own."""

    __slots__ = ("_head", "_later", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._head: bytes | None = None
        self._later: asyncio.Handle | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
            if self._later is not None:
                self._later.cancel()
                self._later = None
        elif data[:7] == b"HTTP/1." and data[-4:] == b"\r\n\r\n":  # a response's head
            self._head = data
            self._later = self._loop.call_soon(self._send_head)
            return
        self._transport.write(data)

    def _send_head(self) -> None:
        self._later = None
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self._send_head()
        self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Guarded:
    """What the box adds to either of uvicorn's HTTP protocols: a deadline for each request
    head, a cut for a client that stops reading, and the connection caps of :class:`_Guard`.
    A parser's subclass says when it waits for a request head (``_waiting_for_head``)."""

    guard: _Guard  # set on the subclass each server makes
    loop: asyncio.AbstractEventLoop
    transport: Any
    client: tuple[str, int] | None
    cycle: Any
    headers: Any

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.transport = _OneWrite(transport, self.loop)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        transport.set_write_buffer_limits(high=WRITE_BUFFER)
        self.address = self.client[0] if self.client else "?"
        self._head_timer: asyncio.TimerHandle | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._arm_head()
        self.guard.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._stall_timer):
            if timer is not None:
                timer.cancel()
        self.guard.leave(self)
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if self._waiting_for_head():
            if self._head_timer is None:  # the first bytes of a next request
                self._arm_head()
            return
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def idle(self) -> bool:
        """No request in flight: its head is not complete yet, or it is a keep-alive."""
        return self._waiting_for_head() and (self.cycle is None or self.cycle.response_complete)

    def streaming(self) -> bool:
        """An event stream in flight (its page reconnects when it is cut)."""
        return not self.idle() and EVENT_STREAM in (self.headers or ())

    def _waiting_for_head(self) -> bool:
        raise NotImplementedError

    def _arm_head(self) -> None:
        self._head_timer = self.loop.call_later(self.guard.limits.head_timeout_s,
                                                self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._waiting_for_head() and not self.transport.is_closing():
            self.guard.count("head_timeout")
            self.transport.close()

    def on_response_complete(self) -> None:
        hold = self.cycle.scope.get(HOLD_KEY) if self.cycle is not None else None
        super().on_response_complete()  # type: ignore[misc]
        if hold and not self.transport.is_closing():
            # the application refused this request for load (HOLD_KEY): read nothing more
            # from this connection for that long — its next request costs no time meanwhile
            self.transport.pause_reading()
            self.loop.call_later(float(hold), self._release)

    def _release(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        super().pause_writing()  # type: ignore[misc]
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(self.guard.limits.write_stall_s,
                                                     self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()  # type: ignore[misc]
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _stalled(self) -> None:
        self._stall_timer = None
        self.guard.count("write_stall")
        self.transport.abort()  # close() would wait for the buffer it will never read


class GuardedH11(_Guarded, H11Protocol):  # type: ignore[misc]  # transport: a TCP one
    """uvicorn's h11 protocol (pure Python), guarded. h11 caps the request head itself
    (``max_incomplete_event_size``)."""

    def _waiting_for_head(self) -> bool:
        return bool(self.conn.their_state is h11.IDLE)


class GuardedHttpTools(_Guarded, HttpToolsProtocol):
    """uvicorn's httptools protocol (llhttp, C), guarded. llhttp has no cap on a request
    head's size: a head not complete past ``max_header_bytes`` received is answered 400 and
    closed, as is a complete one whose line and headers are longer (what h11 does)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._open_heads = 0  # heads complete whose answer is not
        self._head_bytes = 0  # received since the last complete head
        super().connection_made(transport)

    def _waiting_for_head(self) -> bool:
        return self._open_heads == 0

    def data_received(self, data: bytes) -> None:
        if self._open_heads == 0:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._open_heads == 0 and self._head_bytes > self.guard.limits.max_header_bytes \
                and not self.transport.is_closing():
            self.send_400_response("Request head too large.")

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
        if size > self.guard.limits.max_header_bytes:
            raise ValueError("request head too large")  # llhttp stops: 400 and closed
        self._open_heads += 1
        self._head_bytes = 0
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._open_heads -= 1
        super().on_response_complete()


PROTOCOLS: dict[str, type[_Guarded]] = {"h11": GuardedH11, "httptools": GuardedHttpTools}


def http_server(app: Any, host: str, port: int, *, graceful_s: int,
                limits: ServerLimits | None = None, proxies: Sequence[str] = ()) -> Any:
    """A uvicorn server for ``app`` that stops on SIGINT/SIGTERM as uvicorn does, but then
    returns instead of raising the signal again (uvicorn's way), so its owner closes what
    it holds (devices, journal, store) politely and the process exits 0 — what systemd
    and ``python -m sim demo`` expect of a clean stop.

    ``graceful_s``: how long open requests get to finish; event streams never end by
    themselves, so it is short. ``limits``: see :class:`ServerLimits` (the box passes its
    ``[http]`` section; the centre the defaults: deadlines, no per-address cap).
    ``proxies``: addresses or networks whose ``X-Forwarded-*`` headers are believed; none
    (the default): the client is the peer of the connection, whatever it says.
    """
    import uvicorn

    chosen = limits or ServerLimits()
    files = open_file_limit()
    backlog = accept_burst(files)
    most = max(16, min(chosen.max_connections or files, files - RESERVED_FILES - 4 * backlog))
    if chosen.max_connections and most < chosen.max_connections:
        log.warning("http.max_connections %d lowered to %d: the box may open %d files",
                    chosen.max_connections, most, files)

    protocol = type("Protocol", (PROTOCOLS[chosen.parser],), {"guard": _Guard(chosen, most)})

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return Server(uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
        log_config=None,  # uvicorn's loggers go through ours (text or JSON, common/logs.py)
        timeout_graceful_shutdown=graceful_s,
        http=protocol, timeout_keep_alive=chosen.keep_alive_s,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=chosen.max_header_bytes, backlog=backlog,
        ws="none",  # no WebSockets here: an upgrade request is served as plain HTTP
        proxy_headers=bool(proxies), forwarded_allow_ips=list(proxies),
    ))
