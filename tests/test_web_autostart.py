"""The Pi's Chromium kiosk autostart files (controller/web/autostart.py), as generated."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from controller.web.autostart import Screen, desktop_entry, main, wait_for, write
from tests.browser import free_port

KIOSK = "kiosk=http://127.0.0.1:8080/kiosk"
HALL = "hall=http://127.0.0.1:8080/hall@1920,0"


def read(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def test_each_screen_gets_a_user_unit_that_waits_for_the_box_and_restarts(
    tmp_path: Path,
) -> None:
    assert main(["write", "--out", str(tmp_path), "--screen", KIOSK, "--screen", HALL,
                 "--python", "/opt/paidui/.venv/bin/python"]) == 0
    units = sorted((tmp_path / "systemd" / "user").iterdir())
    assert [u.name for u in units] == ["paidui-screen-hall.service",
                                       "paidui-screen-kiosk.service"]
    hall, kiosk = (read(u) for u in units)
    run = shlex.split(hall["Service"]["ExecStart"])
    assert run[0] == "/usr/bin/chromium" and "--kiosk" in run and "--noerrdialogs" in run
    assert run[-1] == "http://127.0.0.1:8080/hall"
    assert "--window-position=1920,0" in run
    profiles = {a for u in (hall, kiosk) for a in shlex.split(u["Service"]["ExecStart"])
                if a.startswith("--user-data-dir=")}
    assert len(profiles) == 2  # two Chromiums cannot share a profile
    assert shlex.split(kiosk["Service"]["ExecStartPre"]) == [
        "/opt/paidui/.venv/bin/python", "-m", "controller.web.autostart", "wait",
        "http://127.0.0.1:8080/api/status"]
    assert kiosk["Service"]["Restart"] == "always"
    assert kiosk["Service"]["Environment"] == "DISPLAY=:0"
    assert kiosk["Install"]["WantedBy"] == "graphical-session.target"


def test_xdg_autostart_entries_run_the_same_chromium(tmp_path: Path) -> None:
    paths = write(tmp_path, [Screen.parse(KIOSK)], fmt="xdg", python="/usr/bin/python3")
    entry = read(paths[0])["Desktop Entry"]
    assert paths[0] == tmp_path / "autostart" / "paidui-screen-kiosk.desktop"
    assert entry["Type"] == "Application"
    sh, flag, script = shlex.split(entry["Exec"])
    assert (sh, flag) == ("sh", "-c")
    assert "http://127.0.0.1:8080/api/status" in script
    assert "http://127.0.0.1:8080/kiosk" in script


def test_the_xdg_entry_waits_for_the_box_and_reopens_chromium_when_it_dies(
        tmp_path: Path) -> None:
    """No giving up after a slow boot, and a crashed browser comes back (as Restart=always
    does for the user unit): run the entry's own command with stand-ins."""
    log = tmp_path / "log"
    python = tmp_path / "python"  # the box answers at the third look
    python.write_text(f"#!/bin/sh\necho wait >> {log}\n"
                      f'[ "$(grep -c wait {log})" -ge 3 ]\n')
    browser = tmp_path / "chromium"  # opens, then dies at once
    browser.write_text(f"#!/bin/sh\necho chromium >> {log}\n")
    for f in (python, browser):
        f.chmod(0o755)
    entry = desktop_entry(Screen.parse(KIOSK), browser=str(browser), python=str(python),
                          profiles=str(tmp_path / "profiles"), restart_s=0.05)
    (tmp_path / "kiosk.desktop").write_text(entry, encoding="utf-8")
    script = shlex.split(read(tmp_path / "kiosk.desktop")["Desktop Entry"]["Exec"])[2]
    proc = subprocess.Popen(["sh", "-c", script])
    try:
        deadline = time.monotonic() + 20
        while not (log.exists() and log.read_text().count("chromium") >= 3):
            assert time.monotonic() < deadline, log.read_text() if log.exists() else ""
            time.sleep(0.05)  # another process writing the file
    finally:
        proc.kill()
        proc.wait()
    lines = log.read_text().split()
    assert lines[:4] == ["wait", "wait", "wait", "chromium"]  # waited, then opened


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_parses_the_unit_without_a_complaint(tmp_path: Path) -> None:
    unit = write(tmp_path, [Screen.parse(KIOSK)], fmt="systemd", browser="/bin/true",
                 python="/bin/true")[0]
    result = subprocess.run(["systemd-analyze", "verify", str(unit)],
                            capture_output=True, text=True, timeout=60)
    if "Failed to initialize manager" in result.stderr:
        pytest.skip("systemd-analyze cannot start its manager here")
    complaints = [line for line in result.stderr.splitlines() if f"{unit.name}:" in line]
    assert result.returncode == 0 and not complaints, result.stderr


@pytest.mark.parametrize("bad", ["kiosk", "Kiosk=http://x/kiosk", "hall=ftp://x/hall",
                                 "hall=http://x/hall@left"])
def test_a_bad_screen_is_refused_with_exit_code_2(bad: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["write", "--out", str(tmp_path), "--screen", bad]) == 2
    assert "autostart:" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_waiting_for_a_box_that_is_not_there_gives_up_after_the_timeout() -> None:
    assert wait_for(f"http://127.0.0.1:{free_port()}/api/status", timeout=0.2, every=0.1) is False
