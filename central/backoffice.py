"""Back office routes (placeholder while being written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from .service import Centre


def backoffice_router(centre: Centre) -> APIRouter:
    return APIRouter()
