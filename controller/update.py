"""Software updates from the centre (SPEC F4), on the box.

The centre offers a release (``cmd/update`` over MQTT, or the answer to the box's own
check at start and every ``check_interval_s``). The :class:`Updater` component then::

    offered ──► downloading ──► installed ──► (switch, restart) ──► healthy
       │             │               │                    │
       └─────────────┴───────────────┴──► failed+reason   └──► rolled_back+reason

* **verify** the manifest's Ed25519 signature and refuse downgrades (before downloading
  the files), then every file's SHA-256 (``protocols.release``);
* **download** resumably: a ``.part`` file grows across dropped links, retries and even
  restarts, each attempt asking ``Range: bytes=<have>-``;
* **install** side by side into a new slot (``controller.slots``): the running slot is
  never touched, so a failed install changes nothing;
* **switch** ``current`` atomically, record what must hold afterwards (the journal's
  epoch and last seq, the devices that were attached), start the *guard* and restart
  the box (both configurable commands: ``systemctl`` on a Pi, fakes in tests);
* the **guard** (:func:`guard`, ``python -m controller.update guard``, run from the
  previous, known-good slot by its own systemd unit) waits for the new box to answer
  ``/api/health`` with the new version, the same journal and the same devices, steady
  for ``stable_s``; otherwise it switches back and restarts the old version. If no guard
  answers in time, the new box checks itself the same way.

Every step is reported to :attr:`Updater.listeners` (the uplink publishes each report
on ``reply``). Reports made around a restart are kept in ``update-state.json`` and handed
over by the next process. The journal and the data dir live outside the slots: an update
costs the restart's few seconds, never a number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common import __version__
from common.clock import Clock, SystemClock
from common.errors import ConfigError
from common.files import file_sha256
from common.tasks import wait_at_most
from protocols.release import (
    Manifest,
    ReleaseFile,
    ReleaseRefused,
    UpdateOffer,
    check_file,
    check_upgrade,
    load_public_key,
    parse_update_command,
    update_report,
    verify_manifest,
)

from .config import Config, load_config, section
from .errors import PaiduiError
from .slots import STATE, SlotError, Slots, read_json, write_json_atomic

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from .box import Box

__all__ = [
    "DownloadError",
    "UpdateSettings",
    "Updater",
    "download",
    "guard",
    "health_problem",
    "update_component",
    "update_settings",
]

log = logging.getLogger(__name__)

Report = dict[str, Any]
Listener = Callable[[Report], None]
KEEP_REPORTS = 50
_CHUNK = 64 * 1024


class UpdateSettings(BaseModel):
    """The ``[update]`` section of a branch config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    public_key_file: Path | None = None  # the centre's release key(s), PEM or base64, one a line
    public_keys: list[str] = []  # or inline
    centre_url: str = ""  # e.g. http://centre:8000: checked at start and every check_interval_s
    check_interval_s: float = Field(6 * 3600, ge=0)  # 0: only at start and when told
    root: Path = Path("/opt/paidui")  # slots/, current, previous, incoming/, update-state.json
    python: str = "/usr/bin/python3"  # makes each slot's venv
    restart_command: list[str] = ["systemctl", "--no-block", "restart", "paidui-box.service"]
    guard_command: list[str] = ["systemctl", "--no-block", "start",
                                "paidui-update-guard.service"]
    api_url: str = ""  # this box's API for the health check; "": http://127.0.0.1:<http.port>
    health_timeout_s: float = Field(180, gt=0)
    stable_s: float = Field(10, ge=0)  # health must hold this long before "healthy"
    health_poll_s: float = Field(1.0, gt=0)
    config_version: int = Field(1, ge=0)  # compared with a release's min_config_version
    retries: int = Field(12, ge=0)  # download attempts in a row without progress
    retry_delay_s: float = Field(2.0, ge=0)
    max_retry_delay_s: float = Field(120.0, ge=0)
    read_timeout_s: float = Field(30.0, gt=0)
    keep_slots: int = Field(3, ge=2)
    compile_bytecode: bool = True

    @field_validator("centre_url", "api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("restart_command")
    @classmethod
    def _command(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a restart command is required")
        return value


def update_settings(config: Config) -> UpdateSettings:
    """Validate ``[update]``; raises :class:`ConfigError` naming the key."""
    s = section(config, "update", UpdateSettings)
    if s.public_key_file is None and not s.public_keys:
        raise ConfigError("update.public_key_file", "the centre's release public key is required")
    if not s.api_url:
        s = s.model_copy(update={"api_url": f"http://127.0.0.1:{config.http.port}"})
    return s


def trusted_keys(s: UpdateSettings) -> list[Ed25519PublicKey]:
    """The public keys releases must be signed with; :class:`ConfigError` if unreadable."""
    texts = list(s.public_keys)
    key = "update.public_keys"
    if s.public_key_file is not None:
        key = "update.public_key_file"
        try:
            texts += _key_blocks(s.public_key_file.read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(key, f"cannot read {s.public_key_file}: {exc}") from None
    try:
        return [load_public_key(t) for t in texts]
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None


def _key_blocks(text: str) -> list[str]:
    """PEM blocks and base64 lines of a key file (several keys allow a key change)."""
    blocks: list[str] = []
    pem: list[str] = []
    for line in text.splitlines():
        if pem or line.startswith("-----BEGIN"):
            pem.append(line)
            if line.startswith("-----END"):
                blocks.append("\n".join(pem) + "\n")
                pem = []
        elif line.strip() and not line.startswith("#"):
            blocks.append(line.strip())
    return blocks


def update_component(config: Config, data_dir: Path) -> Updater | None:
    """The updater, if ``[update]`` is configured (validated now: bad config fails at start)."""
    if not config.update:
        return None
    settings = update_settings(config)
    return Updater(settings, trusted_keys(settings), branch=config.branch.code)


class DownloadError(PaiduiError, OSError):
    """A release file could not be fetched. ``retry``: whether trying again may help."""

    def __init__(self, detail: str, *, retry: bool = True) -> None:
        self.detail, self.retry = detail, retry
        super().__init__(detail)


# --- the component -----------------------------------------------------------------------------


class Updater:
    """Checks for, installs and reports releases. A supervisor component (``update``).

    The uplink wires it with one line each way: its ``cmd/update`` handler awaits
    :meth:`offer`, and it publishes what :attr:`listeners` hear on ``reply``.
    """

    name = "update"

    def __init__(self, settings: UpdateSettings, keys: list[Ed25519PublicKey], *,
                 branch: str, running: str = __version__, clock: Clock | None = None) -> None:
        self.settings, self.keys, self.branch, self.running = settings, keys, branch, running
        self.clock: Clock = clock or SystemClock()
        self.slots = Slots(settings.root)
        self.state_file = settings.root / STATE
        self.listeners: list[Listener] = []
        self.counters: Counter[str] = Counter()
        self.last: Report | None = None
        self.box: Box | None = None
        self._job: UpdateOffer | None = None
        self._restarting: UpdateOffer | None = None  # switched in; this process is ending
        self._queued: UpdateOffer | None = None
        self._wake = asyncio.Event()
        self._cancel = threading.Event()
        self._skipped: set[str] = set()

    # --- what the uplink calls ---------------------------------------------------------

    async def offer(self, payload: Any) -> Report:
        """Take a ``cmd/update`` payload; return the first report (``offered`` or
        ``failed`` with the reason). The work goes on in :meth:`run`."""
        try:
            offer = parse_update_command(payload)
        except ReleaseRefused as exc:
            raw = payload if isinstance(payload, dict) else {}
            return self._refused(str(raw.get("id", "?"))[:64], str(raw.get("version", "?")), exc,
                                 keep=False)
        busy = self._job or self._queued or self._restarting
        if busy is not None and busy.version == offer.version:
            return self.last or self._report(offer, "offered")
        if busy is not None:
            return self._refused(offer.id, offer.version,
                                 ReleaseRefused("busy", f"installing {busy.version}"), keep=False)
        self._queued = offer
        self._wake.set()
        return self._report(offer, "offered")

    async def check(self) -> Report | None:
        """Ask the centre whether a release is offered to this branch; take it if so."""
        if not self.settings.centre_url or self._restarting is not None:
            return None
        url = (f"{self.settings.centre_url}/api/releases/offer/{quote(self.branch)}"
               f"?running={quote(self.running)}")
        status, body = await asyncio.to_thread(_get, url, self.settings.read_timeout_s, 64_000)
        if status == 204:
            return None
        if status != 200:
            raise DownloadError(f"{url}: HTTP {status}")
        payload = json.loads(body)
        version = str(payload.get("version")) if isinstance(payload, dict) else ""
        if version == self.running:
            return None  # the centre has not heard yet that it runs here
        if version in self._state().get("bad", {}):
            if version not in self._skipped:
                self._skipped.add(version)
                log.warning("update: %s is offered again but failed its health check here; "
                            "only an explicit command installs it again", version)
            return None
        return await self.offer(payload)

    # --- the component's life ------------------------------------------------------------

    async def run(self, box: Box) -> None:
        self.box = box
        try:
            await self._settle()
            await self._check_quietly()
            while True:
                interval = self.settings.check_interval_s or None
                if not await wait_at_most(self._wake, interval):
                    await self._check_quietly()
                    continue
                self._wake.clear()
                job, self._queued = self._queued, None
                if job is not None:
                    await self._apply(job)
        finally:
            self._cancel.set()  # a download thread stops at its next chunk

    async def _check_quietly(self) -> None:
        try:
            await self.check()
        except (OSError, ValueError) as exc:  # the centre may be away; try next time
            self.counters["check_failed"] += 1
            log.info("update: cannot ask the centre: %s", exc)

    async def _settle(self) -> None:
        """After a restart: wait for the guard's verdict, check ourselves if none comes,
        then hand over the reports kept across the restart."""
        pending = self._state().get("pending")
        if pending and pending.get("version") == self.running:
            s = self.settings
            waited = await _wait_until(lambda: not self._state().get("pending"),
                                       s.health_timeout_s + s.stable_s + 15, s.health_poll_s)
            if not waited:
                log.warning("update: no guard judged %s; checking myself", self.running)
                await guard(self.settings, clock=self.clock)
        self.deliver_kept_reports()

    def deliver_kept_reports(self) -> int:
        """Hand the reports kept in the state file to the listeners; 0 if none listen."""
        if not self.listeners:
            return 0
        state = self._state()
        kept = state.pop("reports", [])
        if kept:
            write_json_atomic(self.state_file, state)
        for report in kept:
            self._tell(report)
        return len(kept)

    # --- applying one offer ------------------------------------------------------------

    async def _apply(self, offer: UpdateOffer) -> None:
        self._job = offer
        try:
            manifest, bundle = await self._fetch(offer)
            s = self.settings
            await asyncio.to_thread(
                self.slots.install, manifest.version, bundle, [f.name for f in manifest.files],
                manifest.installer, python=s.python, compile_bytecode=s.compile_bytecode)
            shutil.rmtree(s.root / "incoming", ignore_errors=True)
            await self._switch_and_restart(offer)
        except ReleaseRefused as exc:
            self._refused(offer.id, offer.version, exc)
        except SlotError as exc:
            self._report(offer, "failed", reason=_known(exc.code), detail=exc.detail)
        except DownloadError as exc:
            self._report(offer, "failed", reason="download_failed", detail=exc.detail)
        except OSError as exc:
            reason = "disk_full" if exc.errno == 28 else "install_failed"
            self._report(offer, "failed", reason=reason, detail=f"{type(exc).__name__}: {exc}")
        finally:
            self._job = None

    async def _fetch(self, offer: UpdateOffer) -> tuple[Manifest, Path]:
        """The verified manifest and a folder holding every file of the release."""
        if self.slots.is_complete(offer.version):  # e.g. a rollback to the previous slot
            slot = self.slots.path(offer.version)
            manifest = self._verify(offer, (slot / "manifest.json").read_bytes(),
                                    _read_or_none(slot / "manifest.sig"))
            return manifest, slot / "wheels"
        s = self.settings
        manifest_bytes = await self._small(offer.manifest_url, required=True) or b""
        sig = await self._small(urljoin(offer.manifest_url, "manifest.sig"), required=False)
        manifest = self._verify(offer, manifest_bytes, sig)
        incoming = s.root / "incoming" / manifest.version
        incoming.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_drop_other_downloads, incoming)
        free = shutil.disk_usage(incoming).free
        if free < 3 * manifest.total_size + 50_000_000:
            raise ReleaseRefused("disk_full", f"{free // 1_000_000} MB free, the release needs "
                                              f"{3 * manifest.total_size // 1_000_000 + 50} MB")
        (incoming / "manifest.json").write_bytes(manifest_bytes)
        (incoming / "manifest.sig").write_bytes(sig or b"")
        self._report(offer, "downloading", progress=0.0)
        for f in manifest.files:
            url = urljoin(offer.manifest_url, "files/" + quote(f.name))
            await download(url, incoming / f.name, f, s, cancel=self._cancel,
                           counters=self.counters)
        return manifest, incoming

    def _verify(self, offer: UpdateOffer, manifest_bytes: bytes, sig: bytes | None) -> Manifest:
        manifest = verify_manifest(manifest_bytes, sig, self.keys)
        if manifest.version != offer.version:
            raise ReleaseRefused("bad_manifest", f"the command offers {offer.version}, the "
                                                 f"manifest is of {manifest.version}")
        check_upgrade(manifest, self.running, rollback=offer.rollback,
                      config_version=self.settings.config_version)
        return manifest

    async def _small(self, url: str, *, required: bool) -> bytes | None:
        """A manifest or signature, with the download's retries; None if absent (404)."""
        s = self.settings
        for attempt in range(s.retries + 1):
            try:
                status, body = await asyncio.to_thread(_get, url, s.read_timeout_s, 300_000)
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{url}: {exc}"
            else:
                if status == 200:
                    return body
                if status == 404 and not required:
                    return None
                problem = f"{url}: HTTP {status}"
                if status < 500:
                    break
            if attempt < s.retries:
                await asyncio.sleep(_backoff(s, attempt))
        raise DownloadError(problem, retry=False)

    async def _switch_and_restart(self, offer: UpdateOffer) -> None:
        box = self.box
        assert box is not None
        current = self.slots.current()
        if current is None:
            raise SlotError("install_failed", f"this box does not run from a slot under "
                                              f"{self.settings.root}: nothing to return to")
        waiting = self._state().get("pending")
        if current != self.running or waiting:  # another switch awaits its restart or guard
            raise ReleaseRefused("busy", f"{current} is switched in and {self.running} runs; "
                                         f"a restart or its health check is under way")
        await box.settled()
        pending = {
            "id": offer.id, "version": offer.version, "from": current,
            "rollback": offer.rollback, "epoch": box.epoch, "last_seq": box.last_seq,
            "devices_ok": sorted(d["name"] for d in box.health.snapshot() if d["state"] == "ok"),
            "at": self.clock.now(),
        }
        installed = self._report(offer, "installed")
        state = self._state()
        state["pending"] = pending
        state["reports"] = [*state.get("reports", []), installed][-KEEP_REPORTS:]
        write_json_atomic(self.state_file, state)
        self.slots.switch(offer.version)
        log.warning("update: %s installed, restarting into it (from %s)", offer.version, current)
        self._restarting = offer  # no other offer is taken while this process ends
        try:
            if self.settings.guard_command:
                await _command(self.settings.guard_command)
            await _command(self.settings.restart_command)
        except OSError as exc:
            self._restarting = None
            self.slots.roll_back(current)
            state = self._state()
            state.pop("pending", None)
            write_json_atomic(self.state_file, state)
            self._report(offer, "failed", reason="restart_failed", detail=str(exc))

    # --- reports -----------------------------------------------------------------------

    def _report(self, offer: UpdateOffer, status: str, *, reason: str | None = None,
                detail: str = "", progress: float | None = None) -> Report:
        report = update_report(offer.id, offer.version, status, running=self.running,
                               at=self.clock.now(), reason=reason, detail=detail,
                               progress=progress)
        self.last = report
        self._tell(report)
        return report

    def _refused(self, cmd_id: str, version: str, exc: ReleaseRefused, *,
                 keep: bool = True) -> Report:
        """Report a refusal; ``keep``: it ends the current job (else it only answers an
        offer that was not taken, and :attr:`last` stays the job's)."""
        log.warning("update %s refused: %s", version, exc)
        report = update_report(cmd_id, version, "failed", running=self.running,
                               at=self.clock.now(), reason=exc.code,
                               detail=exc.detail or exc.message_en)
        if keep:
            self.last = report
        self._tell(report)
        return report

    def _tell(self, report: Report) -> None:
        log.info("update %s: %s %s", report["version"], report["status"],
                 report.get("reason", ""))
        for listener in self.listeners:
            try:
                listener(report)
            except Exception:  # the uplink's bug must not stop an update
                log.exception("update listener %r failed", listener)

    def _state(self) -> dict[str, Any]:
        return read_json(self.state_file)

    def status(self) -> dict[str, Any]:
        """What the box runs and holds, for the health page and the tests."""
        state = self._state()
        return {"running": self.running, "current": self.slots.current(),
                "previous": self.slots.previous(), "installed": self.slots.installed(),
                "pending": state.get("pending"), "bad": state.get("bad", {}),
                "job": self._job.version if self._job else None, "last": self.last}


def _known(code: str) -> str:
    return code if code in ("install_failed", "disk_full", "hash_mismatch", "bad_manifest") \
        else "install_failed"


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


async def _command(argv: list[str], timeout: float = 60.0) -> None:
    """Run a restart/guard command (``systemctl --no-block …`` returns at once)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise OSError(f"{argv[0]} did not finish in {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise OSError(f"{' '.join(argv)} exited {proc.returncode}: "
                      f"{out.decode(errors='replace')[-300:]}")


async def _wait_until(done: Callable[[], bool], timeout: float, every: float) -> bool:
    """Poll ``done`` (a file another process writes) until true or ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(every)
    return True


def _backoff(s: UpdateSettings, attempt: int) -> float:
    return min(s.retry_delay_s * 2**attempt, s.max_retry_delay_s) * random.uniform(0.5, 1.5)


# --- downloading -------------------------------------------------------------------------------


async def download(url: str, dest: Path, entry: ReleaseFile, s: UpdateSettings, *,
                   cancel: threading.Event | None = None,
                   counters: Counter[str] | None = None) -> None:
    """Fetch ``url`` into ``dest``, resuming a ``.part`` file with HTTP Range after a
    dropped link; then check the size and SHA-256 against ``entry``.

    Gives up (:class:`DownloadError`) after ``s.retries`` attempts in a row that brought
    nothing; an attempt that brought bytes resets the count and the back-off.
    Raises :class:`ReleaseRefused` if the finished file is not the one the manifest names
    (after one fresh try, in case the resumed part was stale).
    """
    counters = counters if counters is not None else Counter()
    cancel = cancel or threading.Event()
    if dest.exists():
        with contextlib.suppress(ReleaseRefused):
            await _check(dest, entry)
            return
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    fresh_tried = False
    while True:
        await _fetch_with_retries(url, part, entry.size, s, cancel, counters)
        try:
            await _check(part, entry)
        except ReleaseRefused:
            part.unlink()
            if fresh_tried:
                raise
            fresh_tried = True
            counters["fresh_restarts"] += 1
            continue
        os.replace(part, dest)
        return


async def _check(path: Path, entry: ReleaseFile) -> None:
    digest, size = await asyncio.to_thread(file_sha256, path)
    check_file(entry, digest, size)


async def _fetch_with_retries(url: str, part: Path, size: int, s: UpdateSettings,
                              cancel: threading.Event, counters: Counter[str]) -> None:
    failures = 0
    while True:
        before = _size(part)
        try:
            await asyncio.to_thread(_fetch_into, url, part, size, s.read_timeout_s, cancel)
            return
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, DownloadError) and not exc.retry:
                raise
            problem = f"{type(exc).__name__}: {exc}"
        counters["retries"] += 1
        failures = 0 if _size(part) > before else failures + 1
        if failures > s.retries:
            raise DownloadError(f"{url}: {problem} ({s.retries} retries)", retry=False)
        delay = _backoff(s, failures)
        log.info("update: download of %s interrupted at %d of %d bytes (%s); again in %.1f s",
                 url, _size(part), size, problem, delay)
        await asyncio.sleep(delay)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _fetch_into(url: str, part: Path, size: int, timeout: float,
                cancel: threading.Event) -> None:
    """One attempt (in a worker thread): append to ``part`` from where it ends."""
    have = _size(part)
    if have > size:
        part.unlink()
        have = 0
    if have == size:
        return
    conn, resp = _open(url, {"Range": f"bytes={have}-"} if have else {}, timeout)
    try:
        mode = _resume_mode(resp, have, size)
        if mode == "wb":
            have = 0
        with part.open(mode) as f:
            while chunk := resp.read(_CHUNK):
                if cancel.is_set():
                    raise DownloadError("cancelled", retry=False)
                have += len(chunk)
                if have > size:
                    raise DownloadError(f"{url} is longer than the manifest says ({size})")
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    finally:
        conn.close()
    if have < size:
        raise DownloadError(f"the link dropped at {have} of {size} bytes")


def _resume_mode(resp: http.client.HTTPResponse, have: int, size: int) -> str:
    """``ab`` to append (206 from ``have``), ``wb`` to start over (200), else raise."""
    if resp.status == 206:
        start = _range_start(resp.getheader("Content-Range", ""))
        if start != have:
            raise DownloadError(f"asked from byte {have}, the server sent from {start}")
        return "ab"
    if resp.status == 200:
        return "wb"  # the server ignored Range: the whole file comes again
    if resp.status == 416:
        raise DownloadError(f"the server has fewer than {have} bytes of a {size}-byte file")
    raise DownloadError(f"HTTP {resp.status} {resp.reason}", retry=resp.status >= 500)


def _range_start(content_range: str) -> int:
    unit, _, rest = content_range.partition(" ")
    first = rest.partition("-")[0]
    if unit != "bytes" or not first.isdigit():
        raise DownloadError(f"bad Content-Range {content_range!r}")
    return int(first)


def _open(url: str, headers: dict[str, str],
          timeout: float) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise DownloadError(f"{url!r} is not an http(s) URL", retry=False)
    cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = cls(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", (u.path or "/") + (f"?{u.query}" if u.query else ""),
                     headers={"User-Agent": f"paidui-box/{__version__}", **headers})
        return conn, conn.getresponse()
    except BaseException:
        conn.close()
        raise


def _get(url: str, timeout: float, limit: int) -> tuple[int, bytes]:
    conn, resp = _open(url, {}, timeout)
    try:
        body = resp.read(limit + 1)
        if len(body) > limit:
            raise DownloadError(f"{url}: more than {limit} bytes", retry=False)
        return resp.status, body
    finally:
        conn.close()



# --- the health check after a restart ------------------------------------------------------


def _drop_other_downloads(incoming: Path) -> None:
    """Bound: ``incoming/`` holds one release, the one being fetched (its ``.part`` files
    resume); a failed download of another version is deleted, not kept for ever."""
    for other in incoming.parent.iterdir():
        if other != incoming:
            shutil.rmtree(other, ignore_errors=True)


def health_problem(health: Any, pending: dict[str, Any]) -> str:
    """What is wrong with the restarted box's ``/api/health`` answer; "" if nothing.

    It must run the new version, on the same journal (same epoch, replayed at least to
    the seq it had), with every device that was ``ok`` before back ``ok`` or ``warning``.
    """
    if not isinstance(health, dict):
        return "/api/health did not answer with a JSON object"
    if health.get("version") != pending["version"]:
        return f"version {health.get('version')!r} answers, not {pending['version']}"
    if health.get("epoch") != pending["epoch"]:
        return (f"journal epoch {health.get('epoch')!r}, expected {pending['epoch']}: "
                f"the journal was not found")
    seq = health.get("last_seq")
    if not isinstance(seq, int) or seq < pending["last_seq"]:
        return f"the journal was rebuilt to seq {seq}, not {pending['last_seq']}"
    states = {d.get("name"): d for d in health.get("devices", []) if isinstance(d, dict)}
    missing = []
    for name in pending.get("devices_ok", []):
        d = states.get(name)
        if d is None or d.get("state") not in ("ok", "warning"):
            missing.append(f"{name} ({d.get('state')}: {d.get('detail', '')})" if d else name)
    return f"devices not attached: {', '.join(missing)}" if missing else ""


async def guard(s: UpdateSettings, *, clock: Clock | None = None) -> str:
    """Judge the restarted box; roll back if it does not become healthy in time.

    Returns ``nothing`` (no update pending), ``healthy`` or ``rolled_back``.
    """
    clock = clock or SystemClock()
    state_file = s.root / STATE
    pending = read_json(state_file).get("pending")
    if not pending:
        return "nothing"
    verdict, problem = await _watch(s, pending)
    state = read_json(state_file)
    state.pop("pending", None)
    version = pending["version"]
    if verdict:
        report = update_report(pending["id"], version, "healthy", running=version, at=clock.now())
        state.get("bad", {}).pop(version, None)
    else:
        Slots(s.root).roll_back(pending["from"])
        state.setdefault("bad", {})[version] = problem
        report = update_report(pending["id"], version, "rolled_back", running=pending["from"],
                               at=clock.now(), reason="health_failed", detail=problem)
    state["reports"] = [*state.get("reports", []), report][-KEEP_REPORTS:]
    write_json_atomic(state_file, state)
    if verdict:
        Slots(s.root).prune(s.keep_slots)
        log.info("update guard: %s is healthy", version)
        return "healthy"
    log.error("update guard: %s failed (%s); rolled back to %s", version, problem,
              pending["from"])
    try:
        await _command(s.restart_command)
    except OSError as exc:
        log.error("update guard: restart after the rollback failed: %s", exc)
    return "rolled_back"


async def _watch(s: UpdateSettings, pending: dict[str, Any]) -> tuple[bool, str]:
    """(True, "") once health holds for ``stable_s``; (False, last problem) at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + s.health_timeout_s
    good_since: float | None = None
    problem = "no answer yet"
    while True:
        try:
            status, body = await asyncio.to_thread(_get, s.api_url + "/api/health", 3.0, 1 << 20)
            problem = health_problem(json.loads(body), pending) if status == 200 \
                else f"/api/health: HTTP {status}"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            problem = f"/api/health does not answer: {type(exc).__name__}: {exc}"
        now = loop.time()
        if problem:
            good_since = None
        else:
            good_since = now if good_since is None else good_since
            if now - good_since >= s.stable_s:
                return True, ""
        if now >= deadline:
            return False, problem or "health did not hold steady"
        await asyncio.sleep(s.health_poll_s)


# --- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``guard | status | rollback --config FILE [--set k=v …]``."""
    p = argparse.ArgumentParser(prog="python -m controller.update",
                                description="The box's software updates (SPEC F4).")
    p.add_argument("cmd", choices=("guard", "status", "rollback"),
                   help="guard: judge a restarted box (its systemd unit runs this); "
                        "status: print the slots; rollback: return to the previous slot")
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[], dest="overrides")
    args = p.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config, args.overrides)
        s = update_settings(config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "guard":
        print(asyncio.run(guard(s)))
    elif args.cmd == "status":
        slots = Slots(s.root)
        print(json.dumps({"current": slots.current(), "previous": slots.previous(),
                          "installed": slots.installed(), **read_json(s.root / STATE)},
                         ensure_ascii=False, indent=1))
    else:
        return _manual_rollback(s)
    return 0


def _manual_rollback(s: UpdateSettings) -> int:
    slots = Slots(s.root)
    previous = slots.previous()
    if previous is None or not slots.is_complete(previous):
        print("no previous slot to return to", file=sys.stderr)
        return 1
    slots.roll_back(previous)
    print(f"current -> {previous}; restarting")
    done = subprocess.run(s.restart_command, check=False, timeout=60)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
