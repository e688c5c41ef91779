"""Who a booking's customer is (SPEC I1 at the centre): the CRM/CIF asked by ID number.

When a customer books (web, SMS or WeChat: :meth:`central.appointments.booking.Booking.book`),
the centre asks the bank's CIF by the customer's ID number through the same client as the
box (:class:`common.cif.CifClient`: the JSON and HMAC of :mod:`protocols.cif`), the same
bounded cache and the same budget (:class:`common.cif.BudgetedLookup`). The booking keeps
the answer's customer type and stars, and where it came from::

    customer_source  cif | cache | none      customer_reason  "" | timeout | error |
                                                              not_found | busy | off

and the branch's day list carries type and stars (``customer``, protocols/appointment.py),
so the appointment ticket ranks like a VIP's. The box's own lookup at redemption, by card
or ID number, stays the authority when it knows the holder (controller/appointments/
redeem.py); the centre's answer serves a code or QR redemption, the staff's booking list
and the statistics. A slow or absent CIF never delays a booking beyond ``budget_ms``: the
booking goes on without a customer type (``none``, with the reason).

``[cif]`` in the centre's configuration is off unless given (``enabled = true`` and a
``url``); the demo points it at a simulated CIF (``python -m sim.cif``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.cif import BudgetedLookup, CifClient, CustomerCache
from common.clock import Clock, FunctionClock, SystemClock
from protocols.appointment import mask_number
from protocols.cif import CustomerInfo

from .errors import CentreConfigError

__all__ = ["NO_CIF", "CentreCif", "CentreCifSettings", "customer_columns"]

log = logging.getLogger(__name__)

NO_CIF = ("none", "off", None)


class CentreCifSettings(BaseModel):
    """``[cif]`` of the centre (docs/integrations.md, "The centre")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False  # off unless given
    url: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    key_id: str = Field("paidui", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    secret: str = ""  # the shared HMAC secret; or secret_file (better: not in the config)
    secret_file: str | None = None
    budget_ms: int = Field(300, ge=10, le=5000)  # the most a booking waits for the CIF
    timeout_s: float = Field(3.0, gt=0, le=30)  # one HTTP request's own limit
    cache_size: int = Field(1000, ge=0, le=100_000)
    cache_ttl_s: float = Field(600.0, ge=0, le=86_400)
    in_flight: int = Field(16, ge=1, le=256)
    branch: str = Field("centre", pattern=r"^[A-Za-z0-9_.-]{1,32}$")  # the lookup's "branch"


def _secret(s: CentreCifSettings) -> bytes:
    if s.secret_file:
        try:
            secret = Path(s.secret_file).read_bytes().strip()
        except OSError as exc:
            raise CentreConfigError("cif.secret_file", f"cannot read it: {exc.strerror}"
                                    ) from None
    else:
        secret = s.secret.encode()
    if len(secret) < 16:
        raise CentreConfigError("cif.secret", "give the CIF's shared secret (16 bytes or "
                                              "more), or secret_file")
    return secret


class CentreCif:
    """The centre's CIF lookup by ID number, within the budget; never raises."""

    def __init__(self, settings: CentreCifSettings, now: Callable[[], float] | None = None,
                 client: CifClient | None = None) -> None:
        self.settings = settings
        self.client: CifClient | None = None
        clock: Clock = FunctionClock(now) if now is not None else SystemClock()
        if settings.enabled and settings.url and client is None:
            client = CifClient(settings.url, key_id=settings.key_id, secret=_secret(settings),
                               branch=settings.branch, clock=clock,
                               timeout_s=settings.timeout_s)
        self.client = client if settings.enabled else None
        cache = CustomerCache(settings.cache_size, settings.cache_ttl_s, clock)
        self.asker = BudgetedLookup(self.client, cache, budget_s=settings.budget_ms / 1000,
                                    in_flight=settings.in_flight)

    async def by_id(self, id_number: str) -> tuple[str, str, CustomerInfo | None]:
        """(source, reason, who) for an ID number: see the module doc."""
        if self.client is None:
            return NO_CIF
        try:
            source, reason, info = await self.asker.ask("id", id_number)
        except Exception as exc:  # a bug here must not cost the customer the booking
            log.error("CIF lookup failed: %s", type(exc).__name__)
            return "none", "error", None
        log.info("booking customer %s: %s%s", mask_number(id_number), source,
                 f" ({reason})" if reason else "")
        return source, reason, info

    async def close(self) -> None:
        await self.asker.close()
        if self.client is not None:
            await self.client.aclose()


def customer_columns(found: tuple[str, str, CustomerInfo | None]) -> dict[str, Any]:
    """What a booking keeps of a lookup: type and stars (None, 0: not known), source."""
    source, reason, info = found
    return {"customer_type": info.customer_type if info else None,
            "stars": info.stars if info else 0, "customer_source": source,
            "customer_reason": reason}
