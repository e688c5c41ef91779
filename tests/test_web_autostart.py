"""The Pi's Chromium kiosk autostart files (controller/web/autostart.py), as generated."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from controller.web.autostart import Screen, main, wait_for, write
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
    wait, run = script.split(" && exec ")
    assert shlex.split(wait)[-1] == "http://127.0.0.1:8080/api/status"
    assert shlex.split(run)[-1] == "http://127.0.0.1:8080/kiosk"


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
