"""Software releases (SPEC F4): the bundle's manifest, its Ed25519 signature, and the
``cmd/update`` payload and update reports shared by the box and the centre.

A release bundle is a folder (served by the centre under one URL)::

    manifest.json   what is in the release (below), canonical JSON, UTF-8
    manifest.sig    {"alg": "ed25519", "key_id": "<16 hex>", "sig": "<base64>"}
    <files>         the box's wheel, every locked dependency wheel, and pip's wheel

    manifest.json = {
      "format": 1, "package": "paidui", "version": "0.2.0",
      "created_at": "2026-11-25T02:00:00Z", "min_config_version": 1,
      "installer": "pip-24.0-py3-none-any.whl",
      "files": [{"name": "paidui-0.2.0-py3-none-any.whl", "sha256": "<64 hex>", "size": 123},
                ...],
      "notes": "..."
    }

The signature covers the exact bytes of ``manifest.json``; the manifest holds the SHA-256
of every file, so one signature covers the whole bundle. A box trusts only the public keys
it was installed with and refuses, each with a stable reason code and words for the centre
(Chinese first, see :data:`REASONS`): an unsigned bundle, a signature by an unknown key, a
manifest that does not match its signature, a file whose hash differs, and any version not
newer than the one running unless the centre asks for a rollback.

Pure code: no I/O. ``cryptography`` does the Ed25519 arithmetic.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "FORMAT",
    "PACKAGE",
    "REASONS",
    "STATUSES",
    "Manifest",
    "ReleaseFile",
    "ReleaseRefused",
    "UpdateOffer",
    "check_file",
    "check_upgrade",
    "key_id",
    "load_private_key",
    "load_public_key",
    "make_manifest",
    "parse_update_command",
    "parse_update_report",
    "parse_version",
    "public_key_text",
    "sign_manifest",
    "update_command",
    "update_report",
    "verify_manifest",
]

FORMAT = 1
PACKAGE = "paidui"
MAX_MANIFEST = 256 * 1024
MAX_FILES = 400
# What a box reports about one offered release, in the order they normally happen.
STATUSES = ("offered", "downloading", "installed", "healthy", "rolled_back", "failed")

_VERSION = re.compile(r"^(\d{1,6}(?:\.\d{1,6}){0,3})(?:(a|b|rc)(\d{1,6}))?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,199}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
_PRE = {"a": 0, "b": 1, "rc": 2}

# Reason code -> (Chinese, English) with {placeholders}. Stable: the centre stores the code.
REASONS: dict[str, tuple[str, str]] = {
    "unsigned": ("升级包没有签名,拒绝安装。", "The release is not signed."),
    "bad_signature": ("升级包签名格式无效。", "The release's signature is malformed: {detail}"),
    "unknown_key": ("升级包的签名密钥不受本机信任。",
                    "The release is signed by a key this box does not trust ({detail})."),
    "tampered": ("升级包内容与签名不符,可能被篡改。",
                 "The manifest does not match its signature: it was altered."),
    "bad_manifest": ("升级包清单无效。", "The release manifest is invalid: {detail}"),
    "wrong_package": ("升级包不属于本系统。", "The release is for another package: {detail}"),
    "downgrade": ("升级包版本低于正在运行的版本,且中心未要求回退。",
                  "Version {version} is older than the running {running}, and no rollback "
                  "was asked for."),
    "same_version": ("该版本已在运行。", "Version {version} is already running."),
    "config_too_old": ("本机配置版本过旧,请先下发新配置。",
                       "The release needs config version {detail} or newer; this box has "
                       "{running}."),
    "hash_mismatch": ("升级文件校验失败,可能被篡改或损坏。",
                      "A file's SHA-256 differs from the manifest: {detail}"),
    "size_mismatch": ("升级文件大小不符。", "A file's size differs from the manifest: {detail}"),
    "bad_command": ("升级指令无效。", "The update command is invalid: {detail}"),
    "busy": ("正在进行另一项升级。", "Another update is in progress: {detail}"),
    "known_bad": ("该版本在本机健康检查失败过。",
                  "Version {version} failed its health check on this box before."),
    "download_failed": ("升级包下载失败。", "The release could not be downloaded: {detail}"),
    "install_failed": ("升级包安装失败,原版本继续运行。",
                       "The release could not be installed; the running version stays: "
                       "{detail}"),
    "restart_failed": ("重启失败,已恢复原版本。", "The restart failed: {detail}"),
    "health_failed": ("新版本健康检查未通过,已自动回退。",
                      "The new version failed its health check and was rolled back: {detail}"),
    "disk_full": ("存储空间不足,无法升级。", "Not enough disk space for the release: {detail}"),
}


class ReleaseRefused(ValueError):
    """A release (or an update command) the box will not install.

    Attributes:
        code: stable reason, a key of :data:`REASONS`.
        detail: what exactly was wrong (English, for logs and the centre).
        message / message_en: words for the centre's screens, Chinese first.
    """

    def __init__(self, code: str, detail: str = "", **params: str) -> None:
        zh, en = REASONS[code]
        self.code, self.detail = code, detail
        self.message = zh
        self.message_en = en.format(detail=detail, **{"version": "?", "running": "?", **params})
        super().__init__(f"{code}: {self.message_en}")

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "message_en": self.message_en}


# --- versions --------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, ...]:
    """A sortable key of a release version: ``1.2``, ``1.2.3``, ``1.3.0rc1``, ``2.0.0b2``.

    Raises ValueError for anything else (local versions, dev or post releases are not
    release versions of a box).
    """
    m = _VERSION.match(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"{text!r} is not a release version like 1.2.3 or 1.3.0rc1")
    numbers = [int(x) for x in m.group(1).split(".")]
    numbers += [0] * (4 - len(numbers))
    pre = (_PRE[m.group(2)], int(m.group(3))) if m.group(2) else (3, 0)
    return (*numbers, *pre)


# --- the manifest ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReleaseFile:
    name: str
    sha256: str  # lower-case hex
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a release holds. :meth:`to_bytes` is what gets signed."""

    version: str
    files: tuple[ReleaseFile, ...]
    installer: str  # the pip wheel (one of files) that installs the others
    min_config_version: int = 1
    created_at: str = ""  # ISO 8601, UTC
    package: str = PACKAGE
    notes: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "package": self.package, "version": self.version,
            "created_at": self.created_at, "min_config_version": self.min_config_version,
            "installer": self.installer,
            "files": [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in self.files],
            "notes": self.notes,
        }

    def to_bytes(self) -> bytes:
        return _canonical(self.to_json())

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def box_wheel(self) -> ReleaseFile:
        """The box's own wheel (``paidui-<version>-…whl``)."""
        prefix = f"{self.package}-{self.version}-"
        return next(f for f in self.files if f.name.startswith(prefix))

    def file(self, name: str) -> ReleaseFile:
        return next(f for f in self.files if f.name == name)

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse and check a manifest; :class:`ReleaseRefused` (``bad_manifest``) if wrong."""
        if len(data) > MAX_MANIFEST:
            raise ReleaseRefused("bad_manifest", f"{len(data)} bytes is too large")
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ReleaseRefused("bad_manifest", f"not JSON: {str(exc)[:120]}") from None
        try:
            return _manifest(raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise ReleaseRefused("bad_manifest", _why(exc)) from None


def _why(exc: Exception) -> str:
    return f"missing {exc}" if isinstance(exc, KeyError) else str(exc)[:200]


def _manifest(raw: Any) -> Manifest:
    if not isinstance(raw, dict):
        raise TypeError("the manifest is not a JSON object")
    if raw.get("format") != FORMAT:
        raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
    files = raw["files"]
    if not isinstance(files, list) or not 0 < len(files) <= MAX_FILES:
        raise ValueError("files: expected a list of 1..400 files")
    manifest = Manifest(
        version=_str(raw, "version"), files=tuple(_file(f) for f in files),
        installer=_str(raw, "installer"), min_config_version=_int(raw, "min_config_version"),
        created_at=_str(raw, "created_at"), package=_str(raw, "package"),
        notes=str(raw.get("notes", ""))[:2000],
    )
    _check_manifest(manifest)
    return manifest


def _check_manifest(m: Manifest) -> None:
    parse_version(m.version)
    names = [f.name for f in m.files]
    if len(set(names)) != len(names):
        raise ValueError("files: a name appears twice")
    if m.installer not in names or not re.match(r"^pip-[^-]+-", m.installer):
        raise ValueError(f"installer {m.installer!r} is not a pip wheel among the files")
    if not any(n.startswith(f"{m.package}-{m.version}-") and n.endswith(".whl") for n in names):
        raise ValueError(f"no {m.package}-{m.version} wheel among the files")
    if m.created_at:
        dt.datetime.fromisoformat(m.created_at.replace("Z", "+00:00"))


def _str(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str):
        raise TypeError(f"{key}: expected a string")
    return value


def _int(raw: dict[str, Any], key: str) -> int:
    value = raw[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
        raise TypeError(f"{key}: expected a whole number")
    return value


def _file(raw: Any) -> ReleaseFile:
    if not isinstance(raw, dict):
        raise TypeError("files: expected objects")
    name, sha, size = _str(raw, "name"), _str(raw, "sha256"), raw["size"]
    if not _NAME.match(name) or ".." in name:
        raise ValueError(f"files: {name[:60]!r} is not a plain file name")
    if not _HEX64.match(sha):
        raise ValueError(f"files: {name}: sha256 is not 64 lower-case hex digits")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 2**40:
        raise ValueError(f"files: {name}: bad size")
    return ReleaseFile(name, sha, size)


def make_manifest(version: str, files: Iterable[ReleaseFile], *, installer: str,
                  created_at: dt.datetime, min_config_version: int = 1,
                  notes: str = "") -> Manifest:
    """A checked manifest for ``files`` (their hashes computed by the caller)."""
    stamp = created_at.astimezone(dt.UTC).replace(microsecond=0).isoformat()
    manifest = Manifest(version, tuple(sorted(files, key=lambda f: f.name)), installer,
                        min_config_version, stamp.replace("+00:00", "Z"), PACKAGE, notes)
    try:
        _check_manifest(manifest)
    except ValueError as exc:
        raise ReleaseRefused("bad_manifest", str(exc)) from None
    return manifest


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


# --- keys and signatures -------------------------------------------------------------------


def key_id(key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(text: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM or from 32 raw bytes in base64; ValueError if neither."""
    data = text.encode() if isinstance(text, str) else text
    if b"-----BEGIN" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return key
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except binascii.Error:
        raise ValueError("expected a PEM or base64 Ed25519 public key") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_text(key: Ed25519PublicKey) -> str:
    """The PEM text of a public key (what a box is installed with)."""
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_private_key(data: bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the PEM key is not an Ed25519 private key")
    return key


def sign_manifest(manifest_bytes: bytes, key: Ed25519PrivateKey) -> bytes:
    """The ``manifest.sig`` file for ``manifest_bytes``."""
    sig = key.sign(manifest_bytes)
    return _canonical({"alg": "ed25519", "key_id": key_id(key.public_key()),
                       "sig": base64.b64encode(sig).decode()})


def verify_manifest(manifest_bytes: bytes, sig_bytes: bytes | None,
                    trusted: Sequence[Ed25519PublicKey]) -> Manifest:
    """The manifest, if ``sig_bytes`` is a valid signature of it by one of ``trusted``.

    Raises :class:`ReleaseRefused`: ``unsigned``, ``bad_signature``, ``unknown_key``,
    ``tampered`` or ``bad_manifest``.
    """
    if not sig_bytes or not sig_bytes.strip():
        raise ReleaseRefused("unsigned")
    kid, sig = _parse_signature(sig_bytes)
    keys = {key_id(k): k for k in trusted}
    if kid not in keys:
        raise ReleaseRefused("unknown_key", f"key {kid}; trusted: {', '.join(keys) or 'none'}")
    try:
        keys[kid].verify(sig, manifest_bytes)
    except InvalidSignature:
        raise ReleaseRefused("tampered") from None
    return Manifest.from_bytes(manifest_bytes)


def _parse_signature(sig_bytes: bytes) -> tuple[str, bytes]:
    try:
        raw = json.loads(sig_bytes.decode("utf-8"))
        if not isinstance(raw, dict) or raw.get("alg") != "ed25519":
            raise ValueError(f"alg {raw.get('alg') if isinstance(raw, dict) else raw!r}")
        kid, sig = raw["key_id"], base64.b64decode(raw["sig"], validate=True)
        if not isinstance(kid, str) or len(sig) != 64:
            raise ValueError("expected a key_id and a 64-byte signature")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ReleaseRefused("bad_signature", _why(exc)) from None
    return kid, sig


# --- what a box accepts ------------------------------------------------------------------------


def check_upgrade(manifest: Manifest, running: str, *, rollback: bool = False,
                  config_version: int = 1) -> None:
    """Refuse (:class:`ReleaseRefused`) a verified release this box must not install.

    A release must be newer than ``running``, unless ``rollback`` (the centre asked for
    an older version explicitly); it must not need a newer config than the box has.
    """
    if manifest.package != PACKAGE:
        raise ReleaseRefused("wrong_package", manifest.package)
    new, old = parse_version(manifest.version), parse_version(running)
    if new == old:
        raise ReleaseRefused("same_version", version=manifest.version)
    if new < old and not rollback:
        raise ReleaseRefused("downgrade", version=manifest.version, running=running)
    if manifest.min_config_version > config_version:
        raise ReleaseRefused("config_too_old", str(manifest.min_config_version),
                             running=str(config_version))


def check_file(entry: ReleaseFile, sha256_hex: str, size: int) -> None:
    """Refuse a downloaded file whose size or SHA-256 differs from the manifest."""
    if size != entry.size:
        raise ReleaseRefused("size_mismatch", f"{entry.name}: {size} bytes, expected {entry.size}")
    if sha256_hex != entry.sha256:
        raise ReleaseRefused("hash_mismatch", f"{entry.name}: {sha256_hex[:16]}…, expected "
                                              f"{entry.sha256[:16]}…")


# --- the update command and the box's reports ----------------------------------------------


@dataclass(frozen=True, slots=True)
class UpdateOffer:
    """``cmd/update``: install ``version`` from ``manifest_url`` (rollback: allow older)."""

    id: str
    version: str
    manifest_url: str
    rollback: bool = False


def update_command(cmd_id: str, version: str, manifest_url: str, *,
                   rollback: bool = False) -> dict[str, Any]:
    """The payload of ``qms/v1/{branch}/cmd/update`` (the uplink adds its schema ``v``)."""
    msg: dict[str, Any] = {"id": cmd_id, "version": version, "manifest_url": manifest_url}
    if rollback:
        msg["rollback"] = True
    return msg


def parse_update_command(msg: Any) -> UpdateOffer:
    """Check a ``cmd/update`` payload; :class:`ReleaseRefused` (``bad_command``) if wrong."""
    if not isinstance(msg, dict):
        raise ReleaseRefused("bad_command", "expected a JSON object")
    cmd_id, version, url = msg.get("id"), msg.get("version"), msg.get("manifest_url")
    if not isinstance(cmd_id, str) or not _ID.match(cmd_id):
        raise ReleaseRefused("bad_command", "id: missing or not well formed")
    if not isinstance(version, str):
        raise ReleaseRefused("bad_command", "version: missing")
    try:
        parse_version(version)
    except ValueError as exc:
        raise ReleaseRefused("bad_command", f"version: {exc}") from None
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+/\S*$", url) or len(url) > 500:
        raise ReleaseRefused("bad_command", "manifest_url: expected an http(s) URL")
    rollback = msg.get("rollback", False)
    if not isinstance(rollback, bool):
        raise ReleaseRefused("bad_command", "rollback: expected true or false")
    return UpdateOffer(cmd_id, version, url, rollback)


def update_report(cmd_id: str, version: str, status: str, *, running: str, at: float,
                  reason: str | None = None, detail: str = "",
                  progress: float | None = None) -> dict[str, Any]:
    """What a box says about an offered release; the uplink sends it as the ``result`` of a
    ``reply`` to ``cmd/update`` (``cmd_id``), the centre stores it per branch."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    if reason is not None and reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    report: dict[str, Any] = {"id": cmd_id, "version": version, "status": status,
                              "running": running, "at": at}
    if reason is not None:
        zh, _ = REASONS[reason]
        report.update(reason=reason, message=zh, detail=detail[:500])
    if progress is not None:
        report["progress"] = round(progress, 3)
    return report


def parse_update_report(result: Any) -> dict[str, Any]:
    """Check a report received from a box (ValueError if it is not one)."""
    if not isinstance(result, dict):
        raise ValueError("expected a JSON object")
    status, version = result.get("status"), result.get("version")
    if status not in STATUSES:
        raise ValueError(f"status: {status!r} is not one of {STATUSES}")
    if not isinstance(version, str):
        raise ValueError("version: missing")
    parse_version(version)
    reason = result.get("reason")
    if reason is not None and reason not in REASONS:
        raise ValueError(f"reason: unknown {reason!r}")
    at = result.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise ValueError("at: expected epoch seconds")
    return result
