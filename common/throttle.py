"""Throttles against guessing: failed logins and failed code redemptions, bounded per key.

* :class:`BackOff` — failures of one kind of key (client addresses, or staff accounts),
  with a doubling, capped wait; at most :data:`MAX_KEYS` keys are remembered.
* :class:`LoginThrottle` — the box's staff logins: a long back-off per client address, a
  short one per configured account (docs/api.md).
* :class:`Throttle` — failures per source and in all, in a sliding window (the box's
  appointment redemptions); over the limit it raises :class:`TooManyAttempts`, which the
  centre's customer pages answer too.
* :func:`client_address` — the key for a request's client (an IPv6 client by its /64).
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import Request

from .errors import PaiduiError

__all__ = [
    "MAX_KEYS", "BackOff", "LoginRules", "LoginThrottle", "Throttle", "TooManyAttempts",
    "client_address",
]


class TooManyAttempts(PaiduiError):
    """Too many failed redemptions from one place (or the box): try again in ``wait`` s."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, wait: int) -> None:
        self.wait = wait
        self.message = f"尝试次数过多,请{wait}秒后再试或咨询大堂经理。"
        self.message_en = f"Too many attempts. Please try again in {wait} s or ask the staff."
        super().__init__(self.message_en)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "message_en": self.message_en}


ADDRESS_FIRST_S, ADDRESS_CAP_S = 30.0, 3600.0  # a client address: 30 s, 1 min, ... 1 h
ACCOUNT_FIRST_S, ACCOUNT_CAP_S = 5.0, 60.0  # a teller or manager: 5 s, 10 s, ... 1 min
MAX_KEYS = 4096  # addresses (and accounts) remembered at once; ~1 MB at most


@dataclass(slots=True)
class _Failures:
    count: int
    until: float  # no login before this (the last failure's time while no wait is due)


class BackOff:
    """Failed logins of one kind of key (client addresses, or staff accounts), bounded.

    ``free`` failures cost nothing; the next makes the key wait ``first_s``, and each one
    after that doubles the wait, up to ``cap_s``. A key is forgotten ``forget_s`` after its
    wait is over without a new failure. At most ``max_keys`` keys are kept: past that,
    forgotten keys go first, then those whose last failure is oldest.
    """

    def __init__(self, *, free: int, first_s: float, cap_s: float, forget_s: float,
                 max_keys: int = MAX_KEYS) -> None:
        self.free, self.first_s, self.cap_s = free, first_s, cap_s
        self.forget_s, self.max_keys = forget_s, max_keys
        self.keys: OrderedDict[str, _Failures] = OrderedDict()  # oldest failure first

    def wait(self, key: str, now: float) -> float:
        """Seconds ``key`` must wait before its next try (0: none)."""
        f = self.keys.get(key)
        if f is None or now >= f.until + self.forget_s:
            return 0.0
        return max(0.0, f.until - now)

    def fail(self, key: str, now: float) -> None:
        f = self.keys.pop(key, None)
        if f is None or now >= f.until + self.forget_s:
            f = _Failures(0, now)
        f.count += 1
        over = f.count - self.free  # 0 on the last free failure: the first wait
        f.until = now + (min(self.cap_s, self.first_s * 2.0 ** min(over, 32)) if over >= 0
                         else 0.0)
        self.keys[key] = f
        if len(self.keys) > self.max_keys:
            self._shrink(now)

    def forget(self, key: str) -> None:
        self.keys.pop(key, None)

    def _shrink(self, now: float) -> None:
        """Down to three quarters of the bound, so a spray of new keys pays for one scan
        per ``max_keys / 4`` failures, not one per failure."""
        for key in [k for k, f in self.keys.items() if now >= f.until + self.forget_s]:
            del self.keys[key]
        while len(self.keys) > self.max_keys * 3 // 4:
            self.keys.popitem(last=False)


class LoginRules(Protocol):
    """What :class:`LoginThrottle` reads of the box's ``[web]`` settings."""

    @property
    def login_attempts(self) -> int: ...  # free failures per address and per account

    @property
    def login_window_s(self) -> float: ...  # quiet seconds that forget them


class LoginThrottle:
    """Failed logins per client address and per staff account (docs/api.md).

    An address that keeps failing waits longer and longer (up to an hour); an account
    (a configured teller or lobby manager id) waits briefly (at most a minute) and is
    cleared by a success from any address, so a client spraying wrong passwords locks
    itself out but the teller it targets only for moments. Ids nobody has configured
    count against the address only: the account table never holds more than the staff.
    """

    def __init__(self, web: LoginRules) -> None:
        self.addresses = BackOff(free=web.login_attempts, first_s=ADDRESS_FIRST_S,
                                 cap_s=ADDRESS_CAP_S, forget_s=web.login_window_s)
        self.accounts = BackOff(free=web.login_attempts, first_s=ACCOUNT_FIRST_S,
                                cap_s=ACCOUNT_CAP_S, forget_s=web.login_window_s)

    def wait(self, address: str, account: str | None, now: float) -> int:
        """Whole seconds before the next try from ``address`` for ``account`` (0: now)."""
        wait = self.addresses.wait(address, now)
        if account is not None:
            wait = max(wait, self.accounts.wait(account, now))
        return math.ceil(wait)

    def failed(self, address: str, account: str | None, now: float) -> None:
        self.addresses.fail(address, now)
        if account is not None:
            self.accounts.fail(account, now)

    def succeeded(self, account: str | None) -> None:
        if account is not None:
            self.accounts.forget(account)


def client_address(request: Request) -> str:
    """The throttle's key for the client: its IPv4 address, or its IPv6 /64 (one host can
    take any address of its /64)."""
    host = request.client.host if request.client else ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is None:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        ip = ip.ipv4_mapped
    return str(ip)


@dataclass
class Throttle:
    """Failed redemptions per source and per box in a sliding window (guessing codes)."""

    per_source: int = 5
    per_box: int = 30
    window_s: float = 300.0
    _sources: dict[str, deque[float]] = field(default_factory=dict)
    _box: deque[float] = field(default_factory=deque)

    def check(self, source: str, now: float) -> None:
        """Raise :class:`TooManyAttempts` while ``source`` (or the box) is over its limit."""
        for times, limit in ((self._sources.get(source), self.per_source),
                             (self._box, self.per_box)):
            if times is None:
                continue
            while times and now - times[0] >= self.window_s:
                times.popleft()
            if len(times) >= limit:
                raise TooManyAttempts(max(1, int(times[0] + self.window_s - now + 0.999)))

    def failed(self, source: str, now: float) -> None:
        self._sources.setdefault(source, deque()).append(now)
        self._box.append(now)
        if len(self._sources) > 1000:  # forget the quiet ones
            self._sources = {k: v for k, v in self._sources.items()
                             if v and now - v[-1] < self.window_s}
