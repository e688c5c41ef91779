"""Kiosk media files at the centre (SPEC A10, G2): uploaded for an org node, sent to boxes.

A file uploaded for a node is for every branch of its subtree (the province's banner image
for all, a branch's own video for that branch); when two nodes hold a file of the same
name, the one nearer the branch wins. "Push" sends a branch its files with ``cmd/media``
(one command per file, whole and base64, with its SHA-256), and the box writes them into
its screens' media folder (``controller/uplink/media.py``); its reply confirms each.
Which files the kiosk shows, and in what order, is the ``web.kiosk.media`` list of the
branch's configuration.

* ``GET /api/branches/{code}/media`` — the branch's files (own and inherited);
* ``PUT /api/orgs/{code}/media/{name}`` — upload (the body is the file: PNG, JPEG, GIF,
  WebP, MP4, WebM or Ogg video whose bytes match its name — never SVG, see
  ``protocols/media.py``), ``DELETE`` — remove;
* ``POST /api/branches/{code}/media/push`` — send them; the answer lists the command ids.
"""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam

from controller.uplink.media import MAX_MEDIA_BYTES, MEDIA_TYPES
from protocols.media import NotMedia, media_type

from . import audit
from .auth import ApiError, Principal, need

if TYPE_CHECKING:
    from .service import Centre
    from .store import Store

__all__ = ["branch_media", "media_router"]

Code = Annotated[str, PathParam(pattern=r"^\d{4,16}$")]
Name = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,120}$")]


def save_media(store: Store, org: str, name: str, data: bytes, by: str) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()

    def run() -> None:
        store.execute("DELETE FROM media_files WHERE org = ? AND name = ?", (org, name))
        store.execute("INSERT INTO media_files (org, name, sha256, size, data, uploaded_by, "
                      "uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (org, name, digest, len(data), data, by, time.time()))

    store.retrying(run)
    return {"org": org, "name": name, "sha256": digest, "size": len(data)}


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


def media_router(centre: Centre) -> APIRouter:
    router = APIRouter(tags=["back office"])
    viewer, configurer = Depends(need("view")), Depends(need("configure"))

    @router.get("/api/branches/{code}/media")
    async def files(code: Code, who: Principal = viewer) -> dict[str, Any]:
        who.check(code)
        return {"branch": code, "max_bytes": MAX_MEDIA_BYTES,
                "files": await centre.read(lambda s: branch_media(s, code))}

    @router.put("/api/orgs/{code}/media/{name}", status_code=201)
    async def upload(code: Code, name: Name, request: Request, who: Principal = configurer
                     ) -> dict[str, Any]:
        """Upload a file for ``code``'s subtree: the request body is the file."""
        who.check(code)
        if Path(name).suffix.lower() not in MEDIA_TYPES:
            raise ApiError("invalid", detail=f"{name}: not an image or video",
                           message=f"{name}:只能上传图片或视频 "
                                   f"({', '.join(sorted(MEDIA_TYPES))})")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_MEDIA_BYTES:
            raise _too_big(int(declared))
        data = await request.body()
        if len(data) > MAX_MEDIA_BYTES:
            raise _too_big(len(data))
        if not data:
            raise ApiError("invalid", detail="an empty file", message="文件为空")
        try:  # the box checks the same; refusing here saves a push that would fail
            media_type(name, data)
        except NotMedia as exc:
            raise ApiError("invalid", detail=exc.problem, message=exc.problem_zh) from None
        saved = await centre.read(lambda s: save_media(s, code, name, data, who.id))
        await centre.read(lambda s: audit.record(s, who, "media.upload", code, name, {
            "size": saved["size"], "sha256": saved["sha256"]}))
        return saved

    @router.delete("/api/orgs/{code}/media/{name}")
    async def remove(code: Code, name: Name, who: Principal = configurer) -> dict[str, Any]:
        who.check(code)
        if not await centre.read(lambda s: delete_media(s, code, name)):
            raise ApiError("not_found")
        await centre.read(lambda s: audit.record(s, who, "media.delete", code, name))
        return {"deleted": name}

    @router.post("/api/branches/{code}/media/push", status_code=202)
    async def push(code: Code, who: Principal = configurer) -> dict[str, Any]:
        """Send the branch its files, one ``cmd/media`` each; answers the command ids."""
        who.check(code)
        found = await centre.read(lambda s: branch_media(s, code, with_data=True))
        sent = []
        for f in found:
            args = {"files": [{"name": f["name"], "sha256": f["sha256"],
                               "data": base64.b64encode(f["data"]).decode()}]}
            try:
                cmd_id = await centre.send_command(code, "media", args)
            except ConnectionError as exc:
                raise ApiError("unavailable", detail=str(exc),
                               message="中心暂时无法连接消息服务器,请稍后再试。") from None
            sent.append({"name": f["name"], "id": cmd_id})
        await centre.read(lambda s: audit.record(s, who, "media.push", code, code, {
            "files": [f["name"] for f in sent]}))
        return {"branch": code, "sent": sent}

    return router


def _too_big(size: int) -> ApiError:
    return ApiError("invalid", detail=f"{size} bytes > {MAX_MEDIA_BYTES}",
                    message=f"文件过大({size} 字节),上限 {MAX_MEDIA_BYTES} 字节")
