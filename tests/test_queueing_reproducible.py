"""A seeded simulated day is the same day on every run and after every speed-up.

The figures below were taken from the simulator before the work of issue 19 (the engine
reading waiting tickets by kind, the simulator's hot path trimmed): the events of three
fixed-seed days, hashed, and their counts. Any change that alters a single event of
these days (a different ticket called, a different time, a different count printed)
fails here; a change meant to alter behaviour must update them and say why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from controller.config import Config, load_config, parse_config
from queueing.day import simulate_day
from queueing.scenario import default_scenario

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "branch.toml"
DAY = dt.date(2026, 11, 25)


def busy_branch() -> Config:
    """The example branch's six window patterns twice (bench/bench_des.py's busy day)."""
    data = load_config(EXAMPLE).model_dump(mode="json")
    data["windows"] += [dict(w, number=w["number"] + 6, name=f"{w['number'] + 6}号窗口",
                             keypad=None, display=None, evaluator=None)
                        for w in data["windows"]]
    data["thresholds"]["branch_waiting_cap"] = 0
    return parse_config(data, "bench")


def summary(config: Config, customers: int | None, seed: int, count_ahead: bool
            ) -> dict[str, Any]:
    scenario = (default_scenario(config, DAY) if customers is None
                else default_scenario(config, DAY, customers))
    run = simulate_day(config, scenario, seed, count_ahead=count_ahead)
    text = json.dumps(run.events, sort_keys=True, ensure_ascii=False)
    return {
        "customers": len(run.customers),
        "events": len(run.events),
        "commands": run.commands,
        "turned_away": dict(sorted(run.turned_away.items())),
        "served": sum(1 for e in run.events if e["type"] == "ticket_finished"),
        "wait_s": round(sum(e["wait_s"] for e in run.events if e["type"] == "ticket_called"), 3),
        "ahead": sum(e["ahead"] or 0 for e in run.events if e["type"] == "ticket_issued"),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


EXPECTED: dict[str, dict[str, Any]] = {
    "example-7": {
        "customers": 384, "events": 1424, "commands": 1428, "turned_away": {}, "served": 382,
        "wait_s": 90242.368, "ahead": 0,
        "sha256": "f55864cb8b9d91e4197e77f98c159cd21c15f4a3c558d4ba5dec3b6e14ba2783"},
    "example-ahead-7": {
        "customers": 384, "events": 1424, "commands": 1428, "turned_away": {}, "served": 382,
        "wait_s": 90242.368, "ahead": 476,
        "sha256": "2dacf1bf19100c707ed50bb3e8b9d7b59fad3e71c9ffee38d1a8a9e39357cafb"},
    "busy-3": {
        "customers": 1023, "events": 3616, "commands": 3426,
        "turned_away": {"daily_limit_reached": 44}, "served": 977, "wait_s": 980416.997,
        "ahead": 0,
        "sha256": "dda40d870385bb8d638c3c5a0b529596ea55830b471daa416e4771e27a8c2248"},
    "busy-ahead-3": {
        "customers": 1023, "events": 3616, "commands": 3426,
        "turned_away": {"daily_limit_reached": 44}, "served": 977, "wait_s": 980416.997,
        "ahead": 19107,
        "sha256": "40c039d106e69eb149c5d41526c7c11a144ef5239ff4ac4641e893bab4942b2f"},
}


@pytest.mark.parametrize(("name", "busy", "customers", "seed", "count_ahead"), [
    ("example-7", False, None, 7, False),
    ("example-ahead-7", False, None, 7, True),
    ("busy-3", True, 1000, 3, False),
    ("busy-ahead-3", True, 1000, 3, True),
])
def test_a_seeded_day_is_the_day_it_always_was(name: str, busy: bool, customers: int | None,
                                               seed: int, count_ahead: bool) -> None:
    config = busy_branch() if busy else load_config(EXAMPLE)
    assert summary(config, customers, seed, count_ahead) == EXPECTED[name]
