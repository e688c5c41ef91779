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
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from controller.uplink.link import still_cancelling
from protocols import appointment as ap
from protocols.metrics import Metric
from protocols.uplink import NOT_RUN

from .customer_settings import CustomerSettings
from .errors import CentreError
from .privacy import Vault
from .sms import SmsGateway, make_gateway
from .store import Store, open_store, sqlite_path

if TYPE_CHECKING:
    from .service import Centre

__all__ = ["STATES", "Appointments", "CustomerRefused", "StorePool", "booking_view",
           "view_state"]

log = logging.getLogger(__name__)
T = TypeVar("T")

LIST_BRANCHES_S = 5.0  # new branches get their day lists within this
STATES = ("booked", "redeemed", "missed", "cancelled")  # a booking as people see it
SESSION_TTL_S = 30.0  # a registered customer's session, remembered
CATALOGUE_TTL_S = 10.0  # what a branch offers, remembered
NOT_RUN_WARN_S = 3600.0  # a list the box did not run: one warning an hour while it stays so
SENT_CODE = "【排队预约】您的验证码是{code},{minutes}分钟内有效。如非本人操作,请忽略。"


class CustomerRefused(CentreError, ValueError):
    """A customer's (or staff's) request the centre turns down, with words to show.

    ``code`` is stable; ``message`` Chinese, ``message_en`` English; ``status`` for HTTP.
    """

    def __init__(self, code: str, status: int, message: str, message_en: str) -> None:
        self.code, self.status, self.message, self.message_en = code, status, message, message_en
        super().__init__(f"{code}: {message_en}")

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "message_en": self.message_en}


def refused(code: str, **params: Any) -> CustomerRefused:
    status, zh, en = MESSAGES[code]
    return CustomerRefused(code, status, zh.format(**params), en.format(**params))


MESSAGES: dict[str, tuple[int, str, str]] = {
    "not_logged_in": (401, "请先登录。", "Please sign in first."),
    "not_registered": (403, "请先完成注册(姓名、性别、身份证号)。",
                       "Please register first (name, gender, ID number)."),
    "already_registered": (409, "该手机号或身份证号已注册。",
                           "This phone or ID number is already registered."),
    "bad_name": (422, "请填写姓名(1–20个字)。", "Please give a name (1-20 characters)."),
    "gender_mismatch": (422, "性别与身份证号不符。", "The gender does not match the ID number."),
    "bad_card": (422, "银行卡号无效。", "That bank card number is not valid."),
    "code_wrong": (401, "验证码错误或已过期,请重新获取。",
                   "Wrong or expired code; please ask for a new one."),
    "code_too_soon": (429, "验证码已发送,请{wait}秒后再试。",
                      "A code was just sent; try again in {wait} s."),
    "unknown_branch": (404, "没有该网点或该网点暂未开通预约:{branch}",
                       "No such branch, or it takes no bookings yet: {branch}"),
    "unknown_queue": (404, "该网点没有该业务:{queue}", "This branch has no business {queue}."),
    "not_bookable": (409, "该业务暂不接受预约。", "This business takes no bookings."),
    "closed_day": (409, "{day}该业务不办理,请选择其他日期。",
                   "The business is not offered on {day}; choose another day."),
    "outside_hours": (409, "{slot}不在营业时间内,请选择其他时段。",
                      "{slot} is outside business hours; choose another slot."),
    "slot_past": (409, "该时段已过,请选择其他时段。", "That slot has passed; choose another."),
    "too_far_ahead": (409, "只能预约{days}天内的业务。", "Bookings open {days} days ahead."),
    "bad_slot": (422, "时段应为1–9(1=08:00-09:00…9=16:00-17:00)。",
                 "A slot is 1-9 (1 = 08:00-09:00 … 9 = 16:00-17:00)."),
    "slot_full": (409, "该时段已约满,请选择其他时段。", "That slot is fully booked."),
    "already_booked": (409, "您已预约该网点当天的该业务。",
                       "You already have this business booked at this branch that day."),
    "too_many_bookings": (409, "您已有{n}个未办理的预约,请办理或取消后再约。",
                          "You have {n} bookings to come; use or cancel one first."),
    "booking_unknown": (404, "没有该预约。", "No such booking."),
    "booking_cancelled": (409, "该预约已取消。", "This booking is already cancelled."),
    "booking_used": (409, "该预约已兑号,不能取消。", "This booking was used; it cannot be "
                                                  "cancelled."),
    "booking_past": (409, "该预约已过期。", "This booking is in the past."),
    "staff_only": (401, "仅限工作人员。", "Staff only."),
}


# --- the store pool ----------------------------------------------------------------------


class StorePool:
    """``size`` worker threads, each with its own store connection (opened on first use)."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self._executor = concurrent.futures.ThreadPoolExecutor(size,
                                                               thread_name_prefix="customers")
        self._local = threading.local()
        self._opened: list[Store] = []
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(store, *args)`` on a pool thread, in a transaction (retried on a deadlock)."""
        def call() -> T:
            store = self._store()
            return store.retrying(lambda: fn(store, *args))
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(store, *args)`` on a pool thread without a transaction (reading only)."""
        def call() -> T:
            return fn(self._store(), *args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _store(self) -> Store:
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = open_store(self.url)
            self._local.store = store
            with self._lock:
                self._opened.append(store)
        return store

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, True)
        with self._lock:
            opened, self._opened = self._opened, []
        for store in opened:
            with contextlib.suppress(Exception):
                store.close()


class Recent(dict[Any, tuple[float, Any]]):
    """Values remembered for ``ttl`` seconds (monotonic): what a busy centre need not
    read from the store on every request."""

    def __init__(self, ttl: float) -> None:
        super().__init__()
        self.ttl = ttl

    def fresh(self, key: Any) -> Any:
        hit = self.get(key)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def keep(self, key: Any, value: Any) -> Any:
        if len(self) > 10_000:
            self.clear()
        self[key] = (time.monotonic(), value)
        return value


# --- rows --------------------------------------------------------------------------------


def _rows(st: Store, sql: str, args: Any = ()) -> list[dict[str, Any]]:
    cur = st.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _one(st: Store, sql: str, args: Any = ()) -> dict[str, Any] | None:
    found = _rows(st, sql, args)
    return found[0] if found else None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Customer:
    """A signed-in customer: the session's phone digest, and the registration if any."""

    phone_digest: str
    phone: str  # readable in memory only (to text the customer), never stored so
    id: str | None
    name: str | None


# --- the service ----------------------------------------------------------------------


class Appointments:
    """Customers, bookings and the push to the branches, for one centre process."""

    def __init__(self, centre: Centre, *, clock: Callable[[], float] | None = None,
                 sms: SmsGateway | None = None) -> None:
        from controller.clock import clock_for

        self.centre = centre
        self.settings: CustomerSettings = centre.config.customers
        self.clock = clock or clock_for(self.settings.clock_start).now
        self._vault: Vault | None = None  # read on first use (a file, maybe created)
        self.pool = StorePool(centre.config.store.url, self.settings.pool)
        self.sms = sms or make_gateway(centre.config.sms)
        self._wake = asyncio.Event()
        # Another centre process may end a session: it lives on here for at most SESSION_TTL.
        self._sessions = Recent(SESSION_TTL_S)
        self._catalogues = Recent(CATALOGUE_TTL_S)
        self._known: tuple[str, float] = ("", 0.0)  # (days pushed for, when branches listed)
        self.not_run: Counter[str] = Counter()  # lists the boxes did not run, by code
        self._not_run_told = Recent(NOT_RUN_WARN_S)  # push ids warned about

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault.from_file(secret_path(self.settings, self.pool.url))
        return self._vault

    # --- time ------------------------------------------------------------------------------

    def today(self) -> str:
        return dt.datetime.fromtimestamp(self.clock(), self.settings.tz).date().isoformat()

    def days(self, n: int) -> list[str]:
        start = dt.date.fromisoformat(self.today())
        return [(start + dt.timedelta(days=i)).isoformat() for i in range(n)]

    # --- signing in ------------------------------------------------------------------------

    async def send_code(self, phone_text: str) -> dict[str, Any]:
        """Text a one-time sign-in code to a mobile number (at most one per minute)."""
        phone = ap.parse_phone(phone_text)
        code = f"{secrets.randbelow(10 ** 6):06d}"
        await self.pool.run(self._save_code, self.vault.digest(phone), phone, code)
        minutes = max(1, round(self.settings.login_code_ttl_s / 60))
        await self.sms.send(phone, SENT_CODE.format(code=code, minutes=minutes))
        return {"sent": True, "to": ap.mask_phone(phone), "expires_in": minutes * 60}

    def _save_code(self, st: Store, phone_digest: str, phone: str, code: str) -> None:
        now, s = self.clock(), self.settings
        row = _one(st, "SELECT sent_at FROM login_codes WHERE phone_digest = ?", (phone_digest,))
        if row is not None and now - row["sent_at"] < s.login_code_every_s:
            raise refused("code_too_soon", wait=int(s.login_code_every_s - (now - row["sent_at"])
                                                    + 1))
        st.execute("INSERT INTO login_codes (phone_digest, code_digest, sent_at, expires_at, "
                   "attempts) VALUES (?, ?, ?, ?, 0) ON CONFLICT (phone_digest) DO UPDATE SET "
                   "code_digest = excluded.code_digest, sent_at = excluded.sent_at, "
                   "expires_at = excluded.expires_at, attempts = 0",
                   (phone_digest, self.vault.digest(f"{phone}|{code}"), now,
                    now + s.login_code_ttl_s))

    async def sign_in(self, phone_text: str, code: str) -> dict[str, Any]:
        """Check the code; a session token (and whether the customer is registered)."""
        phone = ap.parse_phone(phone_text)
        token = secrets.token_urlsafe(32)
        registered = await self.pool.run(self._sign_in, phone, code.strip(), token)
        if registered is None:  # the wrong attempt is counted (committed) first
            raise refused("code_wrong")
        return {"token": token, "registered": registered, "phone": ap.mask_phone(phone)}

    def _sign_in(self, st: Store, phone: str, code: str, token: str) -> bool | None:
        now, digest = self.clock(), self.vault.digest(phone)
        row = _one(st, "SELECT code_digest, expires_at, attempts FROM login_codes "
                       "WHERE phone_digest = ?", (digest,))
        if row is None or now > row["expires_at"] or row["attempts"] >= \
                self.settings.login_attempts:
            return None
        if not secrets.compare_digest(row["code_digest"], self.vault.digest(f"{phone}|{code}")):
            st.execute("UPDATE login_codes SET attempts = attempts + 1 WHERE phone_digest = ?",
                       (digest,))
            return None
        st.execute("DELETE FROM login_codes WHERE phone_digest = ?", (digest,))
        st.execute("INSERT INTO customer_sessions (token_digest, phone_digest, phone_sealed, "
                   "created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                   (_sha(token), digest, self.vault.seal(phone, "phone"), now,
                    now + self.settings.session_days * 86400))
        return _one(st, "SELECT id FROM customers WHERE phone_digest = ?", (digest,)) is not None

    async def customer(self, token: str | None) -> Customer:
        """The customer of a session token; :class:`CustomerRefused` ``not_logged_in``."""
        if not token:
            raise refused("not_logged_in")
        digest = _sha(token)
        found = self._sessions.fresh(digest)
        if found is None:
            found = await self.pool.read(self._session, digest)
            if found is not None and found.id is not None:  # registered: stable for a while
                self._sessions.keep(digest, found)
        if found is None:
            raise refused("not_logged_in")
        return found

    def _session(self, st: Store, token_digest: str) -> Customer | None:
        row = _one(st, "SELECT s.phone_digest, s.phone_sealed, s.expires_at, c.id, c.name FROM "
                       "customer_sessions s LEFT JOIN customers c ON c.phone_digest = "
                       "s.phone_digest WHERE s.token_digest = ?", (token_digest,))
        if row is None or row["expires_at"] < self.clock():
            return None
        return Customer(row["phone_digest"], self.vault.open(row["phone_sealed"], "phone"),
                        row["id"], row["name"])

    async def customer_by_phone(self, phone: str) -> Customer:
        """The customer an SMS comes from (the gateway vouches for the sender)."""
        number = ap.parse_phone(phone)
        digest = self.vault.digest(number)
        row = await self.pool.read(lambda st: _one(
            st, "SELECT id, name FROM customers WHERE phone_digest = ?", (digest,)))
        return Customer(digest, number, row["id"] if row else None, row["name"] if row else None)

    async def sign_out(self, token: str) -> None:
        self._sessions.pop(_sha(token), None)
        await self.pool.run(lambda st: st.execute(
            "DELETE FROM customer_sessions WHERE token_digest = ?", (_sha(token),)))

    # --- registration --------------------------------------------------------------------

    async def register(self, who: Customer, name: str, gender: str | None, id_text: str,
                       card: str | None = None) -> dict[str, Any]:
        """Register the signed-in phone: name, gender (checked against the ID), ID number."""
        from protocols.cards import CardError, parse_ic

        name = " ".join(name.split())
        if not 1 <= len(name) <= 20:
            raise refused("bad_name")
        person = ap.parse_id(id_text)
        sex = "M" if person.male else "F"
        if gender not in (None, "", sex):
            raise refused("gender_mismatch")
        card_number = None
        if card:
            try:
                card_number = parse_ic(card).number
            except CardError:
                raise refused("bad_card") from None
        return await self.pool.run(self._register, who, name, sex, person.number, card_number)

    def _register(self, st: Store, who: Customer, name: str, sex: str, number: str,
                  card: str | None) -> dict[str, Any]:
        v = self.vault
        clash = _one(st, "SELECT id FROM customers WHERE phone_digest = ? OR id_digest = ?",
                     (who.phone_digest, v.digest(number)))
        if clash is not None:
            raise refused("already_registered")
        cid = "c" + secrets.token_hex(8)
        st.execute(
            "INSERT INTO customers (id, name, gender, phone_digest, phone_sealed, phone_masked, "
            "id_digest, id_sealed, id_masked, id_region, id_tail, card_digest, card_sealed, "
            "card_masked, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (cid, name, sex, who.phone_digest, v.seal(who.phone, "phone"),
             ap.mask_phone(who.phone), v.digest(number),
             v.seal(number, "id_number"), ap.mask_number(number), number[:6], number[-4:],
             v.digest(card) if card else None, v.seal(card, "card") if card else None,
             ap.mask_number(card) if card else None, self.clock()))
        log.info("customer %s registered (ID %s)", cid, ap.mask_number(number))
        return self._profile(st, cid)

    def _profile(self, st: Store, cid: str) -> dict[str, Any]:
        row = _one(st, "SELECT id, name, gender, phone_masked AS phone, id_masked AS id_number, "
                       "card_masked AS card, created_at FROM customers WHERE id = ?", (cid,))
        assert row is not None
        return row

    async def profile(self, who: Customer) -> dict[str, Any]:
        if who.id is None:
            raise refused("not_registered")
        cid = who.id
        return await self.pool.read(lambda st: self._profile(st, cid))

    # --- what may be booked ------------------------------------------------------------------

    async def catalogue(self, branch: str) -> dict[str, Any] | None:
        """What a branch's box last said it offers (businesses, hours, coordinates)."""
        cat = self._catalogues.fresh(branch)
        if cat is None:
            cat = self._catalogues.keep(branch, await self.pool.read(_catalogue, branch))
        return cat

    async def bookable(self, branch: str, day: str | None = None) -> dict[str, Any]:
        """Each business of a branch with, per slot of ``day``, the places left."""
        day = day or self.today()
        cat = await self.catalogue(branch)
        if cat is None:
            raise refused("unknown_branch", branch=branch)
        counts = await self.pool.read(_slot_counts, branch, day)
        cap = self._capacity(branch)
        queues = []
        for q in self._bookable_queues(branch, cat):
            slots = []
            for s in ap.SLOTS:
                problem = self._slot_problem(cat, q, day, s.number)
                left = max(0, cap - counts.get((q["id"], s.number), 0))
                slots.append({"slot": s.number, "label": s.label, "left": 0 if problem else left,
                              "open": problem is None and left > 0, "why": problem})
            queues.append({"id": q["id"], "name": q["name"], "name_en": q.get("name_en", ""),
                           "slots": slots})
        return {"branch": branch, "name": self._branch_name(branch, cat), "day": day,
                "days": self.days(self.settings.days_ahead + 1), "queues": queues}

    async def branch_name(self, branch: str) -> str:
        return self._branch_name(branch, await self.catalogue(branch))

    def _capacity(self, branch: str) -> int:
        entry = self.settings.branch(branch)
        return entry.capacity if entry and entry.capacity is not None else \
            self.settings.capacity

    def _bookable_queues(self, branch: str, cat: dict[str, Any]) -> list[dict[str, Any]]:
        entry = self.settings.branch(branch)
        allowed = entry.bookable if entry and entry.bookable is not None else None
        return [q for q in cat.get("queues", []) if allowed is None or q["id"] in allowed]

    def _branch_name(self, branch: str, cat: dict[str, Any] | None) -> str:
        entry = self.settings.branch(branch)
        if entry and entry.name:
            return entry.name
        return str(((cat or {}).get("branch") or {}).get("name") or branch)

    def _slot_problem(self, cat: dict[str, Any], queue: dict[str, Any], day: str,
                      number: int) -> str | None:
        """Why ``queue`` cannot be booked on ``day`` in slot ``number`` (None: it can)."""
        s = ap.slot(number)
        today, now = self.today(), self.clock()
        if day < today:
            return "slot_past"
        if day > self.days(self.settings.days_ahead + 1)[-1]:
            return "too_far_ahead"
        kind = (cat.get("days") or {}).get(day) or _kind_of(day)
        if (queue.get("days") == "workdays" and kind != "workday") or (
                queue.get("days") == "weekends" and kind == "workday"):
            return "closed_day"
        spans = (queue.get("hours") or cat.get("hours") or {}).get(kind, [])
        if not spans:
            return "closed_day"
        if not any(span[:5] < s.end and s.start < span[6:] for span in spans):
            return "outside_hours"
        _, last = ap.redeem_window(day, number, self.settings.tz, 0, 0)
        if day == today and now >= last:
            return "slot_past"
        return None

    # --- booking ---------------------------------------------------------------------------

    async def book(self, who: Customer, branch: str, queue: str, day: str, slot: int,
                   channel: str = "web") -> dict[str, Any]:
        """Book ``queue`` at ``branch`` on ``day`` in ``slot``; the booking with its code."""
        if who.id is None:
            raise refused("not_registered")
        if not 1 <= slot <= len(ap.SLOTS):
            raise refused("bad_slot")
        cat = await self.catalogue(branch)
        if cat is None:
            raise refused("unknown_branch", branch=branch)
        q = next((x for x in cat.get("queues", []) if x["id"] == queue.upper()), None)
        if q is None:
            raise refused("unknown_queue", queue=queue)
        if q not in self._bookable_queues(branch, cat) or self._capacity(branch) == 0:
            raise refused("not_bookable")
        problem = self._slot_problem(cat, q, day, slot)
        if problem is not None:
            raise refused(problem, day=day, slot=ap.slot(slot).label,
                          days=self.settings.days_ahead)
        bid = await self.pool.run(self._book, who.id, branch, q["id"], day, slot, channel)
        self._wake.set()
        return (await self.my_bookings(who, only=bid))[0]

    def _book(self, st: Store, cid: str, branch: str, queue: str, day: str, slot: int,
              channel: str) -> str:
        now, today = self.clock(), self.today()
        active = _one(st, "SELECT count(*) AS n FROM bookings WHERE customer = ? AND state = "
                          "'booked' AND day >= ? AND ticket IS NULL", (cid, today))
        limit = self.settings.max_active
        if active is not None and active["n"] >= limit:
            raise refused("too_many_bookings", n=limit)
        if _one(st, "SELECT id FROM bookings WHERE customer = ? AND branch = ? AND day = ? AND "
                    "queue = ? AND state = 'booked'", (cid, branch, day, queue)):
            raise refused("already_booked")
        st.execute("INSERT INTO slot_counts (branch, day, queue, slot, booked) VALUES "
                   "(?, ?, ?, ?, 0) ON CONFLICT (branch, day, queue, slot) DO NOTHING",
                   (branch, day, queue, slot))
        took = st.execute("UPDATE slot_counts SET booked = booked + 1 WHERE branch = ? AND "
                          "day = ? AND queue = ? AND slot = ? AND booked < ?",
                          (branch, day, queue, slot, self._capacity(branch)))
        if took.rowcount != 1:
            raise refused("slot_full")
        bid = "b" + secrets.token_hex(8)
        for _ in range(50):  # a clash is rare (capacity ≪ 100,000 codes per slot)
            code = ap.make_code(slot)
            done = st.execute(
                "INSERT INTO bookings (id, customer, branch, queue, day, slot, code, state, "
                "channel, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'booked', ?, ?) "
                "ON CONFLICT (branch, day, code) DO NOTHING",
                (bid, cid, branch, queue, day, slot, code, channel, now))
            if done.rowcount == 1:
                break
        else:  # pragma: no cover - 50 clashes in a row: the slot is (absurdly) saturated
            raise refused("slot_full")
        _bump(st, branch, day)
        log.info("booking %s: %s %s %s slot %d", bid, branch, queue, day, slot)
        return bid

    async def cancel(self, who: Customer, booking: str) -> dict[str, Any]:
        """Cancel one of the customer's bookings (by id or by its code)."""
        if who.id is None:
            raise refused("not_registered")
        bid = await self.pool.run(self._cancel, who.id, booking.strip())
        self._wake.set()
        return (await self.my_bookings(who, only=bid))[0]

    def _cancel(self, st: Store, cid: str, ref: str) -> str:
        row = _one(st, "SELECT id, branch, queue, day, slot, state, ticket FROM bookings WHERE "
                       "customer = ? AND (id = ? OR code = ?) ORDER BY day DESC", (cid, ref, ref))
        if row is None:
            raise refused("booking_unknown")
        if row["state"] == "cancelled":
            raise refused("booking_cancelled")
        if row["ticket"] or _redeemed(st, row["branch"], row["day"]).get(row["id"]):
            raise refused("booking_used")
        if row["day"] < self.today():
            raise refused("booking_past")
        st.execute("UPDATE bookings SET state = 'cancelled', cancelled_at = ? WHERE id = ?",
                   (self.clock(), row["id"]))
        st.execute("UPDATE slot_counts SET booked = booked - 1 WHERE branch = ? AND day = ? AND "
                   "queue = ? AND slot = ? AND booked > 0",
                   (row["branch"], row["day"], row["queue"], row["slot"]))
        _bump(st, row["branch"], row["day"])
        return str(row["id"])

    async def my_bookings(self, who: Customer, only: str | None = None
                          ) -> list[dict[str, Any]]:
        """The customer's bookings, newest day first, each with its code, QR and state."""
        if who.id is None:
            raise refused("not_registered")
        rows = await self.pool.run(self._mine, who.id, only)
        now = self.clock()
        return [booking_view(r, self.settings, now, own=True) for r in rows]

    def _mine(self, st: Store, cid: str, only: str | None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM bookings WHERE customer = ?"
        args: list[Any] = [cid]
        if only is not None:
            sql += " AND id = ?"
            args.append(only)
        return self._outcomes(st, _rows(st, sql + " ORDER BY day DESC, slot DESC LIMIT 100",
                                        args))

    def _outcomes(self, st: Store, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fill in each redemption (see :meth:`_redeem`) and the branch's and business's
        names."""
        cats: dict[str, dict[str, Any] | None] = {}
        for row in self._redeem(st, rows):
            if row["branch"] not in cats:
                cats[row["branch"]] = _catalogue(st, row["branch"])
            cat = cats[row["branch"]]
            row["branch_name"] = self._branch_name(row["branch"], cat)
            q = next((x for x in (cat or {}).get("queues", []) if x["id"] == row["queue"]), None)
            row["queue_name"] = q["name"] if q else row["queue"]
        return rows

    def _redeem(self, st: Store, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fill in each redemption and its rating from the branch's events (the box is
        where a booking is used; the first time one is seen it is also stored)."""
        today = self.today()
        events: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for row in rows:
            key = (row["branch"], row["day"])
            if row["state"] == "booked" and row["day"] <= today:
                if key not in events:
                    events[key] = _redeemed(st, *key)
                found = events[key].get(row["id"])
                if found is not None:
                    if row["ticket"] is None:
                        st.execute("UPDATE bookings SET ticket = ?, redeemed_at = ? WHERE id = ?",
                                   (found["ticket"], found["redeemed_at"], row["id"]))
                    row.update(found)
        return rows

    # --- staff -----------------------------------------------------------------------------

    async def search(self, **filters: Any) -> dict[str, Any]:
        """Staff list and search (预约管理): every filter optional, ``fuzzy`` or exact.
        ``states`` counts every match (not only this page) by the state the list shows."""
        rows, states = await self.pool.run(self._search, filters)
        now = self.clock()
        return {"total": sum(states.values()), "states": states,
                "bookings": [staff_view(r, self.settings, now) for r in rows]}

    def _search(self, st: Store, f: dict[str, Any]
                ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        where, args = self._where(f)
        base = ("FROM bookings b JOIN customers c ON c.id = b.customer"
                + (" WHERE " + " AND ".join(where) if where else ""))
        every = self._redeem(st, _rows(st, "SELECT b.id, b.branch, b.day, b.slot, b.state, "
                                           "b.ticket " + base, args))
        now = self.clock()
        states = dict.fromkeys(STATES, 0)
        for r in every:
            states[view_state(r, self.settings, now)] += 1
        rows = _rows(st, "SELECT b.*, c.name, c.gender, c.phone_masked, c.id_masked, "
                         "c.id_region " + base + " ORDER BY b.day, b.slot, b.created_at "
                         "LIMIT ? OFFSET ?", [*args, f.get("limit", 100), f.get("offset", 0)])
        return self._outcomes(st, rows), states

    def _where(self, f: dict[str, Any]) -> tuple[list[str], list[Any]]:
        fuzzy = bool(f.get("fuzzy"))
        where: list[str] = []
        args: list[Any] = []

        def add(sql: str, *values: Any) -> None:
            where.append(sql)
            args.extend(values)

        for key, sql in (("day_from", "b.day >= ?"), ("day_to", "b.day <= ?"),
                         ("slot", "b.slot = ?"), ("queue", "b.queue = ?"),
                         ("state", "b.state = ?")):
            if f.get(key) not in (None, ""):
                add(sql, f[key])
        if f.get("branch"):
            add("b.branch LIKE ?", _like_prefix(f["branch"]))
        if f.get("name"):
            if fuzzy:
                add("lower(c.name) LIKE lower(?) ESCAPE '!'", "%" + _escape(f["name"]) + "%")
            else:
                add("c.name = ?", f["name"].strip())
        if f.get("area"):  # 地区: the ID number's region code, by prefix (province, city, …)
            add("c.id_region LIKE ?", _like_prefix(f["area"]))
        if f.get("id_number"):
            text = str(f["id_number"]).strip().upper()
            if len(text) == 18:
                add("c.id_digest = ?", self.vault.digest(text))
            elif fuzzy and text.isalnum():  # what a mask shows: the region or the last four
                add("(c.id_region LIKE ? OR c.id_tail = ?)", _like_prefix(text), text[-4:])
            else:
                add("1 = 0")
        if f.get("phone"):
            try:
                add("c.phone_digest = ?", self.vault.digest(ap.parse_phone(f["phone"])))
            except ap.AppointmentFormatError:
                add("1 = 0")
        return where, args

    async def businesses(self, branch: str) -> list[dict[str, str]]:
        """The businesses the branches under ``branch`` (an org prefix) offer for booking,
        by id, named as their boxes name them (what the staff search filters on)."""
        def read(st: Store) -> list[dict[str, str]]:
            found: dict[str, dict[str, str]] = {}
            for (body,) in st.execute("SELECT body FROM branch_catalogue WHERE branch LIKE ? "
                                      "ORDER BY branch", (_like_prefix(branch),)):
                for q in _json(body).get("queues", []):
                    found.setdefault(q["id"], {"id": q["id"], "name": q["name"],
                                               "name_en": q.get("name_en", "")})
            return sorted(found.values(), key=lambda q: q["id"])

        return await self.pool.read(read)

    async def export_csv(self, **filters: Any) -> str:
        """The search as CSV (UTF-8 with BOM for Excel), masked like every page."""
        found = await self.search(**{**filters, "limit": 100_000, "offset": 0})
        out = io.StringIO()
        out.write("\ufeff")
        cols = ["day", "slot_label", "branch", "branch_name", "queue", "queue_name", "name",
                "gender", "phone", "id_number", "state", "ticket_number", "channel", "booked_at"]
        w = csv.DictWriter(out, cols, extrasaction="ignore")
        w.writeheader()
        for b in found["bookings"]:
            w.writerow(b)
        return out.getvalue()

    # --- the push to the branches ----------------------------------------------------------

    async def run(self) -> None:
        """Push each branch-day's bookings until cancelled; a store hiccup is logged."""
        try:
            while True:
                # A publish cut short by the stop can come back as the broker's error, not
                # as the cancellation: without this the loop would go on after a SIGTERM.
                still_cancelling()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.push_every_s):
                        await self._wake.wait()
                self._wake.clear()
                try:
                    await self.push()
                except (ConnectionError, OSError) as exc:
                    log.info("appointments push postponed: %s", exc)
                except Exception:
                    log.exception("appointments push failed; trying again")
        finally:
            await self.pool.close()

    async def push(self) -> int:
        """Send every branch-day list that changed or was not answered; returns how many."""
        days = self.days(self.settings.push_days)
        now = time.monotonic()
        known = self._known
        listed = known[0] == days[0] and now - known[1] < LIST_BRANCHES_S
        due = await self.pool.run(self._due, days, not listed)
        if not listed:
            self._known = (days[0], now)
        sent = 0
        for msg in due:
            branch = msg.pop("branch")
            await self.centre.send_command(branch, "appointments", msg)
            await self.pool.run(self._sent, branch, msg["day"], msg["revision"])
            sent += 1
        return sent

    def _due(self, st: Store, days: list[str], list_branches: bool) -> list[dict[str, Any]]:
        now = self.clock()
        if list_branches:  # every branch the centre knows gets each day's list (and key)
            for d in days:
                st.execute("INSERT INTO appointment_days (branch, day, revision, sent_revision, "
                           "acked_revision) SELECT branch, ?, 1, 0, 0 FROM branches WHERE true "
                           "ON CONFLICT (branch, day) DO NOTHING", (d,))  # (SQLite: WHERE)
        marks = ",".join("?" * len(days))
        rows = _rows(st, "SELECT a.*, b.online FROM appointment_days a LEFT JOIN branches b ON "
                         f"b.branch = a.branch WHERE a.day IN ({marks}) AND "
                         "a.revision > a.acked_revision", days)
        out = []
        for r in rows:
            if r["sent_revision"] > r["acked_revision"]:
                self._take_answer(st, r)
            if r["acked_revision"] >= r["revision"]:
                continue
            stale = r["sent_at"] is None or now - r["sent_at"] >= self.settings.resend_s
            turned_down = r["refused"] not in (None, *NOT_RUN)  # (older centres kept "busy")
            unanswered = stale and r["online"] and not turned_down
            if r["sent_revision"] < r["revision"] or unanswered:
                out.append(self._day_message(st, r["branch"], r["day"], r["revision"]))
        return out

    def _take_answer(self, st: Store, r: dict[str, Any]) -> None:
        reply = st.reply(r["branch"], _push_id(r["branch"], r["day"], r["sent_revision"]))
        if reply is None:
            return
        if not reply.get("ok"):
            code = str((reply.get("error") or {}).get("code", "refused"))
            if code in NOT_RUN:
                self._not_run(st, r, code)
                return
            if r["refused"] is None:
                log.error("branch %s refused the bookings of %s: %s", r["branch"], r["day"],
                          reply.get("error"))
            r["refused"] = code
            st.execute("UPDATE appointment_days SET refused = ? WHERE branch = ? AND day = ?",
                       (code, r["branch"], r["day"]))
            return
        result = reply.get("result") or {}
        r["acked_revision"] = min(int(result.get("revision", 0)), r["sent_revision"])
        st.execute("UPDATE appointment_days SET acked_revision = ? WHERE branch = ? AND day = ? "
                   "AND acked_revision < ?", (r["acked_revision"], r["branch"], r["day"],
                                              r["acked_revision"]))
        if isinstance(result.get("catalogue"), dict):
            st.execute("INSERT INTO branch_catalogue (branch, body, updated_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (branch) DO UPDATE SET body = excluded.body, "
                       "updated_at = excluded.updated_at",
                       (r["branch"], json.dumps(result["catalogue"], ensure_ascii=False),
                        self.clock()))

    def _not_run(self, st: Store, r: dict[str, Any], code: str) -> None:
        """The box did not run the list (its line was full, its journal failed, another list
        of the day took its place in line): not a refusal, the list goes again. A busy box
        gets it after ``resend_s``, like a list not answered; a superseded one at once under
        a new revision, since the box answers its id the same again."""
        push = _push_id(r["branch"], r["day"], r["sent_revision"])
        if self._not_run_told.fresh(push) is None:
            self._not_run_told.keep(push, code)
            self.not_run[code] += 1
            log.warning("branch %s did not run the bookings of %s (revision %d): %s; sending "
                        "them again", r["branch"], r["day"], r["sent_revision"], code)
        if code == "superseded" and r["revision"] == r["sent_revision"]:
            r["revision"] += 1  # the same bookings, a new id (only if none came meanwhile)
            st.execute("UPDATE appointment_days SET revision = ? WHERE branch = ? AND day = ? "
                       "AND revision = ?", (r["revision"], r["branch"], r["day"],
                                            r["sent_revision"]))

    def _day_message(self, st: Store, branch: str, day: str, revision: int) -> dict[str, Any]:
        key = self.vault.branch_day_key(branch, day)
        rows = _rows(st, "SELECT b.id, b.code, b.queue, b.slot, b.state, c.id_sealed, "
                         "c.card_sealed FROM bookings b JOIN customers c ON c.id = b.customer "
                         "WHERE b.branch = ? AND b.day = ? ORDER BY b.id", (branch, day))
        bookings = []
        for r in rows:
            item = {"id": r["id"], "code": r["code"], "queue": r["queue"], "slot": r["slot"],
                    "state": r["state"],
                    "id_digest": ap.digest(key, self.vault.open(r["id_sealed"], "id_number"))}
            if r["card_sealed"]:
                item["card_digest"] = ap.digest(key, self.vault.open(r["card_sealed"], "card"))
            bookings.append(item)
        return {"branch": branch, "id": _push_id(branch, day, revision), "day": day,
                "revision": revision, "key": key.hex(), "bookings": bookings,
                "early_s": self.settings.early_minutes * 60.0,
                "late_s": self.settings.late_minutes * 60.0}

    def _sent(self, st: Store, branch: str, day: str, revision: int) -> None:
        st.execute("UPDATE appointment_days SET sent_revision = ?, sent_at = ?, refused = NULL "
                   "WHERE branch = ? AND day = ? AND sent_revision <= ?",
                   (revision, self.clock(), branch, day, revision))

    def metrics(self) -> list[Metric]:
        """What this process's push saw: lists the boxes did not run, by code."""
        m = Metric("paidui_centre_appointment_lists_not_run_total", "counter",
                   "branch-day lists a box answered without running (busy, superseded, ...); "
                   "each is sent again")
        for code in sorted(self.not_run):
            m.add(self.not_run[code], code=code)
        return [m]

    async def push_state(self, branch: str, day: str) -> dict[str, Any] | None:
        """(revision, sent, acknowledged) of a branch-day's list: for tests and operators."""
        return await self.pool.read(lambda st: _one(
            st, "SELECT revision, sent_revision, acked_revision FROM appointment_days WHERE "
                "branch = ? AND day = ?", (branch, day)))


def secret_path(s: CustomerSettings, store_url: str) -> Path:
    """``customers.secret_file``, or ``customers.key`` beside a SQLite store."""
    if s.secret_file:
        return Path(s.secret_file)
    if store_url.startswith("sqlite:"):
        return sqlite_path(store_url).parent / "customers.key"
    return Path("data/customers.key")


# --- views -------------------------------------------------------------------------------


def booking_view(r: dict[str, Any], s: CustomerSettings, now: float, own: bool = False
                 ) -> dict[str, Any]:
    """A booking as its owner (``own``: with code and QR) or staff sees it."""
    view = {"id": r["id"], "branch": r["branch"], "branch_name": r.get("branch_name"),
            "queue": r["queue"], "queue_name": r.get("queue_name"), "day": r["day"],
            "slot": r["slot"], "slot_label": ap.slot(r["slot"]).label,
            "state": view_state(r, s, now),
            "ticket_number": r.get("ticket_number"), "rating": r.get("rating"),
            "channel": r["channel"], "booked_at": _iso(r["created_at"], s)}
    if own:
        view["can_rate"] = bool(r.get("served") and r.get("rating") is None
                                and r["day"] == dt.datetime.fromtimestamp(now, s.tz)
                                .date().isoformat())
        view["code"] = r["code"]
        view["qr"] = ap.qr_payload(s.public_url, r["branch"], r["day"], r["code"])
        view["ticket"] = r.get("ticket")
    return view


def view_state(r: dict[str, Any], s: CustomerSettings, now: float) -> str:
    """What a booking's state is to the people who see it (one of :data:`STATES`): a
    booking used at the box is ``redeemed``; one not used by its slot's end (and the grace
    after it) ``missed``."""
    if r["state"] != "booked":
        return str(r["state"])
    if r.get("ticket"):
        return "redeemed"
    _, last = ap.redeem_window(r["day"], r["slot"], s.tz, 0, s.late_minutes * 60)
    return "missed" if now > last else "booked"


def staff_view(r: dict[str, Any], s: CustomerSettings, now: float) -> dict[str, Any]:
    """A booking as staff see it: the customer's name, and numbers masked; no code."""
    view = booking_view(r, s, now)
    view.update(name=r["name"], gender=r["gender"], phone=r["phone_masked"],
                id_number=r["id_masked"], area=r["id_region"])
    return view


def _iso(ts: float | None, s: CustomerSettings) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, s.tz).isoformat(timespec="seconds")


# --- store helpers ------------------------------------------------------------------------


def _push_id(branch: str, day: str, revision: int) -> str:
    return f"appt-{branch}-{day}-{revision}"


def _bump(st: Store, branch: str, day: str) -> None:
    st.execute("INSERT INTO appointment_days (branch, day, revision, sent_revision, "
               "acked_revision) VALUES (?, ?, 1, 0, 0) ON CONFLICT (branch, day) DO UPDATE SET "
               "revision = appointment_days.revision + 1", (branch, day))


def _catalogue(st: Store, branch: str) -> dict[str, Any] | None:
    row = _one(st, "SELECT body FROM branch_catalogue WHERE branch = ?", (branch,))
    return _json(row["body"]) if row else None


def _slot_counts(st: Store, branch: str, day: str) -> dict[tuple[str, int], int]:
    return {(r["queue"], r["slot"]): int(r["booked"]) for r in _rows(
        st, "SELECT queue, slot, booked FROM slot_counts WHERE branch = ? AND day = ?",
        (branch, day))}


def _redeemed(st: Store, branch: str, day: str) -> dict[str, dict[str, Any]]:
    """booking id → its ticket (id, number, when) and rating, from the branch's events."""
    found: dict[str, dict[str, Any]] = {}
    ratings: dict[str, int] = {}
    finished: set[str] = set()
    for (body,) in st.execute("SELECT body FROM events WHERE branch = ? AND day = ? AND type IN "
                              "('ticket_issued', 'ticket_finished', 'ticket_rated') "
                              "ORDER BY epoch, seq", (branch, day)):
        e = _json(body)
        if e["type"] == "ticket_rated":
            ratings[e["ticket"]] = e["score"]
        elif e["type"] == "ticket_finished":
            finished.add(e["ticket"])
        elif e.get("appointment"):
            found[e["appointment"]] = {"ticket": e["ticket"], "ticket_number": e["number"],
                                       "redeemed_at": e["at"]}
    for f in found.values():
        f["rating"] = ratings.get(f["ticket"])
        f["served"] = f["ticket"] in finished
    return found


def _kind_of(day: str) -> str:
    return "workday" if dt.date.fromisoformat(day).weekday() < 5 else "weekend"


def _escape(text: str) -> str:
    return text.strip().replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _like_prefix(text: str) -> str:
    return "".join(ch for ch in str(text) if ch.isalnum()) + "%"
