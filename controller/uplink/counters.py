"""The link's daily counters (SPEC F1): connection failures, timeouts, retries, per day.

When the box's day changes, the finished day's counters are logged and appended to
``{data_dir}/uplink/link-days.jsonl``, then start again from zero.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["LinkCounters"]

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

    def roll(self, day: str, log_file: Path | None = None) -> None:
        """Start a new day; keep the finished day's counters in the log."""
        if day == self.day:
            return
        if self.day:
            record = json.dumps(asdict(self))
            log.info("uplink link counters for %s: %s", self.day, record)
            if log_file is not None:
                log_file.parent.mkdir(parents=True, exist_ok=True)
                with log_file.open("a", encoding="utf-8") as f:
                    f.write(record + "\n")
        self.__dict__.update(asdict(LinkCounters(day=day)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
