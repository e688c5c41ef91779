"""The store as the modules above it see it: two small interfaces, no I/O of their own.

* :class:`Reader` — what the reports, the reconciliation and the alert rules read
  through: SQL on one connection (SQLite or PostgreSQL, ``?`` placeholders), which
  database it is, and the list of branches heard from. They are handed a
  :class:`~central.store.Store` (it has both), or any fake that answers the same.
* :class:`Writer` — what the summaries kept at ingest (:mod:`central.store.summary`)
  write through, inside the store's ingest transaction.

Neither names :class:`~central.store.Store` internals (its connection, its private
helpers): a report that needs a new query adds it here or runs SQL through ``execute``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any, Protocol

__all__ = ["KEYS_A_QUERY", "Reader", "Writer", "rows_for_keys"]

KEYS_A_QUERY = 500  # branches or keys named in one query of a batched read


class Reader(Protocol):
    """SQL reads on one connection of the centre's store."""

    @property
    def url(self) -> str:
        """Which database (a cache key: the same URL is the same data)."""
        ...

    @property
    def postgres(self) -> bool:
        """True on PostgreSQL (its SQL dialect), False on SQLite."""
        ...

    def execute(self, sql: str, args: Any = ()) -> Any:
        """Run one statement (``?`` placeholders); returns a cursor (``fetchone``, …)."""
        ...

    def branch_codes(self) -> list[str]:
        """The codes of every branch heard from, in order."""
        ...

    def branches(self, codes: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Every branch heard from (only ``codes`` when given): ``branch``, ``first_seen``,
        its live picture."""
        ...


class Writer(Reader, Protocol):
    """A :class:`Reader` that also writes, inside the caller's transaction."""

    def execute_many(self, sql: str, rows: list[Any]) -> int:
        """Run ``sql`` once per row; returns the number of rows changed."""
        ...


def rows_for_keys(store: Reader, sql: str, keys: Sequence[Any], before: Sequence[Any] = ()
                  ) -> Iterator[Any]:
    """The rows of ``sql`` for ``keys``, in one query per :data:`KEYS_A_QUERY` of them (a
    commit of a fleet's traffic names hundreds of branches). ``{keys}`` in ``sql`` becomes
    the placeholders of one part: ``?, ?`` for plain values, ``(?, ?), (?, ?)`` for tuples
    (``(branch, epoch) IN (VALUES {keys})``); ``before`` are the arguments ahead of them."""
    for i in range(0, len(keys), KEYS_A_QUERY):
        part = keys[i:i + KEYS_A_QUERY]
        if isinstance(part[0], tuple):
            one = f"({', '.join('?' * len(part[0]))})"
            marks, args = ", ".join([one] * len(part)), [v for k in part for v in k]
        else:
            marks, args = ", ".join("?" * len(part)), list(part)
        yield from store.execute(sql.replace("{keys}", marks), [*before, *args]).fetchall()
