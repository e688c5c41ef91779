"""Media files from the centre (``cmd/media``): the kiosk's images and videos (A10, G2).

The centre sends each file whole, base64, with its SHA-256; the box checks the name (a
plain file name of an image or video; never SVG), the size, the digest and that the bytes
are what the name says (:func:`protocols.media.media_type`: an HTML page named ``.png`` is
refused), and writes it atomically into the screens' media folder (``web.media_dir``,
default ``<data dir>/media``), where the kiosk's media area finds it. ``delete`` names
files to remove. The reply lists what was stored and deleted, and ``have``: every file of
the folder with its SHA-256, from which the centre knows what to send next time (only what
changed, central/media.py). The folder is bounded (:data:`~protocols.media.MAX_MEDIA_FILES`
files, :data:`~protocols.media.MAX_MEDIA_FOLDER_BYTES` bytes after the command). A
bad file, or a push that would overfill the folder, refuses the whole command and changes
nothing; the reply says which file and why.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocols.media import (
    MAX_MEDIA_BYTES,
    MAX_MEDIA_FILES,
    MAX_MEDIA_FOLDER_BYTES,
    MEDIA_TYPES,
    NotMedia,
    media_type,
)

from ..web_settings import FILE, web_settings
from .commands import CommandRefused

if TYPE_CHECKING:
    from ..box import Box

__all__ = ["store_media"]


async def store_media(box: Box, msg: dict[str, Any]) -> dict[str, Any]:
    """The ``media`` command: check every file first, then write them and delete."""
    folder = web_settings(box.config).media_path(box.data_dir)
    files = [_checked(i, f) for i, f in enumerate(msg.get("files") or [])]
    doomed = [_plain(f"delete.{i}", n) for i, n in enumerate(msg.get("delete") or [])]
    await asyncio.to_thread(_room, folder, files, doomed)
    have = await asyncio.to_thread(_apply, folder, files, doomed)
    return {"stored": [n for n, _ in files], "deleted": doomed,
            "bytes": sum(len(raw) for _, raw in files), "have": have}


def _checked(i: int, f: Any) -> tuple[str, bytes]:
    if not isinstance(f, dict):
        raise _refused(f"files.{i}", "expected an object")
    name = _name(f"files.{i}.name", f.get("name"))
    try:
        raw = base64.b64decode(str(f.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        raise _refused(f"files.{i}.data", "not base64") from None
    if len(raw) > MAX_MEDIA_BYTES:
        raise _refused(f"files.{i}", f"{len(raw)} bytes > {MAX_MEDIA_BYTES}")
    if hashlib.sha256(raw).hexdigest() != f.get("sha256"):
        raise _refused(f"files.{i}.sha256", "does not match the data")
    try:
        media_type(name, raw)
    except NotMedia as exc:
        raise _refused(f"files.{i}.data", exc.problem, exc.problem_zh) from None
    return name, raw


def _plain(key: str, name: Any) -> str:
    """A plain file name of the folder (any kind: an old SVG may be deleted)."""
    if not isinstance(name, str) or not re.fullmatch(FILE.strip("^$"), name):
        raise _refused(key, "not a plain file name")
    return name


def _name(key: str, name: Any) -> str:
    name = _plain(key, name)
    if Path(name).suffix.lower() not in MEDIA_TYPES:
        raise _refused(key, f"{name}: not an image or video ({', '.join(sorted(MEDIA_TYPES))})")
    return name


def _refused(key: str, problem: str, problem_zh: str = "") -> CommandRefused:
    return CommandRefused("bad_media", f"媒体文件无效,未采用:{key}: {problem_zh or problem}",
                          f"media refused, nothing changed: {key}: {problem}")


def _room(folder: Path, files: list[tuple[str, bytes]], doomed: list[str]) -> None:
    """Refuse a command that would leave the folder over its bounds."""
    after = {p.name: p.stat().st_size for p in _present(folder)}
    for name in doomed:
        after.pop(name, None)
    after.update((name, len(raw)) for name, raw in files)
    total = sum(after.values())
    if len(after) > MAX_MEDIA_FILES or total > MAX_MEDIA_FOLDER_BYTES:
        raise CommandRefused(
            "media_full",
            f"媒体文件夹已满,未采用:将有 {len(after)} 个文件、{total} 字节,上限 "
            f"{MAX_MEDIA_FILES} 个、{MAX_MEDIA_FOLDER_BYTES} 字节;请先删除不用的文件。",
            f"media folder full, nothing changed: {len(after)} files, {total} bytes after "
            f"this push; at most {MAX_MEDIA_FILES} files, {MAX_MEDIA_FOLDER_BYTES} bytes. "
            "Delete unused files first.")


def _present(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    except FileNotFoundError:
        return []


def _apply(folder: Path, files: list[tuple[str, bytes]], doomed: list[str]
           ) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*.tmp"):  # a write cut short by a crash
        stale.unlink(missing_ok=True)
    for name, raw in files:
        tmp = folder / f".{name}.tmp"
        with tmp.open("wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / name)
    for name in doomed:
        (folder / name).unlink(missing_ok=True)
    return {p.name: _sha256(p) for p in sorted(_present(folder))}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
