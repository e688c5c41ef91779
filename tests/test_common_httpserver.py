"""The box's HTTP server (common/httpserver.py) holds the same limits on either request
parser, llhttp (``http.parser = "httptools"``, the default) or h11: a request head over
``max_header_bytes`` is refused, a head that never ends is cut at its deadline, a
newcomer over the per-address cap closes the oldest idle connection, not a request in
flight. Each test runs a small app on the real server on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from central.broker import free_port
from common.httpserver import PROTOCOLS, ServerLimits, http_server
from tests.office_support import server_running

PARSERS = sorted(PROTOCOLS)
REQUEST = b"GET /hello HTTP/1.1\r\nHost: box\r\n\r\n"


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers ``hi``; ``/slow`` only once ``GATE["open"]`` is set."""
    if scope["path"] == "/slow":
        await GATE["open"].wait()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"hi"})


GATE: dict[str, asyncio.Event] = {}  # made by the test that uses it, in its own loop


@contextlib.asynccontextmanager
async def served(parser: str, **limits: Any) -> AsyncIterator[int]:
    port = free_port()
    server = http_server(hello, "127.0.0.1", port, graceful_s=1,
                         limits=ServerLimits(parser=parser, **limits))
    async with server_running(server):
        yield port


async def answer(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    """What the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(1 << 16), timeout)


@pytest.mark.parametrize("parser", PARSERS)
async def test_a_request_is_answered_and_the_connection_kept(parser: str) -> None:
    async with served(parser) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):
            writer.write(REQUEST)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(2) == b"hi"
        writer.close()


# h11 caps only a head it holds incomplete: one that arrives whole in one read is served
@pytest.mark.parametrize(("parser", "whole"), [("httptools", True), ("httptools", False),
                                               ("h11", False)])
async def test_a_request_head_over_the_cap_is_refused_and_closed(parser: str,
                                                                 whole: bool) -> None:
    async with served(parser, max_header_bytes=4096) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        padding = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 100) for i in range(60))  # 6.5 KB
        writer.write(b"GET /hello HTTP/1.1\r\nHost: box\r\n" + padding
                     + (b"\r\n" if whole else b""))
        got = await answer(reader)
        assert got.startswith(b"HTTP/1.1 400") and b"hi" not in got
        assert await answer(reader) == b""  # closed
        writer.close()


@pytest.mark.parametrize("parser", PARSERS)
async def test_a_head_that_trickles_is_cut_at_its_deadline(parser: str) -> None:
    async with served(parser, head_timeout_s=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /hello HTTP/1.1\r\n")
        # A header every 0.1 s for 10 s (each arrives, the head never completes): the
        # server cuts it at its 0.5 s deadline, long before the trickle ends. No wall-clock
        # bound beyond that: a loaded machine is late, not wrong.
        for i in range(100):
            writer.write(b"X-%d: 1\r\n" % i)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            if cut(reader):
                break
            await asyncio.sleep(0.1)  # slowloris: the pace of the attack itself
        assert cut(reader), "the trickling head was never cut"
        with contextlib.suppress(ConnectionError):  # cut while a header was on its way
            assert await answer(reader) == b""
        writer.close()


def cut(reader: asyncio.StreamReader) -> bool:
    """The server closed the connection: an end of stream, or a write that found it gone
    (EPIPE, reset), which the stream holds for its next read."""
    return reader.at_eof() or reader.exception() is not None


@pytest.mark.parametrize("parser", PARSERS)
async def test_over_the_address_cap_the_oldest_idle_goes_not_a_request_in_flight(
        parser: str) -> None:
    GATE["open"] = asyncio.Event()
    async with served(parser, per_address=2) as port:
        busy_r, busy_w = await asyncio.open_connection("127.0.0.1", port)
        busy_w.write(b"GET /slow HTTP/1.1\r\nHost: box\r\n\r\n")
        await busy_w.drain()
        idle_r, idle_w = await asyncio.open_connection("127.0.0.1", port)
        idle_w.write(REQUEST)
        await asyncio.wait_for(idle_r.readuntil(b"hi"), 5)  # answered; now a keep-alive
        new_r, new_w = await asyncio.open_connection("127.0.0.1", port)
        assert await answer(idle_r) == b""  # the idle one was closed for the newcomer
        new_w.write(REQUEST)
        assert (await asyncio.wait_for(new_r.readuntil(b"hi"), 5)).startswith(b"HTTP/1.1 200")
        GATE["open"].set()
        assert (await asyncio.wait_for(busy_r.readuntil(b"hi"), 5)).startswith(b"HTTP/1.1 200")
        for w in (busy_w, idle_w, new_w):
            w.close()
