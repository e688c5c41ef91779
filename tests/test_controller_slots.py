"""A/B slots: a bundle installs into its own venv, links switch atomically, old slots go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.slots import SlotError, Slots, install_bundle, main

from .update_support import make_bundle

KEY = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bundle")
    return make_bundle(tmp / "0.1.5", "0.1.5", KEY, tmp / "wheels")


def test_a_bundle_installs_as_a_slot_that_runs_the_box(bundle: Path, tmp_path: Path) -> None:
    slots = Slots(tmp_path / "opt")
    assert install_bundle(slots, bundle, sys.executable) == "0.1.5"  # not this checkout (0.1.0)
    assert (slots.current(), slots.previous()) == ("0.1.5", None)
    assert os.readlink(tmp_path / "opt" / "current") == "slots/0.1.5"  # relative: image-safe
    python = tmp_path / "opt" / "current" / "venv" / "bin" / "python"
    out = subprocess.run([str(python), "-c", "import controller, sys; print(controller.__version__,"
                          " controller.__file__)"], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout.split()
    assert out[0] == "0.1.5"
    assert out[1].startswith(str(tmp_path / "opt"))  # the slot's code, not this worktree's
    assert (slots.path("0.1.5") / "manifest.sig").exists()
    # twice: nothing to do, the complete slot is kept as it is
    marker = slots.path("0.1.5") / ".complete"
    before = marker.stat().st_mtime_ns
    install_bundle(slots, bundle, sys.executable)
    assert marker.stat().st_mtime_ns == before


def test_switch_roll_back_and_prune(tmp_path: Path) -> None:
    slots = Slots(tmp_path)
    for v in ("0.1.5", "0.2.0", "0.3.0", "0.4.0"):
        slots.path(v).mkdir(parents=True)
        (slots.path(v) / ".complete").write_text(v)
    assert slots.switch("0.1.5") is None
    assert slots.switch("0.2.0") == "0.1.5"
    assert (slots.current(), slots.previous()) == ("0.2.0", "0.1.5")
    slots.roll_back("0.1.5")
    assert (slots.current(), slots.previous()) == ("0.1.5", "0.2.0")
    slots.switch("0.4.0")
    assert slots.prune(keep=2) == ["0.2.0"]  # 0.1.5 is previous, 0.3.0/0.4.0 the newest two
    assert slots.installed() == ["0.1.5", "0.3.0", "0.4.0"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_incomplete_slot_cannot_be_switched_to(tmp_path: Path) -> None:
    slots = Slots(tmp_path)
    slots.path("0.2.0").mkdir(parents=True)
    with pytest.raises(SlotError, match="not completely installed"):
        slots.switch("0.2.0")
    assert slots.current() is None


def test_a_failed_install_leaves_nothing_and_says_why(bundle: Path, tmp_path: Path) -> None:
    slots = Slots(tmp_path)
    files = ["paidui-0.1.5-py3-none-any.whl", "no-such-1.0-py3-none-any.whl"]
    with pytest.raises(SlotError) as exc:
        slots.install("0.1.5", bundle, files, "pip-x.whl", python=sys.executable)
    assert exc.value.code == "install_failed"
    assert not slots.path("0.1.5").exists()


def test_command_line_refuses_a_tampered_bundle(bundle: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "bundle"
    copy.mkdir()
    for f in bundle.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    env = next(copy.glob("paidui_testenv-*.whl"))
    env.write_bytes(env.read_bytes() + b"\0")
    assert main(["install", str(copy), "--root", str(tmp_path / "opt")]) == 1
    assert "hash_mismatch" in capsys.readouterr().err
    assert Slots(tmp_path / "opt").current() is None
