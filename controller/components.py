"""Which configuration a box runs on, and its components.

:class:`Startup` decides which configuration that is: the local file's, or the centre's
last push, checked the one same way at start and when the centre pushes one. The
components a configuration asks for are built by the composition root
(controller/compose.py), which :mod:`controller.__main__` hands in as ``Startup.build``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import ConfigError

from .config import Config
from .supervisor import Component
from .uplink.commands import (
    PREVIOUS,
    PUSHED,
    WrongBranch,
    checked_push,
    config_command,
    read_pushed,
    set_aside,
)

__all__ = ["Start", "Startup", "WrongBranch"]

log = logging.getLogger(__name__)


Build = Callable[[Config, Path], list[Component]]


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
    build: Build  # config -> its components: the composition root's (controller/compose.py)

    def check(self, pushed: dict[str, Any] | None, source: str
              ) -> tuple[Config, list[Component]]:
        """The one check a configuration passes before the box runs on it, at start and
        when the centre pushes one: the push merged with the local sections and the
        overrides, every section parsed, the device wiring and screens built.

        Raises :class:`ConfigError` (:class:`WrongBranch` for another branch's).
        """
        if pushed is None:
            return self.local, self.build(self.local, self.data_dir)
        config = checked_push(self.local, self.overrides, pushed, source)
        return config, self.build(config, self.data_dir)

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
            start = Start(self.local, self.build(self.local, self.data_dir))
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
