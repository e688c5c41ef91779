"""The box's updater: refusals with reasons, resumable downloads, side-by-side install,
the guard's verdict, and reports that survive a restart. Served over real HTTP (uvicorn
on loopback) from the centre's release router."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.releases import ReleaseStore
from common.errors import ConfigError
from controller.box import Box
from controller.compose import build_components
from controller.engine import IssueTicket
from controller.slots import STATE, read_json, write_json_atomic
from controller.update import (
    DownloadError,
    Updater,
    download,
    guard,
    health_problem,
    update_settings,
)
from controller.web import create_app
from protocols.release import Manifest, sign_manifest, update_command
from tests.update_support import (
    KEY,
    Running,
    bundles,
    fake_current,
    lay_out,
    running,
    settings,
    static_centre,
)

from .conftest import example_config
from .update_support import (
    DropOnce,
    centre_app,
    install_slot,
    serving,
    write_public_key,
)

__all__ = ["bundles", "running", "static_centre"]  # fixtures

OTHER = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def slot_020(bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A really installed 0.2.0 slot, copied into the tests that need one."""
    return install_slot(bundles["0.2.0"], tmp_path_factory.mktemp("slots"))


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "reason"), [
    ("unsigned", "unsigned"), ("tampered", "tampered"), ("wrong_key", "unknown_key"),
    ("downgrade", "downgrade"), ("bad_file", "hash_mismatch"),
])
async def test_a_bad_release_is_refused_with_the_reason_and_nothing_changes(
        case: str, reason: str, running: Running, static_centre: tuple[str, Path],
        bundles: dict[str, Path], tmp_path: Path) -> None:
    url, site = static_centre
    version = "0.0.9" if case == "downgrade" else "0.2.0"
    dst = lay_out(site, case, bundles[version])
    manifest = dst / "manifest.json"
    if case == "unsigned":
        (dst / "manifest.sig").unlink()
    elif case == "tampered":
        manifest.write_bytes(manifest.read_bytes().replace(b'"notes":""', b'"notes":"x"'))
    elif case == "wrong_key":
        (dst / "manifest.sig").write_bytes(sign_manifest(manifest.read_bytes(), OTHER))
    elif case == "bad_file":
        wheel = next((dst / "files").glob("paidui_testenv-*"))
        wheel.write_bytes(wheel.read_bytes()[:-1] + b"!")
    slots = fake_current(tmp_path / "opt")
    first = await running.updater.offer(update_command(f"c-{case}", version,
                                                       f"{url}/{case}/manifest.json"))
    assert first["status"] == "offered"
    reports = await running.until("failed", "installed")
    assert reports[-1]["status"] == "failed"
    assert reports[-1]["reason"] == reason
    assert reports[-1]["message"]  # Chinese words for the centre
    assert reports[-1]["id"] == f"c-{case}"
    assert slots.current() == "0.1.0" and slots.installed() == ["0.1.0"]
    if case != "bad_file":  # refused on the manifest, before any file was fetched
        assert "downloading" not in [r["status"] for r in reports]


async def test_a_malformed_command_is_answered_not_raised(running: Running) -> None:
    report = await running.updater.offer({"id": "x1", "version": "0.2.0"})
    assert (report["status"], report["reason"]) == ("failed", "bad_command")
    assert "manifest_url" in report["detail"]


# --- downloads -----------------------------------------------------------------------------


async def test_a_dropped_link_mid_file_resumes_with_range(bundles: dict[str, Path],
                                                          tmp_path: Path) -> None:
    store = ReleaseStore.open(f"sqlite:///{tmp_path}/centre.sqlite3", tmp_path / "files")
    store.add(bundles["0.2.0"], [KEY.public_key()])
    m = Manifest.from_bytes((bundles["0.2.0"] / "manifest.json").read_bytes())
    entry = m.box_wheel
    cut = entry.size // 3
    app = DropOnce(centre_app(store), r"/files/paidui-", after=cut)
    counters: Counter[str] = Counter()
    async with serving(app) as url:
        await download(f"{url}/api/releases/0.2.0/files/{entry.name}", tmp_path / entry.name,
                       entry, settings(tmp_path), counters=counters)
    store.close()
    assert app.dropped == 1
    assert app.ranges == [None, f"bytes={cut}-"]  # resumed where it broke, not restarted
    assert app.sent == entry.size  # every byte crossed the link exactly once
    assert counters["retries"] == 1
    assert (tmp_path / entry.name).read_bytes() == (bundles["0.2.0"] / entry.name).read_bytes()
    assert not (tmp_path / f"{entry.name}.part").exists()


async def test_a_download_gives_up_after_the_retries_with_the_reason(tmp_path: Path) -> None:
    entry = Manifest.from_bytes(_any_manifest()).box_wheel
    with pytest.raises(DownloadError) as exc:
        await download("http://127.0.0.1:9/nothing", tmp_path / "f", entry,
                       settings(tmp_path, retries=2))
    assert "2 retries" in exc.value.detail and "Connection" in exc.value.detail


def _any_manifest() -> bytes:
    return json.dumps({"format": 1, "package": "paidui", "version": "0.2.0", "created_at": "",
                       "min_config_version": 1, "installer": "pip-1-py3-none-any.whl",
                       "files": [{"name": "paidui-0.2.0-py3-none-any.whl", "sha256": "0" * 64,
                                  "size": 10},
                                 {"name": "pip-1-py3-none-any.whl", "sha256": "0" * 64,
                                  "size": 10}]}).encode()


# --- installing ----------------------------------------------------------------------------


async def test_a_signed_release_installs_side_by_side_and_restarts(
        box: Box, bundles: dict[str, Path], tmp_path: Path) -> None:
    store = ReleaseStore.open(f"sqlite:///{tmp_path}/centre.sqlite3", tmp_path / "files")
    store.add(bundles["0.2.0"], [KEY.public_key()])
    root = tmp_path / "opt"
    slots = fake_current(root)
    ran = tmp_path / "commands.txt"
    record = [sys.executable, "-c", f"import sys; open({str(ran)!r}, 'a').write(sys.argv[1] + "
              f"'\\n')"]
    s = settings(root, guard_command=[*record, "guard"], restart_command=[*record, "restart"])
    r = Running(Updater(s, [KEY.public_key()], branch="1001010001"))
    task = asyncio.create_task(r.updater.run(box))
    await box.execute(IssueTicket("A"))
    async with serving(centre_app(store)) as url:
        offer = update_command("c1", "0.2.0", f"{url}/api/releases/0.2.0/manifest.json")
        await r.updater.offer(offer)
        reports = await r.until("installed", "failed", timeout=120)
        # "installed" is said just before the guard and restart commands run: wait for them
        async with asyncio.timeout(30):
            while not (ran.exists() and "restart" in ran.read_text()):
                await asyncio.sleep(0.05)  # another process writes the file
        # this process is on its way out: nothing else is taken, nothing restarts twice
        later = await r.updater.offer(update_command("c3", "0.3.0", offer["manifest_url"]))
        same = await r.updater.offer(offer)
        assert await r.updater.check() is None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    store.close()
    assert [x["status"] for x in reports] == ["offered", "downloading", "installed"], reports[-1]
    assert (slots.current(), slots.previous()) == ("0.2.0", "0.1.0")
    assert slots.is_complete("0.2.0")
    assert ran.read_text().split() == ["guard", "restart"]
    assert (later["status"], later["reason"]) == ("failed", "busy")
    assert same["status"] == "installed"
    state = read_json(root / STATE)
    pending = state["pending"]
    assert (pending["version"], pending["from"], pending["epoch"]) == ("0.2.0", "0.1.0", box.epoch)
    assert pending["last_seq"] == box.last_seq
    assert [x["status"] for x in state["reports"]] == ["installed"]  # kept across the restart
    assert not (root / "incoming").exists()
    assert not list((box.data_dir).glob("*slot*"))  # nothing of the update in the data dir


async def test_the_centre_can_roll_a_box_back_to_an_older_release_when_it_says_so(
        box: Box, bundles: dict[str, Path], tmp_path: Path) -> None:
    """A downgrade is refused unless the centre's offer says rollback; then the older
    release is downloaded, checked, installed beside the running one and switched to."""
    store = ReleaseStore.open(f"sqlite:///{tmp_path}/centre.sqlite3", tmp_path / "files")
    store.add(bundles["0.0.9"], [KEY.public_key()])
    root = tmp_path / "opt"
    slots = fake_current(root)  # running 0.1.0
    r = Running(Updater(settings(root), [KEY.public_key()], branch="1001010001"))
    task = asyncio.create_task(r.updater.run(box))
    async with serving(centre_app(store)) as url:
        manifest = f"{url}/api/releases/0.0.9/manifest.json"
        await r.updater.offer(update_command("c1", "0.0.9", manifest))
        refused = (await r.until("installed", "failed", timeout=120))[-1]
        assert (refused["status"], refused["reason"]) == ("failed", "downgrade")
        assert slots.current() == "0.1.0"
        await r.updater.offer(update_command("c2", "0.0.9", manifest, rollback=True))
        reports = await r.until("installed", "failed", timeout=120)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    store.close()
    assert reports[-1]["status"] == "installed", reports[-1]
    assert (slots.current(), slots.previous()) == ("0.0.9", "0.1.0")
    assert slots.is_complete("0.0.9")


async def test_a_restart_command_that_fails_switches_back(
        box: Box, bundles: dict[str, Path], slot_020: Path, tmp_path: Path) -> None:
    root = tmp_path / "opt"
    slots = fake_current(root)
    shutil.copytree(slot_020, slots.path("0.2.0"), symlinks=True)
    s = settings(root, restart_command=[sys.executable, "-c", "raise SystemExit('no systemd')"])
    r = Running(Updater(s, [KEY.public_key()], branch="1001010001"))
    task = asyncio.create_task(r.updater.run(box))
    # the slot is there already: no download, the manifest is checked from the slot
    await r.updater.offer(update_command("c2", "0.2.0", "http://127.0.0.1:9/m.json"))
    reports = await r.until("failed")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [x["status"] for x in reports] == ["offered", "installed", "failed"]
    assert reports[-1]["reason"] == "restart_failed" and "no systemd" in reports[-1]["detail"]
    assert slots.current() == "0.1.0"
    assert "pending" not in read_json(root / STATE)


async def test_a_second_offer_while_busy_is_refused_and_the_same_one_is_not_repeated(
        box: Box, tmp_path: Path) -> None:
    u = Updater(settings(tmp_path), [KEY.public_key()], branch="1001010001")
    first = await u.offer(update_command("a", "0.2.0", "http://127.0.0.1:9/m.json"))
    again = await u.offer(update_command("a", "0.2.0", "http://127.0.0.1:9/m.json"))
    other = await u.offer(update_command("b", "0.3.0", "http://127.0.0.1:9/m.json"))
    assert first["status"] == again["status"] == "offered"
    assert (other["status"], other["reason"]) == ("failed", "busy")


# --- after the restart -----------------------------------------------------------------------


async def test_reports_kept_across_a_restart_are_handed_over_at_start(box: Box,
                                                                     tmp_path: Path) -> None:
    root = tmp_path / "opt"
    kept = [{"id": "c1", "version": "0.2.0", "status": "installed", "running": "0.1.0", "at": 1},
            {"id": "c1", "version": "0.2.0", "status": "healthy", "running": "0.2.0", "at": 2}]
    write_json_atomic(root / STATE, {"reports": kept})
    r = Running(Updater(settings(root), [KEY.public_key()], branch="1001010001"))
    task = asyncio.create_task(r.updater.run(box))
    got = await r.until("healthy")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert got == kept
    assert "reports" not in read_json(root / STATE)


def pending_for(box: Box, version: str = "0.1.0") -> dict[str, Any]:
    return {"id": "c9", "version": version, "from": "0.0.9", "rollback": False,
            "epoch": box.epoch, "last_seq": box.last_seq, "devices_ok": [], "at": 0}


async def test_guard_finds_the_restarted_box_healthy(box: Box, tmp_path: Path) -> None:
    root = tmp_path / "opt"
    fake_current(root, "0.0.9")
    write_json_atomic(root / STATE, {"pending": pending_for(box)})
    async with serving(create_app(box)) as url:
        verdict = await guard(settings(root, api_url=url))
    assert verdict == "healthy"
    state = read_json(root / STATE)
    assert "pending" not in state
    assert [(x["status"], x["running"]) for x in state["reports"]] == [("healthy", "0.1.0")]


async def test_guard_rolls_back_when_the_new_box_never_answers_right(box: Box,
                                                                   tmp_path: Path) -> None:
    root = tmp_path / "opt"
    slots = fake_current(root, "0.0.9")
    slots.path("0.2.0").mkdir(parents=True)
    (slots.path("0.2.0") / ".complete").write_text("0.2.0")
    slots.switch("0.2.0")
    ran = tmp_path / "restarted"
    write_json_atomic(root / STATE, {"pending": pending_for(box, "0.2.0")})
    s = settings(root, health_timeout_s=1.0,
                 restart_command=[sys.executable, "-c", f"open({str(ran)!r}, 'w')"])
    async with serving(create_app(box)) as url:  # it answers, but as 0.1.0, not 0.2.0
        verdict = await guard(s.model_copy(update={"api_url": url}))
    assert verdict == "rolled_back"
    assert (slots.current(), slots.previous()) == ("0.0.9", "0.2.0")
    assert ran.exists()
    state = read_json(root / STATE)
    report = state["reports"][-1]
    assert (report["status"], report["reason"], report["running"]) == \
        ("rolled_back", "health_failed", "0.0.9")
    assert "version '0.1.0' answers, not 0.2.0" in report["detail"]
    assert "0.2.0" in state["bad"]


def test_health_problems_are_named(box: Box) -> None:
    p = {"version": "0.2.0", "epoch": "E", "last_seq": 10, "devices_ok": ["printer"]}
    good = {"version": "0.2.0", "epoch": "E", "last_seq": 12,
            "devices": [{"name": "printer", "state": "warning", "detail": "paper_near_end"}]}
    assert health_problem(good, p) == ""
    assert "journal epoch" in health_problem({**good, "epoch": "F"}, p)
    assert "rebuilt to seq 3" in health_problem({**good, "last_seq": 3}, p)
    assert "printer (offline" in health_problem(
        {**good, "devices": [{"name": "printer", "state": "offline"}]}, p)
    assert health_problem({**good, "devices": []}, p) == "devices not attached: printer"
    assert "JSON object" in health_problem([], p)


# --- configuration --------------------------------------------------------------------------


def test_update_config_is_checked_at_start(tmp_path: Path) -> None:
    key = write_public_key(tmp_path / "release-key.pub", KEY)
    config = example_config(f"update.public_key_file={str(key)!r}", "update.root='/tmp/x'")
    s = update_settings(config)
    assert s.api_url == "http://127.0.0.1:8080"
    assert any(isinstance(c, Updater) for c in build_components(config, tmp_path))
    assert not any(isinstance(c, Updater) for c in build_components(example_config(), tmp_path))
    for override, key_name in (("update.root='/x'", "update.public_key_file"),
                               ("update.centre_url='ftp://x'", "update.centre_url"),
                               ("update.check_interval_s=-1", "update.check_interval_s"),
                               ("update.public_key_file='/nonexistent'", "update.public_key_file"),
                               ("update.restart_command=[]", "update.restart_command")):
        with pytest.raises(ConfigError) as exc:
            build_components(example_config(override), tmp_path)
        assert exc.value.key == key_name
