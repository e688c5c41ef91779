"""The box's routes are module-level handlers with typed dependencies (controller/web/app.py):
each can be imported, served alone and called on its own; the app only assembles them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from controller.box import Box
from controller.config import parse_config
from controller.engine import IssueTicket
from controller.web import appointments, create_app, media, pages
from controller.web.app import API_ROUTERS
from controller.web.idempotency import _fingerprint
from controller.web_settings import web_settings


def routes(app: FastAPI) -> list[Any]:
    """Every route with a handler, those of included routers too."""
    return [r for r in fastapi.routing.iter_route_contexts(app.routes)
            if r.endpoint is not None and isinstance(r.path, str)]


async def test_every_route_is_a_module_level_handler(box: Box) -> None:
    """No closure inside a factory: a handler is found by its module and name; the API,
    the appointments, the media files and the HTML pages alike."""
    app = create_app(box)
    checked = 0
    for route in routes(app):
        endpoint = route.endpoint
        if endpoint.__module__.startswith("fastapi."):
            continue  # FastAPI's own /openapi.json and /docs
        assert "<locals>" not in endpoint.__qualname__, route.path
        assert getattr(sys.modules[endpoint.__module__], endpoint.__name__) is endpoint, route.path
        checked += 1
    # 46: with the four of the pre-filled forms (controller/web/forms.py)
    assert checked == sum(len(r.routes) for r in (*API_ROUTERS, appointments.router,
                                                   media.router, pages.router)) == 46
    app.state.screens["hub"].close()


async def test_the_pages_follow_a_pushed_configuration(box: Box) -> None:
    """A push replaces ``box.config``; a screen reloads when the ``config_version`` of the
    live view (``/api/live``, the stream's status) differs from its own, so a page must be
    served from the new one (one built at start-up would make every screen reload on every
    status, until a restart)."""
    app = create_app(box)
    data = box.config.model_dump(mode="json")
    data["branch"]["name"] = "新网点"
    box.config = parse_config(data, "pushed")
    pushed = box.config.version
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://box") as client:
        assert (await client.get("/api/live")).json()["config_version"] == pushed
        for page in ("/kiosk", "/caller", "/hall", "/lobby"):
            r = await client.get(page)
            assert r.status_code == 200, page
            boot = re.search(r'<script id="boot" type="application/json">(.*?)</script>',
                             r.text, re.S)
            assert boot is not None and json.loads(boot.group(1))["config_version"] == pushed
            assert "新网点" in r.text, page
    app.state.screens["hub"].close()


async def test_a_page_handler_is_called_with_its_services_as_arguments(
        box: Box, tmp_path: Path) -> None:
    web = web_settings(box.config)
    page = await pages.kiosk(box, web, tmp_path, kiosk_id="k2")
    assert page.status_code == 200 and b'"kiosk": "k2"' in bytes(page.body)
    css = await pages.theme(box, web)
    assert b"body.kiosk" in bytes(css.body)


async def test_a_router_serves_alone_with_the_box_on_app_state(box: Box) -> None:
    from controller.web import branch, tickets
    from controller.web.error_handlers import ERROR_HANDLERS

    await box.execute(IssueTicket(queue="A"))
    app = FastAPI()
    app.state.box = box
    for kind, handler in ERROR_HANDLERS.items():
        app.add_exception_handler(kind, handler)
    app.include_router(branch.router)
    app.include_router(tickets.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://box") as client:
        r = await client.get("/api/status")
        assert r.status_code == 200, r.text
        assert r.json()["waiting_total"] == 1
        r = await client.get("/api/tickets/A999")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "unknown_ticket"
        r = await client.get("/api/windows/1/panel")  # not included: not served
        assert r.status_code == 404


async def test_a_handler_is_called_with_its_services_as_arguments(box: Box) -> None:
    from controller.web import branch, windows

    await box.execute(IssueTicket(queue="A"))
    assert (await branch.status(box))["waiting_total"] == 1
    assert (await branch.public_config(box))["version"] == box.config.version
    assert windows.window_result(box, [], 1) == {
        "window": 1, "state": "closed", "teller": None, "current": None, "events": []}


async def test_a_careless_window_route_in_an_included_router_stops_the_app(box: Box) -> None:
    from controller.web.auth import guard_window_routes

    app = create_app(box)
    careless = APIRouter()

    @careless.post("/api/windows/{n}/open-the-safe")
    async def open_the_safe(n: int) -> dict[str, int]:
        return {"window": n}

    app.include_router(careless)
    with pytest.raises(RuntimeError, match="open-the-safe"):
        guard_window_routes(app)
    app.state.screens["hub"].close()


def test_the_app_assembles_each_route_once() -> None:
    keys = [(getattr(r, "path", ""), tuple(sorted(getattr(r, "methods", None) or ())))
            for router in API_ROUTERS for r in router.routes]
    assert ("/api/windows/{n}/call-next", ("POST",)) in keys and ("/api/status", ("GET",)) in keys
    assert len(keys) == len(set(keys))


def test_a_repeat_is_recognised_whatever_the_services_look_like() -> None:
    """The idempotency fingerprint is the request's data, not the services given to the
    handler (their state, and so their repr, changes between a request and its repeat)."""

    class Service:
        calls = 0

        def __repr__(self) -> str:
            Service.calls += 1
            return f"<service {Service.calls}>"

    request = Request({"type": "http", "method": "POST", "path": "/api/windows/1/call-next",
                       "headers": []})
    first = _fingerprint(request, {"n": 1, "box": Service()})
    assert _fingerprint(request, {"n": 1, "box": Service()}) == first
    assert _fingerprint(request, {"n": 2, "box": Service()}) != first


def test_the_core_imports_no_web_module() -> None:
    """The kiosk and the uplink shape their data with controller/views.py, not the web's."""
    code = ("import sys, controller.kiosk, controller.uplink.link, controller.views; "
            "print([m for m in sys.modules if m.startswith('controller.web')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
