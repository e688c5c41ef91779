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

import bisect
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import CentreError

if TYPE_CHECKING:
    from .settings import OrgSeed
    from .store import Store
    from .store.reader import Reader

__all__ = [
    "KINDS",
    "NAMES_MAX",
    "PAGE_MAX",
    "SEARCH_MAX",
    "Org",
    "OrgError",
    "OrgNode",
    "OrgPage",
    "add_org",
    "children",
    "code_list",
    "delete_org",
    "in_scope",
    "list_orgs",
    "org_names",
    "orgs_page",
    "page_size",
    "parent_code",
    "search_orgs",
    "search_text",
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


# --- what a listing asks (parsed here, once, for every route) --------------------------------

PAGE_MAX = 1000  # nodes in one answer of a listing
SEARCH_MAX = 50  # matches one search answers
NAMES_MAX = 500  # codes one name look-up takes
SEARCH_CHARS = 40
_SEARCH_MARKS = frozenset(" -·.()()")  # besides letters and digits: no LIKE wildcards


def _bad(what: str, message: str, message_en: str) -> OrgError:
    return OrgError("bad_query", message, f"{what}: {message_en}")


def org_code(text: str | None, what: str) -> str | None:
    """A node's code from a query (None when absent or empty); 4 to 16 digits."""
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and 4 <= len(text) <= 16):
        raise _bad(what, "机构代码应为4至16位数字", "a code is 4 to 16 digits")
    return text


def page_size(text: str | None, default: int, most: int) -> int:
    """How many nodes one answer holds: ``default`` when absent, else 1 to ``most``."""
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= most):
        raise _bad("limit", f"每页条数应为1至{most}", f"a page is 1 to {most} nodes")
    return int(text)


def search_text(text: str | None) -> str:
    """What a picker searches for, lower-cased: a code's first digits or part of a name;
    up to 40 letters, digits, spaces and ``-·.()``; empty: the first nodes in code order."""
    q = " ".join((text or "").split())
    if len(q) > SEARCH_CHARS:
        raise _bad("q", f"搜索内容最多{SEARCH_CHARS}个字", f"at most {SEARCH_CHARS} characters")
    if any(not (ch.isalnum() or ch in _SEARCH_MARKS) for ch in q):
        raise _bad("q", "搜索内容只能是机构名称或代码", "letters, digits, spaces and -·.() only")
    return q.lower()


def code_list(text: str | None) -> list[str]:
    """Comma-separated codes, each once, in the order given; 1 to :data:`NAMES_MAX`."""
    codes = list(dict.fromkeys(c for c in (text or "").split(",") if c))
    if not codes or len(codes) > NAMES_MAX:
        raise _bad("codes", f"应为1至{NAMES_MAX}个机构代码", f"1 to {NAMES_MAX} codes")
    for code in codes:
        org_code(code, "codes")
    return codes


# --- pages of the tree -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrgNode:
    """A node of a tree listing: whether it has nodes below it and how many branches
    (网点, itself for a branch) its subtree holds, unregistered ones included."""

    org: Org
    has_children: bool
    branches: int

    def to_json(self) -> dict[str, Any]:
        return {**self.org.to_json(), "has_children": self.has_children,
                "branches": self.branches}


@dataclass(frozen=True, slots=True)
class OrgPage:
    """One page of a listing in code order; ``more``: ask again with ``after`` = ``next``."""

    nodes: Sequence[Org | OrgNode]
    more: bool

    def to_json(self) -> dict[str, Any]:
        last = self.nodes[-1] if self.nodes else None
        code = last.org.code if isinstance(last, OrgNode) else last.code if last else None
        return {"orgs": [n.to_json() for n in self.nodes], "more": self.more,
                "next": code if self.more else None}


_COLUMNS = "SELECT code, parent, name, name_en, kind FROM orgs"


def orgs_page(store: Reader, scope: str, after: str | None, limit: int) -> OrgPage:
    """The nodes of ``scope``'s subtree after the code ``after``, ``limit`` of them."""
    rows = store.execute(f"{_COLUMNS} WHERE code LIKE ? AND code > ? ORDER BY code LIMIT ?",
                         (scope + "%", after or "", limit + 1)).fetchall()
    strays = [c for c in _unregistered(store, scope) if c > (after or "")][:limit + 1]
    return _page([Org(*r) for r in rows] + _strays(store, strays), limit)


def children(store: Reader, scope: str, parent: str | None, after: str | None, limit: int
             ) -> OrgPage:
    """The nodes just below ``parent`` (None: the roots of ``scope``'s subtree, the nodes
    whose parent is outside it), with their counts; ``parent`` must be in ``scope``."""
    within = parent or scope
    strays = _unregistered(store, within)
    if parent is None:
        rows = store.execute(f"{_COLUMNS} WHERE code LIKE ? AND code > ? AND (parent IS NULL "
                             "OR parent NOT LIKE ?) ORDER BY code LIMIT ?",
                             (scope + "%", after or "", scope + "%", limit + 1)).fetchall()
        here = [o for o in _strays(store, strays)
                if o.parent is None or not in_scope(scope, o.parent)]
    else:
        rows = store.execute(f"{_COLUMNS} WHERE parent = ? AND code > ? ORDER BY code LIMIT ?",
                             (parent, after or "", limit + 1)).fetchall()
        here = [o for o in _strays(store, strays) if o.parent == parent]
    page = _page([Org(*r) for r in rows] + [o for o in here if o.code > (after or "")], limit)
    return OrgPage(_counted(store, [n for n in page.nodes if isinstance(n, Org)], within,
                            strays), page.more)


def search_orgs(store: Reader, scope: str, q: str, kind: str | None, limit: int) -> OrgPage:
    """Nodes of ``scope``'s subtree whose code starts with ``q`` or whose name holds it
    (``q`` from :func:`search_text`), in code order, ``limit`` of them."""
    sql, args = f"{_COLUMNS} WHERE code LIKE ?", [scope + "%"]
    if q:
        sql += " AND (code LIKE ? OR lower(name) LIKE ? OR lower(name_en) LIKE ?)"
        args += [q + "%", f"%{q}%", f"%{q}%"]
    if kind:
        sql += " AND kind = ?"
        args.append(kind)
    rows = store.execute(sql + " ORDER BY code LIMIT ?", (*args, limit + 1)).fetchall()
    strays: list[str] = []
    if kind in (None, "branch"):
        strays = [c for c in _unregistered(store, scope) if _holds(_stray_org(c, None), q)]
        strays = strays[:limit + 1]
    return _page([Org(*r) for r in rows] + _strays(store, strays), limit)


def org_names(store: Reader, scope: str, codes: Iterable[str]) -> list[Org]:
    """The nodes of ``codes`` that are in ``scope``'s subtree (the others left out), an
    unregistered reporting branch named as such."""
    wanted = [c for c in codes if in_scope(scope, c)]
    found: list[Org] = []
    for chunk in _chunks(wanted):
        found += [Org(*r) for r in store.execute(
            f"{_COLUMNS} WHERE code IN ({_marks(chunk)})", chunk).fetchall()]
    rest = sorted(set(wanted) - {o.code for o in found})
    heard: list[str] = []
    for chunk in _chunks(rest):
        heard += [r[0] for r in store.execute(
            f"SELECT branch FROM branches WHERE branch IN ({_marks(chunk)})", chunk)]
    return sorted(found + _strays(store, sorted(heard)), key=lambda o: o.code)


def _holds(org: Org, q: str) -> bool:
    return (org.code.startswith(q) or q in org.name.lower() or q in org.name_en.lower())


def _page(nodes: list[Org], limit: int) -> OrgPage:
    ordered = sorted(nodes, key=lambda o: o.code)
    return OrgPage(ordered[:limit], len(ordered) > limit)


def _unregistered(store: Reader, within: str) -> list[str]:
    """Reporting branches of ``within``'s subtree that the tree does not hold, in order."""
    return [r[0] for r in store.execute(
        "SELECT b.branch FROM branches b WHERE b.branch LIKE ? AND NOT EXISTS "
        "(SELECT 1 FROM orgs o WHERE o.code = b.branch) ORDER BY b.branch", (within + "%",))]


def _stray_org(code: str, parent: str | None) -> Org:
    return Org(code, parent, f"未登记网点 {code}", f"Unregistered {code}", "branch",
               registered=False)


def _strays(store: Reader, codes: list[str]) -> list[Org]:
    """Unregistered ``codes`` as nodes, each under its longest prefix in the tree."""
    prefixes = sorted({c[:n] for c in codes for n in range(1, len(c))})
    known: set[str] = set()
    for chunk in _chunks(prefixes):
        known |= {r[0] for r in store.execute(
            f"SELECT code FROM orgs WHERE code IN ({_marks(chunk)})", chunk)}
    return [_stray_org(c, parent_code(c, known)) for c in codes]


def _counted(store: Reader, orgs: list[Org], within: str, strays: list[str]) -> list[OrgNode]:
    """``orgs`` (all in ``within``'s subtree) with their counts; ``strays`` the sorted
    unregistered branches of that subtree. Two grouped reads, whatever the page's size."""
    codes = [o.code for o in orgs if o.registered]
    parents: set[str] = set()
    for chunk in _chunks(codes):
        parents |= {r[0] for r in store.execute(
            f"SELECT DISTINCT parent FROM orgs WHERE parent IN ({_marks(chunk)})", chunk)}
    below: dict[str, int] = {}
    for length in sorted({len(c) for c in codes}):  # codes of one level share a length
        below |= {r[0]: int(r[1]) for r in store.execute(
            f"SELECT substr(code, 1, {length:d}), count(*) FROM orgs WHERE kind = 'branch' "
            "AND code LIKE ? GROUP BY 1", (within + "%",))}
    out = []
    for o in orgs:
        lost = bisect.bisect_left(strays, o.code + ":") - bisect.bisect_left(strays, o.code)
        if not o.registered:
            out.append(OrgNode(o, False, 1))
        else:
            out.append(OrgNode(o, o.code in parents or lost > 0, below.get(o.code, 0) + lost))
    return out


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[list[str]]:
    return (list(items[i:i + size]) for i in range(0, len(items), size))


def _marks(items: Sequence[str]) -> str:
    return ", ".join("?" * len(items))


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
        stamp = store.clock.now() if now is None else now
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
                      "WHERE code = ?", (name, name_en, new_kind, store.clock.now(), code))
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
