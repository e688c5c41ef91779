"""Commands from the centre (``qms/v1/{branch}/cmd/{name}``), answered on ``reply``.

Every command carries an ``id``; a command seen before is not run again, its first answer
is sent again (the centre may re-send after a lost reply). The answers of the last
:data:`KEEP` commands are kept in ``{data_dir}/uplink/commands.json``.

* ``pause`` / ``resume`` a business with a reason (SPEC G3; the kiosk then refuses with the
  A7 words) — the same engine commands the branch's own screens use.
* ``replay`` a seq range from the journal (the centre found a gap).
* ``config`` — a new configuration, checked exactly as the box checks one at start
  (:meth:`controller.components.Startup.check`), and refused if it would leave customers
  waiting for a business it removes without saying where they go (``removed_queues``).
  A refused one changes nothing. An accepted one is kept in ``{data_dir}/pushed-config.json``
  (the one before it in ``pushed-config.previous.json``), then applied.
* ``totals`` — send a day's totals again.
* ``update`` — a hook: another component registers the software-update handler.
* ``alert`` — an alert from the centre for the lobby manager (central/alerts.py): posted
  on the box's notice board (:mod:`controller.notices`), which the screens show.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from common.errors import ConfigError
from protocols.uplink import LOCAL_KEYS, LOCAL_SECTIONS

from ..config import Config, apply_overrides, parse_config
from ..engine import commands as c
from ..errors import JournalError, PaiduiError, Refused
from ..forms import fill as fill_form
from ..notices import notices

if TYPE_CHECKING:
    from ..box import Box

__all__ = [
    "CommandDesk",
    "CommandRefused",
    "ConfigCheck",
    "Handler",
    "SectionsOnly",
    "WrongBranch",
    "checked_push",
    "config_command",
    "merge_pushed",
    "read_pushed",
    "set_aside",
]

log = logging.getLogger(__name__)

KEEP = 500
PUSHED = "pushed-config.json"  # the centre's configuration the box runs on
PREVIOUS = "pushed-config.previous.json"  # the one accepted before it: the fallback
KEEP_REJECTED = 5  # pushes set aside at start (pushed-config.rejected-*.json) kept at most
HEALTH = "config"  # the health entry a set-aside push raises (docs/config.md)


class CommandRefused(PaiduiError):
    """A command that cannot be carried out; becomes the reply's ``error``."""

    def __init__(self, code: str, message: str, message_en: str) -> None:
        self.code, self.message, self.message_en = code, message, message_en
        super().__init__(f"{code}: {message_en}")

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "message_en": self.message_en}


Handler = Callable[["Box", dict[str, Any]], Awaitable[dict[str, Any]]]


def merge_pushed(pushed: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    """The centre's business configuration with this box's local sections (and local keys
    inside pushed sections, such as the screens' media folder)."""
    merged = {k: v for k, v in pushed.items() if k not in LOCAL_SECTIONS}
    merged.update({k: local[k] for k in LOCAL_SECTIONS if k in local})
    for section, keys in LOCAL_KEYS.items():
        mine = local.get(section) or {}
        kept = {k: mine[k] for k in keys if k in mine}
        if kept:
            merged[section] = {**(merged.get(section) or {}), **kept}
    return merged


def read_pushed(path: Path) -> dict[str, Any]:
    """A kept push, as the centre sent it. Raises :class:`ConfigError` if unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError("(file)", f"cannot read {path.name}: {exc}", str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError("(root)", "expected a table", str(path))
    return data


def keep_pushed(data_dir: Path, pushed: dict[str, Any]) -> None:
    """Keep an accepted push for the next start, and the one it replaces as the fallback.
    A power cut at any point leaves a whole file under each name."""
    current = data_dir / PUSHED
    if current.exists():
        kept = json.loads(current.read_text(encoding="utf-8"))
        if kept == pushed:  # the same push again (a retry): the fallback stays as it was
            return
        _write_atomic(data_dir / PREVIOUS, kept)
    _write_atomic(current, pushed)


def set_aside(path: Path, now: float) -> Path:
    """Rename a kept push that cannot start (``pushed-config.rejected-<UTC time>.json``), so
    the box starts without it and the file stays for whoever looks into why; only the
    newest :data:`KEEP_REJECTED` are kept."""
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"pushed-config.rejected-{stamp}.json")
    n = 1
    while aside.exists():  # two in the same second (the push and the one before it)
        n += 1
        aside = path.with_name(f"pushed-config.rejected-{stamp}-{n}.json")
    os.replace(path, aside)
    for old in sorted(path.parent.glob("pushed-config.rejected-*.json"))[:-KEEP_REJECTED]:
        old.unlink(missing_ok=True)
    return aside


class WrongBranch(ConfigError):
    """A configuration made for another branch than this box's."""


class ConfigCheck(Protocol):
    """How a push is checked before it is taken (:class:`controller.components.Startup`)."""

    def check(self, pushed: dict[str, Any] | None, source: str) -> tuple[Config, list[Any]]:
        ...


def checked_push(local: Config, overrides: tuple[str, ...], pushed: Any, source: str
                 ) -> Config:
    """``pushed`` merged with the box's own sections of ``local`` and the ``--set``
    ``overrides``, every section parsed. Raises :class:`ConfigError`
    (:class:`WrongBranch` for another branch's)."""
    if not isinstance(pushed, dict):
        raise ConfigError("(root)", "expected a table", source)
    merged = merge_pushed(copy.deepcopy(pushed), local.model_dump(mode="json"))
    config = parse_config(apply_overrides(merged, overrides), source)
    if config.branch.code != local.branch.code:
        raise WrongBranch("branch.code", f"{config.branch.code}, this box is "
                                         f"{local.branch.code}", source)
    return config


@dataclass(frozen=True, slots=True)
class SectionsOnly:
    """The check of a box that no composition root started: the sections, no devices."""

    local: Config

    def check(self, pushed: dict[str, Any] | None, source: str) -> tuple[Config, list[Any]]:
        if pushed is None:
            return self.local, []
        return checked_push(self.local, (), pushed, source), []


def config_command(startup: ConfigCheck | None = None) -> Handler:
    """The ``config`` command's handler. ``startup``: how this box was started (the local
    file, its ``--set`` overrides, its devices: :class:`controller.components.Startup`,
    wired by it); None: a box no composition root started (an in-process test's or the
    simulated fleet's) checks the push's sections against its running configuration, not
    its devices (:class:`SectionsOnly`)."""
    async def config(box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        how = startup or SectionsOnly(box.config)
        try:
            new, _ = how.check(msg["config"], "centre")
        except WrongBranch as exc:
            raise CommandRefused("wrong_branch", "配置属于其他网点,未采用",
                                 f"the configuration is for another branch: {exc.problem}"
                                 ) from None
        except ConfigError as exc:
            raise CommandRefused("bad_config", f"配置无效,未采用:{exc.key}: {exc.problem}",
                                 f"configuration refused, the old one stays: {exc}") from None
        unsaid = {q: n for q, n in box.engine.stranded(new).items()
                  if q not in new.removed_queues}
        if unsaid:
            queue = min(unsaid)
            raise Refused("tickets_waiting", queue=queue, count=unsaid[queue])
        old = box.config.version
        keep_pushed(box.data_dir, msg["config"])  # only what passed: a restart starts on it
        box.engine.configure(new)
        box.config = new
        # No await between configure() and the engine handling this: nothing else runs on
        # the new configuration while a removed business still has tickets waiting.
        events = await box.execute(c.SettleRemovedQueues()) if box.engine.stranded() else []
        box.health.report(HEALTH, "ok", f"centre configuration {new.version} applied")
        log.info("configuration %s applied (was %s), kept in %s", new.version, old, PUSHED)
        return {"config_version": new.version, "previous": old,
                "moved": sum(e["type"] == "ticket_transferred" for e in events),
                "closed": sum(e["type"] == "ticket_closed" for e in events)}

    return config


class CommandDesk:
    """Runs the centre's commands on a box, once each, and remembers the answers."""

    def __init__(self, box: Box, state_dir: Path, *,
                 replay: Callable[[int, int], Awaitable[dict[str, Any]]],
                 totals: Callable[[str], Awaitable[dict[str, Any]]],
                 on_config: Callable[[], Awaitable[None]]) -> None:
        self.box = box
        self.file = state_dir / "commands.json"
        self.answers: OrderedDict[str, dict[str, Any]] = self._load()
        self._replay, self._totals, self._on_config = replay, totals, on_config
        self.handlers: dict[str, Handler] = {
            "pause": self._pause, "resume": self._resume, "replay": self._replay_cmd,
            "config": config_command(), "totals": self._totals_cmd, "update": _no_update,
            "alert": _alert, "form": _form,
        }

    def register(self, name: str, handler: Handler) -> None:
        """Install the handler of a command (e.g. ``update`` by the update component)."""
        self.handlers[name] = handler

    async def run(self, name: str, msg: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                                                 CommandRefused | None]:
        """(result, refusal) of command ``name``; a repeated id gets its first answer."""
        seen = self.answers.get(msg["id"])
        if seen is not None:
            err = seen.get("error")
            return seen.get("result"), CommandRefused(**err) if err else None
        handler = self.handlers.get(name)
        if handler is None:  # a command this box has no component for: say so, not crash
            return None, CommandRefused("unknown_command", "本机不支持该命令",
                                        f"this box does not handle {name!r}")
        try:
            result, refusal = await handler(self.box, msg), None
        except CommandRefused as exc:
            result, refusal = None, exc
        except Refused as exc:
            result, refusal = None, CommandRefused(exc.code, exc.message, exc.message_en)
        except JournalError as exc:  # not remembered: the centre may try again
            return None, CommandRefused("journal_unavailable", "系统暂时无法记录,请稍后再试。",
                                        f"The box cannot record right now: {exc}")
        self._remember(msg["id"], result, refusal)
        if name == "config" and refusal is None:
            await self._on_config()  # the new configuration hash, announced
        return result, refusal

    # --- the commands --------------------------------------------------------------------

    async def _pause(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        await box.execute(c.PauseQueue(msg["queue"], msg["reason"]))
        return {"queue": msg["queue"], "paused": True, "reason": msg["reason"]}

    async def _resume(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        await box.execute(c.ResumeQueue(msg["queue"]))
        return {"queue": msg["queue"], "paused": False}

    async def _replay_cmd(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        epoch = msg.get("epoch")
        if epoch is not None and epoch != box.epoch:
            raise CommandRefused("wrong_epoch", f"本机日志编号为 {box.epoch}",
                                 f"this journal's epoch is {box.epoch}, not {epoch}")
        if msg["through"] < msg["from"]:
            raise CommandRefused("bad_range", "序号范围无效", "the range ends before it starts")
        return await self._replay(msg["from"], msg["through"])

    async def _totals_cmd(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        return await self._totals(msg["day"])

    # --- memory ------------------------------------------------------------------------

    def _load(self) -> OrderedDict[str, dict[str, Any]]:
        try:
            return OrderedDict(json.loads(self.file.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, TypeError, ValueError):
            return OrderedDict()

    def _remember(self, cmd_id: str, result: dict[str, Any] | None,
                  refusal: CommandRefused | None) -> None:
        self.answers[cmd_id] = ({"error": refusal.to_json()} if refusal
                                else {"result": result or {}})
        while len(self.answers) > KEEP:
            self.answers.popitem(last=False)
        try:
            _write_atomic(self.file, self.answers)
        except OSError as exc:
            log.warning("cannot keep command answers in %s: %s", self.file, exc)


async def _alert(box: Box, msg: dict[str, Any]) -> dict[str, Any]:
    """The centre's alert for the lobby manager: shown on the branch's open screens."""
    notice = {"id": msg["id"], "kind": msg["kind"], "level": msg.get("level") or "warning",
              "message": msg["message"], "message_en": msg.get("message_en") or "",
              "alert_id": msg.get("alert_id"), "at": msg.get("at")}
    return {"screens": notices(box).post(notice)}


async def _form(box: Box, msg: dict[str, Any]) -> dict[str, Any]:
    """``cmd/form``: a form filled on the customer's phone for their remote ticket
    (docs/integrations.md, "Pre-filled forms"). A late one is refused like ``cmd/ticket``;
    the answer's values are masked (the centre keeps answers, and so does this desk)."""
    if box.clock.now() > float(msg["expires_at"]):
        raise CommandRefused("request_expired", "请求已过期,请重新操作。",
                             "the request reached the branch too late; try again")
    return await fill_form(box, msg["number"], msg["fields"], "remote", msg.get("form"))


async def _no_update(box: Box, msg: dict[str, Any]) -> dict[str, Any]:
    raise CommandRefused("update_unavailable", "本机暂不支持远程升级",
                         "software update is not available on this box")


def _write_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a power cut leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
