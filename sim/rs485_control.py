"""Pressing keys on a running simulated box's virtual RS485 bus, from another process.

A ``hardware = "sim"`` box listens on ``<data-dir>/sim/rs485.sock`` (a Unix socket, one JSON
object a line each way), so tests, demos and scripts can be the tellers and customers::

    from sim.rs485_control import press, rate, shown
    press(data_dir, window=1, keys=["login", "1", "1234", "call_next"])
    shown(data_dir, "display", 1)        # '   001' (68-frame digits) or 'A001'
    rate(data_dir, window=1, score=5)    # False if the evaluator did not ask (within 2 s)

``keys`` is a flat list of action names from protocols/rs485/keys.py, each followed by its
arguments (``login`` takes the teller code and password, ``transfer`` the window,
``insert_front`` the ticket digits); a list item such as ``["call_back", "23"]`` gives an
action its arguments explicitly. Each call returns once the box has taken the keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .rs485 import VirtualBus

__all__ = ["CONTROL", "ControlServer", "press", "rate", "shown"]

log = logging.getLogger(__name__)

CONTROL = Path("sim") / "rs485.sock"  # under the box's data directory
_ARITY = {"login": 2, "transfer": 1, "insert_front": 1}


def actions(keys: Sequence[str | Sequence[str]]) -> list[list[str]]:
    """``["login", "1", "1234", "call_next"]`` → ``[["login", "1", "1234"], ["call_next"]]``."""
    out: list[list[str]] = []
    items = list(keys)
    while items:
        item = items.pop(0)
        if not isinstance(item, str):
            out.append([str(x) for x in item])
            continue
        n = _ARITY.get(item, 0)
        if len(items) < n:
            raise ValueError(f"{item!r} needs {n} arguments")
        out.append([item, *(str(items.pop(0)) for _ in range(n))])
    return out


class ControlServer:
    """The socket a simulated box listens on; serves one :class:`VirtualBus`."""

    def __init__(self, path: Path, line: VirtualBus, windows: dict[str, dict[int, int]]) -> None:
        self.path = path
        self.line = line
        self.windows = windows  # kind -> window -> device address
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ControlServer:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)  # a box that died left its socket behind
        self._server = await asyncio.start_unix_server(self._client, path=str(self.path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.path.unlink(missing_ok=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async for raw in reader:
                try:
                    reply = await self._do(json.loads(raw))
                except (ValueError, KeyError, TypeError, TimeoutError, ConnectionError) as exc:
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()

    def _address(self, kind: str, request: dict[str, Any]) -> int:
        if kind in request:
            return int(request[kind])
        return self.windows[kind][int(request["window"])]

    async def _do(self, request: dict[str, Any]) -> dict[str, Any]:
        if "keys" in request:
            keypad = self.line.keypad(self._address("keypad", request))
            for name, *args in actions(request["keys"]):
                await keypad.do(name, *args)
            return {"ok": True}
        if "score" in request:
            evaluator = self.line.evaluator(self._address("evaluator", request))
            with contextlib.suppress(TimeoutError):  # give a prompt on its way a moment
                await evaluator.wait_until(lambda: evaluator.mode == "prompt",
                                           float(request.get("wait", 0.0)))
            return {"ok": await evaluator.rate(int(request["score"]))}
        if "shown" in request:
            kind = request["shown"]
            device = self.line.devices[(kind, int(request["address"]))]
            return {"shown": device.shown}
        raise ValueError(f"unknown request {sorted(request)}")


def _ask(data_dir: str | Path, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(Path(data_dir) / CONTROL))
        s.sendall(json.dumps(request).encode() + b"\n")
        raw = b""
        while not raw.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            raw += chunk
    reply: dict[str, Any] = json.loads(raw)
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply


def press(data_dir: str | Path, window: int, keys: Sequence[str | Sequence[str]],
          timeout: float = 15.0) -> None:
    """Press ``keys`` on ``window``'s keypad of the simulated box using ``data_dir``."""
    _ask(data_dir, {"window": window, "keys": actions(keys)}, timeout)


def rate(data_dir: str | Path, window: int, score: int, wait: float = 2.0,
         timeout: float = 10.0) -> bool:
    """Press a score on ``window``'s evaluator once it asks for one (up to ``wait`` s);
    False if it did not."""
    request = {"window": window, "score": score, "wait": wait}
    return bool(_ask(data_dir, request, timeout)["ok"])


def shown(data_dir: str | Path, kind: str, address: int, timeout: float = 5.0) -> str:
    """What the simulated ``kind`` (keypad, display, evaluator) at ``address`` shows."""
    return str(_ask(data_dir, {"shown": kind, "address": address}, timeout)["shown"])
