"""The organisation tree (机构树, SPEC G1): head office → city branch → sub-branch, by code.

Codes are prefixes of each other: ``1001`` (head office) → ``100101`` (a city branch) →
``1001010001`` (a sub-branch, where a box stands). "A node and its subtree" is every code
that starts with the node's code; that is the whole scope rule (:func:`in_scope`).

Boxes attach by code: a box reporting as ``1001010001`` is the node with that code. A box
whose code is not in the tree yet appears under its longest known prefix, marked
``registered: false``, until an administrator adds it.

The tree lives in the store's ``orgs`` table; functions here take a
:class:`~central.store.Store` and run on its owner's thread.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import CentreError

if TYPE_CHECKING:
    from .settings import OrgSeed
    from .store import Store
    from .store.reader import Reader

__all__ = [
    "KINDS",
    "Org",
    "OrgError",
    "add_org",
    "delete_org",
    "in_scope",
    "list_orgs",
    "parent_code",
    "seed_orgs",
    "subtree",
    "tree_branches",
    "update_org",
]

KINDS = ("head", "city", "branch")
KIND_NAMES = {"head": "省分行", "city": "分行", "branch": "网点"}


class OrgError(CentreError, ValueError):
    """An organisation tree change that cannot be made; ``code`` says why."""

    def __init__(self, code: str, message: str, message_en: str) -> None:
        self.code, self.message, self.message_en = code, message, message_en
        super().__init__(message_en)


@dataclass(frozen=True, slots=True)
class Org:
    code: str
    parent: str | None
    name: str
    name_en: str
    kind: str
    registered: bool = True  # False: a box reported this code, the tree does not hold it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def in_scope(scope: str, code: str) -> bool:
    """True when ``code`` is the node ``scope`` or inside its subtree."""
    return code.startswith(scope)


def parent_code(code: str, known: Collection[str]) -> str | None:
    """The longest code in ``known`` that is a proper prefix of ``code``."""
    for length in range(len(code) - 1, 0, -1):
        if code[:length] in known:
            return code[:length]
    return None


def subtree(orgs: Iterable[Org], scope: str) -> list[Org]:
    return [o for o in orgs if in_scope(scope, o.code)]


# --- the store ------------------------------------------------------------------------------


def list_orgs(store: Store, branches: Iterable[str] = ()) -> list[Org]:
    """Every node, in code order, plus the reporting ``branches`` the tree does not hold."""
    rows = store.execute("SELECT code, parent, name, name_en, kind FROM orgs ORDER BY code"
                         ).fetchall()
    orgs = [Org(*r) for r in rows]
    known = {o.code for o in orgs}
    extra = [Org(b, parent_code(b, known), f"未登记网点 {b}", f"Unregistered {b}", "branch",
                 registered=False) for b in branches if b not in known]
    return sorted(orgs + extra, key=lambda o: o.code)


def tree_branches(store: Reader) -> dict[str, float]:
    """The tree's branches (网点, kind ``branch``), each with when it was added."""
    rows = store.execute("SELECT code, added_at FROM orgs WHERE kind = 'branch'").fetchall()
    return {code: float(added) for code, added in rows}


def add_org(store: Store, code: str, name: str, kind: str, name_en: str = "",
            now: float | None = None) -> Org:
    """Add a node; its parent is the longest existing code that prefixes it."""
    _check_kind(kind)
    if not code.isdigit() or not 4 <= len(code) <= 16:
        raise OrgError("bad_code", "机构代码应为4至16位数字", "a code is 4 to 16 digits")
    name = name.strip()
    if not name:
        raise OrgError("bad_name", "请填写机构名称", "a node needs a name")

    def run() -> Org:
        codes = {r[0] for r in store.execute("SELECT code FROM orgs").fetchall()}
        if code in codes:
            raise OrgError("exists", f"机构代码 {code} 已存在", f"{code} already exists")
        parent = parent_code(code, codes)
        if parent is not None:
            row = store.execute("SELECT kind FROM orgs WHERE code = ?", (parent,)).fetchone()
            if row and row[0] == "branch":
                raise OrgError("under_branch", "网点下不能再设机构",
                               "a branch (网点) cannot have nodes below it")
        stamp = time.time() if now is None else now
        store.execute("INSERT INTO orgs (code, parent, name, name_en, kind, updated_at, "
                      "added_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (code, parent, name, name_en, kind, stamp, stamp))
        # Nodes added earlier that belong below the new one move under it.
        store.execute("UPDATE orgs SET parent = ? WHERE code LIKE ? AND code <> ? AND "
                      "(parent IS NULL OR length(parent) < ?)",
                      (code, code + "%", code, len(code)))
        return Org(code, parent, name, name_en, kind)

    result: Org = store.retrying(run)
    return result


def update_org(store: Store, code: str, name: str, name_en: str = "",
               kind: str | None = None) -> Org:
    name = name.strip()
    if not name:
        raise OrgError("bad_name", "请填写机构名称", "a node needs a name")
    if kind is not None:
        _check_kind(kind)

    def run() -> Org:
        row = store.execute("SELECT parent, kind FROM orgs WHERE code = ?", (code,)).fetchone()
        if row is None:
            raise OrgError("not_found", f"没有机构 {code}", f"no node {code}")
        new_kind = kind or row[1]
        if new_kind == "branch" and _has_children(store, code):
            raise OrgError("has_children", "有下级机构的节点不能设为网点",
                           "a node with children cannot be a branch")
        store.execute("UPDATE orgs SET name = ?, name_en = ?, kind = ?, updated_at = ? "
                      "WHERE code = ?", (name, name_en, new_kind, time.time(), code))
        return Org(code, row[0], name, name_en, new_kind)

    result: Org = store.retrying(run)
    return result


def delete_org(store: Store, code: str) -> None:
    def run() -> None:
        if store.execute("SELECT 1 FROM orgs WHERE code = ?", (code,)).fetchone() is None:
            raise OrgError("not_found", f"没有机构 {code}", f"no node {code}")
        if _has_children(store, code):
            raise OrgError("has_children", "请先删除下级机构", "delete the nodes below it first")
        store.execute("DELETE FROM orgs WHERE code = ?", (code,))

    store.retrying(run)


def seed_orgs(store: Store, seeds: Iterable[OrgSeed]) -> int:
    """Add the configured nodes that the tree does not hold yet; returns how many."""
    added = 0
    have = {r[0] for r in store.execute("SELECT code FROM orgs").fetchall()}
    for seed in sorted(seeds, key=lambda s: len(s.code)):
        if seed.code not in have:
            add_org(store, seed.code, seed.name, seed.kind, seed.name_en)
            added += 1
    return added


def _has_children(store: Store, code: str) -> bool:
    return store.execute("SELECT 1 FROM orgs WHERE parent = ? LIMIT 1", (code,)
                         ).fetchone() is not None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise OrgError("bad_kind", "机构类型应为 head、city 或 branch",
                       f"kind must be one of {list(KINDS)}")
