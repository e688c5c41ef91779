"""HTTP routes for logging in and out, one's own password, users, and the org tree.

The rules are :mod:`central.auth`'s; every route here goes through :func:`need` or is
the login itself (the only route open without a session, and throttled).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from common.passwords import hash_password, verify_password

from . import audit
from .auth import (
    ApiError,
    Principal,
    User,
    create_user,
    get_user,
    list_users,
    password_hash_of,
    update_user,
)
from .deps import ContextDep, GateDep, OrgsAdmin, UsersAdmin, Viewer
from .orgs import (
    PAGE_MAX,
    SEARCH_MAX,
    OrgError,
    add_org,
    children,
    code_list,
    delete_org,
    in_scope,
    org_code,
    org_names,
    orgs_page,
    page_size,
    search_orgs,
    search_text,
    update_org,
)

if TYPE_CHECKING:
    from .context import CentreContext

__all__ = ["reset_password", "router"]

UserId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
OrgCode = Annotated[str, Path(pattern=r"^\d{4,16}$")]
Role = Literal["admin", "manager", "auditor", "viewer"]
_T = TypeVar("_T")


class Login(BaseModel):
    user: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=128)


class PasswordChange(BaseModel):
    old: str = Field(max_length=128)
    new: str = Field(min_length=8, max_length=128)


class NewUser(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    name: str = Field(min_length=1, max_length=60)
    role: Role
    scope: str = Field(pattern=r"^\d{4,16}$")
    password: str = Field(min_length=8, max_length=128)


class UserChange(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=60)
    role: Role | None = None
    scope: str | None = Field(None, pattern=r"^\d{4,16}$")
    disabled: bool | None = None
    password: str | None = Field(None, min_length=8, max_length=128)


class NewOrg(BaseModel):
    code: str = Field(pattern=r"^\d{4,16}$")
    name: str = Field(min_length=1, max_length=60)
    name_en: str = Field("", max_length=120)
    kind: Literal["head", "city", "branch"]


class OrgChange(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    name_en: str = Field("", max_length=120)
    kind: Literal["head", "city", "branch"] | None = None


router = APIRouter(tags=["users"])


# --- sessions ----------------------------------------------------------------------


@router.post("/api/auth/login", tags=["auth"])
async def login(body: Login, request: Request, centre: ContextDep, gate: GateDep
                ) -> JSONResponse:
    """Log in: a session cookie (HttpOnly, SameSite=Strict), a bearer token for
    scripts and the CSRF token pages echo in ``X-CSRF-Token``. 401 wrong, 429 throttled."""
    try:
        who, token, expires = await gate.login(request, body.user, body.password)
    except ApiError as exc:
        if exc.code == "wrong_password":
            known = await centre.read(lambda s: get_user(s, body.user))
            await centre.read(lambda s: audit.record(
                s, body.user[:32], "login.failed", known.scope if known else "",
                address=request.client.host if request.client else ""))
        raise
    await centre.read(lambda s: audit.record(s, who, "login", who.scope))
    answer = JSONResponse({"user": who.user.to_json(), "token": token,
                           "csrf_token": who.csrf, "expires_at": round(expires)})
    gate.cookie(request, answer, token, expires)
    return answer


@router.post("/api/auth/logout", tags=["auth"])
async def logout(request: Request, centre: ContextDep, gate: GateDep, who: Viewer
                 ) -> JSONResponse:
    await gate.logout(request)
    await centre.read(lambda s: audit.record(s, who, "logout", who.scope))
    answer = JSONResponse({"logged_out": True})
    gate.cookie(request, answer, None)
    return answer


@router.get("/api/auth/session", tags=["auth"])
async def session(who: Viewer) -> dict[str, Any]:
    """Who the caller is, with the page's CSRF token."""
    return {"user": who.user.to_json(), "csrf_token": who.csrf}


@router.post("/api/auth/password", tags=["auth"])
async def change_password(body: PasswordChange, centre: ContextDep, who: Viewer
                          ) -> dict[str, Any]:
    """Change one's own password (the old one is asked again); other sessions end."""
    found = await centre.read(lambda s: password_hash_of(s, who.id))
    if found is None or not await asyncio.to_thread(verify_password, found[0], body.old):
        raise ApiError("wrong_password")
    digest = await asyncio.to_thread(hash_password, body.new)
    await centre.read(lambda s: update_user(s, who.user, digest))
    await centre.read(lambda s: audit.record(s, who, "password.change", who.scope, who.id))
    return {"changed": True}


# --- users -------------------------------------------------------------------------


@router.get("/api/users")
async def users(centre: ContextDep, who: UsersAdmin) -> dict[str, Any]:
    """The users of the caller's subtree; ``manageable`` marks those it may change."""
    rows = await centre.read(lambda s: list_users(s, who.scope))
    return {"users": [{**u.to_json(), "manageable": who.manages(u)} for u in rows]}


@router.post("/api/users", status_code=201)
async def add_user(body: NewUser, centre: ContextDep, who: UsersAdmin) -> dict[str, Any]:
    user = User(body.id, body.name, body.role, body.scope)
    await _check_can_hold(centre, who, user)
    digest = await asyncio.to_thread(hash_password, body.password)
    await centre.read(lambda s: create_user(s, user, digest, who.id))
    await centre.read(lambda s: audit.record(s, who, "user.create", user.scope, user.id,
                                             {"role": user.role, "scope": user.scope}))
    return user.to_json()


@router.put("/api/users/{user_id}")
async def change_user(user_id: UserId, body: UserChange, centre: ContextDep, who: UsersAdmin
                      ) -> dict[str, Any]:
    old = await centre.read(lambda s: get_user(s, user_id))
    if old is None or not who.sees(old.scope):
        raise ApiError("not_found")
    if not who.manages(old):
        raise ApiError("forbidden", message="不能修改同级或上级用户。",
                       message_en="You cannot change a peer or a superior.")
    new = User(old.id, body.name or old.name, body.role or old.role,
               body.scope or old.scope,
               old.disabled if body.disabled is None else body.disabled)
    await _check_can_hold(centre, who, new)
    digest = (await asyncio.to_thread(hash_password, body.password)
              if body.password else None)
    await centre.read(lambda s: update_user(s, new, digest))
    changed = {k: v for k, v in body.model_dump(exclude_none=True).items()
               if k != "password"}
    if digest:
        changed["password"] = "(reset)"
    await centre.read(lambda s: audit.record(s, who, "user.change", new.scope, new.id,
                                             changed))
    return new.to_json()


# --- the org tree --------------------------------------------------------------------


# Query parameters arrive as text, bounded in length here and parsed by central.orgs
# (org_code, page_size, search_text, code_list): one place says what each may hold.
CodeArg = Annotated[str | None, Query(max_length=16)]
LimitArg = Annotated[str | None, Query(max_length=4)]
KindArg = Annotated[Literal["head", "city", "branch"] | None, Query()]
CHILDREN_PAGE = 200


@router.get("/api/orgs", tags=["orgs"])
async def orgs(centre: ContextDep, who: Viewer, after: CodeArg = None,
               limit: LimitArg = None) -> dict[str, Any]:
    """The caller's subtree in code order, plus reporting boxes the tree does not hold
    yet: a page of ``limit`` nodes (1000 at most) after the code ``after``."""
    start, size = _parsed(lambda: (org_code(after, "after"),
                                   page_size(limit, PAGE_MAX, PAGE_MAX)))
    page = await centre.read(lambda s: orgs_page(s, who.scope, start, size))
    return {"scope": who.scope, **page.to_json()}


@router.get("/api/orgs/children", tags=["orgs"])
async def org_children(centre: ContextDep, who: Viewer, parent: CodeArg = None,
                       after: CodeArg = None, limit: LimitArg = None) -> dict[str, Any]:
    """The nodes just below ``parent`` (absent: the caller's own scope roots), each with
    ``has_children`` and its number of ``branches``; pages of ``limit`` (200, at most 1000)
    after the code ``after``. 403 ``out_of_scope`` for a parent outside the caller's
    subtree, 404 for a code nobody knows."""
    node, start, size = _parsed(lambda: (org_code(parent, "parent"), org_code(after, "after"),
                                         page_size(limit, CHILDREN_PAGE, PAGE_MAX)))
    if node is not None:
        who.check(node)
        if not await centre.read(lambda s: org_names(s, who.scope, [node])):
            raise ApiError("not_found")
    page = await centre.read(lambda s: children(s, who.scope, node, start, size))
    return {"scope": who.scope, "parent": node, **page.to_json()}


@router.get("/api/orgs/search", tags=["orgs"])
async def org_search(centre: ContextDep, who: Viewer, q: Annotated[str, Query(max_length=200)] = "",
                     kind: KindArg = None, limit: LimitArg = None) -> dict[str, Any]:
    """Nodes of the caller's subtree whose code starts with ``q`` or whose name (Chinese
    or English) holds it, in code order: ``limit`` of them (50 at most), ``more`` when
    there are others. Empty ``q``: the first nodes; ``kind`` keeps one kind."""
    text, size = _parsed(lambda: (search_text(q), page_size(limit, SEARCH_MAX, SEARCH_MAX)))
    page = await centre.read(lambda s: search_orgs(s, who.scope, text, kind, size))
    return {"scope": who.scope, "q": text, **page.to_json()}


@router.get("/api/orgs/names", tags=["orgs"])
async def names(centre: ContextDep, who: Viewer,
                codes: Annotated[str, Query(max_length=9000)] = "") -> dict[str, Any]:
    """The nodes of ``codes`` (comma-separated, 500 at most) for a page's code → name
    map; codes outside the caller's subtree or unknown are left out."""
    wanted = _parsed(lambda: code_list(codes))
    found = await centre.read(lambda s: org_names(s, who.scope, wanted))
    return {"scope": who.scope, "orgs": [o.to_json() for o in found]}


@router.post("/api/orgs", tags=["orgs"], status_code=201)
async def add_node(body: NewOrg, centre: ContextDep, who: OrgsAdmin) -> dict[str, Any]:
    _strictly_below(who, body.code)
    org = await _org_call(centre, lambda s: add_org(s, body.code, body.name, body.kind,
                                                    body.name_en))
    await centre.read(lambda s: audit.record(s, who, "org.create", org.code, org.code,
                                             org.to_json()))
    return org.to_json()


@router.put("/api/orgs/{code}", tags=["orgs"])
async def change_node(code: OrgCode, body: OrgChange, centre: ContextDep, who: OrgsAdmin
                      ) -> dict[str, Any]:
    who.check(code)
    org = await _org_call(centre, lambda s: update_org(s, code, body.name, body.name_en,
                                                       body.kind))
    await centre.read(lambda s: audit.record(s, who, "org.change", code, code,
                                             org.to_json()))
    return org.to_json()


@router.delete("/api/orgs/{code}", tags=["orgs"])
async def delete_node(code: OrgCode, centre: ContextDep, who: OrgsAdmin) -> dict[str, Any]:
    _strictly_below(who, code)
    await _org_call(centre, lambda s: delete_org(s, code))
    await centre.read(lambda s: audit.record(s, who, "org.delete", code, code))
    return {"deleted": code}


def _parsed(parse: Callable[[], _T]) -> _T:
    """What :mod:`central.orgs`' parsers make of a query; ``422 invalid`` saying why."""
    try:
        return parse()
    except OrgError as exc:
        raise ApiError("invalid", detail=exc.message_en, message=exc.message,
                       message_en=exc.message_en) from None


async def _check_can_hold(centre: CentreContext, who: Principal, user: User) -> None:
    """``who`` may give ``user`` this role and scope: inside its subtree, below it."""
    who.check(user.scope)
    if not who.manages(user):
        raise ApiError("forbidden", message="只能为下级机构或较低角色设置用户。",
                       message_en="Users you create or change must be below you: a deeper "
                                  "scope, or a lower role at your own node.")
    known = await centre.read(lambda s: s.execute("SELECT 1 FROM orgs WHERE code = ?",
                                                  (user.scope,)).fetchone())
    if known is None:
        raise ApiError("invalid", detail=f"scope: no org node {user.scope}",
                       message=f"机构 {user.scope} 不存在")


def _strictly_below(who: Principal, code: str) -> None:
    if not (in_scope(who.scope, code) and len(code) > len(who.scope)):
        raise ApiError("out_of_scope")


async def _org_call(centre: CentreContext, fn: Any) -> Any:
    try:
        return await centre.read(fn)
    except OrgError as exc:
        status = "not_found" if exc.code == "not_found" else "conflict"
        raise ApiError(status, message=exc.message, message_en=exc.message_en,
                       detail=exc.message_en) from None


def reset_password(config_path: str | None, overrides: list[str], user_id: str,
                   password: str | None) -> int:
    """``python -m central set-password``: 0 done, 1 no such user, 2 a bad password."""
    import getpass

    from .config import load_centre_config
    from .store import open_store

    if password is None:
        password = getpass.getpass(f"new password for {user_id}: ")
    if not 8 <= len(password) <= 128:
        print("error: a password has 8 to 128 characters", file=sys.stderr)
        return 2
    store = open_store(load_centre_config(config_path, overrides).store.url)
    try:
        user = get_user(store, user_id)
        if user is None:
            print(f"error: no user {user_id!r}", file=sys.stderr)
            return 1
        update_user(store, user, hash_password(password))
        audit.record(store, "cli", "password.reset", user.scope, user.id)
    finally:
        store.close()
    print(f"password of {user_id} reset; their sessions ended")
    return 0
