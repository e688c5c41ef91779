"""Which devices and links a box runs, from its configuration.

Each driver or link family adds its components here; the supervisor runs them.
"""

from __future__ import annotations

from pathlib import Path

from .config import Config
from .supervisor import Component
from .web.settings import web_settings

__all__ = ["build_components"]


def build_components(config: Config, data_dir: Path) -> list[Component]:
    components: list[Component] = []
    web_settings(config)  # the screens' [web] section: a mistake stops the start (exit 2)
    return components
