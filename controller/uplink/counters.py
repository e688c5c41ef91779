"""The link's daily counters (SPEC F1): connection failures, timeouts, retries, per day.

When the box's day changes, the finished day's counters are logged and appended to
``{data_dir}/uplink/link-days.jsonl``, then start again from zero. The file keeps the last
:data:`DAYS_KEPT` days (about 120 KB), oldest dropped first.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["DAYS_KEPT", "LinkCounters"]

DAYS_KEPT = 400  # a year and a bit of daily link counters

log = logging.getLogger(__name__)


@dataclass
class LinkCounters:
    day: str = ""
    connects: int = 0
    connection_failures: int = 0  # could not connect (refused, unreachable, bad login)
    disconnects: int = 0  # a connection that was up dropped
    timeouts: int = 0  # a publish not confirmed in time, or no ack progress in time
    retries: int = 0  # events sent again after a timeout or a reconnect
    replays: int = 0  # replay requests answered
    batches_sent: int = 0
    events_sent: int = 0
    rejected: int = 0  # malformed messages received (logged and dropped)
    broker_switches: int = 0  # moved to the next broker of uplink.broker's list

    def roll(self, day: str, log_file: Path | None = None) -> None:
        """Start a new day; keep the finished day's counters in the log."""
        if day == self.day:
            return
        if self.day:
            record = json.dumps(asdict(self))
            log.info("uplink link counters for %s: %s", self.day, record)
            if log_file is not None:
                _append_kept(log_file, record)
        self.__dict__.update(asdict(LinkCounters(day=day)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _append_kept(path: Path, line: str) -> None:
    """Append ``line``, keeping the last :data:`DAYS_KEPT` lines (replaced atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join([*lines, line][-DAYS_KEPT:]) + "\n", encoding="utf-8")
    os.replace(tmp, path)
