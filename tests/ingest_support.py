"""A client logged in as a branch on the broker: shared by the ingest and alert tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiomqtt

from central.broker import LocalBroker


@contextlib.asynccontextmanager
async def as_branch(broker: LocalBroker, branch: str) -> AsyncIterator[aiomqtt.Client]:
    """A client logged in with ``branch``'s own credentials (what its box would use)."""
    password = broker.add_user(branch, f"pw-{branch}")
    async with aiomqtt.Client("127.0.0.1", broker.port, username=branch, password=password,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        yield client
