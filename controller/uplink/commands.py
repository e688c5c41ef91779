"""Commands from the centre (``qms/v1/{branch}/cmd/{name}``), answered on ``reply``.

Every command carries an ``id``; a command seen before is not run again, its first answer
is sent again (the centre may re-send after a lost reply). The answers of the last
:data:`KEEP` commands are kept in ``{data_dir}/uplink/commands.json``.

* ``pause`` / ``resume`` a business with a reason (SPEC G3; the kiosk then refuses with the
  A7 words) — the same engine commands the branch's own screens use.
* ``replay`` a seq range from the journal (the centre found a gap).
* ``config`` — a new configuration, validated before it is applied; a bad one is refused
  with the reason and the running one stays. A good one is written to
  ``{data_dir}/pushed-config.json`` first, so a restart keeps it (see :func:`load_pushed`).
* ``totals`` — send a day's totals again.
* ``update`` — a hook: another component registers the software-update handler.
* ``alert`` — an alert from the centre for the lobby manager (central/alerts.py): posted
  on the box's notice board (:mod:`controller.notices`), which the screens show.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config, apply_overrides, parse_config
from ..engine import commands as c
from ..errors import ConfigError, JournalError, PaiduiError, Refused
from ..notices import notices

if TYPE_CHECKING:
    from ..box import Box

__all__ = [
    "LOCAL_KEYS",
    "LOCAL_SECTIONS",
    "CommandDesk",
    "CommandRefused",
    "Handler",
    "load_pushed",
    "merge_pushed",
]

log = logging.getLogger(__name__)

KEEP = 500
PUSHED = "pushed-config.json"
# Sections that describe this box's hardware and links: they stay as configured locally,
# whatever the centre pushes (the centre does not know the box's broker password).
LOCAL_SECTIONS = ("hardware", "clock", "http", "journal", "printer", "rs485", "audio", "gpio",
                  "card_reader", "hall_display", "uplink", "update")
# Keys of pushed sections that are this box's own: a path on its disk.
LOCAL_KEYS = {"web": ("media_dir",)}


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


def load_pushed(data_dir: Path, local: Config, overrides: Iterable[str]) -> Config | None:
    """The configuration the centre last pushed, merged with the ``local`` config's hardware
    and link sections and the ``--set`` overrides; None when nothing was pushed.

    Raises :class:`ConfigError` if the kept file no longer validates.
    """
    path = Path(data_dir) / PUSHED
    if not path.exists():
        return None
    try:
        pushed = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError("(file)", f"cannot read {path}: {exc}", str(path)) from None
    merged = merge_pushed(pushed, local.model_dump(mode="json"))
    return parse_config(apply_overrides(merged, overrides), str(path))


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
            "config": self._config, "totals": self._totals_cmd, "update": _no_update,
            "alert": _alert,
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

    async def _config(self, box: Box, msg: dict[str, Any]) -> dict[str, Any]:
        local = box.config.model_dump(mode="json")
        try:
            new = parse_config(merge_pushed(msg["config"], local), "centre")
        except ConfigError as exc:
            raise CommandRefused("bad_config", f"配置无效,未采用:{exc.key}: {exc.problem}",
                                 f"configuration refused, the old one stays: {exc}") from None
        if new.branch.code != box.config.branch.code:
            raise CommandRefused("wrong_branch", "配置属于其他网点,未采用",
                                 f"the configuration is for branch {new.branch.code}")
        old = box.config.version
        _write_atomic(box.data_dir / PUSHED, msg["config"])
        box.engine.configure(new)
        box.config = new
        log.info("configuration %s applied (was %s), kept in %s", new.version, old, PUSHED)
        await self._on_config()
        return {"config_version": new.version, "previous": old}

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
