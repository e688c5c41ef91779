"""Staffing advice in the back office (B5/E): a branch's stored history, learned and
simulated on the real engine, answers the same plan as the simulator's own
``advise_from_history``; only for branches in the user's scope; refused without history or
configuration."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from central import configs as cf
from central.broker import LocalBroker
from controller.config import parse_config
from queueing.staffing import advise_from_history

from .office_support import B1, B2, add_user, http_client, login, office_running
from .staffing_support import ADVISED, HISTORY, history, store_history
from .uplink_support import broker_fixture, pg_url_fixture, store_url_fixture

__all__ = ["broker_fixture", "pg_url_fixture", "store_url_fixture"]

pytestmark = pytest.mark.network
ASK = {"branch": B1, "days": 7, "target_min": 10, "level": 0.8, "seeds": 2,
       "date": ADVISED.isoformat()}


async def test_the_advice_is_the_simulators_for_the_stored_history(
        broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        stored = await centre.read(lambda s: cf.latest(s, B1))
        config = parse_config(stored["body"])
        events = history(config)
        await centre.read(lambda s: store_history(s, B1, events))

        r = await http.get("/api/office/staffing", params=ASK, headers=admin)
        assert r.status_code == 200, r.text
        got = r.json()
        want = advise_from_history(events, config, ADVISED, target_wait_s=600, level=0.8,
                                   seeds=(1, 2)).to_json()
        assert got["hours"] == want["hours"] and got["hours"]
        assert got["window_hours"] == want["window_hours"] == sum(
            h["windows"] for h in got["hours"])
        assert got["met"] == want["met"]
        assert got["history"] == {"first_day": "2026-11-16", "last_day": "2026-11-22",
                                  "events": len(events)}
        assert (got["branch"], got["date"], got["config_version"]) == (B1, "2026-11-23", 1)

        download = await http.get("/api/office/staffing.csv", params=ASK, headers=admin)
        assert download.status_code == 200
        assert "attachment" in download.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert rows[0][:2] == ["小时 Hour", "建议窗口数 Windows"]
        assert [(r[0], int(r[1])) for r in rows[1:-1]] == [
            (f"{h['hour']:02d}:00", h["windows"]) for h in want["hours"]]
        assert rows[-1][:2] == ["合计 Total", str(want["window_hours"])]


async def test_only_the_users_branches_and_only_with_history(
        broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        stored = await centre.read(lambda s: cf.latest(s, B1))
        events = history(parse_config(stored["body"]))
        await centre.read(lambda s: store_history(s, B1, events))
        other = await add_user(http, admin, "mgr2", "manager", B2)  # B2's manager

        async def ask(who: dict[str, str], **change: Any) -> Any:
            return await http.get("/api/office/staffing", params={**ASK, **change},
                                  headers=who)

        refused = await ask(other)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "out_of_scope"
        assert (await http.get("/api/office/staffing.csv", params=ASK,
                               headers=other)).status_code == 403

        empty = await ask(other, branch=B2)  # in scope, but no events stored
        assert empty.status_code == 422
        err = empty.json()["error"]
        assert "没有取号记录" in err["message"] and "nothing to learn" in err["message_en"]
        before = await ask(admin, date=HISTORY[0].isoformat())  # the week before the history
        assert before.status_code == 422

        unknown = await ask(admin, branch="1001010099")  # no configuration at the centre
        assert unknown.status_code == 404
        assert "没有配置" in unknown.json()["error"]["message"]
