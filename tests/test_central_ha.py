"""Two centre instances on one PostgreSQL and one broker, a fleet of four real boxes, and
the instance running the alerts SIGKILLed mid-load (docs/deploy.md, "High
availability"; the scenario: tests/ha_support.py). Afterwards:

* every branch's events are stored exactly once (the centre's rows equal each journal);
* the other instance took the alert desk over within the lease's seconds and raised the
  alert of a branch that filled up after the kill; each branch's alert was raised once and
  texted once;
* each branch's daily totals were stored and reconciled once (status ok);
* the dashboard API of the survivor kept updating.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from central.broker import LocalBroker
from central.reconcile import check_branch
from central.store import open_store
from tests.ha_support import (
    DAY,
    PHONE,
    outbox,
    query,
    sigkill_the_alerts_holder,
    waiting_alerts,
)
from tests.uplink_support import broker_fixture, pg_url_fixture

__all__ = ["broker_fixture", "pg_url_fixture"]

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CODES = ["1001010001", "1001010002", "1001010003", "1001020001"]
LEASE_S = 2.0


async def test_sigkill_one_of_two_instances_mid_load(broker: LocalBroker, pg_url: str,
                                                    tmp_path: Path) -> None:
    run = await sigkill_the_alerts_holder(broker, pg_url, tmp_path, CODES, LEASE_S)
    assert run.takeover_s < LEASE_S + LEASE_S / 4 + 2.0, run  # lease + one try + slack
    assert waiting_alerts(pg_url) == {c: 1 for c in CODES}  # raised once each
    sms = query(pg_url, "SELECT a.branch, s.state FROM alert_sms s JOIN alerts a ON "
                        "a.id = s.alert_id WHERE a.kind = 'waiting_over'")
    assert sorted(sms) == sorted((c, "sent") for c in CODES)  # texted once each
    texts = [m["text"] for m in outbox(tmp_path)]
    assert len(texts) == len(set(texts)) == len(CODES), texts  # sent once, none twice
    assert all(m["to"] != PHONE for m in outbox(tmp_path))  # masked in the outbox
    rows = query(pg_url, "SELECT branch, count(*) FROM totals WHERE day = ? GROUP BY branch",
                 (DAY,))
    assert sorted(rows) == [(c, 1) for c in CODES]  # each branch-day's totals once
    store = open_store(pg_url)
    try:
        for code in CODES:
            report = check_branch(store, code, DAY)
            assert report["status"] == "ok", (code, report["problems"])
    finally:
        store.close()
