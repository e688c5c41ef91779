"""Small branch configurations built in code, for engine tests that need one rule in focus.

Password hashes use scrypt with a tiny cost so thousands of logins stay fast in tests.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from common.passwords import hash_password
from controller.config import Config, parse_config
from controller.engine import Engine, Event, Login

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=CST).timestamp()  # a Wednesday, 10:00
CHEAP = hash_password("1234", n=2, r=1, p=1)

BASE: dict[str, Any] = {
    "branch": {"code": "1001010001", "name": "测试支行"},
    "hours": {"workday": ["00:00-24:00"], "weekend": ["00:00-24:00"],
              "holiday": ["00:00-24:00"]},
    "queues": [
        {"id": "A", "name": "个人业务", "prefix": "A"},
        {"id": "B", "name": "对公业务", "prefix": "B"},
        {"id": "V", "name": "VIP业务", "prefix": "V", "customer_type": "vip"},
    ],
    "windows": [
        {"number": 1, "queues": {"A": 5, "B": 1}},
        {"number": 2, "queues": {"B": 5}},
    ],
    "tellers": [{"id": f"t{i}", "name": f"柜员{i}", "password_hash": CHEAP} for i in (1, 2, 3)],
    "thresholds": {"escalate_after_min": 0, "lobby_alert_waiting": 0,
                   "recalls_before_no_show": 3, "balance_waiting": 5},
}


def branch(**changes: Any) -> Config:
    """The base branch with top-level sections replaced or merged (dicts merge one level)."""
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_config(data, "test")


def engine(cfg: Config | None = None, *, logged_in: tuple[int, ...] = ()) -> Engine:
    e = Engine(cfg or branch())
    for n in logged_in:
        e.handle(Login(n, f"t{n}", "1234"), T0)
    return e


def numbers(events: list[Event], etype: str = "ticket_called") -> list[str]:
    return [e["number"] for e in events if e["type"] == etype]
