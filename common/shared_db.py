"""A database connection several threads use: one at a time, closed once.

Python's ``sqlite3`` lets a connection opened with ``check_same_thread=False`` be used from
any thread, but closing it while another thread is inside a statement frees what that
thread is still using: the process dies of a segfault, not an exception (a journal reader
in ``asyncio.to_thread`` cut short by a cancellation keeps running while its owner closes
the connection). :class:`SharedConnection` puts one lock around every use, close
included: :meth:`close` waits for the use in flight, and a use after it raises the
owner's own error instead of reaching a freed connection. See docs/sqlite-threads.md.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["SharedConnection"]


class _Closable(Protocol):
    def close(self) -> Any: ...


C = TypeVar("C", bound=_Closable)


class SharedConnection(Generic[C]):
    """``db`` behind one re-entrant lock; ``closed()`` makes the error a late use raises.

    Hold :meth:`use` for the whole of a use (a transaction, the rows it fetches): the lock
    is what keeps another thread from closing the connection under it.
    """

    def __init__(self, db: C, closed: Callable[[], Exception]) -> None:
        self._db: C | None = db
        self._closed = closed
        self._lock = threading.RLock()

    @contextmanager
    def use(self) -> Iterator[C]:
        """The connection, for this thread alone until the block ends."""
        with self._lock:
            if self._db is None:
                raise self._closed()
            yield self._db

    @property
    def closed(self) -> bool:
        return self._db is None

    def close(self) -> None:
        """Close once the use in flight (if any) is over. Safe to call twice."""
        with self._lock:
            db, self._db = self._db, None
            if db is not None:
                db.close()
