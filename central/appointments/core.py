"""What the parts of the appointments service share: refusals, the store pool, rows,
the customer, views and store helpers, and :class:`Base` (the shared state, time, vault)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from common.clock import Clock
from protocols import appointment as ap

from ..customer_settings import CustomerSettings
from ..errors import CentreError
from ..privacy import Vault
from ..sms import SmsGateway
from ..store import Store, open_store, sqlite_path

if TYPE_CHECKING:
    from ..cif import CentreCif
    from ..context import CentreContext


log = logging.getLogger("central.appointments")  # one logger for all the parts
T = TypeVar("T")

LIST_BRANCHES_S = 5.0  # new branches get their day lists within this
STATES = ("booked", "redeemed", "missed", "cancelled")  # a booking as people see it
SESSION_TTL_S = 30.0  # a registered customer's session, remembered
CATALOGUE_TTL_S = 10.0  # what a branch offers, remembered
IN_FLIGHT_POLL_S = 0.2  # a list in flight: its answer is looked for this often
NOT_RUN_WARN_S = 3600.0  # a list the box did not run: one warning an hour while it stays so
SENT_CODE = "【排队预约】您的验证码是{code},{minutes}分钟内有效。如非本人操作,请忽略。"


class CustomerRefused(CentreError, ValueError):
    """A customer's (or staff's) request the centre turns down, with words to show.

    ``code`` is stable; ``message`` Chinese, ``message_en`` English; ``status`` for HTTP.
    """

    def __init__(self, code: str, status: int, message: str, message_en: str,
                 retry_after: int | None = None) -> None:
        self.code, self.status, self.message, self.message_en = code, status, message, message_en
        self.retry_after = retry_after  # seconds, for a 429's Retry-After header
        super().__init__(f"{code}: {message_en}")

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "message_en": self.message_en}


def refused(code: str, retry_after: int | None = None, **params: Any) -> CustomerRefused:
    status, zh, en = MESSAGES[code]
    return CustomerRefused(code, status, zh.format(**params), en.format(**params), retry_after)


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
    "too_many_changes": (429, "预约变更过于频繁(每小时最多{n}次),请{minutes}分钟后再试。",
                         "Too many booking changes (at most {n} an hour); try again in "
                         "{minutes} min."),
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

    def __init__(self, url: str, size: int, clock: Clock | None = None) -> None:
        self.url = url
        self.clock = clock  # the centre's one clock: what its stores stamp (None: real time)
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
            store = open_store(self.url, clock=self.clock)
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



class Base:
    """The state every part of :class:`~central.appointments.Appointments` shares (set by
    its ``__init__``), and its time and vault."""

    centre: CentreContext
    settings: CustomerSettings
    clock: Callable[[], float]
    cif: CentreCif
    pool: StorePool
    sms: SmsGateway
    _vault: Vault | None
    _wake: asyncio.Event
    _sessions: Recent
    _catalogues: Recent
    _known: tuple[str, float]
    not_run: Counter[str]
    pushes: Counter[bool]
    rows_pushed: int
    in_flight: int
    _not_run_told: Recent

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
                id_number=r["id_masked"], area=r["id_region"],
                customer_type=r.get("customer_type"), stars=r.get("stars") or 0,
                customer_source=r.get("customer_source"))
    return view


def _iso(ts: float | None, s: CustomerSettings) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, s.tz).isoformat(timespec="seconds")


# --- store helpers ------------------------------------------------------------------------


def _push_id(branch: str, day: str, revision: int, base: int = 0) -> str:
    """A list's command id: a delta's names its base (the box remembers answers by id)."""
    return f"appt-{branch}-{day}-{revision}" + (f"-d{base}" if base else "")


def _bump(st: Store, branch: str, day: str, booking: str) -> None:
    """A booking of the day changed: a new revision of its list, stamped on the booking
    (a delta since revision R carries the bookings stamped after R)."""
    st.execute("INSERT INTO appointment_days (branch, day, revision, sent_revision, "
               "acked_revision) VALUES (?, ?, 1, 0, 0) ON CONFLICT (branch, day) DO UPDATE SET "
               "revision = appointment_days.revision + 1", (branch, day))
    st.execute("UPDATE bookings SET list_revision = (SELECT revision FROM appointment_days "
               "WHERE branch = ? AND day = ?) WHERE id = ?", (branch, day, booking))


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

