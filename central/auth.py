"""Who may use the centre: users, roles, org scope, sessions, CSRF, login throttling.

* **Users** have a role and a **scope**, an org code: they see and act on that node and its
  subtree only (:func:`central.orgs.in_scope`). Anything else is ``403 out_of_scope``,
  whether it is a page, a JSON route or a live stream.
* **Roles** (:data:`PERMISSIONS`): ``admin`` (everything, including users and the org tree),
  ``manager`` (watch, pause/resume businesses, edit and push branch configurations),
  ``auditor`` (watch and read the audit log), ``viewer`` (watch).
* **Peers cannot see or change each other**: a user sees users whose scope lies in their own
  subtree, and manages only those strictly below them — deeper in the tree, or at the same
  node with a lower role. Two administrators of one node cannot touch each other.
* **Passwords** are scrypt hashes (:mod:`common.passwords`, memory-hard, 16 MiB).
* **Sessions**: a random 256-bit token, stored only as its SHA-256. Browsers carry it in
  an ``HttpOnly; SameSite=Strict`` cookie (``Secure`` over https) and must echo the
  session's CSRF token in ``X-CSRF-Token`` on every state-changing request; an ``Origin``
  from another site is refused. Scripts send ``Authorization: Bearer <token>`` and need no
  CSRF token (no ambient credential).
* **Login back-off** (:class:`BackOff`): after ``web.login_attempts`` free failures a
  client address (IPv6 by its /64) waits 30 s, doubling to an hour; an existing account
  waits 1 s, doubling to a minute, and a success resets it — so an attacker spraying one
  account from many addresses costs its user at most a minute per try, while each of its
  addresses is slowed to one guess an hour; an address the account logged in from in the
  last ``web.login_known_days`` is exempt from the account's back-off (only its own
  applies). ``429`` with ``Retry-After``. The back-off is in the store (every centre
  process counts the same), one row per key, at most ``web.login_max_rows``.

Every route declares what it needs with ``Depends(need("view"))`` (etc.): the dependency
answers 401 without a session and 403 without the permission. Scope is then checked
against the org code the route is about with :meth:`Principal.check`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from common.passwords import hash_password, verify_password

from .errors import CentreError
from .orgs import in_scope

if TYPE_CHECKING:
    from .context import CentreContext
    from .settings import WebSettings
    from .store import Store

__all__ = [
    "COOKIE",
    "PERMISSIONS",
    "ROLES",
    "ApiError",
    "BackOff",
    "Gate",
    "Principal",
    "User",
    "need",
]

log = logging.getLogger(__name__)

COOKIE = "paidui_centre"
ROLES = ("admin", "manager", "auditor", "viewer")
RANK = {"viewer": 0, "auditor": 1, "manager": 2, "admin": 3}
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"view", "control", "configure", "users", "orgs", "audit"}),
    "manager": frozenset({"view", "control", "configure"}),
    "auditor": frozenset({"view", "audit"}),
    "viewer": frozenset({"view"}),
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LAST_SEEN_EVERY_S = 60.0

ERRORS: dict[str, tuple[int, str, str]] = {
    "login_required": (401, "请先登录。", "Please log in first."),
    "forbidden": (403, "您的角色无权进行此操作。", "Your role does not allow this."),
    "out_of_scope": (403, "无权访问该机构的数据。", "That organisation is outside your scope."),
    "csrf_failed": (403, "页面已过期,请刷新后重试。",
                    "The page has expired; reload and try again."),
    "too_many_attempts": (429, "登录失败次数过多,请{wait}秒后再试。",
                          "Too many failed logins. Try again in {wait} s."),
    "wrong_password": (401, "用户名或密码错误。", "Wrong user name or password."),
    "not_found": (404, "没有找到。", "Not found."),
    "invalid": (422, "{detail}", "{detail}"),
    "conflict": (409, "{detail}", "{detail}"),
    "unavailable": (503, "{detail}", "{detail}"),
}


class ApiError(CentreError):
    """An answer other than success: ``{"error": {"code", "message", "message_en"},
    "detail": message_en}`` with the status of ``ERRORS[code]``."""

    def __init__(self, code: str, headers: dict[str, str] | None = None, *,
                 message: str | None = None, message_en: str | None = None,
                 extra: dict[str, Any] | None = None, **params: Any) -> None:
        status, zh, en = ERRORS[code]
        self.code, self.status, self.headers = code, status, headers
        self.extra = extra or {}
        self.message = message or zh.format(**params)
        self.message_en = message_en or en.format(**params)
        super().__init__(f"{code}: {self.message_en}")

    def response(self) -> JSONResponse:
        body = {"code": self.code, "message": self.message, "message_en": self.message_en,
                **self.extra}
        return JSONResponse({"error": body, "detail": self.message_en}, self.status,
                            headers=self.headers)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    role: str
    scope: str
    disabled: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "scope": self.scope,
                "disabled": self.disabled, "permissions": sorted(PERMISSIONS[self.role])}


@dataclass(frozen=True, slots=True)
class Principal:
    """The user behind one request, and how they proved it."""

    user: User
    csrf: str
    by_cookie: bool
    address: str = ""

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def scope(self) -> str:
        return self.user.scope

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.user.role, frozenset())

    def sees(self, code: str | None) -> bool:
        """True when the org ``code`` is in this user's subtree (None: centre-wide data,
        which only a user scoped to a root of the tree sees)."""
        if code is None:
            return False
        return in_scope(self.user.scope, code)

    def check(self, code: str) -> None:
        """Raise ``403 out_of_scope`` unless ``code`` is in this user's subtree."""
        if not self.sees(code):
            raise ApiError("out_of_scope")

    def manages(self, other: User) -> bool:
        """Peers cannot change each other: only users strictly below this one."""
        if not self.can("users") or not in_scope(self.user.scope, other.scope):
            return False
        deeper = len(other.scope) > len(self.user.scope)
        return deeper or RANK[other.role] < RANK[self.user.role]


def need(permission: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the request's principal, holding ``permission``."""

    async def dependency(request: Request) -> Principal:
        gate: Gate = request.app.state.gate
        return await gate.require(request, permission)

    dependency.__name__ = f"need_{permission}"
    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def outside_sessions(why: str) -> Callable[[], None]:
    """A FastAPI dependency that checks nothing and says so: the route is deliberately
    outside back-office sessions (customers' own pages and sign-in, the SMS gateway with
    its own token). ``why`` is kept for the every-route test and for readers."""

    def dependency() -> None:
        return None

    dependency.__name__ = f"outside_sessions_{why}"
    dependency.permission = f"public:{why}"  # type: ignore[attr-defined]
    return dependency


# --- the store ------------------------------------------------------------------------------


def _user(row: Any) -> User:
    return User(row[0], row[1], row[2], row[3], bool(row[4]))


def get_user(store: Store, user_id: str) -> User | None:
    row = store.execute("SELECT id, name, role, scope, disabled FROM users WHERE id = ?",
                        (user_id,)).fetchone()
    return _user(row) if row else None


def list_users(store: Store, scope: str) -> list[User]:
    rows = store.execute("SELECT id, name, role, scope, disabled FROM users "
                         "WHERE scope LIKE ? ORDER BY scope, id", (scope + "%",)).fetchall()
    return [_user(r) for r in rows]


def password_hash_of(store: Store, user_id: str) -> tuple[str, bool] | None:
    row = store.execute("SELECT password_hash, disabled FROM users WHERE id = ?",
                        (user_id,)).fetchone()
    return (str(row[0]), bool(row[1])) if row else None


def create_user(store: Store, user: User, password_hash: str, by: str) -> None:
    now = store.clock.now()

    def run() -> None:
        if get_user(store, user.id) is not None:
            raise ApiError("conflict", detail=f"user {user.id} exists",
                           message=f"用户 {user.id} 已存在")
        store.execute("INSERT INTO users (id, name, role, scope, password_hash, disabled, "
                      "created_at, created_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (user.id, user.name, user.role, user.scope, password_hash, user.disabled,
                       now, by, now))

    store.retrying(run)


def update_user(store: Store, user: User, password_hash: str | None) -> None:
    sets, args = "name = ?, role = ?, scope = ?, disabled = ?, updated_at = ?", [
        user.name, user.role, user.scope, user.disabled, store.clock.now()]
    if password_hash is not None:
        sets += ", password_hash = ?"
        args.append(password_hash)

    def run() -> None:
        store.execute(f"UPDATE users SET {sets} WHERE id = ?", (*args, user.id))
        if user.disabled or password_hash is not None:  # old sessions end with it
            store.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))

    store.retrying(run)


def count_users(store: Store) -> int:
    return int(store.execute("SELECT count(*) FROM users").fetchone()[0])


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(store: Store, user_id: str, hours: float, address: str
                   ) -> tuple[str, str, float]:
    """A new session: (token, csrf token, expiry)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = store.clock.now()
    expires = now + hours * 3600

    def run() -> None:
        store.execute("INSERT INTO sessions (token_hash, user_id, csrf, created_at, "
                      "expires_at, last_seen, address) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (_token_hash(token), user_id, csrf, now, expires, now, address[:64]))
        store.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))

    store.retrying(run)
    return token, csrf, expires


def session_of(store: Store, token: str, now: float) -> tuple[User, str] | None:
    """(user, csrf) of a live session of an enabled user, or None."""
    digest = _token_hash(token)
    row = store.execute(
        "SELECT u.id, u.name, u.role, u.scope, u.disabled, s.csrf, s.last_seen "
        "FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = ? AND s.expires_at > ?", (digest, now)).fetchone()
    if row is None or row[4]:
        return None
    if now - float(row[6]) > LAST_SEEN_EVERY_S:
        store.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, digest))
    return _user(row), str(row[5])


def end_session(store: Store, token: str) -> None:
    store.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))


@dataclass(frozen=True, slots=True)
class BackOff:
    """How long a key (a client address, an account) waits after its failures.

    ``free`` failures cost nothing; the last free one makes the key wait ``first_s``, and
    each further failure doubles it, up to ``cap_s``. The key is forgotten ``forget_s``
    after its wait ends with no new failure (the box's rule: common/throttle.py).
    """

    free: int
    first_s: float
    cap_s: float
    forget_s: float

    def delay(self, failures: int) -> float:
        over = failures - self.free
        return 0.0 if over < 0 else min(self.cap_s, self.first_s * 2.0 ** min(over, 32))


def login_wait(store: Store, source: str, account: str, known: str, now: float) -> float:
    """Seconds before ``source`` may try ``account`` again: the address's back-off, and
    the account's unless the account logged in from this address lately (``known``)."""
    trusted = store.execute("SELECT 1 FROM login_backoff WHERE key = ? AND expires > ?",
                            (known, now)).fetchone()
    return backoff_wait(store, [source] if trusted else [source, account], now)


def backoff_wait(store: Store, keys: list[str], now: float) -> float:
    """Seconds until every one of ``keys`` may try again (0: now)."""
    marks = ", ".join("?" * len(keys))
    rows = store.execute(f"SELECT wait_until FROM login_backoff WHERE key IN ({marks}) "
                         "AND expires > ?", (*keys, now)).fetchall()
    return max([0.0, *(float(r[0]) - now for r in rows)])


def record_failure(store: Store, keys: dict[str, BackOff], now: float, max_rows: int
                   ) -> None:
    """One more failure for each key (a forgotten key starts again at one), then the
    table pruned: forgotten rows, and past ``max_rows`` the soonest to expire."""

    def run() -> None:
        for key, rule in keys.items():
            store.execute(
                "INSERT INTO login_backoff (key, failures, wait_until, expires) "
                "VALUES (?, 1, ?, ?) ON CONFLICT (key) DO UPDATE SET failures = CASE "
                "WHEN login_backoff.expires <= ? THEN 1 ELSE login_backoff.failures + 1 END",
                (key, now, now + rule.forget_s, now))
            failures = int(store.execute("SELECT failures FROM login_backoff WHERE key = ?",
                                         (key,)).fetchone()[0])
            until = now + rule.delay(failures)
            store.execute("UPDATE login_backoff SET wait_until = ?, expires = ? WHERE key = ?",
                          (until, until + rule.forget_s, key))
        prune_backoff(store, now, max_rows)

    store.retrying(run)


def prune_backoff(store: Store, now: float, max_rows: int) -> None:
    """Forgotten rows go; past ``max_rows``, down to three quarters of it (one count per
    failure, one trim per ``max_rows / 4`` new keys), those expiring soonest first."""
    store.execute("DELETE FROM login_backoff WHERE expires <= ?", (now,))
    count = int(store.execute("SELECT count(*) FROM login_backoff").fetchone()[0])
    if count > max_rows:
        store.execute("DELETE FROM login_backoff WHERE key IN (SELECT key FROM login_backoff "
                      "ORDER BY expires LIMIT ?)", (count - max_rows * 3 // 4,))


def logged_in(store: Store, account: str, known: str, now: float, keep_s: float) -> None:
    """A success: the account's back-off is reset, and its address is known for
    ``keep_s`` (the account's back-off does not apply to it meanwhile)."""

    def run() -> None:
        store.execute("DELETE FROM login_backoff WHERE key = ?", (account,))
        if keep_s > 0:
            store.execute("INSERT INTO login_backoff (key, failures, wait_until, expires) "
                          "VALUES (?, 0, 0, ?) ON CONFLICT (key) DO UPDATE SET "
                          "expires = excluded.expires", (known, now + keep_s))

    store.retrying(run)


def address_key(host: str) -> str:
    """The back-off's key for a client: its IPv4 address, or its IPv6 /64 (one host can
    take any address of its /64); an IPv4-mapped IPv6 address is its IPv4 address."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is None:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        ip = ip.ipv4_mapped
    return str(ip)


# --- the gate -------------------------------------------------------------------------------


class Gate:
    """Logs users in and finds the principal of each request (one per app)."""

    def __init__(self, centre: CentreContext, settings: WebSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.centre, self.settings, self.clock = centre, settings, clock
        s = settings
        self.by_address = BackOff(s.login_attempts, s.login_address_first_s,
                                  s.login_address_max_s, s.login_window_s)
        self.by_account = BackOff(s.login_attempts, s.login_account_first_s,
                                  s.login_account_max_s, s.login_window_s)

    async def bootstrap(self) -> None:
        """Create the configured first administrator when there is no user at all."""
        seed = self.settings.admin
        if seed.password_hash is None and seed.password is None:
            return
        if await self.centre.read(count_users):
            return
        digest = seed.password_hash
        if digest is None:
            digest = await asyncio.to_thread(hash_password, seed.password or "")
        user = User(seed.user, seed.name, "admin", seed.scope)
        stored: str = digest
        await self.centre.read(lambda s: create_user(s, user, stored, "config"))
        log.warning("created the first administrator %r (scope %s) from the config",
                    seed.user, seed.scope)

    # requests
    async def principal(self, request: Request) -> Principal | None:
        token, by_cookie = _token_of(request)
        if not token or len(token) > 200:
            return None
        now = self.clock()
        found = await self.centre.read(lambda s: session_of(s, token, now))
        if found is None:
            return None
        user, csrf = found
        return Principal(user, csrf, by_cookie, _address(request))

    async def require(self, request: Request, permission: str) -> Principal:
        who = await self.principal(request)
        if who is None:
            raise ApiError("login_required")
        if by_cookie_unsafe(request, who) and not csrf_ok(request, who.csrf):
            raise ApiError("csrf_failed")
        if not who.can(permission):
            raise ApiError("forbidden")
        return who

    # logging in and out
    async def login(self, request: Request, user_id: str, password: str
                    ) -> tuple[Principal, str, float]:
        """(principal, token, expiry) or :class:`ApiError` (401 wrong, 429 backing off).

        Checked in the store before the password: the client address's back-off and the
        account's. A failure counts against the address, and against the account only
        when it exists (the table never holds more accounts than there are users)."""
        s, address, now = self.settings, _address(request), self.clock()
        name, where = user_id.lower(), address_key(address)
        account, source, known = f"user:{name}", f"addr:{where}", f"known:{name}|{where}"
        wait = await self.centre.read(lambda st: login_wait(st, source, account, known, now))
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ApiError("too_many_attempts", {"Retry-After": str(seconds)}, wait=seconds)
        found = await self.centre.read(lambda st: password_hash_of(st, user_id))
        digest, disabled = found or (_dummy_hash(), True)
        ok = await asyncio.to_thread(verify_password, digest, password)
        if not ok or disabled:
            counted = {source: self.by_address}
            if found is not None:
                counted[account] = self.by_account
            await self.centre.read(lambda st: record_failure(st, counted, now,
                                                             s.login_max_rows))
            raise ApiError("wrong_password")
        keep_s = s.login_known_days * 86400
        await self.centre.read(lambda st: logged_in(st, account, known, now, keep_s))
        token, csrf, expires = await self.centre.read(
            lambda st: create_session(st, user_id, s.session_hours, address))
        user = await self.centre.read(lambda st: get_user(st, user_id))
        assert user is not None
        return Principal(user, csrf, True, address), token, expires

    async def logout(self, request: Request) -> None:
        token, _ = _token_of(request)
        if token:
            await self.centre.read(lambda s: end_session(s, token))

    def cookie(self, request: Request, response: Response, token: str | None,
               expires: float = 0.0) -> None:
        """Set (or, with ``token`` None, clear) the session cookie on ``response``."""
        secure = self.settings.secure_cookies == "always" or (
            self.settings.secure_cookies == "auto" and request.url.scheme == "https")
        if token is None:
            response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True,
                                   samesite="strict")
            return
        response.set_cookie(COOKIE, token, max_age=max(0, int(expires - self.clock())),
                            path="/", secure=secure, httponly=True, samesite="strict")

    def metrics_allowed(self, request: Request) -> bool:
        """A scraper with the configured ``web.metrics_token`` (no session needed)."""
        want = self.settings.metrics_token
        header = request.headers.get("authorization", "")
        return bool(want) and header[:7].lower() == "bearer " and hmac.compare_digest(
            header[7:].strip().encode(), want.encode())


@functools.cache
def _dummy_hash() -> str:
    """A real hash to check against when the user does not exist: the same time either way."""
    return hash_password(secrets.token_hex(8))


def _token_of(request: Request) -> tuple[str | None, bool]:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip(), False
    token = request.cookies.get(COOKIE)
    return (token, True) if token else (None, False)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def by_cookie_unsafe(request: Request, who: Principal) -> bool:
    return who.by_cookie and request.method not in SAFE_METHODS


def csrf_ok(request: Request, csrf: str) -> bool:
    """The page echoed its session's CSRF token, and no other site sent the request."""
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        return False
    sent = request.headers.get("x-csrf-token", "")
    return bool(sent) and hmac.compare_digest(sent.encode(), csrf.encode())
