"""Software releases at the centre (SPEC F4): build and sign, store, serve, roll out.

* **Build** (on the release machine, which holds the private key): the box's wheel, its
  locked dependency wheels and pip's wheel go into a bundle folder with a signed
  manifest (:mod:`protocols.release`). ``python -m central.releases build …``.
* **Store**: :class:`ReleaseStore` checks an uploaded bundle against the centre's
  trusted keys and every file's hash, keeps the files under ``files/<version>/`` and the
  metadata in SQLite or PostgreSQL (plain SQL in ``releases.sql``, idempotent).
* **Serve**: :data:`router` is a FastAPI router (:func:`mount_releases` serves a store
  with it); files are served with HTTP Range, so a box whose link drops resumes where it
  stopped.
* **Roll out** to one branch, a list, an organisation subtree (code prefix ``100101``)
  or all: each targeted branch gets a row (``offered`` …) and a ``cmd/update`` payload
  for the uplink to publish; a box that missed it finds the same offer when it checks
  ``GET /api/releases/offer/{branch}``. Boxes report ``downloading``, ``installed``,
  ``healthy``, ``rolled_back`` or ``failed`` + reason; :meth:`ReleaseStore.record_report`
  keeps the furthest status per branch and every report once.

Wiring into the centre's app and consumer (three calls): ``mount_releases(app, store)``;
call ``store.record_report(branch, reply["result"])`` for every ``reply`` whose ``cmd`` is
``update``; call ``store.record_running(branch, birth["version"])`` for every birth.
:func:`publish_offers` sends the commands over MQTT by itself until the centre's uplink
offers a ``send_command``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ensurepip
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import APIRouter, FastAPI, HTTPException, Response
from fastapi.responses import FileResponse

from common.files import file_sha256
from common.shared_db import SharedConnection
from protocols.release import (
    Manifest,
    ReleaseFile,
    ReleaseRefused,
    check_file,
    key_id,
    load_private_key,
    load_public_key,
    make_manifest,
    parse_update_report,
    parse_version,
    public_key_text,
    sign_manifest,
    update_command,
    verify_manifest,
)

from .deps import ReleasesBase, ReleasesDep
from .errors import StoreError
from .store import connect_sqlite, transaction

__all__ = [
    "ReleaseError",
    "ReleaseStore",
    "Target",
    "build_bundle",
    "main",
    "mount_releases",
    "publish_offers",
    "router",
]

log = logging.getLogger(__name__)

SQL = Path(__file__).resolve().parent / "releases.sql"
# The few words the two databases spell differently, filled into releases.sql.
DIALECTS = {
    "sqlite": {"ID": "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT_REF": "INTEGER",
               "JSON": "TEXT"},
    "postgres": {"ID": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                 "BIGINT_REF": "BIGINT", "JSON": "JSONB"},
}
TERMINAL = ("healthy", "rolled_back", "failed")
_RANK = {"offered": 0, "downloading": 1, "installed": 2, "healthy": 3, "rolled_back": 3,
         "failed": 3}
_BRANCH = re.compile(r"^\d{4,16}$")
_UPLINK_SCHEMA = 1  # protocols.uplink.SCHEMA_VERSION once that module is on main


class ReleaseError(ValueError):
    """A release operation that cannot be done (unknown version, no branch targeted…)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Which branches a rollout is for: a list, an org subtree (code prefix), or all."""

    branches: tuple[str, ...] = ()
    org: str | None = None
    all: bool = False

    def describe(self) -> str:
        if self.all:
            return "all"
        if self.org is not None:
            return f"org:{self.org}"
        return "branch:" + ",".join(self.branches)

    def select(self, known: Iterable[str]) -> list[str]:
        """The branch codes targeted, ``known`` being every branch the centre knows."""
        if self.all:
            return sorted(set(known))
        if self.org is not None:
            return sorted({b for b in known if b.startswith(self.org)})
        return sorted(set(self.branches))


# --- the store ---------------------------------------------------------------------------------


class ReleaseStore:
    """Releases, rollouts and per-branch status; files kept under ``files``.

    Thread-safe (one lock around every use of the connection, close included): the HTTP
    router calls it from FastAPI's worker threads, the consumers from ``asyncio.to_thread``;
    :meth:`close` waits for the call in flight, and a call after it raises
    :class:`~central.errors.StoreError` instead of reaching a closed connection.
    ``db`` is a DB-API connection in autocommit mode (sqlite3 with ``isolation_level=None``
    or psycopg with ``autocommit=True``), so the centre's store can lend its own.
    """

    def __init__(self, db: Any, files: Path, *, postgres: bool) -> None:
        self.files, self.postgres = Path(files), postgres
        self._conn = SharedConnection(db, lambda: StoreError("the release store is closed"))
        self.files.mkdir(parents=True, exist_ok=True)
        self.migrate()

    @classmethod
    def open(cls, url: str, files: str | Path) -> ReleaseStore:
        """``sqlite:///path/centre.sqlite3`` or ``postgresql://…``."""
        if url.startswith(("postgresql://", "postgres://")):
            import psycopg

            return cls(psycopg.connect(url, autocommit=True), Path(files), postgres=True)
        if not url.startswith("sqlite:///"):
            raise ReleaseError(f"{url!r}: expected sqlite:///PATH or postgresql://…")
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        db = connect_sqlite(path)  # the centre's other services may be opening it too
        db.execute("PRAGMA foreign_keys=ON")
        return cls(db, Path(files), postgres=False)

    def close(self) -> None:
        """Close once the call in flight (if any) is over. Safe to call twice."""
        self._conn.close()

    def migrate(self) -> None:
        sql = schema_sql("postgres" if self.postgres else "sqlite")
        with self._tx():
            for statement in _statements(sql):
                self._exec(statement)

    # --- plumbing ------------------------------------------------------------------------

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """Under :meth:`_tx` or ``_conn.use()`` (the cursor is read under the lock)."""
        with self._conn.use() as db:
            return db.execute(sql.replace("?", "%s") if self.postgres else sql, args)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._conn.use():
            cur = self._exec(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._conn.use() as db, transaction(db, self.postgres):
            yield

    # --- releases ------------------------------------------------------------------------

    def add(self, bundle: Path, trusted: Sequence[Ed25519PublicKey], *,
            now: float | None = None) -> Manifest:
        """Check and keep a bundle folder; the same bundle twice is fine, a different one
        under a version already stored is refused (:class:`ReleaseError`)."""
        manifest_bytes = (bundle / "manifest.json").read_bytes()
        sig = _read_or_none(bundle / "manifest.sig")
        manifest = verify_manifest(manifest_bytes, sig, trusted)
        for f in manifest.files:
            check_file(f, *file_sha256(bundle / f.name))
        old = self.release(manifest.version)
        if old is not None:
            if old["manifest_sha256"] != hashlib.sha256(manifest_bytes).hexdigest():
                raise ReleaseError(f"version {manifest.version} is stored already, with "
                                   f"different contents; give the new build a new version")
            return manifest
        self._keep_files(bundle, manifest, manifest_bytes, sig or b"")
        self._insert(manifest, sig or b"", time.time() if now is None else now)
        log.info("release %s stored (%d files, %d bytes)", manifest.version,
                 len(manifest.files), manifest.total_size)
        return manifest

    def _keep_files(self, bundle: Path, m: Manifest, manifest_bytes: bytes, sig: bytes) -> None:
        final = self.files / m.version
        tmp = self.files / f".{m.version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "files").mkdir(parents=True)
        for f in m.files:
            shutil.copyfile(bundle / f.name, tmp / "files" / f.name)
        (tmp / "manifest.json").write_bytes(manifest_bytes)
        (tmp / "manifest.sig").write_bytes(sig)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)

    def _insert(self, m: Manifest, sig: bytes, now: float) -> None:
        kid = json.loads(sig)["key_id"]
        with self._tx():
            self._exec("INSERT INTO releases (version, sort_key, created_at, uploaded_at, "
                       "min_config_version, size, key_id, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (m.version, _sort_key(m.version), m.created_at, now,
                        m.min_config_version, m.total_size, kid, m.notes))
            for f in m.files:
                self._exec("INSERT INTO release_files (version, name, sha256, size) "
                           "VALUES (?, ?, ?, ?)", (m.version, f.name, f.sha256, f.size))

    def release(self, version: str) -> dict[str, Any] | None:
        with self._conn.use():
            rows = self._rows("SELECT * FROM releases WHERE version = ?", (version,))
        if not rows:
            return None
        path = self.files / version / "manifest.json"
        rows[0]["manifest_sha256"] = file_sha256(path)[0] if path.exists() else ""
        return rows[0]

    def releases(self) -> list[dict[str, Any]]:
        """Every stored release, newest first."""
        with self._conn.use():
            return self._rows("SELECT version, created_at, uploaded_at, min_config_version, "
                              "size, key_id, notes FROM releases ORDER BY sort_key DESC")

    def file_path(self, version: str, name: str) -> Path | None:
        """Where a release's file is, if ``name`` is one of its files (no path tricks)."""
        with self._conn.use():
            rows = self._rows("SELECT name FROM release_files WHERE version = ? AND name = ?",
                              (version, name))
        return self.files / version / "files" / name if rows else None

    # --- branches ------------------------------------------------------------------------

    def record_running(self, branch: str, version: str | None, now: float | None = None) -> None:
        """What a branch runs (from its birth message, or its reports)."""
        stamp = time.time() if now is None else now
        with self._tx():
            self._upsert_running(branch, version, stamp)

    def _upsert_running(self, branch: str, version: str | None, now: float) -> None:
        self._exec("INSERT INTO release_branches (branch, running_version, seen_at) "
                   "VALUES (?, ?, ?) ON CONFLICT (branch) DO UPDATE SET "
                   "running_version = COALESCE(excluded.running_version, "
                   "release_branches.running_version), seen_at = excluded.seen_at",
                   (branch, version, now))

    def known_branches(self) -> list[str]:
        """Every branch the centre knows: seen by the release store or, once the centre's
        store shares this database, in its ``branches`` table."""
        with self._conn.use():
            codes = {r["branch"] for r in self._rows("SELECT branch FROM release_branches")}
            if self._has_table("branches"):
                codes |= {r["branch"] for r in self._rows("SELECT branch FROM branches")}
        return sorted(codes)

    def _has_table(self, name: str) -> bool:
        sql = ("SELECT 1 FROM information_schema.tables WHERE table_name = ? "
               "AND table_schema = ANY(current_schemas(false))" if self.postgres
               else "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
        return bool(self._rows(sql, (name,)))

    # --- rollouts ------------------------------------------------------------------------

    def roll_out(self, version: str, target: Target, *, base_url: str, rollback: bool = False,
                 by: str = "", now: float | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Offer ``version`` to the targeted branches; return ``(branch, cmd/update payload)``
        for each, for the uplink to publish (:func:`publish_offers` does it directly)."""
        if self.release(version) is None:
            raise ReleaseError(f"no release {version} is stored")
        codes = [*target.branches, *([target.org] if target.org is not None else [])]
        bad = [c for c in codes if not _BRANCH.match(c)]
        if bad:
            raise ReleaseError(f"not an organisation code: {bad[0]!r}")
        branches = target.select(self.known_branches())
        if not branches:
            raise ReleaseError(f"no known branch matches {target.describe()}")
        stamp = time.time() if now is None else now
        with self._tx():
            rollout_id = self._exec(
                "INSERT INTO rollouts (version, target, rollback, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (version, target.describe(), rollback, stamp, by)).fetchone()[0]
            cmd_id = f"update-{version}-{rollout_id}"
            for branch in branches:
                self._exec("INSERT INTO rollout_branches (rollout_id, branch, cmd_id, status, "
                           "updated_at) VALUES (?, ?, ?, 'offered', ?)",
                           (rollout_id, branch, cmd_id, stamp))
                self._upsert_running(branch, None, stamp)
        url = manifest_url(base_url, version)
        payload = update_command(cmd_id, version, url, rollback=rollback)
        log.info("rollout %s of %s to %d branches (%s)", cmd_id, version, len(branches),
                 target.describe())
        return [(b, dict(payload)) for b in branches]

    def offer_for(self, branch: str, base_url: str) -> dict[str, Any] | None:
        """The ``cmd/update`` payload a checking box should act on, or None."""
        with self._conn.use():
            rows = self._rows(
                "SELECT rb.cmd_id, rb.status, r.version, r.rollback FROM rollout_branches rb "
                "JOIN rollouts r ON r.id = rb.rollout_id WHERE rb.branch = ? "
                "ORDER BY rb.rollout_id DESC LIMIT 1", (branch,))
        if not rows or rows[0]["status"] in TERMINAL:
            return None
        row = rows[0]
        return update_command(row["cmd_id"], row["version"], manifest_url(base_url, row["version"]),
                              rollback=bool(row["rollback"]))

    def record_report(self, branch: str, report: Any, now: float | None = None) -> bool:
        """Take a box's update report (the ``result`` of its ``reply``); True if it moved
        the branch's status. Repeats and late arrivals change nothing."""
        try:
            r = parse_update_report(report)
        except ValueError as exc:
            log.warning("update report from %s refused: %s", branch, exc)
            return False
        stamp = time.time() if now is None else now
        with self._tx():
            self._exec(
                "INSERT INTO update_reports (branch, cmd_id, status, version, reason, body, at, "
                "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (branch, str(r.get("id", "")), r["status"], r["version"], r.get("reason"),
                 json.dumps(r, ensure_ascii=False), r["at"], stamp))
            moved = self._advance(branch, r, stamp)
            running = r.get("running")  # a late or repeated report may carry a stale one
            self._upsert_running(branch, running if moved and isinstance(running, str) else None,
                                 stamp)
        return moved

    def _advance(self, branch: str, r: dict[str, Any], now: float) -> bool:
        rows = self._rows("SELECT rollout_id, status FROM rollout_branches "
                          "WHERE cmd_id = ? AND branch = ?", (str(r.get("id", "")), branch))
        if not rows:
            return False
        old = rows[0]["status"]
        if old in TERMINAL or _RANK[r["status"]] <= _RANK[old]:
            return False
        self._exec("UPDATE rollout_branches SET status = ?, reason = ?, detail = ?, "
                   "updated_at = ? WHERE rollout_id = ? AND branch = ?",
                   (r["status"], r.get("reason"), str(r.get("detail", ""))[:500], now,
                    rows[0]["rollout_id"], branch))
        return True

    def statuses(self, version: str | None = None) -> list[dict[str, Any]]:
        """Per branch: its latest rollout (of ``version``, if given), status and reason."""
        where, args = ("WHERE r.version = ?", (version,)) if version else ("", ())
        with self._conn.use():
            rows = self._rows(
                "SELECT rb.branch, r.version, r.id AS rollout, r.target, rb.status, rb.reason, "
                "rb.detail, rb.updated_at, b.running_version FROM rollout_branches rb "
                "JOIN rollouts r ON r.id = rb.rollout_id "
                "LEFT JOIN release_branches b ON b.branch = rb.branch "
                f"{where} ORDER BY rb.branch, r.id", args)
        latest = {row["branch"]: row for row in rows}  # the last rollout per branch wins
        return [latest[b] for b in sorted(latest)]


def schema_sql(dialect: str) -> str:
    """``releases.sql`` for ``sqlite`` or ``postgres``."""
    words = DIALECTS[dialect]
    return re.sub(r"\{([A-Z_]+)\}", lambda m: words[m.group(1)], SQL.read_text())


def manifest_url(base_url: str, version: str) -> str:
    return f"{base_url.rstrip('/')}/api/releases/{version}/manifest.json"


def _statements(sql: str) -> list[str]:
    text = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def _sort_key(version: str) -> str:
    return ".".join(f"{n:06d}" for n in parse_version(version))


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None



# --- HTTP --------------------------------------------------------------------------------------

_VERSION_PATH = r"^[0-9][0-9a-z.]{0,31}$"


router = APIRouter(prefix="/api/releases", tags=["releases"])
"""``/api/releases``: the list, each release's manifest, signature and files (with Range),
per-branch status, and the offer a checking box acts on. Its handlers are sync (the store
blocks: FastAPI runs them in its worker threads) and ask for the store (``ReleasesDep``)
and the base URL (``ReleasesBase``); :func:`mount_releases` puts both on the app."""


def mount_releases(app: FastAPI, store: ReleaseStore, *, base_url: str | None = None,
                   dependencies: Sequence[Any] = ()) -> None:
    """Serve ``store`` from ``app``: boxes fetch from ``base_url`` (None: the URL they
    asked on); ``dependencies`` guard every route (the centre's: who may see what)."""
    app.state.releases, app.state.releases_base_url = store, base_url
    app.include_router(router, dependencies=list(dependencies))


@router.get("")
def list_releases(store: ReleasesDep) -> list[dict[str, Any]]:
    return store.releases()


@router.get("/offer/{branch}", responses={204: {"description": "nothing to install"}})
def offer(branch: str, store: ReleasesDep, base: ReleasesBase) -> Any:
    """What this branch should install (the ``cmd/update`` payload), or 204.
    Read-only: what runs where is learnt from the boxes' authenticated MQTT messages."""
    if not _BRANCH.match(branch):
        raise HTTPException(422, "not an organisation code")
    payload = store.offer_for(branch, base)
    return payload if payload is not None else Response(status_code=204)


@router.get("/{version}/manifest.json")
def manifest(version: str, store: ReleasesDep) -> FileResponse:
    return _file(store.files / _checked(version) / "manifest.json", "application/json")


@router.get("/{version}/manifest.sig")
def signature(version: str, store: ReleasesDep) -> FileResponse:
    return _file(store.files / _checked(version) / "manifest.sig", "application/json")


@router.get("/{version}/files/{name}")
def release_file(version: str, name: str, store: ReleasesDep) -> FileResponse:
    path = store.file_path(_checked(version), name)
    if path is None:
        raise HTTPException(404, f"release {version} has no file {name!r}")
    return _file(path, "application/octet-stream")


@router.get("/{version}/branches")
def branches(version: str, store: ReleasesDep) -> list[dict[str, Any]]:
    return store.statuses(_checked(version))


def _checked(version: str) -> str:
    if not re.match(_VERSION_PATH, version):
        raise HTTPException(404, "no such release")
    return version


def _file(path: Path, media_type: str) -> FileResponse:
    if not path.is_file():
        raise HTTPException(404, "no such release")
    return FileResponse(path, media_type=media_type)  # answers Range requests (206)


# --- building a bundle ---------------------------------------------------------------------


def build_bundle(version: str, wheels: Sequence[Path], key: Ed25519PrivateKey, out: Path, *,
                 pip_wheel: Path | None = None, min_config_version: int = 1, notes: str = "",
                 now: dt.datetime | None = None, lock: Path | None = None) -> Manifest:
    """Write a signed bundle folder ``out`` from the box's wheel and its locked wheels.

    ``pip_wheel`` defaults to the one bundled with this Python's ``ensurepip``. With
    ``lock`` (``name==version`` lines, deploy/requirements.lock) every locked package must
    have its wheel among ``wheels``, or nothing is built.
    """
    pip = pip_wheel or _bundled_pip()
    files = {w.name: w for w in [*wheels, pip]}
    if not any(n.startswith(f"paidui-{version}-") for n in files):
        raise ReleaseError(f"no paidui-{version}-….whl among the wheels")
    if lock is not None:
        missing = missing_from_lock(lock, files)
        if missing:
            raise ReleaseError(f"no wheel for {', '.join(missing)} of the lock: the box would "
                               "install an incomplete release (and roll it back)")
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, src in sorted(files.items()):
        if (out / name).resolve() != src.resolve():
            shutil.copyfile(src, out / name)
        entries.append(ReleaseFile(name, *file_sha256(out / name)))
    manifest = make_manifest(version, entries, installer=pip.name,
                             created_at=now or dt.datetime.now(dt.UTC),
                             min_config_version=min_config_version, notes=notes)
    data = manifest.to_bytes()
    (out / "manifest.json").write_bytes(data)
    (out / "manifest.sig").write_bytes(sign_manifest(data, key))
    return manifest


def missing_from_lock(lock: Path, wheel_names: Iterable[str]) -> list[str]:
    """The ``name==version`` lines of ``lock`` with no wheel among ``wheel_names``."""
    have = {_wheel_key(n) for n in wheel_names if n.endswith(".whl")}
    missing = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        req = line.split("#", 1)[0].split(";", 1)[0].strip()
        if not req:
            continue
        name, sep, ver = req.partition("==")
        if not sep:
            raise ReleaseError(f"{lock}: {line!r} is not pinned (name==version)")
        if (_norm(name), ver.strip()) not in have:
            missing.append(req)
    return missing


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _wheel_key(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]  # PEP 427: name-version-…
    return _norm(name), version


def _bundled_pip() -> Path:
    found = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    if not found:
        raise ReleaseError("no pip wheel bundled with this Python: give --pip-wheel")
    return found[-1]


def write_keys(out: Path) -> tuple[Path, Path]:
    """A new Ed25519 key pair: ``release-key.pem`` (private, mode 0600) and ``.pub``."""
    key = Ed25519PrivateKey.generate()
    out.mkdir(parents=True, exist_ok=True)
    private, public = out / "release-key.pem", out / "release-key.pub"
    if private.exists():
        raise ReleaseError(f"{private} exists; not overwriting a signing key")
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    public.write_text(public_key_text(key.public_key()))
    return private, public


# --- publishing over MQTT ------------------------------------------------------------------


@dataclass
class Broker:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> Broker:
        """``mqtt://user:password@host:port``."""
        u = urlsplit(url)
        if u.scheme != "mqtt" or not u.hostname:
            raise ReleaseError(f"{url!r}: expected mqtt://[user:password@]host[:port]")
        return cls(u.hostname, u.port or 1883, unquote(u.username) if u.username else None,
                   unquote(u.password) if u.password else None)


async def publish_offers(broker: Broker, offers: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Publish each ``cmd/update`` (QoS 1) on ``qms/v1/{branch}/cmd/update``."""
    import aiomqtt

    async with aiomqtt.Client(broker.host, broker.port, username=broker.username,
                              password=broker.password, identifier=None) as client:
        for branch, payload in offers:
            body = json.dumps({"v": _UPLINK_SCHEMA, **payload}, ensure_ascii=False)
            await client.publish(f"qms/v1/{branch}/cmd/update", body.encode(), qos=1)
    return len(offers)


# --- command line ----------------------------------------------------------------------------


def _parser(prog: str = "python -m central.releases") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog,
                                description="Software releases: build, sign, store, roll out.")
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen", help="make the release signing key pair")
    k.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("build", help="make a signed bundle from wheels")
    b.add_argument("--version", required=True)
    b.add_argument("--key", type=Path, required=True, help="private key (PEM)")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--pip-wheel", type=Path)
    b.add_argument("--min-config-version", type=int, default=1)
    b.add_argument("--notes", default="")
    b.add_argument("--lock", type=Path, help="refuse unless every line has its wheel "
                                             "(deploy/requirements.lock)")
    b.add_argument("wheels", type=Path, nargs="+", help="wheel files or folders of wheels")
    v = sub.add_parser("verify", help="check a bundle folder's signature and hashes")
    v.add_argument("bundle", type=Path)
    v.add_argument("--public-key", type=Path, required=True)
    for name, text in (("upload", "store a bundle at the centre"), ("list", "list releases"),
                       ("rollout", "offer a release to branches"),
                       ("status", "per-branch status"), ("serve", "serve releases over HTTP")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("--db", required=True, help="sqlite:///PATH or postgresql://…")
        sp.add_argument("--files", type=Path, required=True, help="where release files live")
    up = sub.choices["upload"]
    up.add_argument("bundle", type=Path)
    up.add_argument("--public-key", type=Path, required=True)
    ro = sub.choices["rollout"]
    ro.add_argument("version")
    who = ro.add_mutually_exclusive_group(required=True)
    who.add_argument("--branch", action="append", default=[], help="a branch (repeatable)")
    who.add_argument("--org", help="an organisation code: every branch under it")
    who.add_argument("--all", action="store_true")
    ro.add_argument("--rollback", action="store_true", help="allow an older version")
    ro.add_argument("--base-url", required=True, help="the centre's URL the boxes reach")
    ro.add_argument("--broker", help="mqtt://user:password@host:port: publish cmd/update now")
    sub.choices["status"].add_argument("version", nargs="?")
    sv = sub.choices["serve"]
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    return p


def main(argv: list[str] | None = None, prog: str = "python -m central.releases") -> int:
    """The releases' command line (also ``python -m central release …``)."""
    args = _parser(prog).parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except (ReleaseRefused, ReleaseError, OSError, ValueError) as exc:
        print(f"releases: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "keygen":
        for path in write_keys(args.out):
            print(path)
        return 0
    if args.cmd == "build":
        key = load_private_key(args.key.read_bytes())
        wheels = [w for p in args.wheels for w in (sorted(p.glob("*.whl")) if p.is_dir() else [p])]
        m = build_bundle(args.version, wheels, key, args.out, pip_wheel=args.pip_wheel,
                         min_config_version=args.min_config_version, notes=args.notes,
                         lock=args.lock)
        print(f"{args.out}: paidui {m.version}, {len(m.files)} files, {m.total_size} bytes, "
              f"signed by key {key_id(key.public_key())}")
        return 0
    if args.cmd == "verify":
        keys = [load_public_key(args.public_key.read_bytes())]
        m = verify_manifest((args.bundle / "manifest.json").read_bytes(),
                            _read_or_none(args.bundle / "manifest.sig"), keys)
        for f in m.files:
            check_file(f, *file_sha256(args.bundle / f.name))
        print(f"{args.bundle}: paidui {m.version}: signature and {len(m.files)} files OK")
        return 0
    store = ReleaseStore.open(args.db, args.files)
    try:
        return _with_store(store, args)
    finally:
        store.close()


def _with_store(store: ReleaseStore, args: argparse.Namespace) -> int:
    if args.cmd == "upload":
        m = store.add(args.bundle, [load_public_key(args.public_key.read_bytes())])
        print(f"stored paidui {m.version} ({len(m.files)} files)")
    elif args.cmd == "list":
        for r in store.releases():
            print(f"{r['version']:<12} {r['created_at']}  {r['size']:>11} bytes  key {r['key_id']}")
    elif args.cmd == "rollout":
        target = Target(tuple(args.branch), args.org, args.all)
        offers = store.roll_out(args.version, target, base_url=args.base_url,
                                rollback=args.rollback, by=os.environ.get("USER", ""))
        if args.broker:
            asyncio.run(publish_offers(Broker.parse(args.broker), offers))
        for branch, payload in offers:
            print(f"{branch}  offered  {payload['id']}")
    elif args.cmd == "status":
        for s in store.statuses(args.version):
            print(f"{s['branch']:<16} {s['version']:<10} {s['status']:<12} "
                  f"{s['reason'] or '':<16} {s['detail']}")
    else:
        _serve(store, args.host, args.port)
    return 0


def _serve(store: ReleaseStore, host: str, port: int) -> None:
    import uvicorn
    app = FastAPI(title="paidui releases")
    mount_releases(app, store)
    uvicorn.run(app, host=host, port=port, log_level="info")


if __name__ == "__main__":
    sys.exit(main())
