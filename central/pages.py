"""Pages (placeholder while being written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from .service import Centre


def mount_pages(app: FastAPI, centre: Centre) -> None:
    return None
