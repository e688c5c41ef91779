"""The centre's pages: login, live dashboard, reports and alerts, the back office.

Each page is a server-rendered HTML frame (``templates/page.html`` + the page's own body
template) with the data it starts from embedded as JSON, and small vanilla JS and CSS from
``static/`` — no CDN, nothing fetched from elsewhere; the Content-Security-Policy says so.
Pages go through the same :func:`~central.auth.need` dependency as the API: without a
session a page redirects to ``/login``, out of scope it answers 403.
"""

from __future__ import annotations

import html
import json
import re
import string
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from controller import __version__

from .auth import ApiError, Principal, need
from .configs import SECTIONS

if TYPE_CHECKING:
    from .service import Centre

__all__ = ["error_page", "mount_pages"]

HERE = Path(__file__).parent
STATIC, TEMPLATES = HERE / "static", HERE / "templates"
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; media-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'; object-src 'none'")
# (path, permission, Chinese, English)
NAV = (
    ("/live", "view", "实时监控", "Live"),
    ("/reports", "view", "统计报表", "Reports"),
    ("/alerts", "view", "预警", "Alerts"),
    ("/office/appointments", "view", "预约管理", "Appointments"),
    ("/office/staffing", "view", "排班建议", "Staffing"),
    ("/office/config", "configure", "网点配置", "Configuration"),
    ("/office/versions", "view", "配置版本", "Versions"),
    ("/office/orgs", "orgs", "机构", "Organisation"),
    ("/office/users", "users", "用户", "Users"),
    ("/office/audit", "audit", "操作日志", "Audit log"),
)
OrgParam = Annotated[str | None, Query(pattern=r"^\d{4,16}$")]


def mount_pages(app: FastAPI, centre: Centre) -> None:
    app.include_router(pages_router(centre))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def render(name: str, title: str, who: Principal | None, active: str = "",
           boot: dict[str, Any] | None = None, script: str = "", **values: str
           ) -> HTMLResponse:
    """The frame around ``templates/{name}``, with ``boot`` as JSON for the page's script."""
    body = string.Template((TEMPLATES / name).read_text(encoding="utf-8"))
    frame = string.Template((TEMPLATES / "page.html").read_text(encoding="utf-8"))
    data = {"user": who.user.to_json() if who else None, "csrf": who.csrf if who else "",
            **(boot or {})}
    page = frame.substitute(
        title=html.escape(title), version=html.escape(__version__),
        nav=_nav(who, active), user=_user(who),
        body=body.substitute(version=html.escape(__version__), **values),
        boot=json.dumps(data, ensure_ascii=False).replace("</", "<\\/"),
        script="".join(f'<script src="/static/{s}?v={html.escape(__version__)}"></script>'
                       for s in script.split(",") if s),
        body_class=html.escape(name.removesuffix(".html")),
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store",
                                       "Content-Security-Policy": CSP})


def error_page(request: Request, exc: ApiError) -> Response:
    """A page (not ``/api/``) that was refused: the login for 401, a short page otherwise."""
    if exc.status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
    e = html.escape
    response = render("error.html", "无权访问", None, message=e(exc.message),
                      message_en=e(exc.message_en))
    response.status_code = exc.status
    return response


def _nav(who: Principal | None, active: str) -> str:
    if who is None:
        return ""
    items = []
    for path, permission, zh, en in NAV:
        if not who.can(permission) and not (path == "/office/config" and who.can("audit")):
            continue
        cls = ' class="active"' if path == active else ""
        items.append(f'<a href="{path}"{cls}>{zh}<small>{en}</small></a>')
    return "".join(items)


def _user(who: Principal | None) -> str:
    if who is None:
        return ""
    e = html.escape
    return (f'<button type="button" class="who" id="account" title="修改密码 Change password">'
            f'{e(who.user.name)}<small>{e(who.user.role)} · {e(who.scope)}</small></button>'
            '<button type="button" id="logout">退出 Log out</button>')


def _today(centre: Centre) -> str:
    """The customer channels' day (a demo centre's clock may start elsewhere)."""
    if centre.customers is None:
        return ""
    return centre.customers.appointments.today()


def pages_router(centre: Centre) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    viewer = Depends(need("view"))
    org_admin, user_admin, auditor = (Depends(need("orgs")), Depends(need("users")),
                                      Depends(need("audit")))
    board = centre.office.board

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(next: Annotated[str, Query(max_length=300)] = "/live"
                         ) -> HTMLResponse:
        safe = next if re.fullmatch(r"/(?![/\\])[^\\\s]*", next) else "/live"  # same site only
        return render("login.html", "登录 · 排队联网监控中心", None, boot={"next": safe},
                      script="login.js")

    @router.get("/")
    async def home(who: Principal = viewer) -> RedirectResponse:
        return RedirectResponse("/live", 303)

    @router.get("/live", response_class=HTMLResponse)
    async def live_page(org: OrgParam = None, who: Principal = viewer) -> HTMLResponse:
        code = org or who.scope
        who.check(code)
        await board.loaded.wait()
        if board.node(code) is None:
            raise ApiError("not_found")
        boot = {"org": code, "view": board.view(code, who.scope),
                "charts": board.charts(code), "can_control": who.can("control"),
                "push_s": centre.config.web.live.push_s,
                "ping_s": centre.config.web.live.ping_s}
        return render("live.html", "实时监控 · 排队联网监控中心", who, "/live", boot,
                      "charts.js,live.js")

    @router.get("/reports", response_class=HTMLResponse)
    async def reports_page(org: OrgParam = None, who: Principal = viewer) -> HTMLResponse:
        code = org or who.scope
        who.check(code)
        return render("reports.html", "统计报表 · 排队联网监控中心", who, "/reports",
                      {"org": code}, "charts.js,reports.js")

    @router.get("/alerts", response_class=HTMLResponse)
    async def alerts_page(org: OrgParam = None, who: Principal = viewer) -> HTMLResponse:
        code = org or who.scope
        who.check(code)
        return render("alerts.html", "预警 · 排队联网监控中心", who, "/alerts",
                      {"org": code}, "alerts.js,thresholds.js")

    @router.get("/office/appointments", response_class=HTMLResponse)
    async def appointments_page(org: OrgParam = None, who: Principal = viewer
                                ) -> HTMLResponse:
        """预约管理 (H2): the staff search (``/api/staff/appointments``) as a page."""
        code = org or who.scope
        who.check(code)
        boot = {"org": code, "enabled": centre.customers is not None,
                "today": _today(centre)}
        return render("appointments.html", "预约管理 · 排队联网监控中心", who,
                      "/office/appointments", boot, "appointments.js")

    @router.get("/office/staffing", response_class=HTMLResponse)
    async def staffing_page(branch: OrgParam = None, who: Principal = viewer) -> HTMLResponse:
        """排班建议 (B5/E): ``GET /api/office/staffing`` for a branch, as a page."""
        if branch is not None:
            who.check(branch)
        return render("staffing.html", "排班建议 · 排队联网监控中心", who, "/office/staffing",
                      {"branch": branch}, "staffing.js")

    @router.get("/office/config", response_class=HTMLResponse)
    async def config_page(branch: OrgParam = None, who: Principal = viewer) -> HTMLResponse:
        if not (who.can("configure") or who.can("audit")):
            raise ApiError("forbidden")
        if branch is not None:
            who.check(branch)
        boot = {"branch": branch, "scope": who.scope, "can_edit": who.can("configure"),
                "sections": [{"name": n, "title": t} for n, (_, t) in SECTIONS.items()]}
        return render("config.html", "网点配置 · 排队联网监控中心", who, "/office/config",
                      boot, "config.js")

    @router.get("/office/versions", response_class=HTMLResponse)
    async def versions_page(org: OrgParam = None, who: Principal = viewer) -> HTMLResponse:
        code = org or who.scope
        who.check(code)
        return render("versions.html", "配置版本 · 排队联网监控中心", who, "/office/versions",
                      {"org": code}, "versions.js")

    @router.get("/office/orgs", response_class=HTMLResponse)
    async def orgs_page(who: Principal = org_admin) -> HTMLResponse:
        return render("orgs.html", "机构 · 排队联网监控中心", who, "/office/orgs", {},
                      "orgs.js")

    @router.get("/office/users", response_class=HTMLResponse)
    async def users_page(who: Principal = user_admin) -> HTMLResponse:
        return render("users.html", "用户 · 排队联网监控中心", who, "/office/users", {},
                      "users.js")

    @router.get("/office/audit", response_class=HTMLResponse)
    async def audit_page(who: Principal = auditor) -> HTMLResponse:
        return render("audit.html", "操作日志 · 排队联网监控中心", who, "/office/audit", {},
                      "audit.js")

    return router
