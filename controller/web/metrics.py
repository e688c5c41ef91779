"""``GET /metrics`` on the box: Prometheus text of :func:`controller.metrics.collect`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from protocols.metrics import CONTENT_TYPE, render

from ..metrics import collect
from .deps import BoxDep

__all__ = ["router"]

router = APIRouter(tags=["branch"])


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(box: BoxDep) -> PlainTextResponse:
    """Waiting, windows, devices, journal, and the uplink's outbox and link state."""
    return PlainTextResponse(render(await collect(box)), media_type=CONTENT_TYPE)
