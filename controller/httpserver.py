"""The HTTP server of the box and of the centre: uvicorn, stopping cleanly on a signal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def http_server(app: Any, host: str, port: int, *, graceful_s: int) -> Any:
    """A uvicorn server for ``app`` that stops on SIGINT/SIGTERM as uvicorn does, but then
    returns instead of raising the signal again (uvicorn's way), so its owner closes what
    it holds (devices, journal, store) politely and the process exits 0 — what systemd
    and ``python -m sim demo`` expect of a clean stop.

    ``graceful_s``: how long open requests get to finish; event streams never end by
    themselves, so it is short.
    """
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return Server(uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
        log_config=None,  # uvicorn's loggers go through ours (text or JSON, controller/logs.py)
        timeout_graceful_shutdown=graceful_s,
    ))
