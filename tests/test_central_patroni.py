"""The centre survives a PostgreSQL failover (issue 19): etcd and two Patroni-managed
PostgreSQL 15 nodes in synchronous mode (tests/pg_cluster_support.py), a centre on the
multi-host URL, three boxes under load. The primary is switched over (``patronictl
switchover --force``), or its node dies (Patroni and postgres SIGKILLed); the centre
reconnects, runs its group commit again and ends holding exactly each box's journal.
The failover time (first failed commit → first commit on the new primary) is printed
(``-s`` shows it; docs/performance.md).

    pytest -m patroni -s tests/test_central_patroni.py
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.broker import LocalBroker
from common.clock import ManualClock
from tests.pg_cluster_support import (
    PatroniCluster,
    missing_patroni,
    patroni_cluster,
    under_failover,
)
from tests.uplink_support import broker_fixture  # noqa: F401

pytestmark = [
    pytest.mark.slow,
    pytest.mark.patroni,
    pytest.mark.skipif(missing_patroni() is not None, reason=str(missing_patroni())),
]


@pytest.fixture
def cluster() -> Iterator[PatroniCluster]:
    with patroni_cluster() as c:
        yield c


async def test_a_switchover_under_load_loses_and_doubles_nothing(
        cluster: PatroniCluster, broker: LocalBroker, clock: ManualClock,
        tmp_path: Path) -> None:
    async def switchover() -> str:
        result = await asyncio.to_thread(cluster.switchover)
        assert "Successfully switched over" in result.stdout, result.stdout
        return "patronictl switchover --force"

    times = await under_failover(cluster, broker, clock, tmp_path / "boxes", switchover)
    assert max(times) < 30  # a planned switchover is seconds, not the leader key's ttl


async def test_the_primary_node_dying_under_load_loses_and_doubles_nothing(
        cluster: PatroniCluster, broker: LocalBroker, clock: ManualClock,
        tmp_path: Path) -> None:
    """Patroni and postgres of the leader SIGKILLed (its machine gone): the sync standby
    takes the leader key when it expires (ttl 10 s here) — it holds every acked commit."""
    async def kill() -> str:
        name = await asyncio.to_thread(cluster.kill_leader_node)
        return f"node {name} SIGKILLed"

    times = await under_failover(cluster, broker, clock, tmp_path / "boxes", kill)
    assert max(times) < 60
