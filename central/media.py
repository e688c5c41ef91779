"""Kiosk media files at the centre (SPEC A10, G2): uploaded for an org node, sent to boxes.

A file uploaded for a node is for every branch of its subtree (the province's banner image
for all, a branch's own video for that branch); when two nodes hold a file of the same
name, the one nearer the branch wins. "Push" sends a branch the files its box does not
hold yet with ``cmd/media`` (one command per file, whole and base64, with its SHA-256;
the first also carries the names to delete), and the box writes them into its screens'
media folder (``controller/uplink/media.py``); its reply confirms each.
Which files the kiosk shows, and in what order, is the ``web.kiosk.media`` list of the
branch's configuration.

* ``GET /api/branches/{code}/media`` — the branch's files (own and inherited);
* ``PUT /api/orgs/{code}/media/{name}`` — upload (the body is the file: PNG, JPEG, GIF,
  WebP, MP4, WebM or Ogg video whose bytes match its name and its ``Content-Type`` —
  never SVG, see ``protocols/media.py``), ``DELETE`` — remove;
* ``POST /api/branches/{code}/media/push`` — send what changed (``?full=true``: all); the
  answer lists the command ids, the names deleted and those left alone.

Limits (``[web.media]``, :class:`~central.settings.MediaSettings`): an upload is read with a
running count and refused once past :data:`MAX_MEDIA_BYTES` (never held whole first); what
any branch of the node's subtree would be given after the upload is at most
``branch_files`` files and ``branch_bytes`` bytes (by default what the box keeps: 40 files,
100 MB, so a push never meets ``media_full``), and the centre's store holds at most
``total_bytes`` of media.

What a branch's box holds (table ``media_held``) comes from its answers: each push is
recorded in ``media_sent`` with what it carries, and folded into ``media_held`` when its
answer is there (a refusal changes nothing, as on the box); the box's answer also lists
the files its folder holds (``have``), so a file lost on the box is sent again.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from protocols.media import MAX_MEDIA_BYTES, MEDIA_TYPES, NotMedia, media_type

from . import audit
from .auth import ApiError
from .deps import Configurer, ContextDep, Viewer

if TYPE_CHECKING:
    from .context import CentreContext
    from .settings import MediaSettings
    from .store import Store

__all__ = ["branch_media", "over_quota", "push_plan", "read_capped", "router"]

Code = Annotated[str, PathParam(pattern=r"^\d{4,16}$")]
Name = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,120}$")]
UNANSWERED_S = 3600.0  # a push with no answer this long is forgotten (sent again next time)
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}


def save_media(store: Store, org: str, name: str, data: bytes, by: str,
               limits: MediaSettings) -> dict[str, Any]:
    """Store ``data`` as ``org``'s ``name``, unless a quota would be exceeded (checked in
    the same transaction, under a lock on PostgreSQL, so two uploads cannot both fit)."""
    digest = hashlib.sha256(data).hexdigest()

    def run() -> None:
        if store.postgres:
            store.execute("SELECT pg_advisory_xact_lock(4242054)")
        prefixes = [org[:n] for n in range(1, len(org))]
        marks = ",".join("?" * len(prefixes)) or "NULL"
        rows = store.execute(f"SELECT org, name, size FROM media_files WHERE org IN ({marks})"
                             " OR org LIKE ?", [*prefixes, org + "%"]).fetchall()
        total = store.execute("SELECT coalesce(sum(size), 0) FROM media_files "
                              "WHERE NOT (org = ? AND name = ?)", (org, name)).fetchone()[0]
        problem = over_quota(rows, org, name, len(data), int(total), limits)
        if problem is not None:
            raise problem
        store.execute("DELETE FROM media_files WHERE org = ? AND name = ?", (org, name))
        store.execute("INSERT INTO media_files (org, name, sha256, size, data, uploaded_by, "
                      "uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (org, name, digest, len(data), data, by, store.clock.now()))

    store.retrying(run)
    return {"org": org, "name": name, "sha256": digest, "size": len(data)}


def over_quota(rows: Iterable[tuple[str, str, int]], org: str, name: str, size: int,
               total: int, limits: MediaSettings) -> ApiError | None:
    """Why ``org`` may not hold ``name`` of ``size`` bytes, or None (pure).

    ``rows`` are the (org, name, size) of the files of ``org``'s ancestors and subtree;
    ``total`` the bytes of every other file at the centre. A branch is given the files of
    its ancestors, the nearest winning a name, so the largest sets are those of ``org``
    itself and of the nodes under it that hold files: each is checked.
    """
    if total + size > limits.total_bytes:
        return _quota(f"the centre's media store would hold {total + size} bytes, at most "
                      f"{limits.total_bytes}",
                      f"中心媒体存储将达 {total + size} 字节,上限 {limits.total_bytes} 字节")
    after = {(o, n): s for o, n, s in rows}
    after[(org, name)] = size
    for node in sorted({org} | {o for o, _ in after if o.startswith(org)}):
        given: dict[str, tuple[int, int]] = {}  # name -> (depth, size)
        for (o, n), s in after.items():
            if node.startswith(o) and len(o) >= given.get(n, (-1, 0))[0]:
                given[n] = (len(o), s)
        files, size_all = len(given), sum(s for _, s in given.values())
        if files > limits.branch_files or size_all > limits.branch_bytes:
            return _quota(
                f"the branches of {node} would be given {files} files, {size_all} bytes; at "
                f"most {limits.branch_files} files, {limits.branch_bytes} bytes (what a box "
                "keeps). Delete unused files first.",
                f"{node} 下的网点将有 {files} 个媒体文件、{size_all} 字节,上限 "
                f"{limits.branch_files} 个、{limits.branch_bytes} 字节(排队机可存放的上限),"
                "请先删除不用的文件。")
    return None


def _quota(en: str, zh: str) -> ApiError:
    return ApiError("invalid", detail=en, message=f"媒体文件超出配额:{zh}",
                    message_en=f"media quota exceeded: {en}")


def delete_media(store: Store, org: str, name: str) -> bool:
    cur = store.execute("DELETE FROM media_files WHERE org = ? AND name = ?", (org, name))
    return bool(cur.rowcount)


def branch_media(store: Store, branch: str, with_data: bool = False) -> list[dict[str, Any]]:
    """The branch's files: its own and its ancestors', the nearest node winning a name."""
    prefixes = [branch[:n] for n in range(1, len(branch) + 1)]
    marks = ",".join("?" * len(prefixes))
    cols = "org, name, sha256, size, uploaded_by, uploaded_at" + (", data" if with_data else "")
    rows = store.execute(f"SELECT {cols} FROM media_files WHERE org IN ({marks}) "
                         "ORDER BY length(org), name", prefixes).fetchall()
    found: dict[str, dict[str, Any]] = {}
    for row in rows:  # deeper nodes come later and replace
        rec = dict(zip(("org", "name", "sha256", "size", "uploaded_by", "uploaded_at",
                        "data"), row, strict=False))
        if with_data:
            rec["data"] = bytes(rec["data"])
        found[rec["name"]] = rec
    return [found[n] for n in sorted(found)]


async def read_capped(chunks: AsyncIterator[bytes], cap: int) -> bytes:
    """The whole body, read with a running count: past ``cap`` bytes it is refused at once,
    so an upload never holds more than ``cap`` (plus one chunk) whatever it declared."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > cap:
            raise _too_big(len(body), more=True)
    return bytes(body)


def checked_type(name: str, data: bytes, declared: str | None) -> str:
    """The content type of ``data`` named ``name``; a declared image or video type must be
    the same (``application/octet-stream`` or none: the bytes decide)."""
    try:  # the box checks the same; refusing here saves a push that would fail
        found = media_type(name, data)
    except NotMedia as exc:
        raise ApiError("invalid", detail=exc.problem, message=exc.problem_zh) from None
    said = (declared or "").split(";")[0].strip().lower()
    said = _ALIASES.get(said, said)
    if said.startswith(("image/", "video/")) and said != found:
        raise ApiError("invalid", detail=f"{name}: declared {said}, the bytes are {found}",
                       message=f"{name}:声明的类型 {said} 与文件内容 {found} 不符")
    return found


# --- pushing only what changed ---------------------------------------------------------------


def push_plan(wanted: list[dict[str, Any]], held: dict[str, str]
              ) -> tuple[list[dict[str, Any]], list[str]]:
    """What to send (the wanted files the box does not hold with that SHA-256) and what to
    delete (names it holds from the centre that are no longer wanted); pure."""
    names = {f["name"] for f in wanted}
    changed = [f for f in wanted if held.get(f["name"]) != f["sha256"]]
    return changed, sorted(n for n in held if n not in names)


def held_media(store: Store, branch: str, now: float) -> dict[str, str]:
    """What ``branch``'s box holds from the centre, answers folded in first, with what is
    on its way (sent, unanswered, younger than :data:`UNANSWERED_S`) counted as held."""

    def run() -> dict[str, str]:
        rows = store.execute("SELECT seq, id, files, deleted, sent_at FROM media_sent "
                             "WHERE branch = ? ORDER BY seq", (branch,)).fetchall()
        on_way: dict[str, str | None] = {}
        for seq, cmd_id, files, deleted, sent_at in rows:
            carried, gone = json.loads(files), json.loads(deleted)
            reply = store.reply(branch, cmd_id)
            if reply is None and sent_at > now - UNANSWERED_S:
                on_way.update(carried)
                on_way.update(dict.fromkeys(gone))
                continue
            if reply is not None and reply.get("ok"):
                _fold(store, branch, carried, gone, (reply.get("result") or {}).get("have"),
                      now)
            store.execute("DELETE FROM media_sent WHERE seq = ?", (seq,))
        held = dict(store.execute("SELECT name, sha256 FROM media_held WHERE branch = ?",
                                  (branch,)).fetchall())
        held.update(on_way)
        return {n: s for n, s in held.items() if s is not None}

    result: dict[str, str] = store.retrying(run)
    return result


def _fold(store: Store, branch: str, carried: dict[str, str], gone: list[str],
          have: Any, now: float) -> None:
    for name in gone:
        store.execute("DELETE FROM media_held WHERE branch = ? AND name = ?", (branch, name))
    for name, digest in carried.items():
        store.execute("DELETE FROM media_held WHERE branch = ? AND name = ?", (branch, name))
        store.execute("INSERT INTO media_held (branch, name, sha256, acked_at) "
                      "VALUES (?, ?, ?, ?)", (branch, name, digest, now))
    if isinstance(have, dict):  # what the box's folder holds now: a lost file goes again
        rows = store.execute("SELECT name, sha256 FROM media_held WHERE branch = ?",
                             (branch,)).fetchall()
        for name, digest in rows:
            if have.get(name) != digest:
                store.execute("DELETE FROM media_held WHERE branch = ? AND name = ?",
                              (branch, name))


def record_sent(store: Store, branch: str, cmd_id: str, files: dict[str, str],
                deleted: list[str], now: float) -> None:
    store.execute("INSERT INTO media_sent (branch, id, files, deleted, sent_at) "
                  "VALUES (?, ?, ?, ?, ?)",
                  (branch, cmd_id, json.dumps(files), json.dumps(deleted), now))


router = APIRouter(tags=["back office"])
"""A node's media files: list, upload, delete, push to a branch."""


@router.get("/api/branches/{code}/media")
async def files(code: Code, centre: ContextDep, who: Viewer) -> dict[str, Any]:
    who.check(code)
    return {"branch": code, "max_bytes": MAX_MEDIA_BYTES,
            "max_files": centre.config.web.media.branch_files,
            "max_branch_bytes": centre.config.web.media.branch_bytes,
            "files": await centre.read(lambda s: branch_media(s, code))}


@router.put("/api/orgs/{code}/media/{name}", status_code=201)
async def upload(code: Code, name: Name, request: Request, centre: ContextDep, who: Configurer
                 ) -> dict[str, Any]:
    """Upload a file for ``code``'s subtree: the request body is the file."""
    who.check(code)
    if Path(name).suffix.lower() not in MEDIA_TYPES:
        kinds = ", ".join(sorted(MEDIA_TYPES))
        raise ApiError("invalid", detail=f"{name}: not an image or video ({kinds})",
                       message=f"{name}:只能上传图片或视频 ({kinds})")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_MEDIA_BYTES:
        raise _too_big(int(declared))
    data = await read_capped(request.stream(), MAX_MEDIA_BYTES)
    if not data:
        raise ApiError("invalid", detail="an empty file", message="文件为空")
    checked_type(name, data, request.headers.get("content-type"))
    saved = await centre.read(lambda s: save_media(s, code, name, data, who.id,
                                                          centre.config.web.media))
    await centre.read(lambda s: audit.record(s, who, "media.upload", code, name, {
        "size": saved["size"], "sha256": saved["sha256"]}))
    return saved


@router.delete("/api/orgs/{code}/media/{name}")
async def remove(code: Code, name: Name, centre: ContextDep, who: Configurer) -> dict[str, Any]:
    who.check(code)
    if not await centre.read(lambda s: delete_media(s, code, name)):
        raise ApiError("not_found")
    await centre.read(lambda s: audit.record(s, who, "media.delete", code, name))
    return {"deleted": name}


@router.post("/api/branches/{code}/media/push", status_code=202)
async def push(code: Code, centre: ContextDep, who: Configurer,
               full: bool = Query(False, description="send every file again")
               ) -> dict[str, Any]:
    """Send the branch the files its box does not hold (one ``cmd/media`` each, the
    first with the names to delete); answers the command ids."""
    who.check(code)
    now = await centre.read(lambda s: s.clock.now())  # the centre's one clock
    held = {} if full else await centre.read(lambda s: held_media(s, code, now))
    wanted = await centre.read(lambda s: branch_media(s, code))
    changed, doomed = push_plan(wanted, held)
    items: list[dict[str, Any] | None] = [*changed] or ([None] if doomed else [])
    sent = [await _push_one(centre, code, f, doomed if i == 0 else [], now)
            for i, f in enumerate(items)]
    unchanged = sorted({f["name"] for f in wanted} - {f["name"] for f in changed})
    await centre.read(lambda s: audit.record(s, who, "media.push", code, code, {
        "files": [x["name"] for x in sent if x["name"]], "deleted": doomed}))
    return {"branch": code, "sent": sent, "deleted": doomed, "unchanged": unchanged}


async def _push_one(centre: CentreContext, branch: str, f: dict[str, Any] | None, doomed: list[str],
                    now: float) -> dict[str, Any]:
    """One ``cmd/media``: file ``f`` (its bytes read from the store only now, one at a
    time) and the names to delete; recorded in ``media_sent`` until its answer comes."""
    args: dict[str, Any] = {"files": [] if f is None else [await _file_args(centre, f)]}
    if doomed:
        args["delete"] = doomed
    cmd_id = await _send(centre, branch, args)
    carried = {x["name"]: x["sha256"] for x in args["files"]}
    await centre.read(lambda s: s.retrying(
        lambda: record_sent(s, branch, cmd_id, carried, doomed, now)))
    return {"name": f and f["name"], "id": cmd_id}


async def _file_args(centre: CentreContext, f: dict[str, Any]) -> dict[str, str]:
    row = await centre.read(lambda s: s.execute(
        "SELECT data FROM media_files WHERE org = ? AND name = ?",
        (f["org"], f["name"])).fetchone())
    data = bytes(row[0]) if row else b""
    return {"name": f["name"], "sha256": hashlib.sha256(data).hexdigest(),
            "data": base64.b64encode(data).decode()}


async def _send(centre: CentreContext, branch: str, args: dict[str, Any]) -> str:
    try:
        return await centre.send_command(branch, "media", args)
    except ConnectionError as exc:
        raise ApiError("unavailable", detail=str(exc),
                       message="中心暂时无法连接消息服务器,请稍后再试。") from None


def _too_big(size: int, more: bool = False) -> ApiError:
    at_least = "at least " if more else ""
    return ApiError("invalid", detail=f"{at_least}{size} bytes > {MAX_MEDIA_BYTES}",
                    message=f"文件过大({'至少' if more else ''}{size} 字节),"
                            f"上限 {MAX_MEDIA_BYTES} 字节")
