"""Helpers for the centre's back-office tests: a centre on the demo organisation, logins.

The centre runs in-process (consumers on the test's private broker, the live board, no
HTTP server); requests go through httpx's ASGI transport to the real app, so every
dependency, cookie and CSRF check is the one a browser meets.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from central.broker import LocalBroker

from .uplink_support import KEEP_TEST_DATA, running

ROOT = Path(__file__).resolve().parent.parent
CENTRE_TOML = ROOT / "examples" / "centre.toml"
ADMIN, ADMIN_PW = "admin", "paidui-demo-2026"
B1, B2, B3 = "1001010001", "1001010002", "1001020001"  # two in 郑州, one in 洛阳


def office_config(broker: LocalBroker, store_url: str, *sets: str) -> Any:
    from central.config import load_centre_config

    return load_centre_config(CENTRE_TOML, [
        f"broker.url={broker.url}", "broker.username=centre", "broker.password=centre-pw",
        f"store.url={store_url}", "http.enabled=false", "ingest.reorder_timeout_s=0.5",
        "ingest.replay_retry_s=0.5", "ingest.live_flush_s=0.1", "web.live.poll_s=0.1",
        "web.live.push_s=0.1", "web.live.ping_s=1", "web.live.agg_every_s=0.3",
        *KEEP_TEST_DATA, *sets,
    ])


@contextlib.asynccontextmanager
async def office_running(broker: LocalBroker, store_url: str, *sets: str
                         ) -> AsyncIterator[Any]:
    """A centre on the demo organisation (examples/centre.toml), consumers connected and
    the store prepared (first admin, org tree, branch configurations)."""
    import asyncio

    from central.service import Centre

    centre = Centre(office_config(broker, store_url, *sets))
    async with running(centre.run()):
        for c in centre.consumers:
            await asyncio.wait_for(c.ready.wait(), 10)
        await centre.office.prepare()
        await asyncio.wait_for(centre.office.board.loaded.wait(), 10)
        yield centre


@contextlib.asynccontextmanager
async def http_client(centre: Any, base_url: str = "http://centre"
                      ) -> AsyncIterator[httpx.AsyncClient]:
    from central.web import create_app

    transport = httpx.ASGITransport(app=create_app(centre))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
        yield http


async def login(http: httpx.AsyncClient, user: str = ADMIN, password: str = ADMIN_PW
                ) -> dict[str, str]:
    """Log in; returns the headers of a bearer-token client (no cookie, no CSRF)."""
    r = await http.post("/api/auth/login", json={"user": user, "password": password})
    assert r.status_code == 200, r.text
    http.cookies.clear()  # this client speaks by token from now on
    return {"Authorization": f"Bearer {r.json()['token']}"}


ADMIN_SEED = 'web.admin.password="admin-pw-for-tests"'  # a first administrator for the API


@contextlib.asynccontextmanager
async def admin_client(centre: Any, base_url: str = "http://centre"
                       ) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """An httpx client on the centre's real app, logged in as the first administrator
    (the centre's config must carry :data:`ADMIN_SEED`); yields (client, app)."""
    from central.web import create_app

    await centre.office.prepare()
    app = create_app(centre)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=base_url) as http:
        http.headers.update(await login(http, "admin", "admin-pw-for-tests"))
        yield http, app


async def add_user(http: httpx.AsyncClient, by: dict[str, str], user: str, role: str,
                   scope: str, password: str = "secret-pass-1") -> dict[str, str]:
    r = await http.post("/api/users", headers=by, json={
        "id": user, "name": user, "role": role, "scope": scope, "password": password})
    assert r.status_code == 201, r.text
    return await login(http, user, password)


@contextlib.asynccontextmanager
async def serving(centre: Any) -> AsyncIterator[str]:
    """The centre's app on a real loopback HTTP server (uvicorn) for streams and browsers;
    yields its base URL."""
    import uvicorn

    from central.broker import free_port
    from central.web import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(centre), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=2))
    async with server_running(server):
        yield f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def server_running(server: Any) -> AsyncIterator[None]:
    """Run a uvicorn ``server`` for the block, from when it listens; stop it after."""
    import asyncio

    task = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)  # uvicorn has no "started" event to await
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event, data) of a Server-Sent Events response, as they arrive."""
    import json

    kind, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif not line and data:
            yield kind, json.loads(data)
            kind, data = "message", ""


class CentreProcess:
    """``python -m central`` on the demo organisation, as a real subprocess on ``broker``."""

    def __init__(self, data_dir: Path, broker: LocalBroker, *overrides: str) -> None:
        from .browser import free_port

        self.data_dir, self.broker, self.overrides = data_dir, broker, overrides
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Any = None

    def start(self, timeout: float = 30.0) -> CentreProcess:
        import subprocess
        import sys
        import time
        import urllib.error
        import urllib.request

        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "central", "--config", str(CENTRE_TOML),
               "--set", f"broker.url={self.broker.url}", "--set", "broker.username=centre",
               "--set", "broker.password=centre-pw",
               "--set", f"store.url=sqlite:///{self.data_dir / 'centre.sqlite3'}",
               "--set", f"http.port={self.port}", "--set", "ingest.live_flush_s=0.2",
               "--set", "web.live.poll_s=0.2", "--set", "web.live.push_s=0.2",
               "--set", "web.live.ping_s=2", "--log-level", "WARNING"]
        for o in (*KEEP_TEST_DATA, *self.overrides):
            cmd += ["--set", o]
        log = open(self.data_dir / "centre.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the login page answers when it is ready
            if self.proc.poll() is not None:
                raise RuntimeError(f"the centre exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/login", timeout=1):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)  # polling a starting process's port
        raise TimeoutError("the centre did not answer in time")

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def call(self, method: str, path: str, body: Any = None,
             token: str | None = None) -> tuple[int, Any]:
        """One API request (bearer token); returns (status, JSON)."""
        import json
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def token(self, user: str = ADMIN, password: str = ADMIN_PW) -> str:
        status, data = self.call("POST", "/api/auth/login", {"user": user, "password": password})
        assert status == 200, data
        return str(data["token"])
