"""The push of each branch-day's bookings to its box, and the answers."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from common.tasks import still_cancelling, wait_at_most
from protocols import appointment as ap
from protocols.metrics import Metric
from protocols.uplink import NOT_RUN

from ..store import Store

if TYPE_CHECKING:
    from ..leases import Leases

from .core import (
    IN_FLIGHT_POLL_S,
    LIST_BRANCHES_S,
    Base,
    _one,
    _push_id,
    _rows,
    log,
)


class Pushes(Base):
    """The push of each branch-day's bookings to its box, and the answers."""

    async def run(self, leases: Leases | None = None) -> None:
        """Push each branch-day's bookings until cancelled; a store hiccup is logged. With
        ``leases`` (several centre instances), only while this process holds the
        ``appointments`` lease (central/leases.py)."""
        try:
            if leases is None:
                await self._pushing()
            else:
                await leases.run("appointments", self._pushing)
        finally:
            await self.cif.close()
            await self.pool.close()

    async def _pushing(self) -> None:
        while True:
            # A publish cut short by the stop can come back as the broker's error, not
            # as the cancellation: without this the loop would go on after a SIGTERM.
            still_cancelling()
            # A list in flight is looked for often: its answer lets the next one go.
            every = self.settings.push_every_s
            await wait_at_most(self._wake, min(every, IN_FLIGHT_POLL_S)
                               if self.in_flight else every)
            self._wake.clear()
            try:
                await self.push()
            except (ConnectionError, OSError) as exc:
                log.info("appointments push postponed: %s", exc)
            except Exception:
                log.exception("appointments push failed; trying again")

    async def push(self) -> int:
        """Send every branch-day list that changed or was not answered, at most one in flight
        per branch-day (the latest revision when the last one is answered); returns how many.
        """
        days = self.days(self.settings.push_days)
        now = time.monotonic()
        known = self._known
        listed = known[0] == days[0] and now - known[1] < LIST_BRANCHES_S
        due = await self.pool.run(self._due, days, not listed)
        if not listed:
            self._known = (days[0], now)
        sent = 0
        for msg in due:
            branch, claim = msg.pop("branch"), msg.pop("claim")
            try:
                await self.centre.send_command(branch, "appointments", msg)
            except Exception:  # not sent: let this (or another) process send it at once
                await self.pool.run(self._unclaim, branch, msg["day"], claim)
                raise
            self.pushes[msg.get("base") is not None] += 1
            self.rows_pushed += len(msg["bookings"]) + len(msg.get("removed", ()))
            sent += 1
        return sent

    def _due(self, st: Store, days: list[str], list_branches: bool) -> list[dict[str, Any]]:
        """The lists to send now, each claimed in the store (``sent_revision``, ``sent_at``)
        so that no other centre process sends one of that branch-day while it is in flight."""
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
        out: list[dict[str, Any]] = []
        self.in_flight = 0
        for r in rows:
            answered = r["sent_revision"] <= r["acked_revision"] or self._take_answer(st, r)
            if r["acked_revision"] >= r["revision"]:
                continue
            stale = r["sent_at"] is None or now - r["sent_at"] >= self.settings.resend_s
            if not answered and not stale:
                self.in_flight += 1  # the latest revision goes when this one is answered
                continue
            turned_down = r["refused"] not in (None, *NOT_RUN)  # (older centres kept "busy")
            unanswered = stale and r["online"] and not turned_down
            if r["sent_revision"] < r["revision"] or unanswered:
                msg = self._claim(st, r, now)
                if msg is not None:
                    out.append(msg)
                    self.in_flight += 1
        return out

    def _take_answer(self, st: Store, r: dict[str, Any]) -> bool:
        """Read the box's answer to the list in flight into ``r`` (and the store); False
        while there is none."""
        reply = st.reply(r["branch"], _push_id(r["branch"], r["day"], r["sent_revision"],
                                               r["sent_base"]))
        if reply is None:
            return False
        if not reply.get("ok"):
            code = str((reply.get("error") or {}).get("code", "refused"))
            if code in NOT_RUN:
                self._not_run(st, r, code)
                return True
            if r["refused"] is None:
                log.error("branch %s refused the bookings of %s: %s", r["branch"], r["day"],
                          reply.get("error"))
            r["refused"] = code
            st.execute("UPDATE appointment_days SET refused = ? WHERE branch = ? AND day = ?",
                       (code, r["branch"], r["day"]))
            return True
        result = reply.get("result") or {}
        deltas = int(result.get("deltas") == ap.DELTAS)
        held = int(result.get("revision", 0))
        if result.get("need_full") or (r["sent_base"] and not deltas):
            self._resend_full(st, r, held if deltas else None)
            r["deltas"] = deltas
            st.execute("UPDATE appointment_days SET deltas = ? WHERE branch = ? AND day = ?",
                       (deltas, r["branch"], r["day"]))
            return True
        r["acked_revision"] = min(held, r["sent_revision"])
        r["deltas"] = deltas
        st.execute("UPDATE appointment_days SET acked_revision = ?, deltas = ? WHERE branch = ? "
                   "AND day = ? AND acked_revision < ?", (r["acked_revision"], deltas,
                                                          r["branch"], r["day"],
                                                          r["acked_revision"]))
        if isinstance(result.get("catalogue"), dict):
            st.execute("INSERT INTO branch_catalogue (branch, body, updated_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (branch) DO UPDATE SET body = excluded.body, "
                       "updated_at = excluded.updated_at",
                       (r["branch"], json.dumps(result["catalogue"], ensure_ascii=False),
                        self.clock()))
        return True
    def _resend_full(self, st: Store, r: dict[str, Any], held: int | None) -> None:
        """The box did not take the delta: it holds a revision older than the delta's base
        (``held``: a restart without its book, a list lost), or it is a box that does not
        take deltas (``held`` None: it kept the delta as if it were the whole day). The
        full list goes at once; in the second case under a new revision, or the box would
        take it for one it already has."""
        log.info("branch %s holds revision %s of %s: sending the full list", r["branch"],
                 held, r["day"])
        was = (r["sent_revision"], r["sent_base"])
        r["acked_revision"] = r["sent_revision"] = held or 0
        if held is None and r["revision"] == was[0]:
            r["revision"] += 1
        st.execute("UPDATE appointment_days SET acked_revision = ?, sent_revision = ?, "
                   "revision = CASE WHEN revision < ? THEN ? ELSE revision END WHERE branch = ? "
                   "AND day = ? AND sent_revision = ? AND sent_base = ?",
                   (r["acked_revision"], r["sent_revision"], r["revision"], r["revision"],
                    r["branch"], r["day"], *was))

    def _not_run(self, st: Store, r: dict[str, Any], code: str) -> None:
        """The box did not run the list (its line was full, its journal failed, another list
        of the day took its place in line): not a refusal, the list goes again. A busy box
        gets it after ``resend_s``, like a list not answered; a superseded one at once under
        a new revision, since the box answers its id the same again."""
        push = _push_id(r["branch"], r["day"], r["sent_revision"], r["sent_base"])
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

    def _claim(self, st: Store, r: dict[str, Any], now: float) -> dict[str, Any] | None:
        """The list to send for row ``r`` (a delta when the box takes them, acknowledged a
        revision and the changes since are fewer than the day's bookings), once this process
        has claimed it in the store; None when another process claimed it first."""
        taken = st.execute(
            "UPDATE appointment_days SET sent_revision = ?, sent_base = 0, sent_at = ?, "
            "refused = NULL WHERE branch = ? AND day = ? AND sent_revision = ? AND "
            "sent_base = ? AND COALESCE(sent_at, -1) = ?",
            (r["revision"], now, r["branch"], r["day"], r["sent_revision"], r["sent_base"],
             -1 if r["sent_at"] is None else r["sent_at"]))
        if taken.rowcount != 1:
            return None
        claim = {"was": (r["sent_revision"], r["sent_base"], r["sent_at"]),
                 "now": (r["revision"], now)}
        msg = None
        if r["deltas"] and r["acked_revision"] > 0:
            msg = self._delta_message(st, r["branch"], r["day"], r["revision"],
                                      r["acked_revision"])
        if msg is None:
            msg = self._day_message(st, r["branch"], r["day"], r["revision"])
        else:
            st.execute("UPDATE appointment_days SET sent_base = ? WHERE branch = ? AND day = ?",
                       (msg["base"], r["branch"], r["day"]))
        claim["base"] = msg.get("base", 0)
        return {**msg, "claim": claim}

    def _unclaim(self, st: Store, branch: str, day: str, claim: dict[str, Any]) -> None:
        """A claimed list could not be published: back to what was in flight before."""
        revision, at = claim["now"]
        st.execute("UPDATE appointment_days SET sent_revision = ?, sent_base = ?, sent_at = ? "
                   "WHERE branch = ? AND day = ? AND sent_revision = ? AND sent_base = ? AND "
                   "sent_at = ?", (*claim["was"], branch, day, revision, claim["base"], at))

    def _listed(self, st: Store, branch: str, day: str, where: str, args: tuple[Any, ...]
                ) -> tuple[bytes, list[ap.ListedBooking], list[str]]:
        """The day's key, the bookings ``where`` says (live ones listed, the ids of cancelled
        ones apart)."""
        key = self.vault.branch_day_key(branch, day)
        rows = _rows(st, "SELECT b.id, b.code, b.queue, b.slot, b.state, b.customer_type, "
                         "b.stars, c.id_sealed, c.card_sealed FROM bookings b JOIN customers c "
                         "ON c.id = b.customer "
                         f"WHERE b.branch = ? AND b.day = ? {where} ORDER BY b.id",
                     (branch, day, *args))
        live, cancelled = [], []
        for r in rows:
            if r["state"] != "booked":
                cancelled.append(str(r["id"]))
                continue
            card = r["card_sealed"] and ap.digest(key, self.vault.open(r["card_sealed"], "card"))
            live.append(ap.ListedBooking(
                r["id"], r["code"], r["queue"], r["slot"], "booked",
                ap.digest(key, self.vault.open(r["id_sealed"], "id_number")), card or None,
                r["customer_type"], int(r["stars"] or 0)))
        return key, live, cancelled

    def _day_message(self, st: Store, branch: str, day: str, revision: int) -> dict[str, Any]:
        """The full list of a branch-day: every live booking (a cancelled one is left out:
        not listed is not valid)."""
        key, live, _ = self._listed(st, branch, day, "AND b.state = 'booked'", ())
        lst = ap.DayList(day, revision, key, tuple(live), self.settings.early_minutes * 60.0,
                         self.settings.late_minutes * 60.0)
        return {"branch": branch, "id": _push_id(branch, day, revision), **ap.day_list(lst)}

    def _delta_message(self, st: Store, branch: str, day: str, revision: int, base: int
                       ) -> dict[str, Any] | None:
        """The changes of a branch-day since ``base``; None when the full list is no longer
        (where a delta does not pay)."""
        row = _one(st, "SELECT count(*) AS n FROM bookings WHERE branch = ? AND day = ? AND "
                       "state = 'booked'", (branch, day))
        changed = _one(st, "SELECT count(*) AS n FROM bookings WHERE branch = ? AND day = ? "
                           "AND list_revision > ?", (branch, day, base))
        if row is None or changed is None or changed["n"] >= max(1, row["n"]):
            return None
        key, live, removed = self._listed(st, branch, day, "AND b.list_revision > ?", (base,))
        lst = ap.DayList(day, revision, key, tuple(live), self.settings.early_minutes * 60.0,
                         self.settings.late_minutes * 60.0, base, tuple(removed))
        return {"branch": branch, "id": _push_id(branch, day, revision, base),
                **ap.day_list(lst)}

    def metrics(self) -> list[Metric]:
        """What this process's push saw: lists sent (full or delta) and the rows in them,
        lists the boxes did not run, by code."""
        m = Metric("paidui_centre_appointment_lists_not_run_total", "counter",
                   "branch-day lists a box answered without running (busy, superseded, ...); "
                   "each is sent again")
        for code in sorted(self.not_run):
            m.add(self.not_run[code], code=code)
        sent = Metric("paidui_centre_appointment_lists_sent_total", "counter",
                      "branch-day lists sent to the boxes: whole, or the changes since one "
                      "the box acknowledged")
        sent.add(self.pushes[False], kind="full").add(self.pushes[True], kind="delta")
        rows = Metric("paidui_centre_appointment_rows_sent_total", "counter",
                      "bookings and removed booking ids in the lists sent")
        return [m, sent, rows.add(self.rows_pushed)]

    async def push_state(self, branch: str, day: str) -> dict[str, Any] | None:
        """(revision, sent, acknowledged) of a branch-day's list: for tests and operators."""
        return await self.pool.read(lambda st: _one(
            st, "SELECT revision, sent_revision, acked_revision FROM appointment_days WHERE "
                "branch = ? AND day = ?", (branch, day)))


