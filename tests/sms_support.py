"""A fake SMS gateway over real HTTP: shared by the SMS, alert and command tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from central.config import SmsSettings
from central.sms import HttpSms, make_gateway


class Gateway:
    """A local HTTP 'operator gateway' that records what it is sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.answer = b'{"result":"OK"}'
        self.delay = threading.Event()  # set: answer at once; clear: hang until set
        self.delay.set()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                gateway.requests.append({
                    "method": self.command, "path": self.path,
                    "headers": dict(self.headers), "body": self.rfile.read(size)})
                gateway.delay.wait(10)
                self.send_response(gateway.status)
                self.send_header("Content-Length", str(len(gateway.answer)))
                self.end_headers()
                self.wfile.write(gateway.answer)

            do_GET = do_POST = _record

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.delay.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    g = Gateway()
    yield g
    g.close()


def http(url: str, **settings: Any) -> HttpSms:
    gw = make_gateway(SmsSettings(adapter="http", url=url, **settings))
    assert isinstance(gw, HttpSms)
    return gw
