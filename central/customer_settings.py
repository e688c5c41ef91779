"""The centre's ``[customers]`` section: appointments, remote tickets, public status, SMS.

Every key has a default; see docs/appointments.md, docs/public.md and docs/sms.md.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.clock import ClockStart, TimeZoneName

__all__ = ["BranchEntry", "CustomerSettings", "CustomerSmsSettings"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BranchEntry(_Model):
    """What the centre is told about a branch beyond what the box reports (optional)."""

    code: str = Field(pattern=r"^\d{4,16}$")
    name: str | None = None  # default: the box's own name
    address: str = ""
    latitude: float | None = Field(None, ge=-90, le=90)  # default: the box's config
    longitude: float | None = Field(None, ge=-180, le=180)
    capacity: int | None = Field(None, ge=0)  # bookings per business per slot; 0 = none
    bookable: list[str] | None = None  # businesses open to booking (default: all)


class CustomerSmsSettings(_Model):
    """SMS commands (central/sms_commands.py). The gateway they are received from and
    answered through is the centre's one ``[sms]`` (central/sms.py)."""

    inbound_token: str | None = None  # the gateway's token on POST /api/sms/inbound
    max_length: int = Field(70, ge=20, le=1000)  # characters per message (70: one GSM SMS)


class CustomerSettings(_Model):
    """Appointments (H2, A6), remote tickets (H3), remote rating (C3), public status (H1)."""

    enabled: bool = True  # customer routes and the push of bookings to the branches
    secret_file: str | None = None  # default: customers.key beside a SQLite store, else
    # data/customers.key; created (0600) if missing. Back it up with the database.
    timezone: TimeZoneName = "Asia/Shanghai"
    # Deprecated: the centre's top-level ``clock.start``, which it defaults (central/config.py)
    clock_start: ClockStart | None = None
    public_url: str = "http://127.0.0.1:8090"  # links and QR codes sent to customers
    capacity: int = Field(10, ge=0)  # bookings per business per slot, unless a branch says
    days_ahead: int = Field(7, ge=0, le=60)  # booking up to this many days ahead
    max_active: int = Field(3, ge=1, le=50)  # a customer's bookings still to come
    changes_per_hour: int = Field(10, ge=1, le=1000)  # bookings + cancellations per customer
    early_minutes: float = Field(30, ge=0, le=240)  # redeem from slot start − this
    late_minutes: float = Field(15, ge=0, le=240)  # … until slot end + this
    push_days: int = Field(2, ge=1, le=7)  # today and the next days go to the branches
    push_every_s: float = Field(2.0, gt=0)  # the push loop's look (new bookings wake it)
    resend_s: float = Field(60.0, gt=0)  # a push not answered: again after this (online)
    session_days: float = Field(30, gt=0)
    login_code_ttl_s: float = Field(300, gt=0)
    login_code_every_s: float = Field(60, gt=0)  # at most one code per phone this often
    login_attempts: int = Field(5, ge=1)  # wrong codes before the code is void
    # Sign-in code limits (central/code_limits.py, docs/sms.md), counted in the store:
    codes_per_phone_hour: int = Field(5, ge=1, le=60)  # codes to one phone in an hour
    codes_per_phone_day: int = Field(10, ge=1, le=200)  # … in any 24 hours
    codes_per_address: int = Field(10, ge=1)  # codes asked from one client network (an
    # IPv4 address, an IPv6 /64) in 10 minutes
    codes_per_centre_hour: int = Field(20_000, ge=100)  # the whole centre: a last-resort
    # budget on what the gateway bills, far above normal sign-ins
    remote_timeout_s: float = Field(5.0, gt=0)  # waiting for a branch's answer
    remote_expiry_s: float = Field(30.0, gt=0)  # a remote request is void after this
    remote_per_customer: int = Field(2, ge=1)  # open remote tickets per customer per day
    track_ttl_s: float = Field(5.0, gt=0)  # a branch is asked where tickets stand ≤ 1/this
    status_ttl_s: float = Field(2.0, gt=0)  # the public status is read from the store ≤ 1/this
    pool: int = Field(8, ge=1, le=64)  # store connections for customer requests
    # "Your turn is near" (H6, central/nearturn.py, docs/integrations.md):
    notify: bool = True  # tell remote and booked customers when near, and when called
    notify_ahead: int = Field(3, ge=0, le=50)  # "near": this many or fewer ahead
    notify_every_s: float = Field(1.0, gt=0)  # the watcher's look at the stored events
    notify_keep_days: int = Field(7, ge=1, le=366)  # notices_sent rows kept (days)
    notify_tries: int = Field(3, ge=1, le=10)  # per channel, on a transient failure
    notify_backoff_s: float = Field(1.0, ge=0, le=60)  # before the 2nd try; doubles
    notify_sms: bool = True  # SMS is the last channel (after WeChat, when bound)
    branches: list[BranchEntry] = []
    sms: CustomerSmsSettings = CustomerSmsSettings()

    @model_validator(mode="after")
    def _phone_limits(self) -> CustomerSettings:
        if self.codes_per_phone_day < self.codes_per_phone_hour:
            raise ValueError("codes_per_phone_day must be at least codes_per_phone_hour")
        return self

    def branch(self, code: str) -> BranchEntry | None:
        return next((b for b in self.branches if b.code == code), None)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
