"""The centre's page frame (central/pages.py, central/templates/): autoescaped Jinja2."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from central.auth import ApiError, Principal, User
from central.pages import CSP, error_page, render
from central.templating import customer_shell

PAYLOAD = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _page(request_path: str = "/live") -> Request:
    return Request({"type": "http", "method": "GET", "path": request_path, "query_string": b"",
                    "headers": []})


def _boot(page: str) -> dict[str, Any]:
    match = re.search(r'<script id="boot" type="application/json">(.*?)</script>', page, re.S)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_a_user_name_with_markup_is_shown_escaped_in_the_header_and_the_boot() -> None:
    who = Principal(User("u1", PAYLOAD, "admin", "0001"), "csrf", by_cookie=True)
    response = render("live.html", f"{PAYLOAD} · 实时监控", who, "/live", {"note": PAYLOAD},
                  "live.js")
    page = bytes(response.body).decode()
    assert "<script>alert" not in page
    assert f'<title>{ESCAPED} · 实时监控</title>' in page
    assert f'id="account" title="修改密码 Change password">{ESCAPED}<small>' in page
    boot = _boot(page)
    assert boot["note"] == PAYLOAD and boot["user"]["name"] == PAYLOAD


def test_a_refusal_with_markup_is_shown_escaped() -> None:
    exc = ApiError("forbidden", message=PAYLOAD, message_en=PAYLOAD)
    response = error_page(_page(), exc)
    page = bytes(response.body).decode()
    assert response.status_code == 403 and "<script>alert" not in page
    assert f"<p>{ESCAPED}</p>" in page and f'<p class="muted">{ESCAPED}</p>' in page


def test_the_staff_frame_lists_only_what_the_user_may_open() -> None:
    viewer = Principal(User("u2", "看", "viewer", "0001"), "csrf", by_cookie=True)
    page = bytes(render("reports.html", "统计报表", viewer, "/reports").body).decode()
    nav = re.search(r"<nav>(.*?)</nav>", page, re.S)
    assert nav is not None
    assert '<a href="/reports" class="active">统计报表<small>Reports</small></a>' in nav.group(1)
    assert "/office/users" not in nav.group(1) and "/office/config" not in nav.group(1)


def test_every_page_carries_the_policy_and_no_inline_script_or_style() -> None:
    response = render("login.html", "登录", None, boot={"next": "/live"}, script="login.js")
    assert response.headers["content-security-policy"] == CSP
    for page in (bytes(response.body).decode(), customer_shell()):
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
        assert all(' src="/static/' in attrs or 'type="application/json"' in attrs
                   for attrs, _ in scripts)
        assert " style=" not in page and "<style" not in page
