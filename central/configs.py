"""Branch configurations at the centre (SPEC G2): versions, sections, validation, pushes.

The centre keeps each branch's **business configuration** — every setting the engine and
the screens have, without the box's own hardware and link sections
(:data:`protocols.uplink.LOCAL_SECTIONS`) — as numbered versions (1, 2, 3 …), every one
kept with who made it, when, and what it changed.

It is edited **by section** (:data:`SECTIONS`) as TOML. A section's new text replaces
those keys in the latest version and the whole is validated by the box's own
:func:`controller.config.parse_config` and :func:`controller.web_settings.web_settings`,
so an error names its key exactly as the box would (``windows.2.queues``).

What the editor never shows whole:

* VIP customers' card and ID numbers are masked (``622588******1237``); a masked number
  saved back means "the number on record" and is restored from the previous version;
* tellers' and lobby managers' password hashes are left out; an entry without one keeps
  the hash on record, and ``password = "…"`` sets a new one (hashed here, scrypt).

A version is sent with ``cmd/config``; the box validates it again, applies it, and answers
on ``reply`` with its configuration hash (``config_version``), which it also announces in
its retained ``status``. That hash tells which centre version each branch runs.
"""

from __future__ import annotations

import copy
import json
import logging
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import ConfigError
from common.passwords import hash_password
from controller.config import parse_config
from controller.web_settings import web_settings
from protocols.uplink import LOCAL_KEYS, LOCAL_SECTIONS, NOT_RUN

from .errors import CentreError
from .masking import is_masked, mask_card, mask_config, mask_id_number
from .toml_text import dumps

if TYPE_CHECKING:
    from .context import CentreContext
    from .settings import OrgSeed
    from .store import Store

__all__ = [
    "SECTIONS",
    "ConfigProblem",
    "config_status",
    "import_config",
    "latest",
    "save_section",
    "section_text",
    "seed_configs",
    "versions",
]

log = logging.getLogger(__name__)

# name -> (top-level keys, title)
SECTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "branch": (("branch",), "网点信息 Branch"),
    "queues": (("queues", "menus", "removed_queues"), "业务与菜单 Businesses and menus"),
    "windows": (("windows",), "窗口与优先级 Windows and priorities"),
    "tellers": (("tellers",), "柜员 Tellers"),
    "ratings": (("rating_levels",), "评价等级 Rating levels"),
    "cards": (("customer_types", "card_types"), "客户类型与卡类型 Customer and card types"),
    "vips": (("vip_customers",), "VIP客户 VIP customers"),
    "hours": (("hours", "calendar", "kiosk"), "营业时间、节假日、签入签出 Hours, holidays"),
    "thresholds": (("thresholds", "strategy"), "阈值与叫号策略 Thresholds and strategy"),
    "screens": (("web",), "取号机界面、综合屏、呼叫器、大堂经理 Kiosk layout, screens"),
}
SECRET_KEEPERS = (("tellers",), ("web", "lobby_managers"))  # lists whose items have hashes
SHOWN_IF_SET = ("removed_queues",)  # left out of the editor's text while empty


class ConfigProblem(CentreError, ValueError):
    """A configuration that cannot be saved; ``key`` names where (``windows.2.queues``)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


# --- validation ---------------------------------------------------------------------------


def business(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without the box's local sections and keys (:data:`LOCAL_KEYS`)."""
    out = {k: copy.deepcopy(v) for k, v in data.items() if k not in LOCAL_SECTIONS}
    for section, keys in LOCAL_KEYS.items():
        if isinstance(out.get(section), dict):
            for key in keys:
                out[section].pop(key, None)
    return out


def validate(data: Mapping[str, Any], branch: str) -> dict[str, Any]:
    """The box's own checks; the normalised business configuration, or ConfigProblem."""
    try:
        cfg = parse_config(dict(data), f"centre:{branch}")
        web_settings(cfg)
    except ConfigError as exc:
        raise ConfigProblem(exc.key, exc.problem) from None
    if cfg.branch.code != branch:
        raise ConfigProblem("branch.code", f"must stay {branch} (this branch's code)")
    return business(cfg.model_dump(mode="json"))


def section_text(body: Mapping[str, Any], section: str) -> str:
    """A section of a stored version as TOML, numbers masked and password hashes left out."""
    keys, title = SECTIONS[section]
    shown = _hide_hashes(mask_config(body))
    part = {k: shown[k] for k in keys if k in shown and not (k in SHOWN_IF_SET and not shown[k])}
    head = f"# {title}\n"
    if section == "queues":
        head += ("# 删除仍有客户等候的业务时,写明这些号的去向,否则网点拒收:\n"
                 "# [removed_queues.A] transfer_to = \"B\"(转入业务B,保留号码)或 close = true\n"
                 "# Removing a business while customers wait for it: say where they go, or\n"
                 "# the box refuses the push: transfer_to = \"B\" (numbers kept) or close = true\n")
    if section in ("tellers", "screens"):
        head += ("# 密码散列不显示:不写则保留原密码;写 password = \"…\" 设置新密码。\n"
                 "# Password hashes are not shown: leave them out to keep them, or add\n"
                 "# password = \"…\" to set a new one.\n")
    if section == "vips":
        head += ("# 卡号、证件号已遮蔽;保留遮蔽值即保留原号码,新号码请完整填写。\n"
                 "# Numbers are masked: a masked number keeps the one on record;\n"
                 "# type a new number in full.\n")
    return head + "\n" + dumps(part)


def merge_section(old: Mapping[str, Any], section: str, text: str) -> dict[str, Any]:
    """The latest version with ``section`` replaced by ``text`` (TOML), secrets restored.
    Raises :class:`ConfigProblem`."""
    keys, _ = SECTIONS[section]
    try:
        new = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigProblem("(syntax)", str(exc)) from None
    stray = [k for k in new if k not in keys]
    if stray:
        raise ConfigProblem(stray[0], f"belongs to another section; this one holds "
                                      f"{', '.join(keys)}")
    merged = {k: v for k, v in copy.deepcopy(dict(old)).items() if k not in keys}
    merged.update(_json_safe(new))
    _restore_numbers(merged, old)
    _restore_hashes(merged, old)
    return merged


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """TOML dates and times as the strings a JSON dump holds."""
    safe: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return safe


def _hide_hashes(data: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for path in SECRET_KEEPERS:
        for item in _items(out, path):
            item.pop("password_hash", None)
    return out


def _items(data: Any, path: tuple[str, ...]) -> list[dict[str, Any]]:
    node = data
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return [i for i in node if isinstance(i, dict)] if isinstance(node, list) else []


def _restore_hashes(new: dict[str, Any], old: Mapping[str, Any]) -> None:
    for path in SECRET_KEEPERS:
        known = {i.get("id"): i.get("password_hash") for i in _items(old, path)}
        for n, item in enumerate(_items(new, path)):
            where = ".".join([*path, str(n)])
            password = item.pop("password", None)
            if password is not None:
                if not isinstance(password, str) or not 4 <= len(password) <= 128:
                    raise ConfigProblem(f"{where}.password", "4 to 128 characters")
                item["password_hash"] = hash_password(password)
            elif "password_hash" not in item:
                if not known.get(item.get("id")):
                    raise ConfigProblem(f"{where}.password",
                                        "a new entry needs password = \"…\"")
                item["password_hash"] = known[item.get("id")]


def _restore_numbers(new: dict[str, Any], old: Mapping[str, Any]) -> None:
    """Masked VIP numbers back to the numbers on record (same customer id)."""
    before = {v.get("id"): v for v in old.get("vip_customers") or [] if isinstance(v, dict)}
    for n, vip in enumerate(new.get("vip_customers") or []):
        if not isinstance(vip, dict):
            continue
        prior = before.get(vip.get("id"), {})
        for field, mask in (("cards", mask_card), ("id_numbers", mask_id_number)):
            numbers = vip.get(field)
            if not isinstance(numbers, list):
                continue
            on_record = {mask(str(x)): str(x) for x in prior.get(field) or []}
            for i, number in enumerate(numbers):
                if isinstance(number, str) and is_masked(number):
                    if number not in on_record:
                        raise ConfigProblem(f"vip_customers.{n}.{field}.{i}",
                                            "a masked number not on record; type it in full")
                    numbers[i] = on_record[number]


# --- the store ----------------------------------------------------------------------------


def latest(store: Store, branch: str) -> dict[str, Any] | None:
    row = store.execute("SELECT version, body, section, comment, author, created_at "
                        "FROM branch_configs WHERE branch = ? ORDER BY version DESC LIMIT 1",
                        (branch,)).fetchone()
    return _version(row) if row else None


def version(store: Store, branch: str, number: int) -> dict[str, Any] | None:
    row = store.execute("SELECT version, body, section, comment, author, created_at "
                        "FROM branch_configs WHERE branch = ? AND version = ?",
                        (branch, number)).fetchone()
    return _version(row) if row else None


def _version(row: Any) -> dict[str, Any]:
    body = row[1]
    return {"version": int(row[0]), "body": json.loads(body) if isinstance(body, str) else body,
            "section": row[2], "comment": row[3], "author": row[4], "created_at": row[5]}


def versions(store: Store, branch: str) -> list[dict[str, Any]]:
    rows = store.execute("SELECT version, section, comment, author, created_at "
                         "FROM branch_configs WHERE branch = ? ORDER BY version DESC",
                         (branch,)).fetchall()
    return [{"version": int(v), "section": s, "comment": c, "author": a, "created_at": t}
            for v, s, c, a, t in rows]


def _add_version(store: Store, branch: str, body: dict[str, Any], section: str,
                 comment: str, author: str, base: int | None) -> int:
    """Store ``body`` as the next version; ``base`` must still be the latest (409 else)."""
    def run() -> int:
        row = store.execute("SELECT max(version) FROM branch_configs WHERE branch = ?",
                            (branch,)).fetchone()
        top = int(row[0]) if row and row[0] is not None else 0
        if base is not None and base != top:
            raise ConfigProblem("(version)", f"version {top} was saved meanwhile; "
                                             f"reload and edit it again")
        store.execute("INSERT INTO branch_configs (branch, version, body, section, comment, "
                      "author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (branch, top + 1, json.dumps(body, ensure_ascii=False), section,
                       comment[:200], author, store.clock.now()))
        return top + 1

    result: int = store.retrying(run)
    return result


def save_section(store: Store, branch: str, section: str, text: str, comment: str,
                 author: str, base: int) -> int:
    """Validate and store a section's new text as the next version; returns its number."""
    if section not in SECTIONS:
        raise ConfigProblem("(section)", f"no section {section!r}")
    current = latest(store, branch)
    if current is None:
        raise ConfigProblem("(version)", "this branch has no configuration yet: import one")
    body = validate(merge_section(current["body"], section, text), branch)
    return _add_version(store, branch, body, section, comment, author, base)


def import_config(store: Store, branch: str, text: str, comment: str, author: str,
                  name: str | None = None) -> int:
    """A whole branch TOML (e.g. the box's own file) as the next version."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigProblem("(syntax)", str(exc)) from None
    data = business(_json_safe(data))
    if isinstance(data.get("branch"), dict):
        data["branch"]["code"] = branch
        if name:
            data["branch"]["name"] = name
    body = validate(data, branch)
    return _add_version(store, branch, body, "import", comment, author, None)


def record_push(store: Store, cmd_id: str, branch: str, number: int, by: str) -> None:
    store.execute("INSERT INTO config_pushes (id, branch, version, sent_at, sent_by) "
                  "VALUES (?, ?, ?, ?, ?)", (cmd_id, branch, number, store.clock.now(), by))


def pushes(store: Store, branch: str, limit: int = 20) -> list[dict[str, Any]]:
    rows = store.execute(
        "SELECT p.id, p.version, p.sent_at, p.sent_by, r.ok, r.body, r.received_at "
        "FROM config_pushes p LEFT JOIN replies r ON r.branch = p.branch AND r.id = p.id "
        "WHERE p.branch = ? ORDER BY p.sent_at DESC LIMIT ?", (branch, limit)).fetchall()
    return [_push(r) for r in rows]


def _push(row: Any) -> dict[str, Any]:
    cmd_id, number, sent_at, by, ok, body, received = row
    reply = json.loads(body) if isinstance(body, str) else body
    code = ((reply or {}).get("error") or {}).get("code")
    state = ("pending" if ok is None else "applied" if ok  # not_run: the box was busy, push again
             else "not_run" if code in NOT_RUN else "refused")
    return {"id": cmd_id, "version": int(number), "sent_at": sent_at, "sent_by": by,
            "state": state, "replied_at": received,
            "config_version": ((reply or {}).get("result") or {}).get("config_version"),
            "error": (reply or {}).get("error")}


def config_status(store: Store, branches: Iterable[str]) -> list[dict[str, Any]]:
    """Which branch runs which version: the latest version, the last push and its
    answer, the box's announced hash and the centre version that hash belongs to."""
    wanted = sorted(set(branches))
    running = {r["branch"]: r for r in store.branches()}
    out = []
    for code in wanted:
        top = store.execute("SELECT max(version) FROM branch_configs WHERE branch = ?",
                            (code,)).fetchone()[0]
        history = pushes(store, code, 200)
        row = running.get(code) or {}
        hash_ = row.get("config_version")
        runs = next((p["version"] for p in history
                     if p["state"] == "applied" and p["config_version"] == hash_), None)
        out.append({
            "branch": code, "latest": int(top) if top is not None else None,
            "last_push": history[0] if history else None, "running_hash": hash_,
            "running_version": runs, "online": row.get("online"),
            "up_to_date": top is not None and runs == int(top),
        })
    return out


async def seed_configs(centre: CentreContext, seeds: Iterable[OrgSeed]) -> None:
    """Import each seeded branch's ``config`` file as its version 1 (if it has none)."""
    for seed in seeds:
        if seed.config:
            await _seed_one(centre, seed.code, seed.name, Path(seed.config))


async def _seed_one(centre: CentreContext, code: str, name: str, path: Path) -> None:
    if await centre.read(lambda s: latest(s, code)) is not None:
        return
    try:
        text = path.read_text(encoding="utf-8")
        await centre.read(lambda s: import_config(s, code, text, f"imported from {path.name}",
                                                  "config", name))
    except (OSError, ConfigProblem) as exc:
        log.error("branch %s: configuration %s not imported: %s", code, path, exc)


def new_push_id(branch: str, number: int) -> str:
    return f"config-{branch}-v{number}-{uuid.uuid4().hex[:8]}"
