"""The head office's reports and alerts, one router with one scope (central/reports,
central/alerts): the reports do not know the alerts, the alerts take the reports' scope
types, and this module puts the two side by side."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request

from .alerts import alerts_router
from .reports.api import LabelsOf, ScopeOf, reports_router

if TYPE_CHECKING:
    from .context import CentreContext

__all__ = ["head_office_router"]


def head_office_router(centre: CentreContext, *, scope: ScopeOf | None,
                       acting: Callable[[Request], Awaitable[str]] | None,
                       labels: LabelsOf | None = None) -> APIRouter:
    """Reports and alerts; ``app.include_router(head_office_router(centre, scope=…,
    acting=…))``.

    Args:
        centre: the centre whose store is read.
        scope: the caller's allowed org prefixes (required; None: every route 403).
        acting: who acknowledges an alert (None: the request body names them).
        labels: names for codes (None: from the branches' live snapshots).
    """
    router = APIRouter()
    router.include_router(reports_router(centre, scope=scope, labels=labels))
    router.include_router(alerts_router(centre, scope=scope, acting=acting))
    return router
