"""A booking's pre-filled form (预填单, SPEC I2), filled before its ticket exists.

A booked customer fills the form for the booking's business on the phone at any time
after booking (``POST /api/public/bookings/{id}/form``, the signed-in owner only). The
centre checks it with the one validator (protocols/forms.py) against its ``[forms]``
and keeps it with the booking in ``booking_forms``:

* ``fields_masked``: the filled fields, each value masked by its rule (what the phone and
  staff are shown), blanked after ``forms.keep_days`` like the branches' forms
  (:func:`blank_booking_forms`, run by central/forms.py's retention);
* ``fields_sealed``: the whole values, sealed (AES-GCM, as customers' phone numbers are:
  central/privacy.py), only until the branch has them: cleared once delivered, refused
  for good, or once the booking's day is over without a ticket.

A second fill replaces the first (``revision`` + 1). Once the booking was redeemed
(the branch's ``ticket_issued`` event carrying the booking id as ``appointment``),
:class:`BookingForms` sends the existing ``cmd/form`` for that ticket::

    filled ─▶ waiting ──(ticket_issued with appointment)──▶ sending ──(box: ok)──▶ delivered
                 ▲                                             │ box: busy / expired /
                 └──────── changed since it was sent ◀─────────┘ no answer in resend_s
                                                               │ box refuses (ticket gone)
                                                               ▼
                                                            refused

**Once.** The command's id is ``form-<booking>-r<revision>-<try>``: a resend after no
answer keeps the id (the box runs an id once and answers it the same again), a new try
only follows the box saying it did not run it (busy, expired). A form changed while one
is in flight goes under its own id after it; the box's later form replaces the earlier
(the engine's ``FillForm``), so the caller shows the latest. Each send is claimed in the
store first (``send_id``), so two centre processes never both send; the loop itself runs
under the ``booking_forms`` lease.

Filled after the redemption (the ticket exists, today), the form goes to the branch at
once, as for a remote ticket, and the answer is the branch's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from common.tasks import still_cancelling
from protocols.forms import FormError, blanked, filled, masked, validate
from protocols.metrics import Metric
from protocols.uplink import NOT_RUN

from .appointments import Customer, CustomerRefused, refused

if TYPE_CHECKING:
    from .appointments import Appointments
    from .forms import RemoteForms
    from .store import Store

__all__ = ["BookingForms", "blank_booking_forms"]

log = logging.getLogger(__name__)

SEAL = "booking_form"  # the sealed column's name (the AES-GCM associated data)
AGAIN = NOT_RUN | {"request_expired"}  # the box did not run it: a new try
LOOK_BACK_S = 60.0  # events committed out of order: each look reads this far back again
WAITING_MESSAGE = ("预填单已保存,取号后将自动发送至网点,叫号时柜员可见。",
                   "Form saved: it goes to the branch when you take your number, and the "
                   "teller sees it when you are called.")


class BookingForms:
    """Forms of bookings: kept until the booking has its ticket, then sent to the branch."""

    def __init__(self, appointments: Appointments, forms: RemoteForms) -> None:
        self.appointments, self.forms = appointments, forms
        self.pool = appointments.pool
        self.sent: Counter[str] = Counter()  # outcomes: sent, delivered, refused, again
        # (branch, day) → (stored_at looked up to, booking id → ticket number): the
        # redemptions seen, of today only (bounded by the day's bookings)
        self._seen: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}

    # --- filling -------------------------------------------------------------------------

    async def fill(self, who: Customer, booking: str, form: str | None,
                   fields: dict[str, str]) -> dict[str, Any]:
        """The customer's form for one of their bookings: kept until the ticket exists,
        or sent at once when it does (today)."""
        found = await self.appointments.my_bookings(who, only=booking)
        if not found:
            raise refused("booking_unknown")
        b = found[0]
        today = self.appointments.today()
        if b["state"] == "cancelled":
            raise refused("booking_cancelled")
        if b.get("ticket_number"):
            if b["day"] != today:
                raise refused("booking_past")
            result = await self.forms.fill_ticket(b["branch"], b["ticket_number"], b["queue"],
                                                  form, fields)
            return {**result, "booking": b["id"], "state": "delivered"}
        if b["state"] != "booked" or b["day"] < today:
            raise refused("booking_past")
        spec = self.forms.settings.pick(b["queue"], form)
        if spec is None:
            raise CustomerRefused("no_form", 404, "该业务没有此预填单。",
                                  "This business has no such form.")
        try:
            values = validate(spec, fields)
        except FormError as exc:
            raise CustomerRefused("form_invalid", 422, f"预填单填写有误:{exc.message}",
                                  f"The form is not filled in right: {exc.message_en}"
                                  ) from None
        shown = masked(filled(spec, values))
        sealed = self.appointments.vault.seal(
            json.dumps({"form": spec.id, "fields": values}, ensure_ascii=False), SEAL)
        revision = await self.pool.run(_keep, b, spec.id, spec.title, shown, sealed,
                                       self.appointments.clock())
        log.info("form %s for booking %s kept (revision %d) until its ticket", spec.id,
                 b["id"], revision)
        return {"booking": b["id"], "form": spec.id, "title": spec.title,
                "title_en": spec.title_en, "fields": shown, "state": "waiting",
                "message": WAITING_MESSAGE[0], "message_en": WAITING_MESSAGE[1]}

    async def form_of(self, booking: str) -> dict[str, Any] | None:
        """A booking's form as its owner sees it (masked), or None."""
        row = await self.pool.read(_row, booking)
        if row is None:
            return None
        return {"form": row["form"], "title": row["title"], "state": row["state"],
                "fields": _json(row["fields_masked"]), "ticket_number": row["ticket_number"],
                "error": row["error"]}

    # --- delivering ----------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver due forms every ``customers.push_every_s`` until cancelled; a store or
        broker hiccup is logged and tried again."""
        while True:
            still_cancelling()
            try:
                await self.step()
            except (ConnectionError, OSError) as exc:
                log.info("booking forms postponed: %s", exc)
            except Exception:
                log.exception("booking forms failed; trying again")
            await asyncio.sleep(self.appointments.settings.push_every_s)  # a timer: the
            # redemption is an event in the store, nothing to wait on

    async def step(self) -> int:
        """One look: settle the answers, send the forms whose ticket now exists; returns
        how many were sent."""
        a = self.appointments
        s = a.settings
        due = await self.pool.run(self._due, a.today(), a.clock(), s.resend_s,
                                  s.remote_expiry_s)
        for branch, msg, claim in due:
            try:
                await a.centre.send_command(branch, "form", dict(msg))
            except Exception:  # not sent: again at the next look, under the same id
                await self.pool.run(_unclaim, claim)
                raise
            self.sent["sent"] += 1
        return len(due)

    def _due(self, st: Store, today: str, now: float, resend_s: float, expiry_s: float
             ) -> list[tuple[str, dict[str, Any], tuple[str, str]]]:
        expired = st.execute("UPDATE booking_forms SET fields_sealed = NULL, state = 'expired' "
                             "WHERE fields_sealed IS NOT NULL AND day < ?", (today,))
        if expired.rowcount:
            log.info("%d booking forms never delivered (no ticket on their day): values "
                     "dropped", expired.rowcount)
        self._seen = {k: v for k, v in self._seen.items() if k[1] == today}
        rows = _rows(st, "SELECT f.*, b.state AS booking_state FROM booking_forms f JOIN "
                         "bookings b ON b.id = f.booking WHERE f.fields_sealed IS NOT NULL "
                         "AND f.day = ?", (today,))
        out = []
        for r in rows:
            if r["booking_state"] != "booked":  # cancelled since: nobody needs the values
                st.execute("UPDATE booking_forms SET fields_sealed = NULL, state = 'expired' "
                           "WHERE booking = ?", (r["booking"],))
                continue
            number = self._ticket(st, r["branch"], today, r["booking"])
            if number is None:
                continue
            if r["state"] == "sending" and not self._settle(st, r, now, resend_s):
                continue
            if r["state"] == "sending":  # no answer in resend_s: the same id again
                out.append(self._claim(st, r, number, now, r["send_id"], r["expires_at"]))
            elif r["state"] == "waiting":
                tries = int(r["send_id"].rsplit("-", 1)[1]) + 1 if r["send_id"] and \
                    r["send_revision"] == r["revision"] else 1
                send_id = f"form-{r['booking']}-r{r['revision']}-{tries}"
                out.append(self._claim(st, r, number, now, send_id, now + expiry_s))
        return [x for x in out if x is not None]

    def _settle(self, st: Store, r: dict[str, Any], now: float, resend_s: float) -> bool:
        """The answer to the send in flight, into ``r`` and the store. True when it is to
        go (again): not answered in ``resend_s``, or answered and there is more to send."""
        reply = st.reply(r["branch"], r["send_id"])
        if reply is None:
            if now - (r["sent_at"] or 0.0) < resend_s:
                return False
            if r["send_revision"] != r["revision"]:  # changed since: the new one goes
                r["state"] = "waiting"
            return True
        newer = r["send_revision"] != r["revision"]
        code = str((reply.get("error") or {}).get("code", "")) if not reply.get("ok") else ""
        if reply.get("ok") and not newer:
            st.execute("UPDATE booking_forms SET state = 'delivered', fields_sealed = NULL, "
                       "delivered_at = ?, error = NULL WHERE booking = ? AND send_id = ? AND "
                       "revision = ?", (now, r["booking"], r["send_id"], r["revision"]))
            self.sent["delivered"] += 1
            log.info("form of booking %s delivered to %s for %s", r["booking"], r["branch"],
                     r["ticket_number"])
            return False
        if code and code not in AGAIN and not newer:  # the ticket is gone, the form refused
            st.execute("UPDATE booking_forms SET state = 'refused', fields_sealed = NULL, "
                       "error = ? WHERE booking = ? AND send_id = ?",
                       (code, r["booking"], r["send_id"]))
            self.sent["refused"] += 1
            log.warning("branch %s refused the form of booking %s: %s", r["branch"],
                        r["booking"], code)
            return False
        if code in AGAIN:
            self.sent["again"] += 1
        r["state"] = "waiting"  # not run, or changed since: a new send (new id) at once
        return True

    def _claim(self, st: Store, r: dict[str, Any], number: str, now: float, send_id: str,
               expires_at: float) -> tuple[str, dict[str, Any], tuple[str, str]] | None:
        """Claim the send in the store (None: another process did first); the command."""
        taken = st.execute(
            "UPDATE booking_forms SET state = 'sending', send_id = ?, send_revision = ?, "
            "sent_at = ?, expires_at = ?, ticket_number = ? WHERE booking = ? AND "
            "revision = ? AND COALESCE(send_id, '') = ?",
            (send_id, r["revision"], now, expires_at, number, r["booking"], r["revision"],
             r["send_id"] or ""))
        if taken.rowcount != 1:
            return None
        body = json.loads(self.appointments.vault.open(r["fields_sealed"], SEAL))
        msg = {"id": send_id, "number": number, "form": body["form"],
               "fields": body["fields"], "expires_at": expires_at}
        return r["branch"], msg, (r["booking"], send_id)

    def _ticket(self, st: Store, branch: str, day: str, booking: str) -> str | None:
        """The number of the ticket the branch issued for ``booking`` today, from its
        events (read incrementally: each look only what was stored since, and a little)."""
        since, found = self._seen.get((branch, day), (-1.0, {}))
        if booking in found:
            return found[booking]
        latest = since
        for body, stored_at in st.execute(
                "SELECT body, stored_at FROM events WHERE branch = ? AND day = ? AND type = "
                "'ticket_issued' AND stored_at > ? ORDER BY stored_at",
                (branch, day, since - LOOK_BACK_S if since >= 0 else -1.0)):
            e = _json(body)
            if e.get("appointment"):
                found[str(e["appointment"])] = str(e["number"])
            latest = max(latest, float(stored_at))
        self._seen[(branch, day)] = (latest, found)
        return found.get(booking)

    def metrics(self) -> list[Metric]:
        m = Metric("paidui_centre_booking_forms_total", "counter",
                   "booking forms sent to the branches, and their outcomes")
        for key in ("sent", "delivered", "refused", "again"):
            m.add(self.sent[key], outcome=key)
        return [m]


# --- the store -------------------------------------------------------------------------------


def _keep(st: Store, b: dict[str, Any], form: str, title: str, shown: list[dict[str, Any]],
          sealed: str, now: float) -> int:
    """Keep (or replace) a booking's form; its revision."""
    row = st.execute("SELECT revision FROM booking_forms WHERE booking = ?",
                     (b["id"],)).fetchone()
    revision = 1 if row is None else int(row[0]) + 1
    text = json.dumps(shown, ensure_ascii=False)
    if row is None:
        st.execute("INSERT INTO booking_forms (booking, branch, day, queue, form, title, "
                   "fields_masked, fields_sealed, revision, state, filled_at) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, ?, 1, 'waiting', ?)",
                   (b["id"], b["branch"], b["day"], b["queue"], form, title, text, sealed, now))
    else:  # one in flight stays "sending": its answer is awaited, then this one goes
        st.execute("UPDATE booking_forms SET form = ?, title = ?, fields_masked = ?, "
                   "fields_sealed = ?, revision = ?, filled_at = ?, error = NULL, "
                   "state = CASE WHEN state = 'sending' THEN 'sending' ELSE 'waiting' END "
                   "WHERE booking = ?", (form, title, text, sealed, revision, now, b["id"]))
    return revision


def _unclaim(st: Store, claim: tuple[str, str]) -> None:
    """Not published (the broker is away): the same id goes at the next look."""
    st.execute("UPDATE booking_forms SET sent_at = NULL WHERE booking = ? AND send_id = ?",
               claim)


def _row(st: Store, booking: str) -> dict[str, Any] | None:
    found = _rows(st, "SELECT * FROM booking_forms WHERE booking = ?", (booking,))
    return found[0] if found else None


def blank_booking_forms(st: Store, before_day: str, limit: int) -> int:
    """Blank up to ``limit`` booking forms of days before ``before_day`` (the masked values
    out too; which booking had which form stays); returns how many."""
    rows = st.execute("SELECT booking, fields_masked FROM booking_forms WHERE day < ? AND "
                      "state <> 'blanked' LIMIT ?", (before_day, limit)).fetchall()
    st.execute_many(
        "UPDATE booking_forms SET fields_masked = ?, fields_sealed = NULL, state = 'blanked' "
        "WHERE booking = ?",
        [(json.dumps(blanked({"fields": _json(text)})["fields"], ensure_ascii=False), b)
         for b, text in rows])
    return len(rows)


def _rows(st: Store, sql: str, args: Any = ()) -> list[dict[str, Any]]:
    cur = st.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
