"""The alert desk on a test store, its clock and live figures: shared by the alert tests."""

from __future__ import annotations

from typing import Any

import pytest

from central.alerts import (
    AlertDesk,
    list_alerts,
)
from central.config import load_centre_config
from central.reports.scope import Scope
from central.sms import LogSms
from central.store import Store, open_store
from protocols import uplink as proto
from tests.reports_support import (
    T0_ALERTS,
)


@pytest.fixture
def store(store_url: str) -> Any:
    s = open_store(store_url)
    yield s
    s.close()


class Publish:
    """Stands for the centre's MQTT publish (the real one: tests at the end)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.down = False  # not connected to the broker (Centre.send_command's error)
        self.refuse = False  # the publish itself fails

    async def __call__(self, branch: str, args: dict[str, Any]) -> str:
        if self.down:
            raise ConnectionError("the centre is not connected to the broker")
        if self.refuse:
            raise OSError("publish failed")
        cmd = {k: v for k, v in args.items() if k != "id"}  # checked as send_command does
        proto.validate(proto.parse_topic(proto.topic(branch, "cmd", "alert")),
                       proto.command(str(args["id"]), **cmd))
        self.sent.append((branch, args))
        return str(args["id"])


class Desk:
    """An AlertDesk on the test's store, with a hand-set clock."""

    def __init__(self, store_url: str, now: float, *sets: str) -> None:
        self.now = now
        self.publish = Publish()
        self.sms = LogSms()
        cfg = load_centre_config(None, [f"store.url={store_url}", *sets])
        self.desk = AlertDesk(cfg.alerts, store_url, publish=self.publish, gateway=self.sms,
                              clock=lambda: self.now)

    async def round(self, now: float | None = None) -> list[int]:
        if now is not None:
            self.now = now
        return await self.desk.round()


T0 = T0_ALERTS


def live(store: Store, branch: str, now: float, *, waiting: int | None = None,
         devices: list[dict[str, Any]] | None = None, online: bool = True) -> None:
    status = {branch: {"online": online}}
    snap = {branch: {"status": {"waiting_total": waiting, "branch_name": f"测试{branch[-2:]}网点"}}
            } if waiting is not None else {}
    health = {branch: {"devices": devices, "link": {}}} if devices is not None else {}
    store.save_live(status, snap, health, now)


def alerts(store: Store, kind: str | None = None) -> list[dict[str, Any]]:
    rows = list_alerts(store, Scope(), kinds=[kind] if kind else ())
    return sorted(rows, key=lambda r: r["id"])
