"""Helpers for the browser tests: a real box in a subprocess and Debian's headless Chromium.

Chromium is the distribution's (``apt-get install chromium fonts-noto-cjk``), driven by
Playwright for Python; ``playwright install`` is never run. Tests that need it are marked
``browser`` and skip with a clear reason when Chromium or Playwright is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("PAIDUI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}


def need_browser() -> Any:
    """The playwright module, or skip the test saying what is missing."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    try:
        import playwright.sync_api
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; no browser download)")
    return playwright.sync_api


@pytest.fixture(name="browser")
def browser_fixture() -> Iterator[Any]:
    """Chromium for one test. Playwright's own event loop runs a worker-thread pool; closing
    Playwright shuts it down, and its threads are joined so no test leaks them.
    (Import it into the test module: ``from tests.browser import browser_fixture``.)"""
    import threading

    api = need_browser()
    before = set(threading.enumerate())
    with api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
    for t in set(threading.enumerate()) - before:
        if t.name.startswith("asyncio_"):
            t.join(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM and wait (a SIGKILL after 15 s). Safe when it is not running."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class BoxProcess:
    """``python -m controller`` on the example branch, as a real subprocess."""

    preexec: Callable[[], object] | None = None  # run in the child before the box starts

    def __init__(self, data_dir: Path, *overrides: str, port: int | None = None) -> None:
        self.data_dir, self.overrides = data_dir, overrides
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> BoxProcess:
        cmd = [sys.executable, "-m", "controller", "--config", "examples/branch.toml",
               "--data-dir", str(self.data_dir), "--http", f"127.0.0.1:{self.port}",
               "--set", "clock.start=2026-11-25T10:00:00+08:00", "--log-level", "WARNING"]
        for o in self.overrides:
            cmd += ["--set", o]
        log = open(self.data_dir.parent / f"box-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log,
                                     preexec_fn=self.preexec)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the port answers when the box is ready
            if self.proc.poll() is not None:
                raise RuntimeError(f"the box exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/api/status", timeout=1):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)  # polling a starting process's port
        raise TimeoutError("the box did not answer in time")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             token: str | None = None) -> tuple[int, dict[str, Any]]:
        """One API request; returns (status, JSON)."""
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

    def teller(self, window: int, teller: str) -> str:
        status, data = self.call("POST", f"/api/windows/{window}/login",
                                 {"teller": teller, "password": "1234"})
        assert status == 200, data
        return str(data["token"])

    def lobby(self) -> str:
        status, data = self.call("POST", "/api/auth/lobby", {"user": "lm1", "password": "1234"})
        assert status == 200, data
        return str(data["token"])


def page_at(browser: Any, box: BoxProcess, path: str, size: dict[str, int]) -> Any:
    context = browser.new_context(viewport=size, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.goto(box.url + path)
    return page


def expect() -> Any:
    return need_browser().expect


def log_in_caller(caller: Any, window: int, teller: str, password: str) -> None:
    """Log a teller in at the soft caller's login form, as a teller would."""
    caller.locator("#l-window").select_option(str(window))
    caller.locator("#l-teller").fill(teller)
    caller.locator("#l-password").fill(password)
    caller.locator("#login button[type=submit]").click()


@contextmanager
def running_box(data_dir: Path, *overrides: str) -> Iterator[BoxProcess]:
    box = BoxProcess(data_dir, *overrides).start()
    try:
        yield box
    finally:
        box.stop()


class PrinterThread:
    """The project's virtual ESC/POS printer (sim.printer.SimPrinter) listening on a
    loopback port in its own thread and event loop, so a box subprocess can print to it as
    to a network printer while the test drives the browser."""

    def __init__(self) -> None:
        import asyncio
        import threading

        from sim.printer import SimPrinter

        self.sim = SimPrinter(png=False)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="sim-printer")
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the virtual printer did not start")

    def _run(self) -> None:
        import asyncio

        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self.port = await self.sim.serve_tcp()
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()
        self.loop.run_until_complete(self.sim.aclose())
        self.loop.close()

    def overrides(self) -> tuple[str, ...]:
        return ("printer.backend=\"network\"", "printer.host=\"127.0.0.1\"",
                f"printer.port={self.port}", "printer.poll_s=0.2")

    def set_paper(self, paper: str) -> None:
        self.loop.call_soon_threadsafe(self.sim.set_paper, paper)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
