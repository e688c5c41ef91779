"""Who the customer at the card reader is (SPEC I1): the CRM/CIF first, within a budget.

The box asks before it issues a ticket by card (controller/kiosk.py ``issue_and_print``):
:class:`CustomerChain` asks the CIF (through :class:`~controller.ports.CustomerLookup`,
:class:`common.cif.CifClient` over HTTP/JSON) and waits at most ``budget_ms``; a slow,
failing or absent CIF costs a ticket no more than that. Then, in order::

    the cache (a recent CIF answer)          → customer_source "cache"
    the CIF, answering within the budget     → "cif"
    the local VIP table ([[vip_customers]])  → "local", customer_reason: timeout | error |
                                               not_found | busy | off
    nobody                                   → "none" (the card type decides)

The engine is told the answer (``IssueTicket.customer``) and writes ``customer_source`` and
``customer_reason`` into the ticket's event. A CIF answer arriving after the budget is not
lost: it fills the cache for the customer's next card. At most ``in_flight`` such
late requests run at once; beyond that the CIF is not asked (``busy``).

A VIP's ticket with an account manager (from the CIF or the VIP table's ``manager``) is
posted to the CRM's ``/notifications`` by :class:`Customers`, the component that runs the
chain: best effort, ``notify_retries`` retries, from a bounded queue (``notify_queue``;
the oldest is dropped and counted when it is full), never in the ticket's way. The lobby
manager's page shows the manager next to the VIP (controller/web/staff.py).

Numbers are logged masked only. docs/integrations.md describes the interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from common.cif import BudgetedLookup, CifUnavailable, CustomerCache
from common.errors import ConfigError
from protocols.appointment import mask_number
from protocols.cards import CardError, parse_swipe
from protocols.cif import AccountManager, CustomerInfo, Kind

from .config import Config, section
from .engine import Event, vip_of
from .engine.commands import CardCustomer
from .ports import CustomerLookup, ManagerNotifier
from .views import iso

if TYPE_CHECKING:
    from .box import Box

__all__ = ["CifSettings", "CustomerChain", "Customers", "LocalVipTable", "cif_settings",
           "vip_notice"]

log = logging.getLogger(__name__)

UNWELL = {  # reasons a lookup did not come from the CIF that make its health a warning
    "timeout": "客户信息系统响应超时,使用本地VIP表 (CIF too slow: the VIP table answers)",
    "error": "客户信息系统故障,使用本地VIP表 (CIF failing: the VIP table answers)",
    "busy": "客户信息系统请求积压 (CIF requests piling up)",
}


class CifSettings(BaseModel):
    """``[cif]``: the CRM/CIF customer lookup (docs/config.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    url: str | None = Field(None, pattern=r"^https?://[^\s]+$")  # None + sim: the simulator
    key_id: str = Field("paidui", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    secret: str = ""  # the shared HMAC secret; or secret_file (better: not in the config)
    secret_file: str | None = None
    budget_ms: int = Field(300, ge=10, le=5000)  # the most a card ticket waits for the CIF
    timeout_s: float = Field(3.0, gt=0, le=30)  # one HTTP request's own limit
    cache_size: int = Field(1000, ge=0, le=100_000)
    cache_ttl_s: float = Field(600.0, ge=0, le=86_400)
    in_flight: int = Field(16, ge=1, le=256)
    notify: bool = True  # post VIP arrivals to the CRM's /notifications
    notify_retries: int = Field(3, ge=0, le=10)
    notify_retry_s: float = Field(1.0, ge=0, le=60)  # first retry's delay, doubling
    notify_queue: int = Field(100, ge=1, le=10_000)
    # the simulated CIF (hardware = "sim", no url): its answers' delay and failure
    sim_latency_ms: int = Field(0, ge=0, le=60_000)
    sim_fail: Literal["", "down", "error"] = ""


def cif_settings(config: Config) -> CifSettings:
    """``[cif]`` validated; raises ConfigError naming the key."""
    return section(config, "cif", CifSettings)


def secret_of(s: CifSettings) -> bytes:
    """The HMAC secret: ``secret_file``'s content (stripped) or ``secret``."""
    if s.secret_file:
        try:
            secret = Path(s.secret_file).read_bytes().strip()
        except OSError as exc:
            raise ConfigError("cif.secret_file", f"cannot read it: {exc.strerror}") from None
    else:
        secret = s.secret.encode()
    if len(secret) < 16:
        raise ConfigError("cif.secret", "give the CIF's shared secret (16 bytes or more), "
                                        "or secret_file")
    return secret


def _kind(number: str) -> Kind:
    try:
        return "id" if parse_swipe(number).kind == "id_card" else "card"
    except CardError:
        return "card"  # the engine refuses it; the CIF is not asked (see find)


class LocalVipTable:
    """The configuration's ``[[vip_customers]]`` as a :class:`CustomerLookup` (``local``)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def lookup(self, kind: Kind, number: str) -> CustomerInfo | None:
        v = vip_of(self.config, number.strip().upper())
        if v is None or v.id is None:
            return None
        m = v.manager
        return CustomerInfo(v.id, v.customer_type, v.stars, v.name or "", v.queue,
                            AccountManager(m[0], m[1], terminal=m[2]) if m else None)


class CustomerChain:
    """The cache, the CIF within ``budget_s``, the local table (module doc)."""

    def __init__(self, remote: CustomerLookup | None, local: CustomerLookup, *,
                 cache: CustomerCache | None = None, budget_s: float = 0.3,
                 in_flight: int = 16) -> None:
        self.local, self.cache = local, cache
        self.asker = BudgetedLookup(remote, cache, budget_s=budget_s, in_flight=in_flight)
        self.budget_s = budget_s
        self.answers: Counter[tuple[str, str]] = Counter()  # (source, reason) -> count
        self.listeners: list[Callable[[str, str], None]] = []  # hear (source, reason)

    async def find(self, card: str) -> CardCustomer:
        """Who holds ``card`` (a card or ID number), within the budget; never raises."""
        number = card.strip().upper()
        kind = _kind(number)
        try:
            source, reason, info = await self.asker.ask(kind, number)
            if info is None:
                info = await self.local.lookup(kind, number)
                source = "local" if info is not None else "none"
        except Exception as exc:  # a bug here must not cost the customer the ticket
            log.error("customer lookup failed: %s", type(exc).__name__)
            source, reason, info = "none", "error", None
        self.answers[source, reason] += 1
        for listener in list(self.listeners):
            listener(source, reason)
        log.info("customer %s: %s%s", mask_number(number), source,
                 f" ({reason})" if reason else "")
        return _card_customer(info, source, reason)

    async def close(self) -> None:
        """Cancel the lookups still running (the component stops)."""
        await self.asker.close()


def _card_customer(info: CustomerInfo | None, source: str, reason: str) -> CardCustomer:
    if info is None:
        return CardCustomer(source, reason)
    m = info.manager
    return CardCustomer(source, reason, info.id, info.customer_type, info.stars, info.name,
                        info.queue, (m.id, m.name, m.terminal) if m is not None else None)


def vip_notice(box_config: Config, e: Event) -> dict[str, Any] | None:
    """The CRM notification for a ``ticket_issued`` event of a customer with an account
    manager (None for any other event)."""
    manager = e.get("manager") if e.get("type") == "ticket_issued" else None
    if not manager or not e.get("vip"):
        return None
    q = box_config.queue(e["queue"])
    return {
        "type": "vip_arrival", "id": e["ticket"], "branch": box_config.branch.code,
        "ticket": e["number"], "queue": e["queue"], "queue_name": q.name if q else e["queue"],
        "customer": e["vip"], "name": e.get("vip_name") or "", "stars": e.get("stars", 0),
        "customer_type": e.get("customer_type", ""), "manager": manager["id"],
        "manager_name": manager.get("name", ""), "terminal": manager.get("terminal", ""),
        "at": iso(e["at"], box_config),
    }


class _Peer(Protocol):
    """A simulated CIF the component runs (sim/cif.py ``SimCif``)."""

    url: str

    async def start(self) -> str: ...
    async def stop(self) -> None: ...


class _Closing(Protocol):
    url: str

    async def aclose(self) -> None: ...


class Customers:
    """The component: while it runs, the box's card tickets ask ``chain``
    (``box.customers``), and VIP arrivals are posted through ``notifier``.

    ``peer``: a simulated CIF to start first (its address is then given to ``client``).
    """

    name = "customers"

    def __init__(self, settings: CifSettings, chain: CustomerChain, *,
                 notifier: ManagerNotifier | None = None, client: _Closing | None = None,
                 peer: _Peer | None = None) -> None:
        self.settings, self.chain = settings, chain
        self.notifier, self.client, self.peer = notifier, client, peer
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(settings.notify_queue)
        self.sent = self.failed = self.dropped = 0
        self.ready = asyncio.Event()

    async def run(self, box: Box) -> None:
        config = box.config

        def hear(events: list[Event]) -> None:
            for e in events:
                if self.notifier is None or (notice := vip_notice(config, e)) is None:
                    continue
                if self.queue.full():  # bounded: the oldest goes, counted
                    self.queue.get_nowait()
                    self.dropped += 1
                self.queue.put_nowait(notice)

        try:
            if self.peer is not None:
                url = await self.peer.start()
                if self.client is not None:
                    self.client.url = url
            box.customers = self.chain
            box.listeners.append(hear)
            detail = "simulated" if self.peer else ""
            box.health.report("cif", "ok", detail)

            def health(source: str, reason: str) -> None:
                if reason in UNWELL:  # the lobby's device list says the CIF is not answering
                    box.health.report("cif", "warning", f"{reason}: {UNWELL[reason]}")
                elif source == "cif" or reason == "not_found":
                    box.health.report("cif", "ok", detail)

            self.chain.listeners.append(health)
            self.ready.set()
            while True:
                await self._send(await self.queue.get())
        finally:
            self.ready.clear()
            box.customers = None
            self.chain.listeners.clear()
            with contextlib.suppress(ValueError):
                box.listeners.remove(hear)
            await self.chain.close()
            if self.client is not None:
                await self.client.aclose()
            if self.peer is not None:
                await self.peer.stop()

    async def _send(self, notice: dict[str, Any]) -> None:
        assert self.notifier is not None
        delay = self.settings.notify_retry_s
        for attempt in range(self.settings.notify_retries + 1):
            try:
                await self.notifier.notify(notice)
                self.sent += 1
                return
            except Exception as exc:  # best effort: any failure is retried, then counted
                why = str(exc) if isinstance(exc, CifUnavailable) else type(exc).__name__
                log.warning("VIP arrival %s for manager %s not posted (try %d): %s",
                            notice["ticket"], notice["manager"], attempt + 1, why)
            if attempt < self.settings.notify_retries:
                await asyncio.sleep(delay)  # the CRM gets time to come back
                delay *= 2
        self.failed += 1

