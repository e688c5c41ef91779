"""The Pi installer, into a scratch root folder: the user, units, udev and polkit rules,
kiosk autostart, voice clips, the first slot — and a second run that changes nothing."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.errors import ConfigError
from controller.config import load_config
from deploy.install import (
    Layout,
    Options,
    _options,
    _parser,
    apply,
    main,
    prepare,
    ssh_commands,
    udev_rules,
)
from protocols.release import ReleaseRefused

from .update_support import ROOT, make_bundle, write_public_key

KEY = Ed25519PrivateKey.generate()
EXAMPLE = ROOT / "examples" / "branch.toml"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bundle")
    return make_bundle(tmp / "0.1.5", "0.1.5", KEY, tmp / "wheels")


def options(tmp_path: Path, bundle: Path, **kw: object) -> Options:
    password = tmp_path / "broker-password"
    password.write_text("s3cret\n")
    clips = tmp_path / "clips" / "zh"
    clips.mkdir(parents=True, exist_ok=True)
    (clips / "please.wav").write_bytes(b"RIFF....WAVE")
    base: dict[str, object] = dict(
        bundle=bundle, config=EXAMPLE, release_key=write_public_key(tmp_path / "key.pub", KEY),
        centre_url="http://centre.example:8000", broker="mqtt://centre.example:1883",
        broker_password_file=password, clips=tmp_path / "clips",
        rs485=["0403:6001:A12345"], printer=["0416:5011"])
    return Options(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_full_install_into_a_root_folder_then_nothing_to_do(tmp_path: Path, bundle: Path,
                                                              capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    payload = prepare(options(tmp_path, bundle), tmp_path / "payload")
    root = tmp_path / "root"
    first = apply(payload, root, live=False, install_slot=True, python=sys.executable)
    assert any(c.startswith("slot 0.1.5 installed") for c in first)
    etc, units = root / "etc", root / "etc" / "systemd" / "system"

    # the user and its device groups, made by systemd-sysusers inside the root
    passwd = {line.split(":")[0]: line.split(":") for line in
              (etc / "passwd").read_text().splitlines()}
    assert passwd["paidui"][5] == "/var/lib/paidui" and passwd["paidui"][6] == "/usr/sbin/nologin"
    uid = int(passwd["paidui"][2])
    groups = {line.split(":")[0]: line.split(":")[3].split(",") for line in
              (etc / "group").read_text().splitlines()}
    for g in ("dialout", "lp", "audio", "gpio", "input"):
        assert "paidui" in groups[g]

    # the box's unit: notify + watchdog, restarts on failure, runs the current slot
    box = (units / "paidui-box.service").read_text()
    for line in ("Type=notify", "WatchdogSec=30", "Restart=on-failure", "User=paidui",
                 "ExecStart=/opt/paidui/current/venv/bin/python -I -m controller --config "
                 "/etc/paidui/branch.toml --data-dir /var/lib/paidui $PAIDUI_ARGS",
                 "ReadWritePaths=/opt/paidui /var/lib/paidui", "StartLimitIntervalSec=0",
                 "LimitNOFILE=65536", "MemoryMax=1G"):  # floods: files, and a bound
        assert line in box.splitlines()
    guard = (units / "paidui-update-guard.service").read_text()
    assert "ExecStart=/opt/paidui/previous/venv/bin/python -I -m controller.update guard " \
           "--config /etc/paidui/branch.toml $PAIDUI_ARGS" in guard
    firstboot = (units / "paidui-firstboot.service").read_text()
    assert "/opt/paidui/lib/slots.py install /opt/paidui/bundles/0.1.5 --root /opt/paidui" in \
        firstboot
    wants = units / "multi-user.target.wants"
    assert os.readlink(wants / "paidui-box.service") == "/etc/systemd/system/paidui-box.service"
    verify = shutil.which("systemd-analyze")
    if verify:  # every key and value parses; a scratch root lacks only targets and binaries
        for unit in ("paidui-box", "paidui-update-guard", "paidui-firstboot"):
            out = subprocess.run([verify, "verify", f"--root={root}", "--man=no",
                                  str(units / f"{unit}.service")], capture_output=True, text=True)
            problems = [line for line in out.stderr.splitlines()
                        if "sysinit.target not found" not in line
                        and "is not executable" not in line]
            assert problems == [], problems

    # stable device names
    rules = (etc / "udev" / "rules.d" / "70-paidui.rules").read_text()
    assert ('SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ATTRS{idProduct}=="6001", '
            'ATTRS{serial}=="A12345", SYMLINK+="paidui-rs485", GROUP="dialout", MODE="0660"'
            ) in rules
    assert ('SUBSYSTEM=="usbmisc", ATTRS{idVendor}=="0416", ATTRS{idProduct}=="5011", '
            'SYMLINK+="paidui-printer"') in rules
    polkit = (etc / "polkit-1" / "rules.d" / "50-paidui.rules").read_text()
    assert 'unit == "paidui-box.service" && verb == "restart"' in polkit

    # the config: the branch's own, plus updates and the broker credentials, readable by
    # the box's group only
    config_path = etc / "paidui" / "branch.toml"
    raw = tomllib.loads(config_path.read_text())
    assert raw["update"]["public_key_file"] == "/etc/paidui/release-key.pub"
    assert raw["update"]["centre_url"] == "http://centre.example:8000"
    assert raw["uplink"] == {"broker": "mqtt://centre.example:1883", "password": "s3cret"}
    st = config_path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == int(pwd_group(etc, "paidui"))
    assert load_config(config_path, ["update.public_key_file=" + str(etc / "paidui" /
                                                                    "release-key.pub")])
    assert (etc / "paidui" / "release-key.pub").read_bytes() == \
        (tmp_path / "key.pub").read_bytes()
    assert "--set audio.clips=/opt/paidui/clips" in (etc / "paidui" / "box.env").read_text()

    # kiosk and hall display open full screen by themselves
    kiosk = (etc / "xdg" / "autostart" / "paidui-screen-kiosk.desktop").read_text()
    hall = (etc / "xdg" / "autostart" / "paidui-screen-hall.desktop").read_text()
    assert "http://127.0.0.1:8080/kiosk" in kiosk and "--kiosk" in kiosk
    assert "http://127.0.0.1:8080/hall" in hall and "--window-position=1920,0" in hall

    # folders, owners, clips, and the slot the box runs
    opt = root / "opt" / "paidui"
    assert opt.stat().st_uid == uid and (root / "var" / "lib" / "paidui").stat().st_uid == uid
    assert stat.S_IMODE((root / "var" / "cache" / "paidui-screens").stat().st_mode) == 0o1777
    assert (opt / "clips" / "zh" / "please.wav").read_bytes() == b"RIFF....WAVE"
    assert os.readlink(opt / "current") == "slots/0.1.5"
    assert (opt / "slots" / "0.1.5").stat().st_uid == uid
    version = subprocess.run([str(opt / "current" / "venv" / "bin" / "python"), "-I", "-c",
                              "import controller; print(controller.__version__)"],
                             capture_output=True, text=True, check=True, cwd=tmp_path)
    assert version.stdout.strip() == "0.1.5"

    # again: nothing to do
    capsys.readouterr()
    assert apply(payload, root, live=False, install_slot=True, python=sys.executable) == []
    assert capsys.readouterr().out.strip() == "no changes"

    # a hand-edited unit and a loosened config are put back, and nothing else
    (units / "paidui-box.service").write_text("[Service]\nExecStart=/bin/false\n")
    os.chmod(config_path, 0o644)
    again = apply(payload, root, live=False, install_slot=True, python=sys.executable)
    assert sorted(again) == ["file /etc/systemd/system/paidui-box.service",
                             "mode 0o640 /etc/paidui/branch.toml"]


def pwd_group(etc: Path, name: str) -> str:
    return next(line.split(":")[2] for line in (etc / "group").read_text().splitlines()
                if line.startswith(name + ":"))


def test_without_install_slot_first_boot_installs_it(tmp_path: Path, bundle: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is needed to speak the clips")
    payload = prepare(options(tmp_path, bundle, screens=[], clips=None, make_clips=True),
                      tmp_path / "payload")
    root = tmp_path / "root"
    apply(payload, root, live=False)
    opt = root / "opt" / "paidui"
    assert not (opt / "current").exists()
    assert (opt / "bundles" / "0.1.5" / "manifest.sig").exists()
    slots_py = (opt / "lib" / "slots.py").read_bytes()
    assert slots_py == (ROOT / "controller" / "slots.py").read_bytes()
    wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants"
    assert (wants / "paidui-firstboot.service").is_symlink()
    assert not (root / "etc" / "xdg" / "autostart").exists()
    spoken = {p.relative_to(opt / "clips").as_posix() for p in (opt / "clips").rglob("*.wav")}
    assert {"zh/go_to.wav", "en/d9.wav"} <= spoken and len(spoken) > 100, sorted(spoken)[:5]


def test_prepare_refuses_a_bundle_not_signed_by_the_centre_and_a_bad_config(
        tmp_path: Path, bundle: Path) -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(ReleaseRefused, match="unknown_key"):
        prepare(options(tmp_path, bundle, release_key=write_public_key(tmp_path / "o.pub",
                                                                       other)),
                tmp_path / "payload")
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('code = "1001010001"', 'code = "x"'))
    with pytest.raises(ConfigError, match=r"branch\.code"):
        prepare(options(tmp_path, bundle, config=bad), tmp_path / "payload")
    assert not (tmp_path / "payload").exists()


def test_a_real_hardware_box_drives_the_adapter_by_its_stable_name(
        tmp_path: Path, bundle: Path) -> None:
    """The udev rules name the bus adapter /dev/paidui-rs485; a real-hardware config that
    names no port is pointed at it, one that names its own port (or has no bus devices)
    keeps its word."""
    def box_env(text: str) -> str:
        config = tmp_path / "real.toml"
        config.write_text(text)
        payload = prepare(options(tmp_path, bundle, config=config), tmp_path / "payload")
        return (payload / "root" / "etc" / "paidui" / "box.env").read_text()

    real = EXAMPLE.read_text().replace('hardware = "sim"', 'hardware = "real"')
    assert "--set rs485.port=/dev/paidui-rs485" in box_env(real)
    own = real.replace("[rs485]", '[rs485]\nport = "/dev/ttyAMA0"') if "[rs485]" in real \
        else real + '\n[rs485]\nport = "/dev/ttyAMA0"\n'
    assert "rs485.port" not in box_env(own)
    assert "rs485.port" not in box_env(EXAMPLE.read_text())  # the simulator's own pty


def test_without_a_clip_pack_the_installer_speaks_one(tmp_path: Path) -> None:
    """A box without its clips has no voice: no --clips means --make-clips."""
    common = ["pi", "somehost", "--bundle", "b", "--config", "c", "--release-key", "k"]
    assert _options(_parser().parse_args(common)).make_clips is True
    given = _options(_parser().parse_args([*common, "--clips", str(tmp_path)]))
    assert given.make_clips is False and given.clips == tmp_path


def test_device_specs_and_the_command_line(tmp_path: Path, bundle: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    rules = udev_rules(["1a86:7523"], ["tty:067b:2303:XYZ"], Layout())
    assert 'SUBSYSTEM=="tty", ATTRS{idVendor}=="067b", ATTRS{idProduct}=="2303", ' \
           'ATTRS{serial}=="XYZ", SYMLINK+="paidui-printer"' in rules
    assert 'KERNEL=="lp[0-9]*"' in udev_rules([], [], Layout())  # any usblp printer
    for bad in ("0403", "0403:60011", "XYZW:6001", "0403:6001:a:b"):
        with pytest.raises(ValueError, match="VID:PID"):
            udev_rules([bad], [], Layout())
    assert main(["pi", "--bundle", str(bundle), "--config", str(EXAMPLE), "--release-key",
                 str(write_public_key(tmp_path / "k.pub", KEY))]) == 2  # neither host nor root
    assert "either HOST or --root" in capsys.readouterr().err
    copy, run = ssh_commands("pi@branch-1001010001", tmp_path / "payload")
    assert copy[:2] == ["sh", "-c"] and "| ssh pi@branch-1001010001 " in copy[2]
    assert run == ["ssh", "pi@branch-1001010001", "sudo python3 /var/tmp/paidui-install/"
                   "install.py apply --payload /var/tmp/paidui-install --root / --live"]


@pytest.mark.slow
def test_flash_sh_pi_installs_into_a_scratch_root(tmp_path: Path, bundle: Path) -> None:
    """The README's way in: `./flash.sh pi --root DIR …` sets up (here: already done) and
    installs a box into a folder standing for the Pi's root."""
    import os
    import subprocess
    import sys

    o = options(tmp_path, bundle)
    root = tmp_path / "root"
    venv = Path(sys.executable).parent.parent
    env = {**os.environ, "PAIDUI_VENV": str(venv)}
    done = subprocess.run(
        ["./flash.sh", "pi", "--root", str(root), "--bundle", str(bundle), "--config",
         str(EXAMPLE), "--release-key", str(o.release_key), "--clips", str(o.clips),
         "--no-screens"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    etc = root / "etc"
    assert (etc / "paidui" / "branch.toml").exists()
    assert (etc / "systemd" / "system" / "paidui-box.service").exists()
    assert (root / "opt" / "paidui" / "clips" / "zh" / "please.wav").exists()
