"""The data folder's disk budget: warn before the journal runs out of room, stop issuing
before it does.

The journal, its snapshots, the media folder and the appointment book share the data
folder's file system. When its free space falls under ``journal.disk_warn_mb`` the box
raises a health alarm (``disk``: ``warning``, shown on the lobby page and sent to the
centre with the rest of the health) and pops up a lobby notice once; under
``journal.disk_stop_mb`` the alarm is a ``fault`` and the kiosk, the ticket buttons and the
card readers refuse new tickets with ``disk_full`` (503) instead of letting a commit fail
half-way. Tellers can still call and finish the customers already waiting: those events are
small, and the stop margin is there for them. Back over the warning mark plus 10 % the
alarm clears (hysteresis, so a folder hovering at the mark does not flap).

The free figure comes from :attr:`DiskBudget.free`, a function of the folder (``statvfs``
by default), so tests can simulate a full disk. Before a ticket it is measured again only
when the last measure is :data:`RECHECK_S` old (by the box's clock) or was not ``ok``: a
system call per ticket cost the HTTP bench ~5 % on a loaded machine, and the tickets of
one second (a few kilobytes each, at a thousand a second) are far inside the stop margin.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from .config import JournalConfig
from .errors import Refused
from .health import Health, State

__all__ = ["MB", "RECHECK_S", "DiskBudget", "Level", "free_bytes"]

MB = 1_000_000
RECHECK_S = 1.0  # before a ticket, with the disk fine: measure again at most this often
Level = Literal["ok", "low", "full"]
FreeBytes = Callable[[Path], int]
_RANK = {"ok": 0, "low": 1, "full": 2}
_HEALTH: dict[str, State] = {"ok": "ok", "low": "warning", "full": "fault"}
_WORDS: dict[str, tuple[str, str]] = {
    "low": ("数据盘剩余空间不足({free} MB),请联系运维清理或更换存储卡。",
            "The box's data disk is low ({free} MB free): ask IT to free space."),
    "full": ("数据盘空间已满({free} MB),已暂停取号,请立即联系运维。",
             "The box's data disk is full ({free} MB free): ticketing is stopped. Call IT now."),
}


def free_bytes(path: Path) -> int:
    """Bytes free to an unprivileged writer in the file system holding ``path``."""
    try:  # one system call per ticket (asked before each): no exists() before it
        st = os.statvfs(path)
    except FileNotFoundError:
        st = os.statvfs(path.parent)
    return st.f_bavail * st.f_frsize


class DiskBudget:
    """Watches the data folder's free space (see the module's docstring).

    Args:
        path: the data folder.
        settings: ``[journal]`` (``disk_warn_mb``, ``disk_stop_mb``).
        health: where the ``disk`` alarm is reported.
        notify: posts a lobby notice (controller/notices.py) when the level gets worse.
        free: the free-space function (tests pass a fake).
        clock: the box's clock (epoch seconds); None: measure before every ticket.
    """

    def __init__(self, path: Path, settings: JournalConfig, *, health: Health,
                 notify: Callable[[dict[str, Any]], Any] | None = None,
                 free: FreeBytes = free_bytes, clock: Callable[[], float] | None = None
                 ) -> None:
        self.path, self.health, self.notify, self.free = path, health, notify, free
        self.clock = clock
        self.measured_at: float | None = None  # by ``clock``, of the latest measure
        self.warn = settings.disk_warn_mb * MB
        self.stop = min(settings.disk_stop_mb, settings.disk_warn_mb) * MB
        self.level: Level | None = None  # not measured yet
        self.free_now = -1

    def check(self) -> Level:
        """Measure, update the alarm, notify on a worse level; returns the level."""
        try:
            free = self.free(self.path)
        except OSError:  # the folder is gone or unreadable: the journal will say more
            return self.level or "ok"
        self.free_now = free
        self.measured_at = self.clock() if self.clock is not None else None
        level = self._level(free)
        if level != self.level:
            worse = _RANK[level] > _RANK[self.level or "ok"]
            self.level = level
            self.health.report("disk", _HEALTH[level], "" if level == "ok" else level)
            if worse and self.notify is not None:
                zh, en = _WORDS[level]
                mb = free // MB
                self.notify({"kind": "disk_" + level, "title": "磁盘空间 Disk space",
                             "message": zh.format(free=mb), "message_en": en.format(free=mb)})
        return level

    def _level(self, free: int) -> Level:
        if free < self.stop:
            return "full"
        if free < self.warn or (self.level in ("low", "full") and free < self.warn * 1.1):
            return "low"
        return "ok"

    def admit_ticket(self) -> None:
        """Before a ticket is issued: raise ``Refused("disk_full")`` under the stop mark."""
        level = self.level
        if level != "ok" or self.clock is None or self.measured_at is None \
                or not 0 <= self.clock() - self.measured_at < RECHECK_S:
            level = self.check()
        if level == "full":
            raise Refused("disk_full", free=max(self.free_now, 0) // MB)
