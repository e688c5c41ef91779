"""``GET /media/{name}``: the kiosk's images and videos, served inert (A10, G2).

The media folder (``web.media_dir``, default ``<data dir>/media``) holds what the centre
pushed (controller/uplink/media.py). Anyone on the branch LAN may fetch these files, and a
lobby manager's browser holds a session on the same origin, so a file must never be able
to act as a page:

* only a plain file name of a kind :mod:`protocols.media` accepts, whose first bytes match
  its extension, is served; anything else (an SVG, an HTML page named ``.png``, a stray
  file) is 404, and the kiosk's playlist leaves it out;
* the ``Content-Type`` is the one decided from the checked bytes, with
  ``X-Content-Type-Options: nosniff`` so the browser never guesses another;
* ``Content-Security-Policy: default-src 'none'; sandbox`` so that, even opened by itself
  in a tab, the response runs no script and loads nothing (defence in depth).

The folder is bounded: a push that would leave more than :data:`MAX_MEDIA_FILES` files or
:data:`MAX_MEDIA_FOLDER_BYTES` bytes is refused (docs/journal.md, "Bounds").
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse

from protocols.media import (
    HEAD_BYTES,
    MAX_MEDIA_FILES,
    MAX_MEDIA_FOLDER_BYTES,
    VIDEOS,
    NotMedia,
    media_type,
)

from ..web_settings import FILE

__all__ = ["MAX_MEDIA_FILES", "MAX_MEDIA_FOLDER_BYTES", "MEDIA_HEADERS", "MediaFolder",
           "media_folder_of", "playable", "router", "servable"]

MEDIA_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
_FILE = re.compile(FILE)


def servable(folder: Path, name: str) -> tuple[Path, str] | None:
    """``(path, content type)`` of a file of ``folder`` the box may serve, else None."""
    if not _FILE.fullmatch(name):
        return None
    path = folder / name
    try:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
        return path, media_type(name, head)
    except (OSError, NotMedia):
        return None


def playable(folder: Path, wanted: list[str]) -> list[dict[str, str]]:
    """The kiosk's playlist: ``wanted`` in order, else every servable file of ``folder``."""
    try:
        present = {p.name for p in folder.iterdir() if p.is_file()}
    except OSError:
        present = set()
    names = [n for n in wanted if n in present] if wanted else sorted(present)
    return [{"url": f"/media/{name}",
             "kind": "video" if Path(name).suffix.lower() in VIDEOS else "image"}
            for name in names if servable(folder, name) is not None]


async def media_folder_of(request: Request) -> Path:
    """The app's media folder (``web.media_dir``), as a route's dependency."""
    folder: Path = request.app.state.screens["media"]
    return folder


MediaFolder = Annotated[Path, Depends(media_folder_of)]

router = APIRouter(include_in_schema=False)


@router.api_route("/media/{name}", methods=["GET", "HEAD"])
async def media(name: str, folder: MediaFolder) -> FileResponse:
    found = await asyncio.to_thread(servable, folder, name)
    if found is None:
        raise HTTPException(404, "Not Found")
    path, kind = found
    return FileResponse(path, media_type=kind, headers=MEDIA_HEADERS)
