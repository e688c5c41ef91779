"""Branch configurations at the centre (placeholder while being written)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import Centre
    from .settings import OrgSeed


async def seed_configs(centre: Centre, seeds: Iterable[OrgSeed]) -> None:
    return None
