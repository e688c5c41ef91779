"""How many sign-in codes the centre texts: per phone, per client network, and in all.

``POST /api/public/login/code`` costs an SMS. Its limits are kept so that nobody can turn
them against everyone (docs/sms.md, "Sign-in codes"):

* the number is checked first (:func:`protocols.appointment.parse_phone`): a malformed or
  non-mainland-mobile number is a 422 and counts against nothing;
* a code to one phone at most once per ``login_code_every_s`` (60 s),
  ``codes_per_phone_hour`` (5) an hour and ``codes_per_phone_day`` (10) in any 24 hours;
* ``codes_per_address`` (10) per client network (an IPv4 address, an IPv6 /64) in
  10 minutes;
* ``codes_per_centre_hour`` (20,000) for the whole centre: a last-resort budget on what
  the gateway bills, far above a province's sign-ins; only codes actually sent count.

A refused request is not counted, so requests over a limit cost the limits nothing. Each
code sent is one row per key (``phone:<digest>``, ``net:<address>``, ``centre``) in the
store's ``login_code_sends``: every centre process counts together. The check and the row
are one transaction (on PostgreSQL under one advisory lock, so two processes cannot both
take the last place). Rows older than a day are deleted on every send: the table holds at
most 3 × 24 × ``codes_per_centre_hour`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .appointments import CustomerRefused

if TYPE_CHECKING:
    from .appointments import StorePool
    from .customer_settings import CustomerSettings
    from .store import Store

__all__ = ["CodeLimit", "CodeLimits", "CodesLimited"]

DAY_S = 86400.0
ADDRESS_WINDOW_S = 600.0
LOCK = 4242051  # PostgreSQL advisory lock: one code reservation at a time, centre-wide

# code → (Chinese, English); {wait} in seconds
MESSAGES = {
    "code_too_soon": ("验证码已发送,请{wait}秒后再试。",
                      "A code was just sent; try again in {wait} s."),
    "codes_per_phone": ("该手机号获取验证码次数过多,请{wait}秒后再试。",
                        "Too many codes for this number; try again in {wait} s."),
    "codes_per_address": ("您的网络获取验证码过于频繁,请{wait}秒后再试。",
                          "Too many codes asked from your network; try again in {wait} s."),
    "sms_busy": ("短信服务繁忙,请{wait}秒后再试。",
                 "The SMS service is busy; try again in {wait} s."),
}


class CodesLimited(CustomerRefused):
    """429: a sign-in code limit is reached; ``retry_after`` seconds until it is not."""

    def __init__(self, code: str, wait: int) -> None:
        zh, en = MESSAGES[code]
        super().__init__(code, 429, zh.format(wait=wait), en.format(wait=wait))
        self.retry_after = wait


@dataclass(frozen=True, slots=True)
class CodeLimit:
    """At most ``count`` codes per ``window_s`` for ``key``; else :class:`CodesLimited`."""

    key: str
    count: int
    window_s: float
    code: str

    def wait(self, st: Store, now: float) -> int:
        """Seconds until one more code fits (0: it fits now)."""
        row = st.execute("SELECT at FROM login_code_sends WHERE key = ? AND at > ? "
                         "ORDER BY at DESC LIMIT 1 OFFSET ?",
                         (self.key, now - self.window_s, self.count - 1)).fetchone()
        return 0 if row is None else max(1, int(float(row[0]) + self.window_s - now + 0.999))


@dataclass(frozen=True, slots=True)
class Reservation:
    keys: tuple[str, ...]
    at: float


class CodeLimits:
    """The sign-in code limits of one centre process, counted in the shared store."""

    def __init__(self, pool: StorePool, settings: CustomerSettings) -> None:
        self.pool = pool
        self.settings = settings

    def limits(self, phone_digest: str, network: str) -> list[CodeLimit]:
        """In the order they are checked: the asker's network, the phone, the centre."""
        s, phone = self.settings, f"phone:{phone_digest}"
        return [CodeLimit(f"net:{network}", s.codes_per_address, ADDRESS_WINDOW_S,
                          "codes_per_address"),
                CodeLimit(phone, 1, s.login_code_every_s, "code_too_soon"),
                CodeLimit(phone, s.codes_per_phone_hour, 3600.0, "codes_per_phone"),
                CodeLimit(phone, s.codes_per_phone_day, DAY_S, "codes_per_phone"),
                CodeLimit("centre", s.codes_per_centre_hour, 3600.0, "sms_busy")]

    async def reserve(self, phone_digest: str, network: str, now: float) -> Reservation:
        """Count one code to ``phone_digest`` asked from ``network``, or raise
        :class:`CodesLimited` (the first limit reached, nothing counted)."""
        limits = self.limits(phone_digest, network)
        return await self.pool.run(_reserve, limits, now)

    async def release(self, taken: Reservation) -> None:
        """Un-count a reservation whose code was not sent (the gateway failed)."""
        await self.pool.run(_release, taken)


def _reserve(st: Store, limits: list[CodeLimit], now: float) -> Reservation:
    if st.postgres:
        st.execute("SELECT pg_advisory_xact_lock(?)", (LOCK,))
    for limit in limits:
        wait = limit.wait(st, now)
        if wait:
            raise CodesLimited(limit.code, wait)
    st.execute("DELETE FROM login_code_sends WHERE at <= ?", (now - DAY_S,))
    keys = tuple(dict.fromkeys(limit.key for limit in limits))
    for key in keys:
        st.execute("INSERT INTO login_code_sends (key, at) VALUES (?, ?)", (key, now))
    return Reservation(keys, now)


def _release(st: Store, taken: Reservation) -> None:
    for key in taken.keys:
        st.execute("DELETE FROM login_code_sends WHERE key = ? AND at = ?", (key, taken.at))
