"""The HTTP/JSON adapter to a bank's CRM/CIF (SPEC I1), and its answer cache.

In ``common`` so that the box (controller/customers.py) and the centre (central/cif.py)
use one client: the wire format is :mod:`protocols.cif`. :class:`CifClient` asks
``POST {url}/customers/lookup`` and posts arrivals to ``{url}/notifications``, each request
signed (HMAC-SHA256, docs/integrations.md); anything but a good answer within its timeout
is :class:`CifUnavailable` (``timeout`` or ``error``), never another exception.

:class:`CustomerCache` keeps answers for a while (bounded: ``size`` entries, least recently
used out first; each good for ``ttl_s`` on the injected clock). It is keyed by a hash of
the number, so the cache holds no card or ID number in clear.

:class:`BudgetedLookup` asks through the cache and the CIF within a budget: a slow,
failing or absent CIF costs the asker no more than ``budget_s``, a late answer fills the
cache, and at most ``in_flight`` late requests run at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from typing import Any, Protocol

import httpx

from protocols.cif import (
    LOOKUP_PATH,
    MAX_BODY,
    NOTICE_PATH,
    CifError,
    CustomerInfo,
    Kind,
    encode_lookup,
    encode_notice,
    parse_lookup_answer,
    signed_headers,
)

from .clock import Clock

__all__ = ["BudgetedLookup", "CifClient", "CifUnavailable", "CustomerCache", "Lookup"]

log = logging.getLogger(__name__)


class CifUnavailable(Exception):
    """The CIF gave no usable answer: ``reason`` is ``timeout`` or ``error``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class CifClient:
    """The CIF over HTTP/JSON. ``url`` may be set after construction (a simulated CIF's
    address is known once it listens). ``transport``: httpx's, for tests."""

    def __init__(self, url: str, *, key_id: str, secret: bytes, branch: str, clock: Clock,
                 timeout_s: float = 2.0, transport: httpx.AsyncBaseTransport | None = None
                 ) -> None:
        self.url = url.rstrip("/")
        self.key_id, self.secret, self.branch = key_id, secret, branch
        self.clock = clock
        self.timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.bad_answers = 0  # answers that were not the documented JSON

    async def lookup(self, kind: Kind, number: str) -> CustomerInfo | None:
        """The customer holding this card or ID number (None: the CIF does not know it)."""
        body = await self._post(LOOKUP_PATH, encode_lookup(kind, number, self.branch))
        try:
            return parse_lookup_answer(body)
        except CifError as exc:
            self.bad_answers += 1
            log.warning("CIF answer refused: %s", exc)  # the parser's words: no number
            raise CifUnavailable("error", f"bad answer: {exc}") from None

    async def notify(self, notice: dict[str, Any]) -> None:
        """Post one notification (a VIP's arrival for their account manager)."""
        await self._post(NOTICE_PATH, encode_notice(notice))

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _post(self, path: str, body: bytes) -> bytes:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, transport=self._transport)
        headers = signed_headers(self.key_id, self.secret, self.clock.now(), "POST", path, body)
        try:
            async with self._client.stream("POST", self.url + path, content=body,
                                           headers=headers) as r:
                data = b""
                async for chunk in r.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_BODY:
                        raise CifUnavailable("error", "answer too long")
        except httpx.TimeoutException:
            raise CifUnavailable("timeout", f"no answer in {self.timeout_s} s") from None
        except httpx.HTTPError as exc:
            raise CifUnavailable("error", type(exc).__name__) from None
        if r.status_code not in (200, 202, 204):
            raise CifUnavailable("error", f"HTTP {r.status_code}")
        return data


class CustomerCache:
    """Recent CIF answers: at most ``size`` (least recently used out first), each for
    ``ttl_s`` seconds of ``clock``. Keys are hashes: no number is held in clear."""

    def __init__(self, size: int, ttl_s: float, clock: Clock) -> None:
        self.size, self.ttl_s, self.clock = size, ttl_s, clock
        self._items: OrderedDict[bytes, tuple[float, CustomerInfo]] = OrderedDict()

    @staticmethod
    def key(kind: str, number: str) -> bytes:
        return hashlib.sha256(f"{kind}:{number}".encode()).digest()

    def get(self, kind: str, number: str) -> CustomerInfo | None:
        k = self.key(kind, number)
        hit = self._items.get(k)
        if hit is None:
            return None
        if self.clock.now() - hit[0] > self.ttl_s:
            del self._items[k]
            return None
        self._items.move_to_end(k)
        return hit[1]

    def put(self, kind: str, number: str, info: CustomerInfo) -> None:
        if self.size <= 0:
            return
        k = self.key(kind, number)
        self._items[k] = (self.clock.now(), info)
        self._items.move_to_end(k)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class Lookup(Protocol):
    """Anything that says who holds a card or ID number (:class:`CifClient`, a table)."""

    async def lookup(self, kind: Kind, number: str) -> CustomerInfo | None: ...


class BudgetedLookup:
    """The cache, then ``remote`` within ``budget_s`` (the box's card tickets, the
    centre's bookings): :meth:`ask` answers (source, reason, info), never raises.

    ``source``: ``cache``, ``cif`` or ``none``; ``reason`` (with ``none``): ``timeout``,
    ``error``, ``not_found``, ``busy`` (``in_flight`` late requests already running) or
    ``off`` (no ``remote``). A request still running at the budget goes on and fills the
    cache."""

    def __init__(self, remote: Lookup | None, cache: CustomerCache | None = None, *,
                 budget_s: float = 0.3, in_flight: int = 16) -> None:
        self.remote, self.cache = remote, cache
        self.budget_s, self.in_flight = budget_s, in_flight
        self._pending: set[asyncio.Task[CustomerInfo | None]] = set()

    async def ask(self, kind: Kind, number: str) -> tuple[str, str, CustomerInfo | None]:
        if self.cache is not None and (hit := self.cache.get(kind, number)) is not None:
            return "cache", "", hit
        if self.remote is None:
            return "none", "off", None
        if len(self._pending) >= self.in_flight:
            return "none", "busy", None
        task = asyncio.create_task(self.remote.lookup(kind, number), name="cif-lookup")
        self._pending.add(task)
        task.add_done_callback(lambda t: self._settled(t, kind, number))
        done, _ = await asyncio.wait({task}, timeout=self.budget_s)
        if not done:  # it goes on; a late answer fills the cache (_settled)
            return "none", "timeout", None
        exc = task.exception()
        if exc is not None:
            return "none", exc.reason if isinstance(exc, CifUnavailable) else "error", None
        info = task.result()
        return ("cif", "", info) if info is not None else ("none", "not_found", None)

    def _settled(self, task: asyncio.Task[CustomerInfo | None], kind: Kind, number: str
                 ) -> None:
        self._pending.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved, so never "never retrieved"
        if exc is not None:
            if not isinstance(exc, CifUnavailable):
                log.error("CIF lookup failed: %s", type(exc).__name__)
            return
        info = task.result()
        if info is not None and self.cache is not None:
            self.cache.put(kind, number, info)

    async def close(self) -> None:
        """Cancel the lookups still running (the asker stops)."""
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.wait(self._pending)
