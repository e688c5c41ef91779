"""The branch's screens, served by the box: kiosk, soft caller, hall display, lobby manager.

Each page is a Jinja2 template (``templates/``, autoescaped, extending ``base.html``) with
the data it starts from embedded as JSON, plus small vanilla JS and CSS from ``static/`` —
no CDN, nothing fetched from outside the box, and a Content-Security-Policy that says so
(no inline script or style: the branch's colours come as ``/theme.css``). Live updates
come over ``/api/events/stream``.
Each route is a module-level handler of :data:`router` that asks for the box, its ``[web]``
settings and the media folder as typed dependencies (deps.py); ``create_app``
(controller/web/app.py) includes the router with the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from common import __version__

from ..config import Config
from ..errors import Refused
from ..kiosk import kiosk_of
from ..web_settings import KioskButton, KioskLayout, WebSettings
from .auth import AuthDep, Kind
from .deps import BoxDep, WebDep
from .events import KIOSK_ID
from .media import MediaFolder, playable

__all__ = ["CSP", "STATIC", "kiosk_buttons", "media_files", "router", "theme_css"]

HERE = Path(__file__).parent
STATIC, TEMPLATES = HERE / "static", HERE / "templates"
media_files = playable  # the kiosk's playlist (controller/web/media.py)
# The centre's policy for its pages (central/pages.py): everything from the box itself, no
# inline script or style — the data a page starts from travels as JSON in #boot.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; media-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'; object-src 'none'")
TEMPLATE_ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                           undefined=StrictUndefined, auto_reload=False,
                           trim_blocks=True, keep_trailing_newline=True)
# ``|tojson`` escapes <, >, & and ' for a <script> element; keep the Chinese readable.
TEMPLATE_ENV.policies["json.dumps_kwargs"] = {"ensure_ascii": False}


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


def theme_css(cfg: Config, web: WebSettings) -> str:
    """The screens' colours, fonts and button places from the branch's settings, as a
    stylesheet: the Content-Security-Policy refuses ``style`` attributes. Every value is
    held to a strict pattern by :mod:`.settings`, so none can leave its declaration."""
    layout, hall = web.kiosk, web.hall
    kiosk = {"--bg": layout.background, "--fg": layout.text_colour,
             "--btn": layout.button_colour, "--btn-text": layout.button_text_colour,
             "--accent": layout.accent, "--scale": str(layout.font_scale),
             "--cols": str(layout.columns), "font-family": layout.font_family}
    if layout.background_image:
        kiosk["--bg-image"] = f"url('/media/{layout.background_image}')"
    rules = [_rule("body.kiosk", kiosk),
             _rule("body.hall", {"--bg": hall.background, "--accent": hall.accent})]
    for i, b in enumerate(kiosk_buttons(cfg, layout), 1):
        if declarations := _button_style(b):
            rules.append(_rule(f"#grid > .k-btn:nth-child({i})", declarations))
    return "\n".join(rules) + "\n"


def _rule(selector: str, declarations: dict[str, str]) -> str:
    return selector + " { " + " ".join(f"{k}: {v};" for k, v in declarations.items()) + " }"


def _button_style(b: dict[str, Any]) -> dict[str, str]:
    style = {}
    if b["colour"]:
        style["--btn"] = b["colour"]
    if b["text_colour"]:
        style["--btn-text"] = b["text_colour"]
    if b["col"]:
        style["grid-column"] = f"{b['col']} / span {b['col_span']}"
    elif b["col_span"] > 1:
        style["grid-column"] = f"span {b['col_span']}"
    if b["row"]:
        style["grid-row"] = f"{b['row']} / span {b['row_span']}"
    return style


def _render(name: str, script: str = "", boot: dict[str, Any] | None = None,
            **values: Any) -> HTMLResponse:
    """``templates/{name}`` (autoescaped), with ``boot`` as JSON for the page's ``script``."""
    page = TEMPLATE_ENV.get_template(name).render(version=__version__, script=script,
                                                  boot=boot or {}, **values)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache",
                                       "Content-Security-Policy": CSP})


router = APIRouter(include_in_schema=False)
"""The screens: ``/`` (the index), ``/theme.css``, ``/kiosk``, ``/caller``, ``/hall``,
``/lobby``. Each reads the box's configuration as it is now (a pushed one too: a screen
whose ``config_version`` differs from ``/api/live``'s reloads) and the ``[web]`` section
validated against it (:data:`~controller.web.deps.WebDep`)."""


def _common(cfg: Config, web: WebSettings) -> dict[str, Any]:
    """What every screen's script starts from (``#boot``)."""
    return {"branch": cfg.branch.name, "branch_en": cfg.branch.name_en,
            "zone": cfg.branch.timezone,  # every time shown is the branch's (common.js)
            "config_version": cfg.version, "version": __version__,
            "ping_ms": int(web.ping_seconds * 1000)}


@router.get("/", response_class=HTMLResponse)
async def index(box: BoxDep) -> HTMLResponse:
    return _render("index.html", branch=box.config.branch.name)


@router.get("/theme.css")
async def theme(box: BoxDep, web: WebDep) -> Response:
    return Response(theme_css(box.config, web), media_type="text/css",
                    headers={"Cache-Control": "no-cache"})


@router.get("/kiosk", response_class=HTMLResponse)
async def kiosk(box: BoxDep, web: WebDep, media: MediaFolder,
                kiosk_id: str | None = Query(None, alias="id", pattern=KIOSK_ID)
                ) -> HTMLResponse:
    """The kiosk page; ``?id=`` names the kiosk it is (its devices' outcomes show here;
    with ``[[kiosks]]`` its tickets print on that kiosk's printer; default: the first)."""
    cfg, layout = box.config, web.kiosk
    kiosk_id = kiosk_of(cfg, kiosk_id)
    if cfg.kiosks and cfg.stand(kiosk_id) is None:
        raise Refused("unknown_kiosk", kiosk=kiosk_id)
    buttons = kiosk_buttons(cfg, layout)
    boot = {**_common(cfg, web), "kiosk": kiosk_id, "layout": layout.model_dump(),
            "buttons": buttons, "media": media_files(media, layout.media),
            "several": bool(cfg.kiosks)}
    return _render(
        "kiosk.html", "kiosk.js", boot, title=layout.title, title_en=layout.title_en,
        branch=cfg.branch.name, branch_en=cfg.branch.name_en, buttons=buttons,
        media_class=f"media-{layout.media_position}", config_version=cfg.version,
        banner=layout.banner, banner_en=layout.banner_en or layout.banner,
    )


def _signed_in(request: Request, auth: AuthDep, kind: Kind) -> bool:
    """Whether the page's request carries a live session of ``kind``: the page's script
    asks for the session only then, so a logged-out page logs no 401 in the console."""
    return auth.session_of(request, (kind,))[0] is not None


@router.get("/caller", response_class=HTMLResponse)
async def caller(box: BoxDep, web: WebDep, request: Request, auth: AuthDep) -> HTMLResponse:
    cfg = box.config
    boot = {**_common(cfg, web), "signed_in": _signed_in(request, auth, "teller"),
            "caller": web.caller.model_dump(),
            "windows": [{"number": w.number, "name": w.name} for w in cfg.windows]}
    return _render("caller.html", "caller.js", boot, branch=cfg.branch.name,
                   windows=cfg.windows)


@router.get("/hall", response_class=HTMLResponse)
async def hall(box: BoxDep, web: WebDep) -> HTMLResponse:
    cfg, h = box.config, web.hall
    boot = {**_common(cfg, web), "hall": h.model_dump()}
    return _render("hall.html", "hall.js", boot, title=h.title or cfg.branch.name,
                   title_en=cfg.branch.name_en, banner=h.banner, banner_en=h.banner_en,
                   config_version=cfg.version)


@router.get("/lobby", response_class=HTMLResponse)
async def lobby(box: BoxDep, web: WebDep, request: Request, auth: AuthDep) -> HTMLResponse:
    cfg = box.config
    boot = {**_common(cfg, web), "signed_in": _signed_in(request, auth, "lobby"),
            "threshold": cfg.thresholds.lobby_alert_waiting,
            "tellers": {t.id: t.name for t in cfg.tellers},
            "rating_levels": [r.model_dump() for r in cfg.rating_levels]}
    return _render("lobby.html", "lobby.js", boot, branch=cfg.branch.name)
