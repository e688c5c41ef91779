"""``GET /metrics`` on the box: Prometheus text of :func:`controller.metrics.collect`."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from protocols.metrics import CONTENT_TYPE, render

from ..box import Box
from ..metrics import collect

__all__ = ["install_metrics"]


def install_metrics(app: FastAPI, box: Box) -> None:
    @app.get("/metrics", tags=["branch"], response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Waiting, windows, devices, journal, and the uplink's outbox and link state."""
        return PlainTextResponse(render(await collect(box)), media_type=CONTENT_TYPE)
