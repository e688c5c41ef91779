"""The centre's commands waiting to run on the box: bounded, with pushes that replace each
other coalesced to the latest. No I/O: the uplink answers what :meth:`CommandInbox.offer`
says must be answered.

Commands run one at a time (controller/uplink/link.py). While one runs, more may arrive:

* a command whose kind *replaces* an earlier one — an appointment list for a day
  (``cmd/appointments``, the whole list of that branch-day) — takes the place of the one
  of the same day still waiting: the newer goes to the back of the line, the older is
  answered ``superseded`` (as is a later re-send of its id). 5,489 pushes in 4 minutes
  are then at most one list per day waiting, not 8 GB;
* the same command again (a re-send of an id still waiting) is waiting already;
* any other command waits in line, unless ``limit`` commands already do: then it is
  answered ``busy`` at once, and the centre may send it again later. Nothing is dropped
  without an answer; refusals are counted (``busy``, ``superseded``) and logged.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from .commands import CommandRefused

__all__ = ["CommandInbox", "replaces"]

REMEMBERED = 500  # superseded ids answered again if re-sent

Command = tuple[str, dict[str, Any]]


def replaces(name: str, msg: dict[str, Any]) -> Hashable | None:
    """What a command replaces when it is still waiting (None: it replaces nothing)."""
    if name == "appointments":
        return ("appointments", msg.get("day"))
    return None


class CommandInbox:
    """Commands in arrival order, at most ``limit`` waiting (see the module docstring)."""

    def __init__(self, limit: int,
                 key: Callable[[str, dict[str, Any]], Hashable | None] = replaces) -> None:
        self.limit, self.key = limit, key
        self._waiting: OrderedDict[Hashable, Command] = OrderedDict()
        self._superseded: OrderedDict[str, str] = OrderedDict()  # id -> by which id
        self.refused: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._waiting)

    def offer(self, name: str, msg: dict[str, Any]) -> list[tuple[Command, CommandRefused]]:
        """Take a command; return the commands to answer now with a refusal (the offered
        one when it is refused, older ones it supersedes)."""
        cmd_id = str(msg["id"])
        by = self._superseded.get(cmd_id)
        if by is not None:
            return [((name, msg), self._refuse("superseded", by))]
        slot = self.key(name, msg) or ("id", cmd_id)
        old = self._waiting.get(slot)
        if old is not None and str(old[1]["id"]) == cmd_id:
            return []  # a re-send of a command still waiting: it is answered when it runs
        if old is None and len(self._waiting) >= self.limit:
            return [((name, msg), self._refuse("busy"))]
        self._waiting.pop(slot, None)
        self._waiting[slot] = (name, msg)
        if old is None:
            return []
        old_id = str(old[1]["id"])
        self._superseded[old_id] = cmd_id
        while len(self._superseded) > REMEMBERED:
            self._superseded.popitem(last=False)
        return [(old, self._refuse("superseded", cmd_id))]

    def take(self) -> Command | None:
        """The next command to run, or None."""
        if not self._waiting:
            return None
        return self._waiting.popitem(last=False)[1]

    def _refuse(self, code: str, by: str = "") -> CommandRefused:
        self.refused[code] += 1
        if code == "busy":
            return CommandRefused("busy", "主机繁忙,请稍后重发",
                                  f"the box has {self.limit} commands waiting; send it again "
                                  "later")
        return CommandRefused("superseded", "已被更新的同类命令取代,未执行",
                              f"not run: superseded by command {by}")
