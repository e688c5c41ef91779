"""A simulated bank CRM/CIF: the peer of the box's customer lookup (SPEC I1).

An HTTP/1.1 server on loopback speaking exactly the JSON of :mod:`protocols.cif`
(docs/integrations.md): ``POST /customers/lookup`` answers from :data:`CUSTOMERS` (the
example branch's VIPs, as its ``[[vip_customers]]`` has them, and a few customers only
the CIF knows), ``POST /notifications`` records the notices it is sent (the latest
:data:`KEEP_NOTICES`). Every request must be signed with one of ``keys``; a bad or stale
signature gets 401, a body that is not the documented JSON 400.

Tests and the demo make it slow or broken while it runs: ``latency_s`` delays each
answer, ``fail = "error"`` answers 500, ``fail = "down"`` closes each connection unanswered.
With ``hardware = "sim"`` and no ``cif.url`` the box runs one in its own process
(controller/compose.py); stand-alone::

    python -m sim.cif --port 8765 --latency-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from collections import deque
from typing import Any

from common.clock import Clock, SystemClock
from protocols.cif import (
    LOOKUP_PATH,
    MAX_BODY,
    NOTICE_PATH,
    CifError,
    customer_json,
    parse_lookup,
    parse_notice,
    verify,
)

__all__ = ["CUSTOMERS", "KEEP_NOTICES", "SIM_KEY", "SimCif"]

log = logging.getLogger(__name__)

KEEP_NOTICES = 1000  # notifications remembered (the oldest go first)
SIM_KEY = ("paidui-sim", b"paidui-sim-cif-secret")  # the simulated CIF's key: demo only

_WANG = {"id": "M07", "name": "王芳", "phone": "13800138007", "terminal": "lobby1"}
_ZHAO = {"id": "M12", "name": "赵磊", "phone": "13800138012", "terminal": "lobby1"}

#: The CIF's customers, by card or ID number (the JSON's ``customer`` objects).
CUSTOMERS: dict[str, dict[str, Any]] = {}
for _numbers, _record in [
    (("6225880137001237", "410105198001012311"),  # the example branch's VIP 陈先生
     {"id": "vip-0001", "type": "vip", "stars": 5, "name": "陈明", "gender": "M",
      "manager": _WANG}),
    (("6217000010001234569",),  # its VIP 刘女士
     {"id": "vip-0002", "type": "vip", "stars": 3, "name": "刘洋", "gender": "F",
      "business": "V", "manager": _WANG}),
    (("6217000010009872",),  # a debit card's holder the CIF knows as private banking
     {"id": "C000318", "type": "vip", "stars": 4, "name": "张伟", "gender": "M",
      "business": "V", "manager": _ZHAO}),
    (("6225880137004561",),  # a gold card holding no more than the card says
     {"id": "C000422", "type": "normal", "stars": 1, "name": "李娜", "gender": "F"}),
    (("6226600000001232",),  # a corporate settlement card
     {"id": "C100087", "type": "corporate", "stars": 2, "name": "欧阳建国", "gender": "M",
      "business": "B"}),
]:
    for _n in _numbers:
        CUSTOMERS[_n] = _record


class SimCif:
    """The simulated CIF. ``start()`` listens on ``host:port`` (0: any free port) and
    returns its URL; ``stop()`` closes it. ``keys``: key id → HMAC secret."""

    def __init__(self, keys: dict[str, bytes], *, host: str = "127.0.0.1", port: int = 0,
                 clock: Clock | None = None, customers: dict[str, dict[str, Any]] | None = None,
                 latency_s: float = 0.0, fail: str = "") -> None:
        self.keys, self.host, self.port = keys, host, port
        self.clock = clock or SystemClock()
        self.customers = CUSTOMERS if customers is None else customers
        self.latency_s, self.fail = latency_s, fail
        self.notices: deque[dict[str, Any]] = deque(maxlen=KEEP_NOTICES)
        self.lookups = 0
        self.refused: dict[str, int] = {}  # why requests were refused, counted
        self.url = ""
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.heard = asyncio.Event()  # set on every notification (tests wait on it)

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{port}"
        log.info("simulated CIF on %s", self.url)
        return self.url

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            conns = list(self._conns)
            for task in conns:
                task.cancel()
            if conns:
                await asyncio.wait(conns)
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def __aenter__(self) -> SimCif:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- HTTP ------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError):
            pass
        except asyncio.CancelledError:  # stop(): ends quietly (asyncio's stream callback
            pass  # would log a cancelled connection task as an error)
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        if not 0 <= length <= MAX_BODY:
            await self._answer(writer, 413, {"error": "too long"})
            return False
        body = await reader.readexactly(length)
        if self.fail == "down":
            return False  # closed unanswered: the box sees a broken connection
        if self.latency_s:
            await asyncio.sleep(self.latency_s)  # a slow CIF, as set by the test or demo
        status, answer = self._handle(method, path, headers, body)
        await self._answer(writer, status, answer)
        return headers.get("connection", "").lower() != "close"

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes
                ) -> tuple[int, bytes | dict[str, Any]]:
        if method != "POST" or path not in (LOOKUP_PATH, NOTICE_PATH):
            return 404, {"error": "not found"}
        why = verify(headers, self.keys, self.clock.now(), method, path, body)
        if why is not None:
            self.refused[why] = self.refused.get(why, 0) + 1
            return 401, {"error": why}
        if self.fail == "error":
            return 500, {"error": "simulated failure"}
        try:
            if path == LOOKUP_PATH:
                _kind, number, _branch = parse_lookup(body)
                self.lookups += 1
                return 200, customer_json(self.customers.get(number))
            self.notices.append(parse_notice(body))
            self.heard.set()
            return 202, {"ok": True}
        except CifError as exc:
            self.refused["bad_request"] = self.refused.get("bad_request", 0) + 1
            return 400, {"error": str(exc)}

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: int,
                      answer: bytes | dict[str, Any]) -> None:
        body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        reason = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
                  404: "Not Found", 413: "Payload Too Large",
                  500: "Internal Server Error"}[status]
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; "
                     f"charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sim.cif", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--fail", choices=["", "down", "error"], default="")
    p.add_argument("--clock-start", default=None, help="ISO time the clock starts at (the "
                   "demo's: signatures are checked against it); default: the real time")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    clock: Clock = SystemClock()
    if args.clock_start:
        import datetime as dt

        from common.clock import StartedClock

        clock = StartedClock(dt.datetime.fromisoformat(args.clock_start))

    async def serve() -> None:
        async with SimCif({SIM_KEY[0]: SIM_KEY[1]}, host=args.host, port=args.port,
                          clock=clock, latency_s=args.latency_ms / 1000,
                          fail=args.fail) as cif:
            print(f"simulated CIF on {cif.url} (key {SIM_KEY[0]!r})", flush=True)
            stop = asyncio.Event()  # SIGTERM (the demo stopping it) or Ctrl-C: a clean exit
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
