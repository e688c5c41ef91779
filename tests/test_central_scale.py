"""What makes the centre hold 10,000 branches (docs/performance.md, "10,000 branches"):
the dashboard sends a page of a node's children, not all of them; its roll-up follows the
branches that changed instead of summing every branch on every poll; and the swarm that
measures it (sim/swarm.py) speaks the real uplink through the real broker's ACL, every
event stored once."""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import httpx
import pytest

from central.broker import LocalBroker
from central.live import Rollup, Tracked, _summary, rollup
from central.orgs import Org
from central.store import open_store
from sim.swarm import MqttLink, Swarm, SwarmSettings, branch_codes, branch_password

from .office_support import http_client, login, office_running
from .uplink_support import (
    broker_fixture,
    pg_url_fixture,
    store_url_fixture,
    wait_for,
)

__all__ = ["broker_fixture", "pg_url_fixture", "store_url_fixture"]


# --- paging the children -------------------------------------------------------------------


async def _live(http: httpx.AsyncClient, headers: dict[str, str], query: str) -> httpx.Response:
    return await http.get(f"/api/live?{query}", headers=headers)


@pytest.mark.network
async def test_the_dashboard_sends_a_nodes_children_a_page_at_a_time(
        broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        everything = (await _live(http, admin, "org=100101&limit=500")).json()
        codes = [c["code"] for c in everything["children"]]
        assert len(codes) >= 3 and codes == sorted(codes)
        assert everything["children_total"] == len(codes)

        pages = []
        for offset in range(0, len(codes), 2):
            r = await _live(http, admin, f"org=100101&offset={offset}&limit=2")
            assert r.status_code == 200, r.text
            page = r.json()
            assert (page["offset"], page["limit"], page["children_total"]) == \
                (offset, 2, len(codes))
            assert len(page["children"]) <= 2
            pages += [c["code"] for c in page["children"]]
        assert pages == codes  # every child once, in code order
        past = (await _live(http, admin, f"org=100101&offset={len(codes)}")).json()
        assert past["children"] == [] and past["children_total"] == len(codes)
        # the node's own figures do not depend on the page
        assert (past["totals"]["branches"], past["totals"]["issued"]) == \
            (everything["totals"]["branches"], everything["totals"]["issued"])
        default = (await _live(http, admin, "org=100101")).json()
        assert default["limit"] == 100 and default["offset"] == 0


@pytest.mark.network
async def test_a_page_too_large_or_before_the_first_child_is_refused(
        broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        for query in ("org=1001&limit=501", "org=1001&limit=0", "org=1001&offset=-1",
                      "org=1001&limit=x", "org=1001&offset=1e9"):
            r = await _live(http, admin, query)
            assert r.status_code == 422, (query, r.status_code)
        stream = await http.get("/api/live/stream?org=1001&limit=501", headers=admin)
        assert stream.status_code == 422


# --- the roll-up ---------------------------------------------------------------------------


def _tree(n: int) -> tuple[list[str], list[Org]]:
    codes = branch_codes(n, "1001", 5)
    orgs = [Org("1001", None, "省", "Province", "head")]
    orgs += [Org(f"1001{c:02d}", "1001", f"市{c}", f"City {c}", "city") for c in range(1, 6)]
    orgs += [Org(c, c[:6], c, c, "branch") for c in codes]
    return codes, orgs


def _changed(s: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    return {**s, "issued": rng.randint(0, 80), "waiting": rng.randint(0, 20),
            "called": rng.randint(0, 60), "online": rng.choice([True, False, None]),
            "heard_at": rng.uniform(1e9, 2e9), "wait_sum_s": rng.uniform(0, 9000),
            "max_called_wait_s": rng.uniform(0, 3000),
            "oldest_waiting_centre": rng.choice([None, rng.uniform(1e9, 2e9)]),
            "wait_hist": {k: rng.randint(0, 9) for k in s["wait_hist"]},
            "hourly": [rng.randint(0, 5) for _ in range(24)]}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal figures; the waits' sum within a microsecond (added and taken away as
    branches change, it is not the full sum's float to the last bit)."""
    return {**a, "wait_sum_s": 0} == {**b, "wait_sum_s": 0} and \
        math.isclose(a["wait_sum_s"], b["wait_sum_s"], rel_tol=0, abs_tol=1e-6)


def test_the_incremental_roll_up_gives_the_figures_of_a_full_one() -> None:
    codes, orgs = _tree(400)
    rng = random.Random(7)
    heard = codes[:350]  # 50 branches of the tree never reported
    summaries = {c: _changed(_summary(Tracked(c)), rng) for c in heard}
    r = Rollup()
    r.update(summaries, orgs, set(summaries), now=0.0)
    for step in range(1, 30):
        summaries = dict(summaries)  # the board replaces, never mutates
        changed = set(rng.sample(heard, rng.randint(0, 60)))
        for c in sorted(changed):  # the same draws whatever the hash seed
            summaries[c] = _changed(summaries[c], rng)
        before = r.totals
        totals = r.update(summaries, orgs, changed, now=float(step))
        assert totals is not before  # a new dict for the readers on the event loop
        full = rollup(summaries, orgs)
        assert set(totals) == set(full)
        wrong = [k for k in full if not _same(totals[k], full[k])]
        assert not wrong, f"step {step}: {wrong[:3]} differ"
    silent = sum(1 for c in heard if summaries[c]["online"] is None)
    assert r.totals["1001"]["never"] == 50 + silent  # the 50 never heard from count too


def test_the_roll_up_starts_again_when_a_branch_appears_or_the_tree_changes() -> None:
    codes, orgs = _tree(40)
    summaries = {c: {**_summary(Tracked(c)), "online": True} for c in codes[:30]}
    r = Rollup()
    r.update(summaries, orgs, set(summaries), now=0.0)
    assert r.totals["1001"]["never"] == 10
    grown = {**summaries, codes[30]: {**_summary(Tracked(codes[30])), "online": True}}
    totals = r.update(grown, orgs, {codes[30]}, now=1.0)
    assert (totals["1001"]["never"], totals["1001"]["online"]) == (9, 31)
    fewer = [o for o in orgs if o.code != codes[39]]  # a branch deleted from the tree
    totals = r.update(grown, fewer, set(), now=2.0)
    assert totals["1001"]["branches"] == 39 and codes[39] not in totals


def test_a_roll_up_of_10000_branches_changing_300_costs_a_fraction_of_a_full_one() -> None:
    import time

    codes, orgs = _tree(10_000)
    rng = random.Random(3)
    summaries = {c: _changed(_summary(Tracked(c)), rng) for c in codes}
    r = Rollup()
    full = time.process_time()
    r.update(summaries, orgs, set(summaries), now=0.0)
    full = time.process_time() - full
    summaries = dict(summaries)
    changed = set(rng.sample(codes, 300))
    for c in changed:
        summaries[c] = _changed(summaries[c], rng)
    step = time.process_time()
    r.update(summaries, orgs, changed, now=1.0)
    step = time.process_time() - step
    assert step < full / 3, (step, full)  # measured: ~17 ms against ~140 ms


# --- the swarm -----------------------------------------------------------------------------


def _provision(broker: LocalBroker, codes: list[str], secret: str) -> None:
    for code in codes:
        broker.add_user(code, branch_password(secret, code))


@pytest.mark.network
async def test_a_swarm_branch_is_stored_once_and_settled_by_the_centres_ack(
        broker: LocalBroker, pg_url: str) -> None:
    codes = branch_codes(6, "1001", 2)
    _provision(broker, codes, "s3cret")
    async with office_running(broker, pg_url) as centre, http_client(centre) as http:
        settings = SwarmSettings(broker=broker.url, codes=codes, secret="s3cret", rate=5.0,
                                 templates=1, keep_times=frozenset(codes[:1]))
        async with Swarm(settings) as swarm:
            windows = await swarm.morning()
            sent = await swarm.run(2.0)
            assert await swarm.drained(30)
            stats = swarm.stats()
        assert windows >= len(codes) and sent > 20
        assert stats["connect_failures"] == stats["lost_connections"] == 0
        assert stats["backlog"] == 0 and stats["acked"] == stats["events"]
        sent_per_branch = {b.code: b.seq for b in swarm.branches}
        issued = {b.code: b.issued for b in swarm.branches}
        assert len(swarm.branches[0].issued_at) == issued[codes[0]]
        # the branches list comes a page at a time, every branch once
        admin = await login(http)
        first = (await http.get("/api/branches?limit=4", headers=admin)).json()
        rest = (await http.get("/api/branches?offset=4&limit=4", headers=admin)).json()
        assert (first["total"], len(first["branches"]), len(rest["branches"])) == (6, 4, 2)
        assert [b["branch"] for b in first["branches"] + rest["branches"]] == sorted(codes)
        too_many = await http.get("/api/branches?limit=1001", headers=admin)
        assert too_many.status_code == 422
        one = (await http.get(f"/api/branches/{codes[2]}", headers=admin)).json()
        assert one["branch"] == codes[2] and one["epoch"] == swarm.branches[0].epoch
    store = open_store(pg_url)
    try:
        stored = dict(store.execute("SELECT branch, count(*) FROM events GROUP BY branch"
                                    ).fetchall())
        reported = dict(store.execute("SELECT branch, sum(issued) FROM rpt_day GROUP BY branch"
                                      ).fetchall())
        assert not store.dead_letter_counts()
    finally:
        store.close()
    assert {b: int(n) for b, n in stored.items()} == sent_per_branch
    assert {b: int(n) for b, n in reported.items() if int(n)} == \
        {b: n for b, n in issued.items() if n}


@pytest.mark.network
async def test_a_swarm_branch_cannot_log_in_as_or_write_for_another_branch(
        broker: LocalBroker) -> None:
    codes = branch_codes(2, "1001", 2)
    _provision(broker, codes, "s3cret")
    link = MqttLink(lambda topic, payload: None)
    with pytest.raises(Exception, match="CONNACK"):  # a wrong password is refused
        await link.connect("127.0.0.1", broker.port, "x", codes[0], "wrong", "qms/v1/x/status",
                           b"{}")
    await link.close()
    # logged in as codes[0], a batch for codes[1] goes nowhere (the ACL drops it)
    seen: list[bytes] = []
    spy = MqttLink(lambda topic, payload: seen.append(payload))
    await spy.connect("127.0.0.1", broker.port, "spy", "centre", "centre-pw",
                      "qms/v1/centre/spy", b"{}")
    await spy.subscribe(f"qms/v1/{codes[1]}/events")
    liar = MqttLink(lambda topic, payload: None)
    await liar.connect("127.0.0.1", broker.port, "liar", codes[0],
                       branch_password("s3cret", codes[0]), f"qms/v1/{codes[0]}/status", b"{}")
    liar.publish(f"qms/v1/{codes[1]}/events", b'{"v": 1}')
    honest = MqttLink(lambda topic, payload: None)
    await honest.connect("127.0.0.1", broker.port, "honest", codes[1],
                         branch_password("s3cret", codes[1]), f"qms/v1/{codes[1]}/status",
                         b"{}")
    honest.publish(f"qms/v1/{codes[1]}/events", b'{"v": 2}')
    await wait_for(lambda: seen, 10, "the honest branch's message")
    await asyncio.sleep(0.3)  # room for a message the broker should not have passed
    assert seen == [b'{"v": 2}']
    for link in (spy, liar, honest):
        await link.close()


# --- a report's rows, a page at a time -------------------------------------------------------


@pytest.fixture
async def reports_api(store_url: str) -> Any:
    from central.config import load_centre_config
    from central.service import Centre
    from tests.reports_support import hand_day, ingest_all, other_days
    from tests.scope_support import Caller, head_office_client

    store = open_store(store_url)
    ingest_all(store, hand_day(), *other_days())
    store.close()
    centre = Centre(load_centre_config(None, [f"store.url={store_url}"]))
    async with head_office_client(centre, Caller()) as client:
        yield client
    await centre.close()


async def test_a_report_sends_a_page_of_its_rows_with_the_total_over_all(
        reports_api: httpx.AsyncClient) -> None:
    day = {"period": "day", "date": "2026-11-25"}
    whole = (await reports_api.get("/api/reports/tellers", params=day)).json()
    n = whole["rows_total"]
    assert n == len(whole["rows"]) >= 3 and whole["rows_from"] == 0
    page = (await reports_api.get("/api/reports/tellers",
                                  params={**day, "rows": 2, "rows_from": 1})).json()
    assert page["rows"] == whole["rows"][1:3]
    assert (page["rows_total"], page["rows_from"]) == (n, 1)
    assert page["total"] == whole["total"]  # the total row still covers every row
    past = (await reports_api.get("/api/reports/tellers",
                                  params={**day, "rows": 5, "rows_from": n})).json()
    assert past["rows"] == [] and past["rows_total"] == n
    for bad in ({"rows": 0}, {"rows": 100_001}, {"rows_from": -1}):
        r = await reports_api.get("/api/reports/tellers", params={**day, **bad})
        assert r.status_code == 422, bad
    csv = await reports_api.get("/api/reports/tellers/csv", params={**day, "rows": 1})
    assert csv.text.count("\n") >= n + 1  # an export holds every row whatever the page
