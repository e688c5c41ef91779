"""Appointments at the branch (预约兑号, A6) and the centre's customer commands (H3, C3).

The package, by responsibility:

* :mod:`.book` — the day book: each branch-day's bookings in
  ``{data_dir}/appointments.sqlite3`` (WAL, ``synchronous=FULL``), the lists and deltas the
  centre sends applied on top, and its bounds.
* :mod:`.redeem` — redemption at the kiosk and the card readers: the A6 refusals, the
  throttle on guessing, once-only use through the journal.
* :mod:`.component` — the component the box runs (:class:`Appointments`): opens and closes
  the book, answers the centre's ``appointments``, ``ticket``, ``rate`` and ``track``
  commands, and offers the redemption desk (``box.appointment_redeemer``);
  :func:`build_appointments` registers those commands on the uplink.
* :mod:`.catalogue` — what the branch offers for booking, sent back to the centre.

See docs/appointments.md.
"""

from ..uplink.commands import CommandRefused
from .book import (
    AHEAD_DAYS,
    KEEP_CANCELLED,
    KEEP_DAYS,
    MAX_PER_SLOT,
    AppointmentBook,
    Booking,
    Day,
    check_bounds,
    most_bookings,
    retained_from,
)
from .catalogue import catalogue
from .component import Appointments, build_appointments, queue_load
from .redeem import RedemptionDesk

__all__ = [
    "AHEAD_DAYS",
    "KEEP_CANCELLED",
    "KEEP_DAYS",
    "MAX_PER_SLOT",
    "AppointmentBook",
    "Appointments",
    "Booking",
    "CommandRefused",
    "Day",
    "RedemptionDesk",
    "build_appointments",
    "catalogue",
    "check_bounds",
    "most_bookings",
    "queue_load",
    "retained_from",
]
