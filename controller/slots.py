"""Side-by-side installs of the box's software (A/B slots), switched atomically.

Layout under the root (``/opt/paidui`` on a Pi)::

    slots/0.1.0/            one release: venv/, wheels/, manifest.json, manifest.sig,
    slots/0.2.0/            and .complete once it is fully installed and imports
    current  -> slots/0.2.0 what systemd runs: current/venv/bin/python -m controller
    previous -> slots/0.1.0 what a rollback returns to
    incoming/0.3.0/         downloads in progress
    update-state.json       the updater's record across restarts

A slot is installed by creating a venv (``--without-pip``: fast, and nothing in it can
reach an index) and running pip *from the release's own pip wheel* with ``--no-index
--no-deps`` over exactly the wheels the manifest lists: the manifest is the lock, nothing
is resolved or downloaded at install time. A slot counts only once ``.complete`` exists,
written after the new interpreter has imported the box and reported the right version.

``current`` and ``previous`` are relative symlinks replaced with ``rename(2)``, so a power
cut leaves either the old or the new link, and a root folder stays valid when mounted
elsewhere (a Pi image on a laptop). The journal and data dir are elsewhere and never
touched here.

Standard library only: the installer copies this file to a fresh Pi and runs it with the
system Python (``python3 slots.py install BUNDLE --root /opt/paidui``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.files import file_sha256

__all__ = ["SlotError", "Slots", "read_json", "version_key", "write_json_atomic"]

COMPLETE = ".complete"
STATE = "update-state.json"
_VERSION = re.compile(r"^[0-9][0-9a-z.]{0,31}$")
# controller.__version__ (from common): what older boxes' updaters ask a new release too
_SMOKE = "import common, controller, drivers, protocols; print(controller.__version__)"


class SlotError(RuntimeError):
    """A slot could not be installed or switched. ``code`` is a release reason code."""

    def __init__(self, code: str, detail: str) -> None:
        self.code, self.detail = code, detail
        super().__init__(f"{code}: {detail}")


class Slots:
    """The slots under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.slots = self.root / "slots"

    # --- where things are ---------------------------------------------------------------

    def path(self, version: str) -> Path:
        if not _VERSION.match(version):
            raise SlotError("bad_manifest", f"{version!r} is not a version")
        return self.slots / version

    def python(self, version: str) -> Path:
        return self.path(version) / "venv" / "bin" / "python"

    def is_complete(self, version: str) -> bool:
        return (self.path(version) / COMPLETE).exists()

    def installed(self) -> list[str]:
        if not self.slots.is_dir():
            return []
        return sorted(p.name for p in self.slots.iterdir() if (p / COMPLETE).exists())

    def current(self) -> str | None:
        return self._link("current")

    def previous(self) -> str | None:
        return self._link("previous")

    def _link(self, name: str) -> str | None:
        try:
            target = os.readlink(self.root / name)
        except OSError:
            return None
        return Path(target).name

    # --- installing ---------------------------------------------------------------------

    def install(self, version: str, bundle: Path, files: Sequence[str], installer: str, *,
                python: str = "/usr/bin/python3", compile_bytecode: bool = True,
                timeout: float = 900.0) -> Path:
        """Install the verified ``bundle`` (a folder with ``files``) as slot ``version``.

        Idempotent: a complete slot is left alone; a half-made one is wiped and redone.
        Raises :class:`SlotError` (``install_failed``, ``disk_full``) with pip's words.
        """
        slot = self.path(version)
        if self.is_complete(version):
            return slot
        if version in (self.current(), self.previous()):
            raise SlotError("install_failed", f"slot {version} is in use but incomplete")
        shutil.rmtree(slot, ignore_errors=True)
        try:
            self._fill(slot, bundle, files)
            _run([python, "-m", "venv", "--without-pip", str(slot / "venv")], timeout, cwd=slot)
            wheels = [str(slot / "wheels" / f) for f in files if f.endswith(".whl")]
            _run([str(self.python(version)), str(slot / "wheels" / installer / "pip"), "install",
                  "--no-index", "--no-deps", "--disable-pip-version-check",
                  "--no-warn-script-location", "--quiet",
                  *([] if compile_bytecode else ["--no-compile"]), *wheels], timeout, cwd=slot)
            self._smoke(version, timeout)
            _write_synced(slot / COMPLETE, version + "\n")
        except OSError as exc:
            shutil.rmtree(slot, ignore_errors=True)
            code = "disk_full" if exc.errno == 28 else "install_failed"
            raise SlotError(code, f"{type(exc).__name__}: {exc}") from None
        except SlotError:
            shutil.rmtree(slot, ignore_errors=True)
            raise
        return slot

    def _fill(self, slot: Path, bundle: Path, files: Sequence[str]) -> None:
        wheels = slot / "wheels"
        wheels.mkdir(parents=True)
        for name in files:
            src, dst = bundle / name, wheels / name
            try:
                os.link(src, dst)  # same file system: no copy of a 100 MB bundle
            except OSError:
                shutil.copyfile(src, dst)
        for name in ("manifest.json", "manifest.sig"):
            if (bundle / name).exists():
                shutil.copyfile(bundle / name, slot / name)

    def _smoke(self, version: str, timeout: float) -> None:
        # -I and a neutral cwd: the slot's own code, never a checkout the updater runs from
        out = _run([str(self.python(version)), "-I", "-c", _SMOKE], timeout,
                   cwd=self.path(version)).strip()
        if out.splitlines()[-1:] != [version]:
            raise SlotError("install_failed",
                            f"the installed box reports version {out[-40:]!r}, not {version}")

    # --- switching ----------------------------------------------------------------------

    def switch(self, version: str) -> str | None:
        """Make ``version`` current (``previous`` = the old current); returns the old one."""
        if not self.is_complete(version):
            raise SlotError("install_failed", f"slot {version} is not completely installed")
        old = self.current()
        if old == version:
            return old
        if old is not None:
            self._point("previous", old)
        self._point("current", version)
        return old

    def roll_back(self, to: str) -> None:
        """Make ``to`` current again, and forget the slot that failed as ``previous``."""
        failed = self.current()
        self._point("current", to)
        if failed is not None and failed != to:
            self._point("previous", failed)

    def _point(self, name: str, version: str) -> None:
        tmp = self.root / f".{name}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.path.join("slots", version), tmp)
        os.replace(tmp, self.root / name)
        _sync_dir(self.root)

    def prune(self, keep: int = 3) -> list[str]:
        """Delete old slots, keeping ``current``, ``previous`` and the newest ``keep``."""
        protected = {self.current(), self.previous()}
        names = sorted((p.name for p in self.slots.iterdir()) if self.slots.is_dir() else [],
                       key=version_key)
        removed = [n for n in names[:-keep] if n not in protected] if keep else []
        for name in removed:
            shutil.rmtree(self.slots / name, ignore_errors=True)
        return removed


def version_key(version: str) -> tuple[int, ...]:
    """Orders release versions (``0.2.0rc1`` < ``0.2.0`` < ``0.10.0``); junk sorts first."""
    m = re.fullmatch(r"([\d.]+?)(?:(a|b|rc)(\d+))?", version)
    if m is None or not all(p.isdigit() for p in m.group(1).split(".")):
        return (-1,)
    release = [int(p) for p in m.group(1).split(".")][:4]
    tag = ("a", "b", "rc", None).index(m.group(2))
    return (*release, *[0] * (4 - len(release)), tag, int(m.group(3) or 0))


def _run(argv: list[str], timeout: float, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=cwd)
    except subprocess.TimeoutExpired:
        raise SlotError("install_failed", f"{Path(argv[0]).name} took over {timeout:.0f} s") \
            from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-400:]
        code = "disk_full" if "No space left" in tail else "install_failed"
        raise SlotError(code, f"{' '.join(argv[:3])}… exited {done.returncode}: {tail}")
    return done.stdout


def _write_synced(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    _sync_dir(path.parent)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that a power cut leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    _write_synced(tmp, json.dumps(data, ensure_ascii=False, indent=1))
    os.replace(tmp, path)
    _sync_dir(path.parent)


# --- command line (first boot and the installer) -------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``install BUNDLE --root DIR [--python P]`` | ``switch VERSION --root DIR`` | ``show``."""
    p = argparse.ArgumentParser(prog="slots.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    inst = sub.add_parser("install", help="install a bundle folder as a slot, make it current")
    inst.add_argument("bundle", type=Path)
    inst.add_argument("--python", default=sys.executable)
    sw = sub.add_parser("switch", help="make an installed slot current")
    sw.add_argument("version")
    sub.add_parser("show", help="print the slots and the links")
    for sp in (inst, sw, sub.choices["show"]):
        sp.add_argument("--root", type=Path, default=Path("/opt/paidui"))
    args = p.parse_args(argv)
    slots = Slots(args.root)
    try:
        if args.cmd == "install":
            print(install_bundle(slots, args.bundle, args.python))
        elif args.cmd == "switch":
            slots.switch(args.version)
        print(json.dumps({"current": slots.current(), "previous": slots.previous(),
                          "installed": slots.installed()}))
    except SlotError as exc:
        print(f"slots: {exc}", file=sys.stderr)
        return 1
    return 0


def install_bundle(slots: Slots, bundle: Path, python: str) -> str:
    """Install a bundle folder by its manifest (hashes checked) and make it current.

    The signature was checked by whoever placed the bundle (the installer, on the
    machine that has ``cryptography``); here the files are checked against the manifest.
    """
    manifest = read_json(bundle / "manifest.json")
    try:
        version, installer = manifest["version"], manifest["installer"]
        files = [(f["name"], f["sha256"]) for f in manifest["files"]]
    except (KeyError, TypeError) as exc:
        raise SlotError("bad_manifest", f"{bundle}/manifest.json: missing {exc}") from None
    for name, sha in files:
        try:
            same = file_sha256(bundle / name)[0] == sha
        except OSError as exc:
            raise SlotError("install_failed", f"{name}: {exc}") from None
        if not same:
            raise SlotError("hash_mismatch", f"{name} differs from the manifest")
    slots.install(version, bundle, [n for n, _ in files], installer, python=python)
    slots.switch(version)
    return str(version)


if __name__ == "__main__":
    sys.exit(main())
