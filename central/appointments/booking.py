"""Booking, cancelling, a customer's own bookings, and the staff's search."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from protocols import appointment as ap
from protocols.cif import CustomerInfo

from ..cif import NO_CIF, customer_columns
from ..store import Store

if TYPE_CHECKING:
    pass

from .core import (
    STATES,
    Customer,
    _bump,
    _catalogue,
    _escape,
    _json,
    _like_prefix,
    _one,
    _redeemed,
    _rows,
    booking_view,
    log,
    refused,
    staff_view,
    view_state,
)
from .slots import Slots


class Booking(Slots):
    """Booking, cancelling, a customer's own bookings, and the staff's search."""

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
        known = customer_columns(await self.who_is(who.id))  # within the CIF's budget
        bid = await self.pool.run(self._book, who.id, branch, q["id"], day, slot, channel,
                                  known)
        self._wake.set()
        return (await self.my_bookings(who, only=bid))[0]

    async def who_is(self, cid: str) -> tuple[str, str, CustomerInfo | None]:
        """What the centre's CIF says of a registered customer, by their ID number, within
        its budget (central/cif.py); ``none``/``off`` without a CIF."""
        if self.cif.client is None:
            return NO_CIF
        sealed = await self.pool.read(lambda st: _one(
            st, "SELECT id_sealed FROM customers WHERE id = ?", (cid,)))
        if sealed is None:
            return NO_CIF
        return await self.cif.by_id(self.vault.open(sealed["id_sealed"], "id_number"))

    def _book(self, st: Store, cid: str, branch: str, queue: str, day: str, slot: int,
              channel: str, known: dict[str, Any] | None = None) -> str:
        now, today = self.clock(), self.today()
        self._may_change(st, cid, now)
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
            k = known or customer_columns(NO_CIF)
            done = st.execute(
                "INSERT INTO bookings (id, customer, branch, queue, day, slot, code, state, "
                "channel, created_at, customer_type, stars, customer_source, "
                "customer_reason) VALUES (?, ?, ?, ?, ?, ?, ?, 'booked', ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (branch, day, code) DO NOTHING",
                (bid, cid, branch, queue, day, slot, code, channel, now, k["customer_type"],
                 k["stars"], k["customer_source"], k["customer_reason"]))
            if done.rowcount == 1:
                break
        else:  # pragma: no cover - 50 clashes in a row: the slot is (absurdly) saturated
            raise refused("slot_full")
        _bump(st, branch, day, bid)
        log.info("booking %s: %s %s %s slot %d", bid, branch, queue, day, slot)
        return bid

    def _may_change(self, st: Store, cid: str, now: float) -> None:
        """At most ``changes_per_hour`` bookings and cancellations per customer in any hour,
        counted from the store (every centre process agrees): a cancel/rebook loop would
        otherwise push a new list to the branch for every turn. The customer's row is
        updated first, so one customer's changes are counted one at a time (a row lock on
        PostgreSQL; SQLite writers are serial)."""
        st.execute("UPDATE customers SET name = name WHERE id = ?", (cid,))
        since, limit = now - 3600.0, self.settings.changes_per_hour
        times = sorted(r[0] for r in st.execute(
            "SELECT created_at FROM bookings WHERE customer = ? AND created_at > ? UNION ALL "
            "SELECT cancelled_at FROM bookings WHERE customer = ? AND cancelled_at > ?",
            (cid, since, cid, since)))
        if len(times) >= limit:
            wait = max(1, int(times[len(times) - limit] + 3600.0 - now + 0.999))
            raise refused("too_many_changes", retry_after=wait, n=limit,
                          minutes=max(1, -(-wait // 60)))

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
        self._may_change(st, cid, self.clock())
        st.execute("UPDATE bookings SET state = 'cancelled', cancelled_at = ? WHERE id = ?",
                   (self.clock(), row["id"]))
        st.execute("UPDATE slot_counts SET booked = booked - 1 WHERE branch = ? AND day = ? AND "
                   "queue = ? AND slot = ? AND booked > 0",
                   (row["branch"], row["day"], row["queue"], row["slot"]))
        _bump(st, row["branch"], row["day"], row["id"])
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

