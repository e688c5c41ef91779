"""Fixtures and helpers for the uplink and centre tests: private brokers, stores, waiting.

Import the fixtures you use into the test module (pytest finds them there).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from central.broker import LocalBroker

PG_ADMIN = os.environ.get("PAIDUI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
T = TypeVar("T")


def pg_available() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_ADMIN, connect_timeout=2).close()
    except Exception:
        return False
    return True


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_ADMIN else "?"
    try:
        yield f"{PG_ADMIN}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """This test's own Mosquitto (the shipped config: password file + ACL)."""
    b = LocalBroker(tmp_path / "broker")
    b.add_user("centre", "centre-pw")
    b.start()
    try:
        yield b
    finally:
        b.kill()


async def wait_for(predicate: Callable[[], Awaitable[T]], timeout: float = 30.0,
                   what: str = "condition", poll: float = 0.05) -> T:
    """Await ``predicate()`` until it returns something truthy (the system under test is
    another process or thread; its database is the signal)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await predicate()
        if last:
            return last  # type: ignore[no-any-return]
        await asyncio.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def journal_rows(data_dir: Path) -> list[tuple[int, dict[str, Any]]]:
    """(seq, event) of every event in a box's journal file, read directly."""
    import json

    db = sqlite3.connect(f"file:{data_dir / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        return [(s, json.loads(b)) for s, b in db.execute("SELECT seq, body FROM events "
                                                          "ORDER BY seq")]
    finally:
        db.close()


def journal_epoch(data_dir: Path) -> str:
    db = sqlite3.connect(f"file:{data_dir / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        return str(db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0])
    finally:
        db.close()
