"""Appointments at the centre (预约, H2, A6): customers, bookings, the push to the branches.

* **Customers** sign in with their mobile number and a one-time code sent by SMS, then
  register once: name, gender, ID number (GB 11643 checked), optionally a bank card.
  Phone, ID and card numbers are stored as a keyed digest (exact lookup), sealed with
  AES-GCM (the one readable use: each day's per-branch digests) and masked (what every
  page, export and log shows); see :mod:`central.privacy`.
* **Bookings**: branch + business + day + slot (:data:`protocols.appointment.SLOTS`), within
  a per-slot capacity that concurrent bookings never exceed: one conditional
  ``UPDATE slot_counts SET booked = booked + 1 WHERE … AND booked < capacity`` per booking,
  in the booking's transaction (PostgreSQL re-checks the condition after a row lock wait;
  SQLite writers are serial). Each gets its 6-digit code (unique per branch-day: the store's
  ``UNIQUE (branch, day, code)``, a clash draws again) and a QR payload.
* **The branches** get today's and the next days' bookings ahead of time (``cmd/appointments``,
  one full list per branch-day with a revision bumped by every booking and cancellation),
  sent again until the box answers; its answer also brings its catalogue (businesses, hours,
  coordinates) back. Redemption happens at the box; the centre learns of it from the
  branch's events (``ticket_issued`` with ``appointment``).
* **Staff** list and search by time, name, area and ID number, exactly or fuzzily.

Synchronous SQL runs on a small pool of store connections (:class:`StorePool`).

The service is one class, :class:`Appointments`, assembled from its parts, each in its own
module over the shared state of :class:`~central.appointments.core.Base`:
:mod:`~central.appointments.signin` (SMS codes, sessions, registration),
:mod:`~central.appointments.slots` (catalogues, slots, capacity),
:mod:`~central.appointments.booking` (booking, cancelling, the staff's search) and
:mod:`~central.appointments.pushes` (the day lists pushed to the branches).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..cif import CentreCif
from ..customer_settings import CustomerSettings
from ..privacy import Vault
from ..sms import SmsGateway, make_gateway
from .booking import Booking
from .core import (
    CATALOGUE_TTL_S,
    NOT_RUN_WARN_S,
    SESSION_TTL_S,
    STATES,
    Customer,
    CustomerRefused,
    Recent,
    StorePool,
    booking_view,
    refused,
    secret_path,
    staff_view,
    view_state,
)
from .pushes import Pushes
from .signin import SignIn

if TYPE_CHECKING:
    from ..context import CentreContext

__all__ = ["STATES", "Appointments", "Customer", "CustomerRefused", "Recent", "StorePool",
           "booking_view", "refused", "secret_path", "staff_view", "view_state"]


class Appointments(SignIn, Booking, Pushes):
    """Customers, bookings and the push to the branches, for one centre process."""

    def __init__(self, centre: CentreContext, *, clock: Callable[[], float] | None = None,
                 sms: SmsGateway | None = None) -> None:
        from common.clock import FunctionClock, clock_for

        self.centre = centre
        self.settings: CustomerSettings = centre.config.customers
        self.clock = clock or clock_for(centre.config.clock.start).now  # the centre's, given
        self._vault: Vault | None = None  # read on first use (a file, maybe created)
        self.cif = CentreCif(centre.config.cif, self.clock)  # who books (off unless [cif])
        self.pool = StorePool(centre.config.store.url, self.settings.pool,
                              FunctionClock(self.clock))
        self.sms = sms or make_gateway(centre.config.sms)
        self._wake = asyncio.Event()
        # Another centre process may end a session: it lives on here for at most SESSION_TTL.
        self._sessions = Recent(SESSION_TTL_S)
        self._catalogues = Recent(CATALOGUE_TTL_S)
        self._known: tuple[str, float] = ("", 0.0)  # (days pushed for, when branches listed)
        self.not_run: Counter[str] = Counter()  # lists the boxes did not run, by code
        self.pushes: Counter[bool] = Counter()  # lists sent by this process: delta or not
        self.rows_pushed = 0  # bookings and removed ids in them
        self.in_flight = 0  # lists sent and not yet answered, at the last look
        self._not_run_told = Recent(NOT_RUN_WARN_S)  # push ids warned about


