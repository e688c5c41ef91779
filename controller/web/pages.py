"""The branch's screens, served by the box: kiosk, soft caller, hall display, lobby manager.

Each page is a server-rendered HTML shell (``templates/``) with the data it starts from
embedded as JSON, plus small vanilla JS and CSS from ``static/`` — no CDN, nothing
fetched from outside the box. Live updates come over ``/api/events/stream``.
:func:`mount_screens` wires the pages, the event hub and the staff gate into the app.
"""

from __future__ import annotations

import html
import json
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..config import Config
from .auth import Auth, auth_router, guard, load_secret
from .events import KIOSK_ID, EventHub, events_router
from .media import media_router, playable
from .settings import KioskButton, KioskLayout, WebSettings, web_settings
from .staff import staff_router

if TYPE_CHECKING:
    from ..box import Box

__all__ = ["kiosk_buttons", "media_files", "mount_screens"]

HERE = Path(__file__).parent
STATIC, TEMPLATES = HERE / "static", HERE / "templates"
media_files = playable  # the kiosk's playlist (controller/web/media.py)


def mount_screens(app: FastAPI, box: Box) -> None:
    """Add the screens, the event stream and the staff gate to the box's app."""
    from ..appointments import appointments_router  # it imports the uplink, which imports us

    web = web_settings(box.config)
    auth = Auth(box, web, load_secret(box.data_dir))
    hub = EventHub(box, ping_s=web.ping_seconds, reprint_token=auth.reprint_token).attach()
    media = web.media_path(box.data_dir)
    for router in (events_router(hub), auth_router(auth), staff_router(box, hub),
                   pages_router(box, web, media), appointments_router(box), media_router(media)):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    guard(app, auth)  # after every route: it checks the window routes read their window
    app.state.screens = {"hub": hub, "auth": auth, "web": web}


def kiosk_buttons(cfg: Config, layout: KioskLayout) -> list[dict[str, Any]]:
    """The first screen's buttons (A10): configured ones, else each top-level business
    followed by each menu; a menu lists the businesses whose ``parent`` it is."""
    items = layout.buttons or [
        *(KioskButton(target=q.id) for q in cfg.queues if q.parent is None),
        *(KioskButton(target=m.id) for m in cfg.menus),
    ]
    menus = {m.id: m for m in cfg.menus}
    out = []
    for b in items:
        q, m = cfg.queue(b.target), menus.get(b.target)
        entry: dict[str, Any] = {
            "target": b.target, "colour": b.colour, "text_colour": b.text_colour,
            "row": b.row, "col": b.col, "col_span": b.col_span, "row_span": b.row_span,
        }
        if q is not None:
            entry.update(kind="queue", label=b.label or q.name, label_en=b.label_en or q.name_en,
                         notice=q.notice, notice_en=q.notice_en)
        elif m is not None:
            entry.update(kind="hint" if m.hint else "menu", label=b.label or m.name,
                         label_en=b.label_en or m.name_en, hint=m.hint, hint_en=m.hint_en,
                         children=[{"id": c.id, "label": c.name, "label_en": c.name_en,
                                    "notice": c.notice, "notice_en": c.notice_en}
                                   for c in cfg.queues if c.parent == m.id])
        out.append(entry)
    return out


def _boot_json(data: dict[str, Any]) -> str:
    """JSON safe inside ``<script type="application/json">``."""
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def _render(name: str, **values: str) -> HTMLResponse:
    text = string.Template((TEMPLATES / name).read_text(encoding="utf-8"))
    page = text.substitute(version=html.escape(__version__), **values)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


def _button_html(b: dict[str, Any]) -> str:
    style = []
    if b["colour"]:
        style.append(f"--btn:{b['colour']}")
    if b["text_colour"]:
        style.append(f"--btn-text:{b['text_colour']}")
    if b["col"]:
        style.append(f"grid-column:{b['col']} / span {b['col_span']}")
    elif b["col_span"] > 1:
        style.append(f"grid-column:span {b['col_span']}")
    if b["row"]:
        style.append(f"grid-row:{b['row']} / span {b['row_span']}")
    e = html.escape
    return (
        f'<button class="k-btn k-{b["kind"]}" data-target="{e(b["target"])}" '
        f'data-kind="{b["kind"]}" style="{";".join(style)}">'
        f'{_bilingual("span", b["label"], b["label_en"], "k-label")}'
        f'{_bilingual("small", b.get("notice") or "", b.get("notice_en") or "")}</button>'
    )


def _bilingual(tag: str, zh: str, en: str, cls: str = "") -> str:
    """An element the kiosk's language toggle switches (empty when there is no text)."""
    if not zh:
        return ""
    e = html.escape
    attr = f' class="{cls}"' if cls else ""
    return f'<{tag}{attr} data-zh="{e(zh)}" data-en="{e(en or zh)}">{e(zh)}</{tag}>'


def pages_router(box: Box, web: WebSettings, media: Path) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    cfg = box.config
    e = html.escape

    def common() -> dict[str, Any]:
        return {"branch": cfg.branch.name, "branch_en": cfg.branch.name_en,
                "config_version": cfg.version, "version": __version__,
                "ping_ms": int(web.ping_seconds * 1000)}

    @router.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return _render("index.html", branch=e(cfg.branch.name))

    @router.get("/kiosk", response_class=HTMLResponse)
    async def kiosk(kiosk_id: str = Query("kiosk", alias="id", pattern=KIOSK_ID)
                    ) -> HTMLResponse:
        layout = web.kiosk
        buttons = kiosk_buttons(cfg, layout)
        boot = {**common(), "kiosk": kiosk_id, "layout": layout.model_dump(), "buttons": buttons,
                "media": media_files(media, layout.media)}
        style = (f"--bg:{layout.background};--fg:{layout.text_colour};--btn:{layout.button_colour};"
                 f"--btn-text:{layout.button_text_colour};--accent:{layout.accent};"
                 f"--scale:{layout.font_scale};--cols:{layout.columns};"
                 f"font-family:{layout.font_family}")
        if layout.background_image:
            style += f";--bg-image:url('/media/{layout.background_image}')"
        return _render(
            "kiosk.html", style=e(style), title=e(layout.title), title_en=e(layout.title_en),
            branch=e(cfg.branch.name), branch_en=e(cfg.branch.name_en),
            buttons="\n".join(_button_html(b) for b in buttons),
            media_class=f"media-{layout.media_position}", banner=e(layout.banner),
            banner_en=e(layout.banner_en or layout.banner), boot=_boot_json(boot),
        )

    @router.get("/caller", response_class=HTMLResponse)
    async def caller() -> HTMLResponse:
        boot = {**common(), "caller": web.caller.model_dump(),
                "windows": [{"number": w.number, "name": w.name} for w in cfg.windows]}
        options = "".join(f'<option value="{w.number}">{e(w.name or str(w.number))}</option>'
                          for w in cfg.windows)
        return _render("caller.html", branch=e(cfg.branch.name), windows=options,
                       boot=_boot_json(boot))

    @router.get("/hall", response_class=HTMLResponse)
    async def hall() -> HTMLResponse:
        h = web.hall
        boot = {**common(), "hall": h.model_dump()}
        style = f"--bg:{h.background};--accent:{h.accent}"
        return _render("hall.html", style=e(style), title=e(h.title or cfg.branch.name),
                       title_en=e(cfg.branch.name_en), banner=e(h.banner),
                       banner_en=e(h.banner_en), boot=_boot_json(boot))

    @router.get("/lobby", response_class=HTMLResponse)
    async def lobby() -> HTMLResponse:
        boot = {**common(), "threshold": cfg.thresholds.lobby_alert_waiting,
                "tellers": {t.id: t.name for t in cfg.tellers},
                "rating_levels": [r.model_dump() for r in cfg.rating_levels]}
        return _render("lobby.html", branch=e(cfg.branch.name), boot=_boot_json(boot))

    return router
