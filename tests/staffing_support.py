"""A branch's history for the staffing advice tests: days simulated on the real engine,
numbered as the box's journal numbers them, stored as the centre's ingest stores them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from central.store import EventBatch, Inbound, Store
from controller.config import Config
from queueing.day import simulate_day
from queueing.scenario import default_scenario

ADVISED = dt.date(2026, 11, 23)  # a Monday; the history is the week before it
HISTORY = [ADVISED - dt.timedelta(d) for d in range(7, 2, -1)]  # Mon 16 … Fri 20


def history(config: Config) -> list[dict[str, Any]]:
    """Five workdays of the branch's default profile, one journal (``seq`` 1, 2, …)."""
    events: list[dict[str, Any]] = []
    for i, day in enumerate(HISTORY):
        events += simulate_day(config, default_scenario(config, day), seed=i).events
    return [{**e, "seq": n} for n, e in enumerate(events, 1)]


def store_history(store: Store, branch: str, events: list[dict[str, Any]]) -> None:
    store.ingest(Inbound(batches=[EventBatch(branch, "e1", events)]))
