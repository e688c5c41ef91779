"""Which devices and links a box runs, from its configuration.

Each driver or link family adds its components here; the supervisor runs them.
:class:`Startup` decides which configuration that is: the local file's, or the centre's
last push, checked the one same way at start and when the centre pushes one.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.card_reader import CardReader
from drivers.gpio import GpioPanel
from drivers.lobby import build_lobby_devices
from drivers.printer import printer_component
from drivers.rs485.component import rs485_components

from .appointments import build_appointments
from .config import Config, apply_overrides, parse_config, section
from .errors import ConfigError
from .kiosk import KioskRelay
from .supervisor import Component
from .update import update_component
from .uplink.commands import (
    PREVIOUS,
    PUSHED,
    config_command,
    merge_pushed,
    read_pushed,
    set_aside,
)
from .watchdog import Watchdog
from .web.settings import web_settings

__all__ = ["Start", "Startup", "WrongBranch", "build_components"]

log = logging.getLogger(__name__)


class WrongBranch(ConfigError):
    """A configuration made for another branch than this box's."""


def build_components(config: Config, data_dir: Path) -> list[Component]:
    """The components ``config`` asks for. Raises :class:`ConfigError` naming the key.

    Building one opens nothing (ports, pins, files and links are opened when the
    supervisor runs it), so this is also how a pushed configuration's wiring is checked.
    """
    components: list[Component] = []
    web_settings(config)  # the screens' [web] section: a mistake stops the start (exit 2)
    if (printer := printer_component(config, data_dir)) is not None:
        components.append(printer)
    lobby = build_lobby_devices(config, data_dir)  # voice, hall display, cards, GPIO
    components += lobby
    # what a card swipe or a ticket button did is shown on the kiosk page (docs/screens.md)
    outcomes = [d.listeners for d in lobby if isinstance(d, CardReader | GpioPanel)]
    if outcomes:
        components.append(KioskRelay(outcomes))
    components.extend(rs485_components(config, data_dir))  # keypads, displays, evaluators
    if (updater := update_component(config, data_dir)) is not None:
        components.append(updater)  # software updates from the centre (F4)
    if config.uplink:  # the link to the centre (docs/uplink.md)
        from .uplink import Uplink, UplinkSettings
        from .uplink.media import store_media

        uplink = Uplink(section(config, "uplink", UplinkSettings))
        uplink.register_command("media", store_media)  # kiosk media from the centre
        if updater is not None:
            uplink.use_updater(updater)  # cmd/update in, its reports out on reply
        components.append(uplink)
    components += build_appointments(config, data_dir, components)  # docs/appointments.md
    components.append(Watchdog())  # sd_notify READY/WATCHDOG under systemd; else ends at once
    return components


@dataclass(frozen=True, slots=True)
class Start:
    """What :meth:`Startup.begin` chose: the configuration, its components, and why a kept
    push was set aside (empty: none was)."""

    config: Config
    components: list[Component]
    set_aside: str = ""


@dataclass(frozen=True, slots=True)
class Startup:
    """How this box makes its configuration: its local file (with the ``--set``
    overrides, already applied to ``local``) and what the centre pushed."""

    local: Config
    overrides: tuple[str, ...]
    data_dir: Path

    def check(self, pushed: dict[str, Any] | None, source: str
              ) -> tuple[Config, list[Component]]:
        """The one check a configuration passes before the box runs on it, at start and
        when the centre pushes one: the push merged with the local sections and the
        overrides, every section parsed, the device wiring and screens built.

        Raises :class:`ConfigError` (:class:`WrongBranch` for another branch's).
        """
        if pushed is None:
            return self.local, build_components(self.local, self.data_dir)
        if not isinstance(pushed, dict):
            raise ConfigError("(root)", "expected a table", source)
        merged = merge_pushed(copy.deepcopy(pushed), self.local.model_dump(mode="json"))
        config = parse_config(apply_overrides(merged, self.overrides), source)
        if config.branch.code != self.local.branch.code:
            raise WrongBranch("branch.code", f"{config.branch.code}, this box is "
                                             f"{self.local.branch.code}", source)
        return config, build_components(config, self.data_dir)

    def begin(self, now: float) -> Start:
        """The configuration to start on: the centre's last push if it can start, else the
        push before it, else the local file (whose own error stops the start: exit 2).
        A kept push that cannot start is set aside, never retried at every restart."""
        problems: list[str] = []
        start: Start | None = None
        for name in (PUSHED, PREVIOUS):
            path = self.data_dir / name
            if start is not None or not path.exists():
                continue
            try:
                config, components = self.check(read_pushed(path), str(path))
            except ConfigError as exc:
                aside = self._aside(path, now)
                problems.append(f"{name}: {exc.key}: {exc.problem} (kept as {aside})")
                continue
            if name == PREVIOUS:  # it is what runs now: the next push makes it previous
                os.replace(path, self.data_dir / PUSHED)
            start = Start(config, components)
        if start is None:
            start = Start(self.local, build_components(self.local, self.data_dir))
        for problem in problems:
            log.error("centre configuration set aside, it cannot start: %s", problem)
        self._wire(start.components)
        return Start(start.config, start.components, "; ".join(problems))

    def _aside(self, path: Path, now: float) -> str:
        try:
            return set_aside(path, now).name
        except OSError as exc:  # a read-only disk: start anyway, try again next time
            return f"not renamed: {exc}"

    def _wire(self, components: Iterable[Component]) -> None:
        """The uplink's ``config`` command checks pushes against this same startup."""
        from .uplink import Uplink

        for comp in components:
            if isinstance(comp, Uplink):
                comp.register_command("config", config_command(self))
