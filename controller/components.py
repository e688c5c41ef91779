"""Which devices and links a box runs, from its configuration.

Each driver or link family adds its components here; the supervisor runs them.
"""

from __future__ import annotations

from pathlib import Path

from .config import Config, section
from .supervisor import Component

__all__ = ["build_components"]


def build_components(config: Config, data_dir: Path) -> list[Component]:
    components: list[Component] = []
    if config.uplink:
        from .uplink import Uplink, UplinkSettings

        components.append(Uplink(section(config, "uplink", UplinkSettings)))
    return components
