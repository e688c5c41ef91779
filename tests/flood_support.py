"""A box in its own process and the clients that flood it: slow headers, big bodies, event
stream listeners that read or never read. Shared by tests/test_web_floods.py and
bench/bench_floods.py.

Attackers come from other loopback addresses (127.0.0.2 …) than the kiosk (127.0.0.1), as
they would from other machines on the branch LAN: the box's per-address cap is per address.
They run in an event loop of their own thread (:func:`in_own_thread`), not in the loop
that times the kiosk's requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import resource
import socket
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tests.browser import BoxProcess

T = TypeVar("T")
R = TypeVar("R")
KIOSK_ADDR = "127.0.0.1"


def attacker_addresses(count: int) -> list[str]:
    """``count`` loopback addresses other than the kiosk's (Linux routes all of 127/8)."""
    return [f"127.0.0.{2 + i}" for i in range(count)]


class FloodBox(BoxProcess):
    """``python -m controller`` on the example branch with at most ``nofile`` open files
    (soft and hard, so it cannot raise them: as under the service file's ``LimitNOFILE``)."""

    def __init__(self, data_dir: Path, *overrides: str, nofile: int | None = None) -> None:
        super().__init__(data_dir, *overrides)
        data_dir.mkdir(parents=True, exist_ok=True)
        if nofile is not None:
            self.preexec = functools.partial(resource.setrlimit, resource.RLIMIT_NOFILE,
                                             (nofile, nofile))

    def rss_mb(self, what: str = "VmRSS") -> float:
        """The box's resident memory now (``VmHWM``: its peak since :meth:`reset_peak`), MiB."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(what + ":"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {what}")

    def reset_peak(self) -> None:
        """Start the peak (``VmHWM``) again from now (Linux: ``clear_refs`` 5)."""
        assert self.proc is not None
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def open_files(self) -> int:
        assert self.proc is not None
        return len(list(Path(f"/proc/{self.proc.pid}/fd").iterdir()))


@contextlib.contextmanager
def flood_box(data_dir: Path, *overrides: str, nofile: int | None = None
              ) -> Iterator[FloodBox]:
    box = FloodBox(data_dir, *overrides, nofile=nofile)
    box.start()
    try:
        yield box
    finally:
        box.stop()


@contextlib.asynccontextmanager
async def in_own_thread(clients: contextlib.AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """Enter ``clients`` (the flood's connections) in an event loop of a thread of its own.

    The caller's loop times the kiosk's requests; with hundreds of clients reading and
    trickling in that same loop, an answer the box had sent waited behind their work
    before it was seen, and on a loaded 2-core machine a ticket "took" 1.1–2.1 s that the
    box had not spent. The clients' state (counts, flags, lists) is read across threads:
    plain attributes, each written by the clients' thread alone.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="flood-clients", daemon=True)
    thread.start()

    async def there(coro: Coroutine[object, object, R]) -> R:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    try:
        value = await there(clients.__aenter__())
        try:
            yield value
        except BaseException as exc:
            if not await there(clients.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            await there(clients.__aexit__(None, None, None))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


# --- one request, timed ---------------------------------------------------------------------


async def request(port: int, raw: bytes, *, local: str = KIOSK_ADDR, timeout: float = 10.0
                  ) -> tuple[int, bytes]:
    """Send ``raw`` (a whole request) on a new connection; (status, body) of the answer."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       local_addr=(local, 0))
        try:
            writer.write(raw)
            await writer.drain()
            return await read_response(reader)
        finally:
            writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return status, body


def post_json(path: str, data: object) -> bytes:
    body = json.dumps(data).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


async def issue_ticket(port: int, queue: str = "A", timeout: float = 10.0
                       ) -> tuple[int, float, dict[str, object]]:
    """``POST /api/tickets`` from the kiosk's address: (status, seconds, answer)."""
    start = time.perf_counter()
    status, body = await request(port, post_json("/api/tickets", {"queue": queue}),
                                 timeout=timeout)
    return status, time.perf_counter() - start, json.loads(body or b"{}")


# --- slow headers (slowloris) ---------------------------------------------------------------


@dataclass
class SlowHeaders:
    """Connections that send a request's head one header at a time and never finish it."""

    opened: int = 0
    refused: int = 0  # could not connect at all
    closed_by_box: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _one(self, port: int, local: str, every_s: float) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                           local_addr=(local, 0))
        except OSError:
            self.refused += 1
            return
        self.opened += 1
        try:
            writer.write(b"POST /api/tickets HTTP/1.1\r\nHost: box\r\n")
            n = 0
            while True:
                n += 1
                writer.write(f"X-Slow-{n}: 1\r\n".encode())
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(every_s):
                        if not await reader.read(1024):
                            break  # the box closed it
                        # (anything else: a 408/400; keep reading until it closes)
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed_by_box += 1
            writer.close()

    def start(self, port: int, addresses: list[str], per_address: int,
              every_s: float = 0.5) -> None:
        for local in addresses:
            for _ in range(per_address):
                self.tasks.append(asyncio.ensure_future(self._one(port, local, every_s)))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def slow_headers(port: int, addresses: list[str], per_address: int,
                       every_s: float = 0.5) -> AsyncIterator[SlowHeaders]:
    """``per_address`` slow-header connections from each address, in their own thread."""
    async with in_own_thread(_slow_headers(port, addresses, per_address, every_s)) as flood:
        yield flood


@contextlib.asynccontextmanager
async def _slow_headers(port: int, addresses: list[str], per_address: int,
                        every_s: float) -> AsyncIterator[SlowHeaders]:
    flood = SlowHeaders()
    flood.start(port, addresses, per_address, every_s)
    try:
        yield flood
    finally:
        await flood.stop()


# --- event stream listeners -----------------------------------------------------------------


@dataclass
class Listener:
    """One ``GET /api/events/stream`` connection. A reading one collects the ticket numbers
    of ``ticket_issued`` events; a stalled one never reads (a frozen screen, an attacker)."""

    reads: bool
    issued: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False

    async def run(self, port: int, local: str, page: str = "hall") -> None:
        sock = socket.socket()
        if not self.reads:  # a small window: the box's writes back up quickly
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        sock.bind((local, 0))
        loop = asyncio.get_running_loop()
        ask = (f"GET /api/events/stream?page={page} HTTP/1.1\r\n"
               "Host: box\r\nAccept: text/event-stream\r\n\r\n").encode()
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            if not self.reads:  # a bare socket: asyncio's streams would read ahead for it
                await loop.sock_sendall(sock, ask)
                self.connected.set()
                await asyncio.Event().wait()  # until cancelled, never reading
            reader, writer = await asyncio.open_connection(sock=sock)
        except OSError:
            self.ended = True
            self.connected.set()
            return
        finally:
            if not self.reads:
                sock.close()
        try:
            writer.write(ask)
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")
            self.connected.set()
            # Cheap on purpose (this client shares the machine with the box): only the data
            # lines of ticket_issued events are parsed, the rest is skipped as bytes.
            while line := await reader.readline():
                if line.startswith(b'data: {"type": "ticket_issued"'):
                    data = json.loads(line[6:])
                    if not data.get("replay"):
                        self.issued.append(str(data["number"]))
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.ended = True
            self.connected.set()
            writer.close()


@contextlib.asynccontextmanager
async def listeners(port: int, addresses: list[str], per_address: int, stalled_every: int
                    ) -> AsyncIterator[list[Listener]]:
    """``per_address`` listeners from each address, in their own thread, all connected;
    every ``stalled_every``-th (the first included; 0: none) never reads."""
    async with in_own_thread(_listeners(port, addresses, per_address, stalled_every)) as out:
        yield out


@contextlib.asynccontextmanager
async def _listeners(port: int, addresses: list[str], per_address: int, stalled_every: int
                     ) -> AsyncIterator[list[Listener]]:
    out: list[Listener] = []
    tasks: list[asyncio.Task[None]] = []
    for local in addresses:
        for i in range(per_address):
            lst = Listener(reads=not stalled_every or i % stalled_every != 0)
            out.append(lst)
            tasks.append(asyncio.ensure_future(lst.run(port, local)))
    try:
        for lst in out:
            await asyncio.wait_for(lst.connected.wait(), 30)
        yield out
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- big bodies -----------------------------------------------------------------------------


async def big_body(port: int, size: int, *, chunked: bool, local: str = KIOSK_ADDR,
                   timeout: float = 60.0) -> tuple[int | None, int]:
    """``POST /api/tickets`` with a body of ``size`` bytes, announced by Content-Length
    (sent only if the box has not answered within a second of the head) or chunked, sent
    until the box answers or hangs up. Returns (status or None, bytes of body sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    piece = b"x" * 65536
    piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    sent = 0
    try:
        async with asyncio.timeout(timeout):
            writer.write(f"POST /api/tickets HTTP/1.1\r\nHost: box\r\nContent-Type: "
                         f"application/json\r\n{framing}\r\n\r\n".encode())
            answer = asyncio.ensure_future(read_response(reader))
            await asyncio.wait({answer}, timeout=0 if chunked else 1.0)
            while sent < size and not answer.done():
                writer.write(piece)
                sent += 65536
                try:
                    await writer.drain()
                except (ConnectionError, OSError):
                    break
            if chunked and sent >= size and not answer.done():
                writer.write(b"0\r\n\r\n")
            try:
                return (await answer)[0], sent
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                return None, sent
    finally:
        writer.close()
