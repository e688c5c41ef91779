"""The centre's pages: login, live dashboard, reports and alerts, the back office.

Each page is a Jinja2 template (autoescaped) extending the staff frame
``templates/page.html``, which extends the centre's one layout ``templates/base.html`` (the
customers' app extends it too), with the data it starts from embedded as JSON, and small
vanilla JS and CSS from ``static/`` — no CDN, nothing fetched from elsewhere; the
Content-Security-Policy says so.
Pages go through the same :func:`~central.auth.need` dependency as the API: without a
session a page redirects to ``/login``, out of scope it answers 403.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from common import __version__

from .auth import ApiError, Principal
from .configs import SECTIONS
from .deps import Auditor, BoardDep, ContextDep, MaybeChannels, OrgsAdmin, UsersAdmin, Viewer
from .store.summary import report_timezone
from .templating import TEMPLATE_ENV

__all__ = ["CSP", "STATIC", "error_page", "render", "router"]

HERE = Path(__file__).parent
STATIC = HERE / "static"
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


def render(name: str, title: str, who: Principal | None, active: str = "",
           boot: dict[str, Any] | None = None, script: str = "", *, zone: str = "",
           **values: str) -> HTMLResponse:
    """``templates/{name}`` in the staff frame, with ``boot`` as JSON for the page's script;
    ``zone`` is the one times are shown in (:func:`page_zone`, office.js)."""
    data = {"user": who.user.to_json() if who else None, "csrf": who.csrf if who else "",
            "zone": zone, **(boot or {})}
    page = TEMPLATE_ENV.get_template(name).render(
        title=title, version=__version__, who=who, nav=_nav(who), active=active, boot=data,
        scripts=[s for s in script.split(",") if s], body_class=name.removesuffix(".html"),
        **values)
    return HTMLResponse(page, headers={"Cache-Control": "no-store",
                                       "Content-Security-Policy": CSP})


def error_page(request: Request, exc: ApiError) -> Response:
    """A page (not ``/api/``) that was refused: the login for 401, a short page otherwise."""
    if exc.status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
    response = render("error.html", "无权访问", None, message=exc.message,
                      message_en=exc.message_en)
    response.status_code = exc.status
    return response


def _nav(who: Principal | None) -> list[tuple[str, str, str]]:
    """The pages ``who`` may open, as (path, Chinese, English)."""
    if who is None:
        return []
    return [(path, zh, en) for path, permission, zh, en in NAV
            if who.can(permission) or (path == "/office/config" and who.can("audit"))]


router = APIRouter(include_in_schema=False)
"""The staff pages; ``/static`` (``STATIC``) is mounted beside them (central/office.py)."""


async def org_in_scope(who: Viewer, org: OrgParam = None) -> str:
    """The org a page shows: ``?org=``, else the viewer's own; 403 outside their scope."""
    code = org or who.scope
    who.check(code)
    return code


ScopedOrg = Annotated[str, Depends(org_in_scope)]


async def page_zone(centre: ContextDep) -> str:
    """The zone the staff pages show every time and "today" in: the province's, the one its
    reports and alert rules count days in (``report_settings.timezone``, docs/reports.md),
    for a branch's times too, so branches side by side read on one clock."""
    return (await centre.read(report_timezone)).key


PageZone = Annotated[str, Depends(page_zone)]


@router.get("/login", response_class=HTMLResponse)
async def login_page(next: Annotated[str, Query(max_length=300)] = "/live") -> HTMLResponse:
    safe = next if re.fullmatch(r"/(?![/\\])[^\\\s]*", next) else "/live"  # same site only
    return render("login.html", "登录 · 排队联网监控中心", None, boot={"next": safe},
                  script="login.js")


@router.get("/")
async def home(who: Viewer) -> RedirectResponse:
    return RedirectResponse("/live", 303)


@router.get("/live", response_class=HTMLResponse)
async def live_page(board: BoardDep, centre: ContextDep, who: Viewer, code: ScopedOrg,
                    zone: PageZone) -> HTMLResponse:
    await board.loaded.wait()
    if board.node(code) is None:
        raise ApiError("not_found")
    live = centre.config.web.live
    boot = {"org": code, "view": board.view(code, who.scope), "charts": board.charts(code),
            "can_control": who.can("control"), "push_s": live.push_s, "ping_s": live.ping_s}
    return render("live.html", "实时监控 · 排队联网监控中心", who, "/live", boot,
                  "charts.js,live.js", zone=zone)


@router.get("/reports", response_class=HTMLResponse)
async def reports_page(who: Viewer, code: ScopedOrg, zone: PageZone) -> HTMLResponse:
    return render("reports.html", "统计报表 · 排队联网监控中心", who, "/reports",
                  {"org": code}, "charts.js,reports.js", zone=zone)


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(who: Viewer, code: ScopedOrg, zone: PageZone) -> HTMLResponse:
    return render("alerts.html", "预警 · 排队联网监控中心", who, "/alerts",
                  {"org": code}, "alerts.js,thresholds.js", zone=zone)


@router.get("/office/appointments", response_class=HTMLResponse)
async def appointments_page(channels: MaybeChannels, who: Viewer, code: ScopedOrg,
                            zone: PageZone) -> HTMLResponse:
    """预约管理 (H2): the staff search (``/api/staff/appointments``) as a page; the day is
    the customer channels' (a demo centre's clock may start elsewhere)."""
    boot = {"org": code, "enabled": channels is not None,
            "today": channels.appointments.today() if channels is not None else ""}
    return render("appointments.html", "预约管理 · 排队联网监控中心", who,
                  "/office/appointments", boot, "appointments.js", zone=zone)


@router.get("/office/staffing", response_class=HTMLResponse)
async def staffing_page(who: Viewer, zone: PageZone, branch: OrgParam = None) -> HTMLResponse:
    """排班建议 (B5/E): ``GET /api/office/staffing`` for a branch, as a page."""
    if branch is not None:
        who.check(branch)
    return render("staffing.html", "排班建议 · 排队联网监控中心", who, "/office/staffing",
                  {"branch": branch}, "staffing.js", zone=zone)


@router.get("/office/config", response_class=HTMLResponse)
async def config_page(who: Viewer, zone: PageZone, branch: OrgParam = None) -> HTMLResponse:
    if not (who.can("configure") or who.can("audit")):
        raise ApiError("forbidden")
    if branch is not None:
        who.check(branch)
    boot = {"branch": branch, "scope": who.scope, "can_edit": who.can("configure"),
            "sections": [{"name": n, "title": t} for n, (_, t) in SECTIONS.items()]}
    return render("config.html", "网点配置 · 排队联网监控中心", who, "/office/config",
                  boot, "config.js", zone=zone)


@router.get("/office/versions", response_class=HTMLResponse)
async def versions_page(who: Viewer, code: ScopedOrg, zone: PageZone) -> HTMLResponse:
    return render("versions.html", "配置版本 · 排队联网监控中心", who, "/office/versions",
                  {"org": code}, "versions.js", zone=zone)


@router.get("/office/orgs", response_class=HTMLResponse)
async def orgs_page(who: OrgsAdmin, zone: PageZone) -> HTMLResponse:
    return render("orgs.html", "机构 · 排队联网监控中心", who, "/office/orgs", {}, "orgs.js",
                  zone=zone)


@router.get("/office/users", response_class=HTMLResponse)
async def users_page(who: UsersAdmin, zone: PageZone) -> HTMLResponse:
    return render("users.html", "用户 · 排队联网监控中心", who, "/office/users", {},
                  "users.js", zone=zone)


@router.get("/office/audit", response_class=HTMLResponse)
async def audit_page(who: Auditor, zone: PageZone) -> HTMLResponse:
    return render("audit.html", "操作日志 · 排队联网监控中心", who, "/office/audit", {},
                  "audit.js", zone=zone)
