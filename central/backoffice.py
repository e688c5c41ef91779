"""Back-office routes: branch configurations (G2), live control (G3), the audit log.

* ``GET /api/branches/{code}/config`` — the latest version, by section (TOML, VIP numbers
  masked, password hashes left out), and the recent pushes with the box's answers.
* ``PUT /api/branches/{code}/config/sections/{section}`` — a section's new TOML: validated
  by the box's own rules (422 names the key), stored as the next version.
* ``POST /api/branches/{code}/config/import`` — a whole branch TOML as the next version.
* ``POST /api/branches/{code}/config/push`` — send a version (``cmd/config``); the box's
  answer arrives on ``reply`` and shows in the pushes.
* ``GET /api/config-status?org=`` — which branch runs which version.
* ``POST /api/branches/{code}/queues/{queue}/pause`` (with a reason) and ``…/resume``.
* ``PUT /api/office/alert-thresholds/{org}`` — a node's own alert thresholds from the
  /alerts page's form (as ``PUT /api/alerts/thresholds/{org}``, keeping masked phones).
* ``GET /api/audit`` — who did what, when, newest first.

Every change and command is written to the audit log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, Field, ValidationError

from protocols.appointment import mask_phone

from . import audit
from . import configs as cf
from .auth import ApiError, Principal
from .deps import Auditor, Configurer, ContextDep, Controller, Viewer
from .live import OrgQuery
from .orgs import list_orgs

if TYPE_CHECKING:
    from .context import CentreContext

__all__ = ["router"]

Code = Annotated[str, Path(pattern=r"^\d{4,16}$", description="branch code")]
OrgCode = Annotated[str, Path(pattern=r"^\d{4,16}$", description="org or branch code")]
Section = Annotated[str, Path(pattern=r"^[a-z]{1,20}$")]
QueueId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_]{1,16}$")]


class SectionText(BaseModel):
    text: str = Field(max_length=500_000)
    comment: str = Field("", max_length=200)
    base: int = Field(ge=1, description="the version this edit started from")


class ImportText(BaseModel):
    text: str = Field(max_length=1_000_000)
    comment: str = Field("", max_length=200)


class Push(BaseModel):
    version: int = Field(ge=1)


class Pause(BaseModel):
    reason: str = Field(min_length=1, max_length=60)


router = APIRouter(tags=["back office"])


async def _problem(centre: CentreContext, call: Any) -> Any:
    """``centre.read(call)``, a configuration's problem answered 409 or 422 naming the key."""
    try:
        return await centre.read(call)
    except cf.ConfigProblem as exc:
        code = "conflict" if exc.key == "(version)" else "invalid"
        raise ApiError(code, message=f"{exc.key}: {exc.problem}",
                       message_en=f"{exc.key}: {exc.problem}",
                       extra={"key": exc.key, "problem": exc.problem}) from None


# --- configurations -----------------------------------------------------------------


@router.get("/api/branches/{code}/config")
async def config(code: Code, centre: ContextDep, who: Viewer) -> dict[str, Any]:
    """The latest version by section, and the recent pushes."""
    _may_read_config(who, code)
    top = await centre.read(lambda s: cf.latest(s, code))
    pushes = await centre.read(lambda s: cf.pushes(s, code))
    return {"branch": code, "latest": _head(top), "pushes": pushes,
            "sections": _sections(top)}


@router.get("/api/branches/{code}/config/versions")
async def config_versions(code: Code, centre: ContextDep, who: Viewer) -> dict[str, Any]:
    _may_read_config(who, code)
    return {"branch": code, "versions": await centre.read(lambda s: cf.versions(s, code))}


@router.get("/api/branches/{code}/config/versions/{number}")
async def config_version(code: Code, number: int, centre: ContextDep, who: Viewer
                         ) -> dict[str, Any]:
    _may_read_config(who, code)
    found = await centre.read(lambda s: cf.version(s, code, number))
    if found is None:
        raise ApiError("not_found")
    return {"branch": code, "version": _head(found), "sections": _sections(found)}


@router.put("/api/branches/{code}/config/sections/{section}", status_code=201)
async def save_section(code: Code, section: Section, body: SectionText,
                       centre: ContextDep, who: Configurer) -> dict[str, Any]:
    """Validate a section's TOML against the box's rules; store the next version."""
    who.check(code)
    number = await _problem(centre, lambda s: cf.save_section(s, code, section, body.text,
                                                     body.comment, who.id, body.base))
    await centre.read(lambda s: audit.record(s, who, "config.save", code,
                                             f"v{number}", {"section": section,
                                                            "comment": body.comment}))
    return {"branch": code, "version": number}


@router.post("/api/branches/{code}/config/import", status_code=201)
async def import_config(code: Code, body: ImportText, centre: ContextDep, who: Configurer
                        ) -> dict[str, Any]:
    who.check(code)
    number = await _problem(centre, lambda s: cf.import_config(s, code, body.text, body.comment,
                                                      who.id))
    await centre.read(lambda s: audit.record(s, who, "config.import", code, f"v{number}",
                                             {"comment": body.comment}))
    return {"branch": code, "version": number}


@router.post("/api/branches/{code}/config/push", status_code=202)
async def push(code: Code, body: Push, centre: ContextDep, who: Configurer) -> dict[str, Any]:
    """Send a version to the branch; its answer shows in ``GET …/config``."""
    who.check(code)
    found = await centre.read(lambda s: cf.version(s, code, body.version))
    if found is None:
        raise ApiError("not_found")
    cmd_id = cf.new_push_id(code, body.version)
    await _send(centre, code, "config", {"id": cmd_id, "config": found["body"]})
    await centre.read(lambda s: cf.record_push(s, cmd_id, code, body.version, who.id))
    await centre.read(lambda s: audit.record(s, who, "config.push", code,
                                             f"v{body.version}", {"id": cmd_id}))
    return {"branch": code, "version": body.version, "id": cmd_id}


@router.get("/api/config-status")
async def config_status(org: OrgQuery, centre: ContextDep, who: Viewer) -> dict[str, Any]:
    """Which branch of ``org``'s subtree runs which configuration version."""
    who.check(org)

    def read(s: Any) -> list[dict[str, Any]]:
        known = [b["branch"] for b in s.branches()]
        nodes = list_orgs(s, known)
        codes = [o.code for o in nodes if o.kind == "branch" and o.code.startswith(org)]
        rows = cf.config_status(s, codes)
        names = {o.code: o.name for o in nodes}
        return [{**r, "name": names.get(r["branch"], r["branch"])} for r in rows]

    return {"org": org, "branches": await centre.read(read)}


# --- live control (G3) -------------------------------------------------------------


@router.post("/api/branches/{code}/queues/{queue}/pause", status_code=202)
async def pause(code: Code, queue: QueueId, body: Pause, centre: ContextDep, who: Controller
                ) -> dict[str, Any]:
    """Pause a business at the branch: its kiosks refuse it, saying ``reason`` (A7)."""
    who.check(code)
    cmd_id = await _send(centre, code, "pause", {"queue": queue, "reason": body.reason})
    await centre.read(lambda s: audit.record(s, who, "queue.pause", code, queue,
                                             {"reason": body.reason, "id": cmd_id}))
    return {"branch": code, "queue": queue, "id": cmd_id}


@router.post("/api/branches/{code}/queues/{queue}/resume", status_code=202)
async def resume(code: Code, queue: QueueId, centre: ContextDep, who: Controller
                 ) -> dict[str, Any]:
    who.check(code)
    cmd_id = await _send(centre, code, "resume", {"queue": queue})
    await centre.read(lambda s: audit.record(s, who, "queue.resume", code, queue,
                                             {"id": cmd_id}))
    return {"branch": code, "queue": queue, "id": cmd_id}


# --- alert thresholds (the /alerts page's form) -------------------------------------


@router.put("/api/office/alert-thresholds/{code}")
async def save_thresholds(code: OrgCode, body: Annotated[dict[str, Any], Body()],
                          centre: ContextDep, who: Controller) -> dict[str, Any]:
    """Set a node's own alert thresholds (the keys given; the rest inherited). The
    form was shown the node's phones masked: a masked number it sends back
    (``138****5678``) keeps the stored number it stands for. 422 lists each bad key."""
    from .alerts import Thresholds, change_thresholds, effective_thresholds, load_thresholds
    from .alerts import masked as masked_settings

    who.check(code)
    own = (await centre.read(load_thresholds)).get(code, {})
    try:
        settings = Thresholds.model_validate(_keep_masked_phones(body, own)).set_keys()
    except ValidationError as exc:
        fields = [{"key": str(e["loc"][0]) if e["loc"] else "", "type": e["type"],
                   "msg": e["msg"], "ctx": {k: str(v) for k, v in
                                            (e.get("ctx") or {}).items()}}
                  for e in exc.errors()]
        text = "; ".join(f"{f['key']}: {f['msg']}" for f in fields)
        raise ApiError("invalid", detail=text, message=f"预警设置有误:{text}",
                       extra={"fields": fields}) from None
    await centre.read(lambda s: change_thresholds(s, code, settings, who.id, who.address))
    nodes = await centre.read(load_thresholds)
    return {"org": code, "own": masked_settings(nodes.get(code, {})),
            "effective": masked_settings(effective_thresholds(nodes, code))}


# --- the audit log -----------------------------------------------------------------


@router.get("/api/audit")
async def audit_log(centre: ContextDep, who: Auditor,
                    org: Annotated[str | None, Query(pattern=r"^\d{4,16}$")] = None,
                    action: Annotated[str | None, Query(max_length=40)] = None,
                    before: Annotated[int | None, Query(ge=1)] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """Who did what and when, about the caller's subtree (and the caller's own
    logins), newest first; page with ``before`` = the last row's id."""
    if org is not None:
        who.check(org)
    rows = await centre.read(lambda s: audit.read_audit(
        s, who.scope, who.id, limit=limit, before=before, action=action, org=org))
    return {"rows": rows}


def _keep_masked_phones(body: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``body`` with each masked phone that stands for one of ``own['sms_to']`` replaced by
    that number (anything else is left for the validation to judge)."""
    phones = body.get("sms_to")
    if not isinstance(phones, list):
        return body
    stored = {mask_phone(p): p for p in own.get("sms_to") or []}
    return {**body, "sms_to": [stored.get(p, p) if isinstance(p, str) else p for p in phones]}


def _may_read_config(who: Principal, code: str) -> None:
    who.check(code)
    if not (who.can("configure") or who.can("audit")):
        raise ApiError("forbidden")


def _head(v: dict[str, Any] | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {k: v[k] for k in ("version", "section", "comment", "author", "created_at")}


def _sections(v: dict[str, Any] | None) -> list[dict[str, str]]:
    if v is None:
        return []
    return [{"name": name, "title": title, "text": cf.section_text(v["body"], name)}
            for name, (_, title) in cf.SECTIONS.items()]


async def _send(centre: CentreContext, code: str, name: str, args: dict[str, Any]) -> str:
    try:
        return await centre.send_command(code, name, dict(args))
    except ValueError as exc:
        raise ApiError("invalid", detail=str(exc), message=str(exc)) from None
    except ConnectionError as exc:
        raise ApiError("unavailable", detail=str(exc),
                       message="中心暂时无法连接消息服务器,请稍后再试。") from None
