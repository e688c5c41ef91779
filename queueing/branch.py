"""The engine configuration of a simulated day: the branch's own, made fit to simulate.

Changes from the branch's config, all invisible to the queueing rules:

* tellers are replaced by one simulated teller per window (``sim_w<n>``) whose password
  hash is a cheap scrypt (n=2), so a log-in costs microseconds, not 50 ms;
* windows serve what the staffing plan says (``staffing.serves``), when it says so;
* a customer type that a business's plain ticket would not carry (a VIP walking up to
  personal banking) arrives with a card of a simulated card type mapping to that business
  and type, as a real VIP's card does.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from common.passwords import hash_password
from controller.config import Config, apply_overrides, parse_config
from protocols.cards import luhn_check_digit

from .scenario import Scenario

__all__ = ["SIM_PASSWORD", "card_for", "expand_overrides", "sim_config", "teller_id"]

SIM_PASSWORD = "sim"
_CARD_PREFIX = "99990"  # simulated card types: 99990kk… (kk = stream's index)


def teller_id(window: int) -> str:
    return f"sim_w{window}"


@functools.cache
def _cheap_hash() -> str:
    return hash_password(SIM_PASSWORD, n=2, r=1, p=1)


def sim_config(config: Config, scenario: Scenario, overrides: Sequence[str] = ()) -> Config:
    """The config the simulated day's engine runs on (see the module docstring).

    ``overrides`` are ``--set`` style ``key.path=value`` strings applied last; ``*`` as a
    list index means every item (``windows.*.balancing=false``).
    """
    data = config.model_dump(mode="json")
    data["tellers"] = [
        {"id": teller_id(w.number), "name": f"模拟柜员{w.number}", "password_hash": _cheap_hash()}
        for w in config.windows
    ]
    for w in data["windows"]:
        serves = scenario.staffing.serves.get(w["number"])
        if serves is not None:
            w["queues"] = dict(serves)
    data["card_types"] = _sim_card_types(config, scenario) + data["card_types"]
    apply_overrides(data, expand_overrides(data, overrides))
    return parse_config(data, "simulation")


def expand_overrides(data: dict[str, Any], overrides: Sequence[str]) -> list[str]:
    """Expand ``list.*.key=value`` into one override per list item."""
    out: list[str] = []
    for item in overrides:
        path, sep, value = item.partition("=")
        head, star, tail = path.partition(".*.")
        if not star:
            out.append(item)
            continue
        node: Any = data
        for part in head.split("."):
            node = node.get(part, []) if isinstance(node, dict) else []
        out.extend(f"{head}.{i}.{tail}{sep}{value}" for i in range(len(node)))
    return out


def card_for(config: Config, queue: str, customer_type: str) -> str | None:
    """A card number that the engine maps to (``queue``, ``customer_type``), if any."""
    for ct in config.card_types:
        if ct.id == f"sim_{queue}_{customer_type}":
            body = ct.prefix.ljust(15, "0")
            return body + luhn_check_digit(body)  # a number that passes the Luhn check
    return None


def _sim_card_types(config: Config, scenario: Scenario) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k, s in enumerate(scenario.arrivals):
        if s.customer_type is None or any(c["id"] == f"sim_{s.queue}_{s.customer_type}"
                                          for c in out):
            continue
        out.append({
            "id": f"sim_{s.queue}_{s.customer_type}", "name": "模拟卡",
            "prefix": f"{_CARD_PREFIX}{k:03d}", "queue": s.queue,
            "customer_type": s.customer_type, "stars": 0,
        })
    return out
