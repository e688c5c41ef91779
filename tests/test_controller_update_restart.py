"""Updates through a real restart: the box runs as a process from its slot, finds the
centre's offer by itself, installs the new slot, is restarted (a stand-in for systemctl),
and the guard — run from the previous slot, as its systemd unit does — keeps the new
version or rolls back. Tickets keep their numbering across it all.

The staged rollout over the broker (only the targeted boxes update) needs the uplink's
``cmd/update`` handler; it is written below and skips until ``controller.uplink`` exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.releases import ReleaseStore, Target
from controller.slots import STATE, Slots, read_json

from .update_support import (
    ROOT,
    DropOnce,
    centre_app,
    free_port,
    install_slot,
    make_bundle,
    serving,
    write_public_key,
)

pytestmark = pytest.mark.slow

KEY = Ed25519PrivateKey.generate()
FAKE = Path(__file__).with_name("fake_systemctl.py")
BRANCH = "1001010001"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bundles")
    return {
        "0.1.0": make_bundle(tmp / "0.1.0", "0.1.0", KEY, tmp / "wheels"),
        "0.2.0": make_bundle(tmp / "0.2.0", "0.2.0", KEY, tmp / "wheels"),
        "broken": make_bundle(tmp / "0.2.0-broken", "0.2.0", KEY, tmp / "wheels", broken=True),
    }


@pytest.fixture(scope="module")
def slot_010(bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_slot(bundles["0.1.0"], tmp_path_factory.mktemp("slot"))


@dataclass
class Branch:
    """One box process managed by the fake systemctl, and the centre it talks to."""

    root: Path
    state: Path
    api: str
    store: ReleaseStore
    centre: str
    asked: DropOnce  # counts the box's checks (never drops: the offers are small)

    def systemctl(self, cmd: str) -> None:
        subprocess.run([sys.executable, str(FAKE), "--state", str(self.state), cmd], check=True,
                       timeout=60)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.api + path, timeout=5) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(self.api + path, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    async def health(self) -> dict[str, Any] | None:
        try:
            return dict(await asyncio.to_thread(self.get, "/api/health"))
        except (OSError, ValueError):
            return None

    async def until_version(self, version: str, timeout: float) -> dict[str, Any]:
        last: list[dict[str, Any] | None] = [None]

        async def answers() -> bool:
            last[0] = await self.health()
            return bool(last[0]) and last[0].get("version") == version  # type: ignore[union-attr]

        await until(answers, timeout, lambda: f"last /api/health: {last[0]}; logs:\n{self.logs()}")
        assert last[0] is not None
        return last[0]

    def kept_reports(self) -> list[dict[str, Any]]:
        return list(read_json(self.root / STATE).get("reports", []))

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.state.glob("*.log")))


async def until(check: Callable[[], Any], timeout: float, why: Callable[[], str]) -> None:
    """Poll ``check`` (another process's state) until true, or fail with ``why()``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout} s: {why()}")
        await asyncio.sleep(0.2)  # polling another process


def box_config(tmp_path: Path, root: Path, state: Path, centre: str, port: int,
               health_timeout: float) -> Path:
    key = write_public_key(tmp_path / "release-key.pub", KEY)
    fake = [sys.executable, str(FAKE), "--state", str(state)]
    update = {
        "public_key_file": str(key), "centre_url": centre, "check_interval_s": 0.5,
        "root": str(root), "python": sys.executable, "compile_bytecode": False,
        "restart_command": [*fake, "restart-box"], "guard_command": [*fake, "start-guard"],
        "api_url": f"http://127.0.0.1:{port}", "health_timeout_s": health_timeout,
        "stable_s": 1.0, "health_poll_s": 0.3, "retry_delay_s": 0.1,
    }
    lines = ["", "[update]"] + [f"{k} = {json.dumps(v)}" for k, v in update.items()]
    config = tmp_path / "branch.toml"
    config.write_text((ROOT / "examples" / "branch.toml").read_text() + "\n".join(lines) + "\n")
    return config


@pytest.fixture
async def branch(tmp_path: Path, slot_010: Path, bundles: dict[str, Path],
                 request: pytest.FixtureRequest) -> AsyncIterator[Branch]:
    release, health_timeout = request.param
    root, state = tmp_path / "opt", tmp_path / "systemd"
    state.mkdir()
    shutil.copytree(slot_010, root / "slots" / "0.1.0", symlinks=True)
    Slots(root).switch("0.1.0")
    store = ReleaseStore.open(f"sqlite:///{tmp_path}/centre.sqlite3", tmp_path / "files")
    store.add(bundles[release], [KEY.public_key()])
    store.record_running(BRANCH, "0.1.0")
    store.record_running("1001010002", "0.1.0")
    port = free_port()
    asked = DropOnce(centre_app(store), r"/api/releases/offer/", after=1 << 30)
    async with serving(asked) as centre:
        config = box_config(tmp_path, root, state, centre, port, health_timeout)
        (state / "box.json").write_text(json.dumps({
            "root": str(root), "config": str(config), "data": str(tmp_path / "data"),
            "http": f"127.0.0.1:{port}", "start": "2026-11-25T10:00:00+08:00"}))
        b = Branch(root, state, f"http://127.0.0.1:{port}", store, centre, asked)
        try:
            yield b
        finally:
            await asyncio.to_thread(b.systemctl, "stop")
    store.close()


def feed_reports(b: Branch) -> dict[str, Any]:
    """What the uplink would do with the kept reports: hand them to the centre."""
    for r in b.kept_reports():
        b.store.record_report(BRANCH, r)
    return {s["branch"]: s for s in b.store.statuses("0.2.0")}


@pytest.mark.parametrize("branch", [("0.2.0", 60.0)], indirect=True)
async def test_a_rolled_out_release_installs_restarts_and_is_healthy(branch: Branch) -> None:
    b = branch
    await asyncio.to_thread(b.systemctl, "restart-box")
    before = await b.until_version("0.1.0", 60)
    first = await asyncio.to_thread(b.post, "/api/tickets", {"queue": "A"})
    b.store.roll_out("0.2.0", Target((BRANCH,)), base_url=b.centre)

    after = await b.until_version("0.2.0", 180)
    assert after["epoch"] == before["epoch"]  # the same journal
    await until(lambda: "healthy" in [r["status"] for r in b.kept_reports()], 60, b.logs)
    second = await asyncio.to_thread(b.post, "/api/tickets", {"queue": "A"})
    assert (first["number"], second["number"]) == ("A001", "A002")
    slots = Slots(b.root)
    assert (slots.current(), slots.previous()) == ("0.2.0", "0.1.0")
    assert (b.state / "restarts.log").read_text().split() == ["slots/0.1.0", "slots/0.2.0"]
    await until(lambda: (b.state / "guard.exit").exists(), 30, b.logs)  # it ends after saying so
    assert (b.state / "guard.exit").read_text() == "0"
    rows = feed_reports(b)
    assert (rows[BRANCH]["status"], rows[BRANCH]["running_version"]) == ("healthy", "0.2.0")
    assert "pending" not in read_json(b.root / STATE)


@pytest.mark.parametrize("branch", [("broken", 8.0)], indirect=True)
async def test_a_release_that_fails_its_health_check_is_rolled_back_and_reported(
        branch: Branch) -> None:
    b = branch
    await asyncio.to_thread(b.systemctl, "restart-box")
    await b.until_version("0.1.0", 60)
    first = await asyncio.to_thread(b.post, "/api/tickets", {"queue": "A"})
    before = await b.until_version("0.1.0", 5)
    b.store.roll_out("0.2.0", Target((BRANCH,)), base_url=b.centre)

    await until(lambda: "rolled_back" in [r["status"] for r in b.kept_reports()], 240, b.logs)
    after = await b.until_version("0.1.0", 60)  # the guard restarted the old version
    report = next(r for r in b.kept_reports() if r["status"] == "rolled_back")
    assert (report["reason"], report["running"]) == ("health_failed", "0.1.0")
    assert "/api/health does not answer" in report["detail"]
    assert (b.state / "restarts.log").read_text().split() == \
        ["slots/0.1.0", "slots/0.2.0", "slots/0.1.0"]
    assert (Slots(b.root).current(), Slots(b.root).previous()) == ("0.1.0", "0.2.0")
    assert "0.2.0" in read_json(b.root / STATE)["bad"]
    second = await asyncio.to_thread(b.post, "/api/tickets", {"queue": "A"})
    assert (first["number"], second["number"]) == ("A001", "A002")
    assert after["last_seq"] >= before["last_seq"]
    rows = feed_reports(b)
    assert (rows[BRANCH]["status"], rows[BRANCH]["reason"]) == ("rolled_back", "health_failed")
    # the centre still offers 0.2.0 (the reports went nowhere), yet the box does not loop:
    # it asks three more times and installs nothing
    asked = len(b.asked.ranges)
    await until(lambda: len(b.asked.ranges) >= asked + 3, 30, b.logs)
    assert (b.state / "restarts.log").read_text().count("0.2.0") == 1


def _uplink_missing() -> str:
    try:
        import controller.uplink  # noqa: F401
    except ImportError:
        return "needs controller/uplink.py (branch uplink) to deliver cmd/update to the boxes"
    return ""


@pytest.fixture(scope="module")
def slot_020(bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_slot(bundles["0.2.0"], tmp_path_factory.mktemp("slot020"))


@pytest.mark.network
@pytest.mark.skipif(bool(_uplink_missing()), reason=_uplink_missing() or "uplink present")
async def test_staged_rollout_over_the_broker_updates_only_the_targeted_boxes(
        tmp_path: Path, bundles: dict[str, Path], slot_020: Path) -> None:
    """Three boxes on a private broker (password file + ACL); the centre rolls 0.2.0 out to
    one branch, then to the 100102 subtree: only those two take it, the third (in 100101,
    never targeted) stays on 0.1.0. The boxes hold the 0.2.0 slot already, so what is
    tested is the path: rollout -> cmd/update over MQTT -> Updater -> reply -> centre."""
    import aiomqtt

    from central.broker import LocalBroker
    from central.releases import Broker, publish_offers
    from common.clock import ManualClock
    from controller.box import Box
    from controller.compose import build_components
    from controller.config import load_config
    from controller.update import Updater
    from controller.uplink import Uplink

    codes = {"first": "1001010001", "untouched": "1001010002", "subtree": "1001020001"}
    broker = LocalBroker(tmp_path / "broker")
    broker.add_user("centre", "centre-pw")
    broker.start()
    store = ReleaseStore.open(f"sqlite:///{tmp_path}/centre.sqlite3", tmp_path / "files")
    store.add(bundles["0.2.0"], [KEY.public_key()])
    key = write_public_key(tmp_path / "release-key.pub", KEY)
    boxes: dict[str, tuple[Box, Updater, Path]] = {}
    touch = tmp_path / "restart.py"  # stands in for systemctl restart: leaves a mark
    touch.write_text("import pathlib, sys\npathlib.Path(sys.argv[1]).touch()\n")
    try:
        async with contextlib.AsyncExitStack() as stack:
            for name, code in codes.items():
                store.record_running(code, "0.1.0")
                root = tmp_path / code / "opt"
                shutil.copytree(slot_020, root / "slots" / "0.2.0", symlinks=True)
                (root / "slots" / "0.1.0").mkdir()
                (root / "slots" / "0.1.0" / ".complete").write_text("0.1.0")
                Slots(root).switch("0.1.0")
                ran = tmp_path / code / "restarted"
                config = load_config(ROOT / "examples" / "branch.toml", [
                    f"branch.code='{code}'", "hardware=none", f"uplink.broker={broker.url!r}",
                    f"uplink.password={broker.add_user(code)!r}", "uplink.reconnect_min_s=0.05",
                    f"update.public_key_file={str(key)!r}", f"update.root={str(root)!r}",
                    "update.check_interval_s=0", "update.guard_command=[]",
                    f"update.restart_command=['{sys.executable}', '{touch}', '{ran}']"])
                components = build_components(config, tmp_path / code / "data")
                updater = next(c for c in components if isinstance(c, Updater))
                uplink = next(c for c in components if isinstance(c, Uplink))
                box = await stack.enter_async_context(
                    Box(config, tmp_path / code / "data", ManualClock(0)))
                for comp in (updater, uplink):
                    stack.push_async_callback(_stop, asyncio.create_task(comp.run(box)))
                boxes[name] = (box, updater, ran)
            reports: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
            centre = await stack.enter_async_context(aiomqtt.Client(
                "127.0.0.1", broker.port, username="centre", password="centre-pw"))
            await centre.subscribe("qms/v1/+/reply", qos=1)
            stack.push_async_callback(_stop, asyncio.create_task(_replies(centre, reports)))
            at = Broker("127.0.0.1", broker.port, "centre", "centre-pw")

            async def installed(code: str) -> None:
                async with asyncio.timeout(60):
                    while True:
                        branch, result = await reports.get()
                        store.record_report(branch, result)  # the centre's consumer does this
                        if (branch, result["status"]) == (code, "installed"):
                            return

            await publish_offers(at, store.roll_out("0.2.0", Target((codes["first"],)),
                                                    base_url=NOWHERE))
            await installed(codes["first"])
            await publish_offers(at, store.roll_out("0.2.0", Target(org="100102"),
                                                    base_url=NOWHERE))
            await installed(codes["subtree"])
            for name in ("first", "subtree"):  # "installed" goes out just before the restart
                await until(boxes[name][2].exists, 30, lambda n=name: f"{n} did not restart")
    finally:
        broker.kill()
    rows = {s["branch"]: s["status"] for s in store.statuses("0.2.0")}
    store.close()
    assert rows == {codes["first"]: "installed", codes["subtree"]: "installed"}
    for name, (_, updater, ran) in boxes.items():
        targeted = name != "untouched"
        assert ran.exists() == targeted, name
        assert updater.slots.current() == ("0.2.0" if targeted else "0.1.0"), name


NOWHERE = "http://127.0.0.1:9"  # the boxes hold the 0.2.0 slot already: nothing is fetched


async def _replies(client: Any, out: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
    async for msg in client.messages:
        body = json.loads(msg.payload)
        if body.get("cmd") == "update" and body.get("ok"):
            out.put_nowait((str(msg.topic).split("/")[2], body["result"]))


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
