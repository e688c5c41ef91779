"""Helpers for the update tests: real wheels, signed bundles, a centre on a loopback port.

Wheels are zipped here (a wheel is a zip with a ``.dist-info``) rather than built by
setuptools, so the tests need no network: the box's wheel holds this worktree's packages
with the version set to whatever the test needs. The locked dependencies are stood in for
by one wheel, ``paidui_testenv``, whose ``.pth`` file points at the test interpreter's
site-packages: a slot installed from the bundle then imports pydantic & co. from there,
exactly as it would from its own dependency wheels on a Pi.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import io
import re
import shutil
import socket
import sys
import sysconfig
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from central.releases import ReleaseStore, build_bundle, mount_releases
from controller.box import Box
from controller.slots import Slots
from controller.update import (
    Updater,
    UpdateSettings,
)
from protocols.release import Manifest, public_key_text

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "controller", "drivers", "protocols", "central", "sim")
BROKEN_MAIN = b'import sys\nsys.exit("this release is broken on purpose")\n'


def make_wheel(out: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A pure-Python wheel ``name-version-py3-none-any.whl`` holding ``files``."""
    dist = f"{name}-{version}.dist-info"
    meta = {
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: paidui-tests\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
    }
    entries = {**files, **meta}
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for arc, data in entries.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([arc, f"sha256={digest}", len(data)])
    writer.writerow([f"{dist}/RECORD", "", ""])
    path = out / f"{name}-{version}-py3-none-any.whl"
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in entries.items():
            z.writestr(arc, data)
        z.writestr(f"{dist}/RECORD", record.getvalue())
    return path


def box_wheel(out: Path, version: str, *, broken: bool = False) -> Path:
    """The box's wheel from this worktree, claiming ``version``; ``broken``: its
    ``python -m controller`` exits at once (a release that cannot start)."""
    files: dict[str, bytes] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    init = files["common/__init__.py"].decode()
    files["common/__init__.py"] = re.sub(r'__version__ = "[^"]*"',
                                         f'__version__ = "{version}"', init).encode()
    if broken:
        files["controller/__main__.py"] = BROKEN_MAIN
    return make_wheel(out, "paidui", version, files)


def env_wheel(out: Path) -> Path:
    """Stands in for the locked dependency wheels (see the module's docstring)."""
    site = sysconfig.get_paths()["purelib"]
    return make_wheel(out, "paidui_testenv", "1.0", {"paidui_testenv.pth": f"{site}\n".encode()})


def make_bundle(out: Path, version: str, key: Ed25519PrivateKey, wheels: Path, *,
                broken: bool = False) -> Path:
    """A signed bundle folder for ``version``."""
    box = box_wheel(wheels / (version + ("-broken" if broken else "")), version, broken=broken)
    build_bundle(version, [box, env_wheel(wheels)], key, out)
    return out


def install_slot(bundle: Path, root: Path) -> Path:
    """Really install ``bundle`` as a slot under ``root`` (no bytecode: quicker); its path.
    Tests copy it (``copytree(symlinks=True)``) rather than install it again."""
    m = Manifest.from_bytes((bundle / "manifest.json").read_bytes())
    Slots(root).install(m.version, bundle, [f.name for f in m.files], m.installer,
                        python=sys.executable, compile_bytecode=False)
    return root / "slots" / m.version


def write_public_key(path: Path, key: Ed25519PrivateKey) -> Path:
    path.write_text(public_key_text(key.public_key()))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DropOnce:
    """ASGI wrapper: the first response for a path matching ``pattern`` is cut off after
    ``after`` body bytes (the server closes the connection), later ones pass whole.
    Records each request's Range header, to show that the client resumed."""

    def __init__(self, app: Any, pattern: str, after: int) -> None:
        self.app, self.pattern, self.after = app, re.compile(pattern), after
        self.dropped = 0
        self.ranges: list[str | None] = []
        self.sent = 0  # body bytes sent for matching paths

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] != "http" or not self.pattern.search(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        self.ranges.append(headers.get(b"range", b"").decode() or None)
        cut = self.dropped == 0
        budget = [self.after]

        async def cutting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and cut:
                body = message.get("body", b"")
                if len(body) >= budget[0]:
                    self.sent += budget[0]
                    await send({**message, "body": body[:budget[0]], "more_body": True})
                    self.dropped += 1
                    raise ConnectionAbortedError("dropped on purpose")
                budget[0] -= len(body)
            if message["type"] == "http.response.body":
                self.sent += len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, cutting_send)


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields its base URL.

    The socket is bound and listening before uvicorn starts, so a client may connect at
    once (the backlog holds it): nothing to wait for.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def centre_app(store: ReleaseStore) -> FastAPI:
    app = FastAPI()
    mount_releases(app, store)
    return app


KEY = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bundles")
    return {v: make_bundle(tmp / v, v, KEY, tmp / "wheels") for v in ("0.0.9", "0.2.0")}


def settings(root: Path, **kw: Any) -> UpdateSettings:
    base: dict[str, Any] = dict(
        public_keys=[], root=root, python=sys.executable, retry_delay_s=0.01,
        max_retry_delay_s=0.05, retries=3, compile_bytecode=False, check_interval_s=0,
        restart_command=[sys.executable, "-c", "pass"], guard_command=[],
        health_timeout_s=3, stable_s=0.2, health_poll_s=0.05, api_url="http://127.0.0.1:9")
    return UpdateSettings(**{**base, **kw})


def fake_current(root: Path, version: str = "0.1.0") -> Slots:
    """Pretend the running box came from slot ``version`` (a marker is enough to switch)."""
    slots = Slots(root)
    slots.path(version).mkdir(parents=True)
    (slots.path(version) / ".complete").write_text(version)
    slots.switch(version)
    return slots


class Running:
    """An updater running as a component, its reports collected in a queue."""

    def __init__(self, updater: Updater) -> None:
        self.updater = updater
        self.reports: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        updater.listeners.append(self.reports.put_nowait)

    async def until(self, *statuses: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Reports up to and including the first whose status is one of ``statuses``."""
        seen = []
        async with asyncio.timeout(timeout):
            while True:
                seen.append(await self.reports.get())
                if seen[-1]["status"] in statuses:
                    return seen


@pytest.fixture
async def running(box: Box, tmp_path: Path) -> AsyncIterator[Running]:
    s = settings(tmp_path / "opt")
    r = Running(Updater(s, [KEY.public_key()], branch="1001010001"))
    task = asyncio.create_task(r.updater.run(box))
    yield r
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
async def static_centre(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A plain file server for bundles the store would never accept (tampered etc.)."""
    site = tmp_path / "site"
    site.mkdir()
    app = FastAPI()
    app.mount("/r", StaticFiles(directory=site))
    async with serving(app) as url:
        yield f"{url}/r", site


def lay_out(site: Path, name: str, bundle: Path) -> Path:
    """Copy a bundle folder into the layout the router serves (files under files/)."""
    dst = site / name
    (dst / "files").mkdir(parents=True)
    for f in bundle.iterdir():
        target = dst / f.name if f.name.startswith("manifest") else dst / "files" / f.name
        shutil.copyfile(f, target)
    return dst
