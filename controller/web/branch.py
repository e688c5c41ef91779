"""The branch as a whole: businesses paused (G3), the kiosks signed in or out, status,
health and the public configuration the kiosks and screens draw themselves with.

Reading is public; changing needs a lobby manager (controller/web/auth.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from common import __version__

from ..engine import commands as c
from ..kiosk import kiosks_view
from ..views import status_view
from .deps import BoxDep, run

__all__ = ["PauseRequest", "router"]


class PauseRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=60, description="shown to customers (A7)")


router = APIRouter(tags=["branch"])


@router.post("/api/queues/{queue}/pause")
async def pause_queue(queue: str, req: PauseRequest, box: BoxDep) -> dict[str, Any]:
    """Pause a business on the kiosks with a reason (G3); tickets are refused (A7)."""
    await run(box, c.PauseQueue(queue, req.reason))
    return {"queue": queue, "paused": True, "reason": req.reason}


@router.post("/api/queues/{queue}/resume")
async def resume_queue(queue: str, box: BoxDep) -> dict[str, Any]:
    await run(box, c.ResumeQueue(queue))
    return {"queue": queue, "paused": False}


@router.post("/api/kiosk/sign-in")
async def sign_in(box: BoxDep) -> dict[str, Any]:
    await run(box, c.SignIn())
    return {"kiosk_open": box.engine.state.kiosk_open}


@router.post("/api/kiosk/sign-out")
async def sign_out(box: BoxDep) -> dict[str, Any]:
    await run(box, c.SignOut())
    return {"kiosk_open": box.engine.state.kiosk_open}


@router.get("/api/status")
async def status(box: BoxDep) -> dict[str, Any]:
    """Waiting per business, current ticket per window, windows open or paused."""
    await box.settled()
    return status_view(box.engine.state, box.config, box.clock.now())


@router.get("/api/health")
async def health(box: BoxDep) -> dict[str, Any]:
    """The box's devices and links; with ``[[kiosks]]``, each kiosk's devices and whether
    it issues tickets now (``kiosks``; the kiosk page shows "out of service" from it)."""
    return {**box.describe(), "version": __version__, "devices": box.health.snapshot(),
            "kiosks": kiosks_view(box),
            "refusals": dict(box.refusals), "journal_failures": box.journal_failures}


@router.get("/api/config")
async def public_config(box: BoxDep) -> dict[str, Any]:
    """What kiosks and screens need to draw themselves (no passwords, no card numbers)."""
    conf = box.config
    return {
        "branch": conf.branch.model_dump(),
        "queues": [q.model_dump(mode="json") for q in conf.queues],
        "menus": [m.model_dump() for m in conf.menus],
        "windows": [w.model_dump() for w in conf.windows],
        "rating_levels": [r.model_dump() for r in conf.rating_levels],
        "hours": conf.hours.model_dump(),
        "version": conf.version,
    }
