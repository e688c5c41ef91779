"""Install a branch box on a Raspberry Pi (Pi OS / Debian with systemd).

    ./flash.sh pi HOST [options]        over SSH, onto a running Pi (needs sudo there)
    ./flash.sh pi --root DIR [options]  onto a mounted image or root folder

Both run ``python -m deploy.install pi …``, in two steps:

1. **prepare** (here, with the project's venv): check the release bundle's signature and
   files, check the branch config, and render every file the box needs into a *payload*
   folder: ``root/`` mirrors the Pi's file system, ``files.json`` lists each path's
   kind, mode and owner; ``install.py`` and ``slots.py`` come along.
2. **apply** (on the Pi as root, or here onto ``--root DIR``; standard library only):
   write what differs, create the ``paidui`` user (``systemd-sysusers``), set owners,
   install the first slot from the bundle (on a live Pi now; on an image at first boot,
   ``paidui-firstboot.service``), and on a live Pi reload systemd and udev and (re)start
   the box. Every change is printed; a second run prints ``no changes``.

What lands on the Pi: ``/etc/paidui/`` (branch.toml with the broker credentials, mode
0640; box.env; the centre's release-key.pub), systemd units (the box: ``Type=notify``,
``WatchdogSec``, ``Restart=on-failure``; the update guard; first boot), udev rules naming
the RS485 adapter ``/dev/paidui-rs485`` and the printer ``/dev/paidui-printer``, a
polkit rule letting the box restart only itself, Chromium kiosk autostart for the kiosk
and the hall display, voice clips in ``/opt/paidui/clips``, and the slots under
``/opt/paidui`` (``controller/slots.py``). The journal lives in ``/var/lib/paidui``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import stat
import string
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Entry", "Layout", "apply", "main", "prepare"]

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STAGE = "/var/tmp/paidui-install"
# Common USB–RS485 adapters: FTDI FT232R, WCH CH340, Silicon Labs CP210x.
DEFAULT_RS485 = ("0403:6001", "1a86:7523", "10c4:ea60")
RS485_DEVICE = "/dev/paidui-rs485"  # the udev rules' stable name of the bus adapter
UNITS = ("paidui-box.service", "paidui-update-guard.service", "paidui-firstboot.service")
# Debian packages a live Pi needs (Pi OS Bookworm): venv for the slots, aplay for the
# voice, Chromium and the CJK font for the screens, polkit for the box's own restart.
PI_PACKAGES = ("python3-venv", "alsa-utils", "chromium", "fonts-noto-cjk", "polkitd",
               "pcscd", "libccid")  # PC/SC and USB smart-card readers: bank IC cards (I3)


@dataclass(frozen=True)
class Layout:
    """Where things go on the Pi, and who owns them."""

    user: str = "paidui"
    prefix: str = "/opt/paidui"
    data: str = "/var/lib/paidui"
    etc: str = "/etc/paidui"
    screens: str = "/var/cache/paidui-screens"
    python: str = "/usr/bin/python3"
    browser: str = "/usr/bin/chromium"
    watchdog_s: int = 30


@dataclass
class Entry:
    """One path on the Pi: a file (its bytes under ``payload/root``), a folder or a link."""

    path: str
    kind: str = "file"  # file | dir | link
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    target: str = ""  # links

    @property
    def rel(self) -> str:
        return self.path.lstrip("/")


# --- prepare (needs the project: runs on the machine that flashes) ---------------------------


@dataclass
class Options:
    bundle: Path
    config: Path
    release_key: Path
    centre_url: str = ""
    broker: str = ""
    broker_password_file: Path | None = None
    clips: Path | None = None
    make_clips: bool = False
    rs485: list[str] = field(default_factory=lambda: list(DEFAULT_RS485))
    printer: list[str] = field(default_factory=list)
    screens: list[str] | None = None  # None: kiosk and hall on the box's port
    layout: Layout = field(default_factory=Layout)


def prepare(o: Options, out: Path) -> Path:
    """Render the payload for ``o`` into ``out`` (emptied first); returns ``out``."""
    version = _checked_bundle(o.bundle, o.release_key)
    config_text, port, sets = _installed_config(o)
    shutil.rmtree(out, ignore_errors=True)
    (out / "root").mkdir(parents=True)
    lay = o.layout
    words = {**asdict(lay), "version": version}
    entries: list[Entry] = []

    def put(path: str, data: bytes, mode: int = 0o644, group: str = "root",
            owner: str = "root") -> None:
        entries.append(Entry(path, "file", mode, owner, group))
        (out / "root" / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (out / "root" / path.lstrip("/")).write_bytes(data)

    def folder(path: str, mode: int = 0o755, owner: str = "root") -> None:
        entries.append(Entry(path, "dir", mode, owner, owner))

    def template(name: str, **extra: Any) -> bytes:
        text = (TEMPLATES / name).read_text(encoding="utf-8")
        return string.Template(text).substitute({**words, **extra}).encode()

    folder(lay.etc)
    put(f"{lay.etc}/branch.toml", config_text.encode(), 0o640, lay.user)
    put(f"{lay.etc}/box.env", _box_env(lay, sets).encode(), 0o640, lay.user)
    put(f"{lay.etc}/release-key.pub", o.release_key.read_bytes())
    for unit in UNITS:
        put(f"/etc/systemd/system/{unit}", template(unit))
    for unit in ("paidui-box.service", "paidui-firstboot.service"):
        entries.append(Entry(f"/etc/systemd/system/multi-user.target.wants/{unit}", "link",
                             target=f"/etc/systemd/system/{unit}"))
    put("/etc/udev/rules.d/70-paidui.rules", udev_rules(o.rs485, o.printer, lay).encode())
    put("/etc/sysusers.d/paidui.conf", template("sysusers.conf"))
    put("/etc/tmpfiles.d/paidui.conf", template("tmpfiles.conf"))
    put("/etc/polkit-1/rules.d/50-paidui.rules", template("50-paidui.rules"))
    for name, text in _screens(o, port).items():
        put(f"/etc/xdg/autostart/paidui-screen-{name}.desktop", text.encode())
    for path, mode, owner in ((lay.prefix, 0o755, lay.user), (f"{lay.prefix}/slots", 0o755,
                              lay.user), (f"{lay.prefix}/lib", 0o755, "root"),
                              (f"{lay.prefix}/bundles", 0o755, "root"),
                              (f"{lay.prefix}/bundles/{version}", 0o755, lay.user),
                              (lay.data, 0o750, lay.user), (lay.screens, 0o1777, "root")):
        folder(path, mode, owner)
    put(f"{lay.prefix}/lib/slots.py", _slots_source())
    for f in sorted(o.bundle.iterdir()):  # the box's: its slot hard-links these wheels
        put(f"{lay.prefix}/bundles/{version}/{f.name}", f.read_bytes(), 0o644, lay.user, lay.user)
    _add_clips(o, out, put, folder)
    (out / "files.json").write_text(json.dumps({"version": version, "layout": asdict(lay),
                                                "entries": [asdict(e) for e in entries]},
                                               indent=1))
    shutil.copyfile(Path(__file__), out / "install.py")
    (out / "slots.py").write_bytes(_slots_source())
    return out


def _checked_bundle(bundle: Path, key_file: Path) -> str:
    from common.files import file_sha256
    from protocols.release import check_file, load_public_key, verify_manifest

    sig = bundle / "manifest.sig"
    manifest = verify_manifest((bundle / "manifest.json").read_bytes(),
                               sig.read_bytes() if sig.exists() else None,
                               [load_public_key(key_file.read_bytes())])
    for f in manifest.files:
        check_file(f, *file_sha256(bundle / f.name))
    return manifest.version


def _installed_config(o: Options) -> tuple[str, int, list[str]]:
    """The branch config as installed: the given file plus ``[update]`` (and ``[uplink]``
    with the broker credentials) when it has none; validated. Returns (text, http port,
    the box's extra ``--set`` s): a real-hardware box with devices on the bus and no
    ``rs485.port`` gets the adapter's stable name, ``/dev/paidui-rs485`` (udev_rules)."""
    from controller.config import load_config

    text = o.config.read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    lay, extra = o.layout, []
    if "update" not in raw:
        extra += ["[update]", f"public_key_file = {json.dumps(lay.etc + '/release-key.pub')}",
                  f"root = {json.dumps(lay.prefix)}", f"python = {json.dumps(lay.python)}"]
        if o.centre_url:
            extra.append(f"centre_url = {json.dumps(o.centre_url)}")
    if o.broker and "uplink" not in raw:
        extra += ["", "[uplink]", f"broker = {json.dumps(o.broker)}"]
        if o.broker_password_file is not None:
            password = o.broker_password_file.read_text(encoding="utf-8").strip()
            extra.append(f"password = {json.dumps(password)}")
    if extra:
        text = text.rstrip("\n") + "\n\n# --- added by deploy/install.py ---\n" + \
            "\n".join(extra) + "\n"
    with tempfile.NamedTemporaryFile("w", suffix=".toml", encoding="utf-8") as tmp:
        tmp.write(text)
        tmp.flush()
        config = load_config(tmp.name, [f"audio.clips={lay.prefix}/clips"])
    rs485 = raw.get("rs485", {})
    sets = []
    if config.hardware == "real" and "port" not in rs485 and rs485.get("kinds", True):
        sets.append(f"rs485.port={RS485_DEVICE}")
    return text, config.http.port, sets


def _box_env(lay: Layout, sets: list[str]) -> str:
    args = [f"audio.clips={lay.prefix}/clips", *sets]
    return ("# Extra arguments of the box and its update guard (python -m controller --set …).\n"
            f"PAIDUI_ARGS={' '.join('--set ' + shlex.quote(a) for a in args)}\n")


def udev_rules(rs485: list[str], printers: list[str], lay: Layout) -> str:
    """Stable device names: ``/dev/paidui-rs485`` and ``/dev/paidui-printer``.

    Each spec is ``VID:PID[:SERIAL]`` (hex, from ``lsusb``); a printer on a USB serial
    adapter is ``tty:VID:PID[:SERIAL]``. With no printer given, any ``usblp`` printer.
    """
    lines = ["# paidui: stable names for the RS485 adapter and the ticket printer.",
             "# Written by deploy/install.py (--rs485 / --printer VID:PID[:SERIAL]).", ""]
    for spec in rs485:
        lines.append(_rule("tty", spec, "paidui-rs485", "dialout"))
    for spec in printers or ["usblp"]:
        if spec == "usblp":
            lines.append('SUBSYSTEM=="usbmisc", KERNEL=="lp[0-9]*", SYMLINK+="paidui-printer", '
                         'GROUP="lp", MODE="0660"')
        elif spec.startswith("tty:"):
            lines.append(_rule("tty", spec[4:], "paidui-printer", "lp"))
        else:
            lines.append(_rule("usbmisc", spec, "paidui-printer", "lp"))
    return "\n".join(lines) + "\n"


def _rule(subsystem: str, spec: str, name: str, group: str) -> str:
    parts = spec.split(":")
    hexes = [p for p in parts[:2] if len(p) == 4 and all(c in "0123456789abcdef" for c in p)]
    if len(parts) not in (2, 3) or len(hexes) != 2:
        raise ValueError(f"{spec!r}: expected VID:PID[:SERIAL] in lower-case hex, e.g. 0403:6001")
    match = [f'SUBSYSTEM=="{subsystem}"', f'ATTRS{{idVendor}}=="{parts[0]}"',
             f'ATTRS{{idProduct}}=="{parts[1]}"']
    if len(parts) == 3:
        match.append(f'ATTRS{{serial}}=="{parts[2]}"')
    return ", ".join([*match, f'SYMLINK+="{name}"', f'GROUP="{group}"', 'MODE="0660"'])


def _screens(o: Options, port: int) -> dict[str, str]:
    """XDG autostart entries (``controller.web.autostart``): Chromium full screen on the
    kiosk and the hall display, each waiting for the box to answer first."""
    from controller.web.autostart import Screen, desktop_entry

    specs = o.screens if o.screens is not None else [
        f"kiosk=http://127.0.0.1:{port}/kiosk", f"hall=http://127.0.0.1:{port}/hall@1920,0"]
    lay = o.layout
    entries = {}
    for spec in specs:
        s = Screen.parse(spec)
        entries[s.name] = desktop_entry(s, browser=lay.browser, profiles=lay.screens,
                                        python=f"{lay.prefix}/current/venv/bin/python")
    return entries


def _slots_source() -> bytes:
    from controller import slots

    return Path(slots.__file__).read_bytes()


def _add_clips(o: Options, out: Path, put: Any, folder: Any) -> None:
    clips = o.clips
    if o.make_clips:
        clips = out / "clips-made"
        subprocess.run([sys.executable, "-m", "drivers.audio", "make-clips", "--out", str(clips)],
                       check=True)
    if clips is None:
        return
    folder(f"{o.layout.prefix}/clips")
    for f in sorted(p for p in clips.rglob("*") if p.is_file()):
        rel = f.relative_to(clips).as_posix()
        for parent in reversed(Path(rel).parents[:-1]):
            folder(f"{o.layout.prefix}/clips/{parent.as_posix()}")
        put(f"{o.layout.prefix}/clips/{rel}", f.read_bytes())


# --- apply (standard library only: runs on the Pi) ---------------------------------------


class Changes(list[str]):
    def note(self, what: str) -> None:
        self.append(what)
        print(f"changed: {what}", flush=True)


def apply(payload: Path, root: Path, *, live: bool, install_slot: bool = False,
          python: str | None = None) -> list[str]:
    """Make ``root`` hold what ``payload`` says; return the changes (empty: nothing to do)."""
    spec = json.loads((payload / "files.json").read_text())
    lay = Layout(**spec["layout"])
    entries = [Entry(**e) for e in spec["entries"]]
    changes = Changes()
    if live:
        _packages(changes)
    for e in entries:
        _sync(e, payload / "root" / e.rel, root / e.rel, changes)
    _users(root, live, changes)
    _owners(entries, root, changes)
    if live or install_slot:
        _slot(root, lay, spec["version"], python or lay.python, changes)
    if live:
        _activate(changes)
    print("no changes" if not changes else f"{len(changes)} changes", flush=True)
    return changes


def _packages(changes: Changes) -> None:
    missing = [p for p in PI_PACKAGES if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True,
        check=False).stdout != "install ok installed"]
    if missing:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       check=True, env=env)
        changes.note(f"packages {' '.join(missing)}")


def _sync(e: Entry, src: Path, dst: Path, changes: Changes) -> None:
    if e.kind == "dir":
        if not dst.is_dir():
            dst.mkdir(parents=True)
            changes.note(f"folder {e.path}")
        _chmod(dst, e.mode, e.path, changes)
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if e.kind == "link":
        if not dst.is_symlink() or os.readlink(dst) != e.target:
            tmp = dst.with_name(f".{dst.name}.tmp")
            tmp.unlink(missing_ok=True)
            os.symlink(e.target, tmp)
            os.replace(tmp, dst)
            changes.note(f"link {e.path} -> {e.target}")
        return
    if not dst.is_file() or dst.is_symlink() or not _same(src, dst):
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.copyfile(src, tmp)
        os.chmod(tmp, e.mode)
        os.replace(tmp, dst)
        changes.note(f"file {e.path}")
    _chmod(dst, e.mode, e.path, changes)


def _same(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return _digest(a) == _digest(b)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _chmod(path: Path, mode: int, name: str, changes: Changes) -> None:
    if stat.S_IMODE(path.lstat().st_mode) != mode:
        os.chmod(path, mode)
        changes.note(f"mode {oct(mode)} {name}")


def _users(root: Path, live: bool, changes: Changes) -> None:
    """Create the user and its groups with systemd-sysusers (here, or inside the image)."""
    tool = shutil.which("systemd-sysusers")
    if tool is None:
        print("note: systemd-sysusers not found here; the Pi creates the user at boot")
        return
    before = _accounts(root)
    argv = [tool] if live else [tool, f"--root={root}"]
    subprocess.run(argv, check=True, capture_output=True, text=True)
    if _accounts(root) != before:
        changes.note("users and groups (systemd-sysusers)")


def _accounts(root: Path) -> tuple[str, str]:
    def read(name: str) -> str:
        try:
            return (root / "etc" / name).read_text()
        except FileNotFoundError:
            return ""
    return read("passwd"), read("group")


def _ids(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    passwd, group = _accounts(root)
    users = {f[0]: int(f[2]) for f in (line.split(":") for line in passwd.splitlines())
             if len(f) > 3 and f[2].isdigit()}
    groups = {f[0]: int(f[2]) for f in (line.split(":") for line in group.splitlines())
              if len(f) > 2 and f[2].isdigit()}
    return {"root": 0, **users}, {"root": 0, **groups}


def _owners(entries: list[Entry], root: Path, changes: Changes) -> None:
    users, groups = _ids(root)
    for e in entries:
        if e.kind == "link":
            continue
        uid, gid = users.get(e.owner), groups.get(e.group)
        if uid is None or gid is None:
            continue  # no such user in this root yet: tmpfiles.d sets it at boot
        st = (root / e.rel).lstat()
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(root / e.rel, uid, gid)
            changes.note(f"owner {e.owner}:{e.group} {e.path}")


def _slot(root: Path, lay: Layout, version: str, python: str, changes: Changes) -> None:
    """Install the bundle as the first slot, unless this or a newer version is current."""
    sys.path.insert(0, str(root / lay.prefix.lstrip("/") / "lib"))
    try:
        from slots import (  # type: ignore[import-not-found, unused-ignore]
            Slots,
            install_bundle,
            version_key,
        )
    finally:
        sys.path.pop(0)
    prefix = root / lay.prefix.lstrip("/")
    slots = Slots(prefix)
    current = slots.current()
    if current is not None and version_key(current) >= version_key(version):
        return
    install_bundle(slots, prefix / "bundles" / version, python)
    users, groups = _ids(root)
    uid, gid = users.get(lay.user), groups.get(lay.user)
    if uid is not None and gid is not None:
        for p in [prefix / "current", prefix / "previous", *slots.path(version).rglob("*"),
                  slots.path(version)]:
            if p.is_symlink() or p.exists():
                os.lchown(p, uid, gid)
    changes.note(f"slot {version} installed and current (was {current})")


def _activate(changes: Changes) -> None:
    """On a live Pi: reload what changed and (re)start the box."""
    if not changes:
        return
    text = "\n".join(changes)
    run = [["systemctl", "daemon-reload"]]
    if "udev" in text:
        run += [["udevadm", "control", "--reload-rules"], ["udevadm", "trigger"]]
    run.append(["systemctl", "restart", "paidui-box.service"])
    for argv in run:
        subprocess.run(argv, check=True)
        changes.note(" ".join(argv))


# --- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deploy.install", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("pi", help="prepare, then apply over SSH (HOST) or onto --root DIR")
    pi.add_argument("host", nargs="?", help="user@host of a running Pi (sudo there)")
    pi.add_argument("--root", type=Path, help="a mounted image or root folder instead")
    pi.add_argument("--install-slot", action="store_true",
                    help="with --root: install the slot now with this machine's Python (same "
                         "CPU as the Pi only); else paidui-firstboot.service does it")
    prep = sub.add_parser("prepare", help="only render the payload")
    prep.add_argument("--out", type=Path, required=True)
    for sp in (pi, prep):
        sp.add_argument("--bundle", type=Path, required=True, help="signed release bundle")
        sp.add_argument("--config", type=Path, required=True, help="the branch config (TOML)")
        sp.add_argument("--release-key", type=Path, required=True,
                        help="the centre's release public key")
        sp.add_argument("--centre-url", default="")
        sp.add_argument("--broker", default="", help="mqtt://HOST:PORT of the centre's broker")
        sp.add_argument("--broker-password-file", type=Path)
        sp.add_argument("--clips", type=Path, help="a voice clip pack to install")
        sp.add_argument("--make-clips", action="store_true",
                        help="speak one with espeak-ng (the default without --clips)")
        sp.add_argument("--rs485", action="append", metavar="VID:PID[:SERIAL]")
        sp.add_argument("--printer", action="append", metavar="[tty:]VID:PID[:SERIAL]")
        sp.add_argument("--screen", action="append", metavar="NAME=URL[@X,Y]")
        sp.add_argument("--no-screens", action="store_true")
    ap = sub.add_parser("apply", help="apply a payload (on the Pi, as root)")
    ap.add_argument("--payload", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--root", type=Path, default=Path("/"))
    ap.add_argument("--live", action="store_true", help="a running system: reload, restart")
    ap.add_argument("--install-slot", action="store_true")
    ap.add_argument("--slot-python", help="Python that makes the slot's venv (default: the "
                                          "layout's, /usr/bin/python3)")
    return p


def _options(a: argparse.Namespace) -> Options:
    return Options(bundle=a.bundle, config=a.config, release_key=a.release_key,
                   centre_url=a.centre_url, broker=a.broker,
                   broker_password_file=a.broker_password_file, clips=a.clips,
                   # no pack given: speak one, or the box's voice would fault at start
                   make_clips=a.make_clips or a.clips is None,
                   rs485=a.rs485 or list(DEFAULT_RS485),
                   printer=a.printer or [], screens=[] if a.no_screens else a.screen)


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        if a.cmd == "apply":
            apply(a.payload, a.root, live=a.live, install_slot=a.install_slot,
                  python=a.slot_python)
        elif a.cmd == "prepare":
            print(prepare(_options(a), a.out))
        else:
            return _pi(a)
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"install: {exc}", file=sys.stderr)
        return 1
    return 0


def _pi(a: argparse.Namespace) -> int:
    if (a.host is None) == (a.root is None):
        print("install: give either HOST or --root DIR", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="paidui-payload-") as tmp:
        payload = prepare(_options(a), Path(tmp) / "payload")
        if a.root is not None:
            apply(payload, a.root, live=False, install_slot=a.install_slot)
            return 0
        for argv in ssh_commands(a.host, payload):
            subprocess.run(argv, check=True)
    return 0


def ssh_commands(host: str, payload: Path) -> list[list[str]]:
    """Copy the payload to the Pi (tar over ssh) and apply it there with sudo."""
    unpack = f"sudo rm -rf {STAGE} && sudo mkdir -p {STAGE} && sudo tar -xf - -C {STAGE}"
    return [
        ["sh", "-c", f"tar -C {shlex.quote(str(payload))} -cf - . | ssh {shlex.quote(host)} "
                     f"{shlex.quote(unpack)}"],
        ["ssh", host, f"sudo python3 {STAGE}/install.py apply --payload {STAGE} --root / --live"],
    ]


if __name__ == "__main__":
    sys.exit(main())
