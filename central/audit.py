"""The audit log (操作日志, SPEC G1–G3): who did what, when, from where, to which org node.

Every change and control action at the centre writes one row: logins, users, the org
tree, configuration versions and pushes, pauses and resumes, raw commands. Details are
JSON with customers' numbers masked (:mod:`central.masking`). Reading is scoped like
everything else: a user sees the rows about their subtree, and their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .masking import mask_event

if TYPE_CHECKING:
    from .auth import Principal
    from .store import Store

__all__ = ["read_audit", "record"]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def record(store: Store, who: Principal | str, action: str, org: str = "", target: str = "",
           detail: Mapping[str, Any] | None = None, address: str = "",
           now: float | None = None) -> None:
    """Append one row (masked). ``who`` is the acting principal or a system name."""
    user = who if isinstance(who, str) else who.id
    address = address or ("" if isinstance(who, str) else who.address)
    body = _dumps(mask_event(dict(detail or {})))
    store.execute("INSERT INTO audit (at, user_id, org, action, target, detail, address) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (store.clock.now() if now is None else now, user, org, action, target[:200],
                   body[:20000], address[:64]))


def read_audit(store: Store, scope: str, user_id: str, *, limit: int = 100,
               before: int | None = None, action: str | None = None,
               org: str | None = None) -> list[dict[str, Any]]:
    """The newest rows a user scoped to ``scope`` may read, newest first."""
    sql = ("SELECT id, at, user_id, org, action, target, detail, address FROM audit "
           "WHERE ((org <> '' AND org LIKE ?) OR user_id = ?)")
    args: list[Any] = [scope + "%", user_id]
    if before is not None:
        sql += " AND id < ?"
        args.append(before)
    if action:
        sql += " AND action LIKE ?"
        args.append(action + "%")
    if org:
        sql += " AND org LIKE ?"
        args.append(org + "%")
    cur = store.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
    out = []
    for row in cur.fetchall():
        rec = dict(zip(("id", "at", "user", "org", "action", "target", "detail", "address"),
                       row, strict=True))
        rec["detail"] = json.loads(rec["detail"]) if rec["detail"] else {}
        out.append(rec)
    return out
