"""The queue engine: commands in, events out, time injected.

``Engine.handle(command, now)`` checks the command against the configuration and the
state, produces the events that record what happens, applies each to the state, and
returns them. A refusal raises :class:`~controller.errors.Refused` and changes nothing,
except that the events produced before it (a day boundary crossed on the way, or the
current customer finished by a call-next that then found nobody waiting) are attached to
the exception as ``events``: they have been applied and must be journaled like any others.

The engine knows nothing of asyncio, SQL or devices; ``now`` is epoch seconds, given.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from common.passwords import verify_password
from protocols.cards import CardError, parse_swipe
from protocols.forms import FormError, filled, validate

from ..config import Config, QueueConfig
from ..errors import Refused
from . import commands as c
from .select import ahead_of, select
from .state import TERMINAL_STATES, State, Ticket

__all__ = ["Engine", "Event", "Request", "vip_of"]

Event = dict[str, Any]
Request = tuple[str, str]  # (who asked, their key for this request)
_Why = tuple[str, dict[str, Any]]  # a refusal's code and parameters
_WALK_IN: dict[str, Any] = {}  # a ticket taken without a card: no customer details (read only)


def _ms(x: float) -> float:
    """``round(x, 3)``, the same float, in about half its time (it is in every event: a
    ticket's times, waits and handling times; ``round`` with digits goes through a
    decimal conversion and back).

    ``p = x * 1000`` is within half an ulp of the exact product: below 2**41 (epoch
    milliseconds until 2039, or any duration) that is under 0.00013, so when ``p`` is
    less than 0.499 from the integer ``k`` nearest it, ``k`` is the nearest integer to the
    exact ``x * 1000`` as well, the decimal ``round`` rounds to is ``k / 1000``, and
    ``k / 1000`` (an exact integer divided by an exact one) is the float nearest it,
    which is what ``round`` returns. Near a tie, zero, a negative, a huge or a non-finite
    ``x``: ``round`` itself. (tests/test_engine_round.py compares the two.)
    """
    p = x * 1000.0
    if 0.0 < p < 2199023255552.0:  # 2**41
        k = round(p)
        if -0.499 < p - k < 0.499:
            return k / 1000
    return round(x, 3)


class _Days:
    """Business days: local date of (time - day_start), with the current day's bounds cached."""

    def __init__(self, cfg: Config) -> None:
        self.tz = cfg.tz
        h, m = map(int, cfg.branch.day_start.split(":"))
        self.shift = dt.timedelta(hours=h, minutes=m)
        # the day last asked for, [lo, hi) in epoch seconds (read by Engine.handle)
        self.lo = self.hi = 0.0
        self.day = ""

    def day_of(self, now: float) -> str:
        if not self.lo <= now < self.hi:
            local = dt.datetime.fromtimestamp(now, self.tz) - self.shift
            start = dt.datetime.combine(local.date(), dt.time(), self.tz) + self.shift
            self.lo = start.timestamp()
            self.hi = (start + dt.timedelta(days=1)).timestamp()
            self.day = local.date().isoformat()
        return self.day


class Engine:
    """A branch's queue state machine (SPEC A, B, C1)."""

    def __init__(
        self, config: Config, state: State | None = None, *, count_ahead: bool = True,
    ) -> None:
        self.state = state if state is not None else State()
        # ``ahead`` on ``ticket_issued``: the count printed on the ticket. Only the
        # simulator, which prints nothing, turns it off (it is a third of a simulated
        # branch-day); the event then carries ``ahead: None`` and nothing else changes.
        self.count_ahead = count_ahead
        self.configure(config)

    def configure(self, config: Config) -> None:
        """Adopt a new configuration; the state (today's tickets, logins) carries over."""
        self.cfg = config
        self._days = _Days(config)
        self._types = {t.id: t.priority for t in config.customer_types}
        self._queues = {q.id: q for q in config.queues}
        self._windows = {w.number: w for w in config.windows}
        self._ratings = {r.score: r for r in config.rating_levels}
        # the local day now falls in: [lo, hi) epoch seconds, its kind, its minute 0 (epoch)
        self._today: tuple[float, float, str, float] = (0.0, 0.0, "", 0.0)
        # (queue, kind of day) -> its opening rule, see _hours_rule
        self._hours: dict[tuple[str, str], tuple[_Why | None, list[tuple[int, int]], str]] = {}

    # --- the one entry point -------------------------------------------------------------

    def handle(self, cmd: c.Command, now: float, request: Request | None = None
               ) -> list[Event]:
        """Apply ``cmd`` at ``now``; return the events, already applied to :attr:`state`.

        ``request`` is ``(who, key)``: who asked (a keypad, a teller's session, a kiosk) and
        their key for this press or request. The command's first event records it; the
        same key again from the same asker, while it is still their latest (today), is a
        repeat: nothing is done and no event comes out (see docs/engine.md, "Repeats").
        """
        out: list[Event] = []
        s = self.state
        if now < s.last_now:  # a clock stepping back never reorders events
            now = s.last_now
        try:
            days = self._days
            if not (days.lo <= now < days.hi and days.day == s.day):
                self._roll_day(now, out)  # (else: within today, already open)
            handler = _DISPATCH.get(type(cmd))
            if handler is None:
                raise TypeError(f"not an engine command: {cmd!r}")
            if request is not None and s.repeated(request):
                return out
            mark = len(out)
            handler(self, cmd, now, out)
            if request is not None and len(out) > mark:
                out[mark]["request"] = list(request)
                s.note_request(out[mark])
        except Refused as refusal:
            refusal.events = out  # type: ignore[attr-defined]
            raise
        return out

    def replay(self, events: list[Event]) -> None:
        for e in events:
            self.state.apply(e)

    # --- reading -------------------------------------------------------------------------

    def day_of(self, now: float) -> str:
        return self._days.day_of(now)

    def ahead(self, number: str, now: float) -> int | None:
        """Tickets to be called before ``number`` (None when it is not waiting)."""
        t = self.state.by_num(number)
        if t is None or t.state != "waiting":
            return None
        return ahead_of(self.state, self.cfg, t, max(now, self.state.last_now))

    def stranded(self, config: Config | None = None) -> dict[str, int]:
        """Waiting and held tickets per business that ``config`` (default: the engine's)
        does not have: customers no window would ever call. (A ticket being served stays
        with its teller.)"""
        known = {q.id for q in (config or self.cfg).queues}
        out: dict[str, int] = {}
        for t in self.state.tickets.values():
            if t.state in _NOT_AT_A_WINDOW and t.queue not in known:
                out[t.queue] = out.get(t.queue, 0) + 1
        return out

    # --- helpers -------------------------------------------------------------------------

    def _emit(self, out: list[Event], now: float, etype: str, **fields: Any) -> Event:
        return self._add(out, {"type": etype, "at": _ms(now), "day": self.state.day,
                               **fields})

    def _add(self, out: list[Event], e: Event) -> Event:
        """Apply and record ``e``. The hot paths (issue, call, finish, rate) build their
        event as one dict literal and come here directly, which costs a third less than
        :meth:`_emit`'s keyword arguments merged into a second dict."""
        self.state.apply_new(e)
        out.append(e)
        return e

    def _roll_day(self, now: float, out: list[Event]) -> None:
        day = self._days.day_of(now)
        s = self.state
        if day <= s.day:  # same day, or a clock behind the journal: never reopen a day
            return
        if s.day:
            for t in list(s.tickets.values()):
                if t.state in ("waiting", "called", "held"):
                    self._emit(
                        out, now, "ticket_closed", ticket=t.id, number=t.number,
                        queue=t.queue, state="not_served", was=t.state,
                    )
            self._emit(out, now, "day_closed")
        e: Event = {"type": "day_opened", "at": _ms(now), "day": day}
        s.apply(e)
        out.append(e)

    def _window(self, number: int) -> Any:
        wc = self._windows.get(number)
        if wc is None:
            raise Refused("unknown_window", window=number)
        return wc, self.state.window(number)

    def _staffed(self, number: int) -> Any:
        wc, ws = self._window(number)
        if ws.teller is None:
            raise Refused("not_logged_in", window=number)
        return wc, ws

    def _current(self, number: int) -> tuple[Any, Ticket]:
        _, ws = self._staffed(number)
        if ws.current is None:
            raise Refused("no_current", window=number)
        return ws, self.state.tickets[ws.current]

    def _ticket(self, number: str) -> Ticket:
        t = self.state.by_num(number.strip().upper())
        if t is None:
            raise Refused("unknown_ticket", number=number)
        return t

    def _finish_current(self, ws: Any, now: float, out: list[Event], ask: bool = False) -> None:
        if ws.current is None:
            return
        t = self.state.tickets[ws.current]
        self._add(out, {
            "type": "ticket_finished", "at": _ms(now), "day": self.state.day,
            "ticket": t.id, "number": t.number, "queue": t.queue, "window": ws.number,
            "teller": ws.teller, "customer_type": t.customer_type,
            "handle_s": _ms(now - (t.called_at or now)), "ask_rating": ask,
        })

    def _call(self, ws: Any, t: Ticket, now: float, out: list[Event], callback: bool) -> None:
        self._add(out, {
            "type": "ticket_called", "at": _ms(now), "day": self.state.day,
            "ticket": t.id, "number": t.number, "queue": t.queue, "window": ws.number,
            "teller": ws.teller, "customer_type": t.customer_type, "stars": t.stars,
            "vip": t.vip, "wait_s": _ms(now - t.issued_at), "call": t.calls + 1,
            "callback": callback,
        })

    # --- tickets (A1–A8) -----------------------------------------------------------------

    def _issue(self, cmd: c.IssueTicket, now: float, out: list[Event]) -> None:
        s, cfg = self.state, self.cfg
        if not s.kiosk_open and cmd.channel in ("kiosk", "button", "card"):
            raise Refused("kiosk_signed_out")
        customer = _WALK_IN
        if cmd.card is not None:
            queue, customer = self._by_card(cmd.card, cmd.customer)
        elif cmd.queue is not None:
            queue = self._queue(cmd.queue)
            if cmd.customer is not None:  # a booking's customer, known before (A6, I1)
                customer = self._told(cmd.customer)
        else:
            raise Refused("unknown_queue", queue="")
        self._check_open(queue, now)
        n = s.counters.get(queue.id, queue.first - 1) + 1
        if queue.daily_limit and n - queue.first + 1 > queue.daily_limit:
            raise Refused("daily_limit_reached", queue_name=queue.name, limit=queue.daily_limit)
        if n > queue.last:
            raise Refused("range_exhausted", queue_name=queue.name)
        cap = cfg.thresholds.branch_waiting_cap
        if cap and len(s.waiting) >= cap:
            raise Refused("branch_full", cap=cap)
        if customer is _WALK_IN:  # (most tickets: no customer details to look up)
            ctype = queue.customer_type or "normal"
            stars, vip, vip_name, card, looked_up = 0, None, None, None, None
        else:
            ctype = customer.get("customer_type") or queue.customer_type or "normal"
            stars, vip, vip_name = customer.get("stars", 0), customer.get("vip"), \
                customer.get("vip_name")
            card, looked_up = customer.get("card"), customer.get("looked_up")
        number = queue.format(n)
        tid = f"{s.day.replace('-', '')}-{number}"
        e: Event = {
            "type": "ticket_issued", "at": _ms(now), "day": s.day, "ticket": tid,
            "number": number, "queue": queue.id, "n": n, "customer_type": ctype,
            "type_priority": self._types.get(ctype, 0), "stars": stars, "vip": vip,
            "vip_name": vip_name, "card": card, "channel": cmd.channel, "kiosk": cmd.kiosk,
            "appointment": cmd.appointment, "high_return": queue.high_return, "ahead": 0,
            "waiting": len(s.waiting),
        }
        if looked_up:
            e.update(looked_up)
        self._add(out, e)
        if cmd.confirm:  # (as apply does on replay, from the same field)
            e["confirm"] = True
            s.tickets[tid].delivery = "pending"
        # The rank needs the ticket in the state; ``ahead`` is then filled in before the
        # event leaves the engine (apply does not read it).
        e["ahead"] = ahead_of(s, cfg, s.tickets[tid], now) if self.count_ahead else None
        alert = cfg.thresholds.lobby_alert_waiting
        if alert and len(s.waiting) > alert:  # (_lobby_alert's first test, inline)
            self._lobby_alert(now, out)

    def _lobby_alert(self, now: float, out: list[Event]) -> None:
        """A8 with hysteresis: raised above the threshold, re-armed only at or below the
        clear mark (state.py ``_dequeue``), and never twice within the repeat interval."""
        s, t = self.state, self.cfg.thresholds
        if not t.lobby_alert_waiting or len(s.waiting) <= t.lobby_alert_waiting:
            return
        last = s.lobby_alert_last
        if s.lobby_alert_at is None and (last is None
                                         or now - last >= t.lobby_alert_repeat_min * 60):
            self._emit(out, now, "lobby_alert", waiting=len(s.waiting),
                       threshold=t.lobby_alert_waiting, clear=t.lobby_alert_clear_at)

    def _print_failed(self, cmd: c.PrintFailed, now: float, out: list[Event]) -> None:
        t = self._ticket(cmd.number)
        self._emit(out, now, "ticket_print_failed", ticket=t.id, number=t.number,
                   queue=t.queue, reason=cmd.reason[:200])

    def _delivered(self, cmd: c.Delivered, now: float, out: list[Event]) -> None:
        t = self._ticket(cmd.number)
        if t.delivery == "pending":  # said once; a second word changes nothing
            self._emit(out, now, "ticket_delivered", ticket=t.id, number=t.number,
                       queue=t.queue, how=cmd.how)

    def _fill_form(self, cmd: c.FillForm, now: float, out: list[Event]) -> None:
        t = self._ticket(cmd.number)
        if t.state in TERMINAL_STATES:
            raise Refused("form_closed", number=t.number)
        spec = self.cfg.form_settings.pick(t.queue, cmd.form)
        if spec is None:
            raise Refused("no_form", number=t.number)
        try:
            values = validate(spec, cmd.values)
        except FormError as exc:
            raise Refused("form_invalid", field=exc.field, problem=exc.message,
                          problem_en=exc.message_en) from None
        self._emit(out, now, "form_filled", ticket=t.id, number=t.number, queue=t.queue,
                   form=spec.id, channel=cmd.channel[:16], title=spec.title, title_en=spec.title_en,
                   fields=filled(spec, values))

    def _void_undelivered(self, cmd: c.VoidUndelivered, now: float, out: list[Event]) -> None:
        for t in list(self.state.tickets.values()):
            if t.delivery == "pending" and t.state == "waiting" and t.calls == 0:
                self._emit(out, now, "ticket_voided", ticket=t.id, number=t.number,
                           queue=t.queue, reason="not_delivered", was=t.state)

    def _queue(self, queue_id: str) -> QueueConfig:
        queue = self._queues.get(queue_id)
        if queue is None:
            if any(m.id == queue_id for m in self.cfg.menus):
                raise Refused("queue_is_menu", queue=queue_id)
            raise Refused("unknown_queue", queue=queue_id)
        return queue

    def _by_card(self, card: str, who: c.CardCustomer | None = None
                 ) -> tuple[QueueConfig, dict[str, Any]]:
        card = card.strip().upper()
        if not card or not card[:-1].isdigit() or not (card[-1].isdigit() or card[-1] == "X"):
            raise Refused("invalid_card")
        try:  # a bank card's Luhn digit, an ID number's check character (whoever typed it)
            parse_swipe(card)
        except CardError:
            raise Refused("invalid_card") from None
        masked = _mask(card)
        ct = _card_type(self.cfg, card)
        if who is None:  # nobody looked: the VIP table, as the lookup's local source would
            who = vip_of(self.cfg, card)
            looked_up: dict[str, Any] = {}
        else:  # the event says who answered, and why not the CIF (docs/integrations.md)
            looked_up = {"customer_source": who.source, "customer_reason": who.reason}
            if who.manager is not None:
                looked_up["manager"] = dict(zip(("id", "name", "terminal"), who.manager,
                                                strict=True))
        if who is not None and who.id is not None:
            known = who.queue if who.queue is not None and who.queue in self._queues else None
            qid = known or (ct.queue if ct else None) or _vip_queue(self.cfg)
            if qid is None:
                raise Refused("unknown_card")
            ctype = (who.customer_type if who.customer_type in self._types
                     else ct.customer_type if ct else "normal")
            return self._queue(qid), {
                "customer_type": ctype, "stars": who.stars, "vip": who.id,
                "vip_name": who.name, "card": masked, "looked_up": looked_up,
            }
        if ct is None:
            raise Refused("unknown_card")
        return self._queue(ct.queue), {
            "customer_type": ct.customer_type, "stars": ct.stars, "card": masked,
            "looked_up": looked_up,
        }

    def _told(self, who: c.CardCustomer) -> dict[str, Any]:
        """The customer of a ticket taken for a business (an appointment's), as the issuer
        was told (the centre's CIF at booking, or the box's at redemption): type and stars
        rank it (the ``vip`` rule); the business stays the one asked for."""
        looked_up: dict[str, Any] = {"customer_source": who.source,
                                     "customer_reason": who.reason}
        if who.manager is not None:
            looked_up["manager"] = dict(zip(("id", "name", "terminal"), who.manager,
                                            strict=True))
        out: dict[str, Any] = {"stars": who.stars, "looked_up": looked_up}
        if who.customer_type in self._types:
            out["customer_type"] = who.customer_type
        if who.id is not None:
            out.update(vip=who.id, vip_name=who.name)
        return out

    def _local_minute(self, now: float) -> tuple[str, int]:
        """(kind of day, minute of the local day) at ``now``.

        The day's bounds are cached, so this is one subtraction most of the time; on a day
        the clocks change (daylight saving) local time is not epoch time plus a constant,
        and only the current minute is cached.
        """
        lo, hi, kind, base = self._today
        if not lo <= now < hi:
            tz = self._days.tz
            local = dt.datetime.fromtimestamp(now, tz)
            kind = self.cfg.calendar.kind(local.date())
            midnight = dt.datetime.combine(local.date(), dt.time(), tz)
            after = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tz)
            if midnight.utcoffset() == after.utcoffset():
                lo, hi = midnight.timestamp(), after.timestamp()
                base = lo
            else:
                lo = now - local.second - local.microsecond / 1e6
                hi = lo + 60.0
                base = lo - (local.hour * 60 + local.minute) * 60.0
            self._today = (lo, hi, kind, base)
        return kind, int((now - base) // 60)

    def _check_open(self, queue: QueueConfig, now: float) -> None:
        kind, minute = self._local_minute(now)
        rule = self._hours.get((queue.id, kind))
        if rule is None:
            rule = self._hours[queue.id, kind] = self._hours_rule(queue, kind)
        refusal, spans, hours = rule
        if refusal is not None:
            raise Refused(refusal[0], **refusal[1])
        for start, end in spans:
            if start <= minute < end:
                break
        else:
            raise Refused("outside_hours", hours=hours)
        reason = self.state.paused_queues.get(queue.id)
        if reason is not None:
            raise Refused("queue_paused", reason=reason, queue_name=queue.name)

    def _hours_rule(
        self, queue: QueueConfig, kind: str,
    ) -> tuple[_Why | None, list[tuple[int, int]], str]:
        """``queue``'s rule on a kind of day: a refusal if it is not offered that kind of
        day, else its opening spans in minutes of the day ("08:30-11:30" -> (510, 690),
        open from the first minute up to, not including, the last) and their wording."""
        if (queue.days == "workdays" and kind != "workday") or (
            queue.days == "weekends" and kind == "workday"
        ):
            return ("not_offered_today", {"queue_name": queue.name}), [], ""
        spans: list[str] = getattr(queue.hours or self.cfg.hours, kind)
        minutes = [(_minutes(span[:5]), _minutes(span[6:])) for span in spans]
        return None, minutes, " ".join(spans) or "今日休息"

    # --- windows (B1–B5) -------------------------------------------------------------------

    def _login(self, cmd: c.Login, now: float, out: list[Event]) -> None:
        _, ws = self._window(cmd.window)
        teller = self.cfg.teller(cmd.teller)
        if teller is None or not _password_ok(cmd, teller.password_hash):
            raise Refused("wrong_password")
        other = self.state.tellers.get(teller.id)
        if other is not None and other != cmd.window:
            raise Refused("teller_elsewhere", teller=teller.id, other=other)
        if ws.teller is not None and ws.teller != teller.id:
            raise Refused("window_occupied", window=cmd.window, teller=ws.teller)
        if ws.teller == teller.id:
            return  # already logged in here: logging in twice is harmless
        self._emit(out, now, "teller_login", window=cmd.window, teller=teller.id)

    def _logout(self, cmd: c.Logout, now: float, out: list[Event]) -> None:
        _, ws = self._staffed(cmd.window)
        self._finish_current(ws, now, out)
        self._emit(out, now, "teller_logout", window=cmd.window, teller=ws.teller)

    def _call_next(self, cmd: c.CallNext, now: float, out: list[Event]) -> None:
        wc = self._windows.get(cmd.window)  # (as _staffed, inline: every call comes here)
        ws = self.state.windows.get(cmd.window)
        if wc is None or ws is None or ws.teller is None:
            wc, ws = self._staffed(cmd.window)  # (raises the refusal it finds)
        if ws.paused:
            raise Refused("window_paused", window=cmd.window)
        if ws.current is not None:
            self._finish_current(ws, now, out)
        t = select(self.state, self.cfg, wc, now)
        if t is None:
            raise Refused("no_waiting")
        self._call(ws, t, now, out, callback=False)

    def _recall(self, cmd: c.Recall, now: float, out: list[Event]) -> None:
        ws, t = self._current(cmd.window)
        limit = self.cfg.thresholds.recalls_before_no_show
        if limit and t.recalls >= limit:
            self._emit(
                out, now, "ticket_no_show", ticket=t.id, number=t.number, queue=t.queue,
                window=ws.number, teller=ws.teller, reason="recalls_exhausted",
            )
            return
        self._emit(
            out, now, "ticket_recalled", ticket=t.id, number=t.number, window=ws.number,
            teller=ws.teller, recalls=t.recalls + 1,
        )

    def _no_show(self, cmd: c.NoShow, now: float, out: list[Event]) -> None:
        ws, t = self._current(cmd.window)
        self._emit(
            out, now, "ticket_no_show", ticket=t.id, number=t.number, queue=t.queue,
            window=ws.number, teller=ws.teller, reason="teller",
        )

    def _finish(self, cmd: c.Finish, now: float, out: list[Event]) -> None:
        ws = self.state.windows.get(cmd.window)  # (as _current, inline: the usual case)
        if (ws is None or ws.teller is None or ws.current is None
                or cmd.window not in self._windows):
            ws, _ = self._current(cmd.window)  # (raises the refusal it finds)
        self._finish_current(ws, now, out, ask=cmd.ask_rating)

    def _pause_window(self, cmd: c.PauseWindow, now: float, out: list[Event]) -> None:
        _, ws = self._staffed(cmd.window)
        if ws.paused:
            return
        self._emit(out, now, "window_paused", window=cmd.window, teller=ws.teller)

    def _resume_window(self, cmd: c.ResumeWindow, now: float, out: list[Event]) -> None:
        _, ws = self._staffed(cmd.window)
        if not ws.paused:
            raise Refused("window_not_paused", window=cmd.window)
        self._emit(out, now, "window_resumed", window=cmd.window, teller=ws.teller)

    def _transfer(self, cmd: c.Transfer, now: float, out: list[Event]) -> None:
        _, ws = self._staffed(cmd.window)
        if cmd.number is not None:
            t = self._ticket(cmd.number)
            busy_elsewhere = t.state == "called" and t.window != ws.number
            if t.state not in ("waiting", "called", "held") or busy_elsewhere:
                raise Refused("ticket_not_waiting", number=t.number)
        elif ws.current is not None:
            t = self.state.tickets[ws.current]
        else:
            raise Refused("no_current", window=cmd.window)
        if (cmd.to_window is None) == (cmd.to_queue is None):
            raise Refused("same_place")
        fields: dict[str, Any] = {}
        if cmd.to_window is not None:
            self._window(cmd.to_window)
            if cmd.to_window == t.window and t.state == "called":
                raise Refused("same_place")
            fields["to_window"] = cmd.to_window
        else:
            q = self._queue(cmd.to_queue or "")
            if q.id == t.queue and t.directed is None and t.state == "waiting":
                raise Refused("same_place")
            fields.update(to_queue=q.id, high_return=q.high_return)
        handle = _ms(now - t.called_at) if t.state == "called" and t.called_at else None
        self._emit(
            out, now, "ticket_transferred", ticket=t.id, number=t.number,
            from_queue=t.queue, window=ws.number, teller=ws.teller,
            customer_type=t.customer_type, handle_s=handle, was=t.state, **fields,
        )

    def _insert_front(self, cmd: c.InsertFront, now: float, out: list[Event]) -> None:
        t = self._ticket(cmd.number)
        if t.state != "waiting":
            raise Refused("ticket_not_waiting", number=t.number)
        self._emit(out, now, "ticket_front", ticket=t.id, number=t.number, queue=t.queue,
                   by=cmd.by)

    def _hold(self, cmd: c.Hold, now: float, out: list[Event]) -> None:
        ws, t = self._current(cmd.window)
        self._emit(out, now, "ticket_held", ticket=t.id, number=t.number, window=ws.number,
                   teller=ws.teller)

    def _call_back(self, cmd: c.CallBack, now: float, out: list[Event]) -> None:
        _, ws = self._staffed(cmd.window)
        if ws.paused:
            raise Refused("window_paused", window=cmd.window)
        if cmd.number is not None:
            t = self._ticket(cmd.number)
            if t.state not in ("held", "no_show"):
                raise Refused("ticket_not_held", number=t.number)
        elif ws.held:
            t = self.state.tickets[ws.held[-1]]
        else:
            raise Refused("ticket_not_held", number="")
        self._finish_current(ws, now, out)
        self._call(ws, t, now, out, callback=True)

    # --- ratings (C1) ----------------------------------------------------------------------

    def _rate(self, cmd: c.Rate, now: float, out: list[Event]) -> None:
        ws = self.state.windows.get(cmd.window)  # (as _window, inline: the usual case)
        if ws is None or cmd.window not in self._windows:
            _, ws = self._window(cmd.window)
        level = self._ratings.get(cmd.score)
        if level is None:
            raise Refused("bad_score", score=cmd.score)
        if ws.last_finished is None:
            last = self._last_service(cmd.window)
            if last is not None and last.rated is not None:
                raise Refused("already_rated")
            raise Refused("no_service_to_rate")
        t = self.state.tickets[ws.last_finished]
        if now - (t.finished_at or now) > self.cfg.thresholds.rating_window_s:
            raise Refused("rating_expired")
        self._add(out, {
            "type": "ticket_rated", "at": _ms(now), "day": self.state.day,
            "ticket": t.id, "number": t.number, "queue": t.queue, "window": cmd.window,
            "teller": t.teller, "score": cmd.score, "bad": level.bad,
        })

    def _rate_ticket(self, cmd: c.RateTicket, now: float, out: list[Event]) -> None:
        level = self._ratings.get(cmd.score)
        if level is None:
            raise Refused("bad_score", score=cmd.score)
        t = self._ticket(cmd.number)
        if t.rated is not None:
            raise Refused("already_rated")
        if t.state != "finished" or t.window is None:
            raise Refused("no_service_to_rate")
        self._emit(
            out, now, "ticket_rated", ticket=t.id, number=t.number, queue=t.queue,
            window=t.window, teller=t.teller, score=cmd.score, bad=level.bad,
            channel=cmd.channel,
        )

    def _last_service(self, window: int) -> Ticket | None:
        done = [
            t for t in self.state.tickets.values()
            if t.window == window and t.state == "finished"
        ]
        return max(done, key=lambda t: t.finished_at or 0.0, default=None)

    # --- the branch (A9, G3) ---------------------------------------------------------------

    def _pause_queue(self, cmd: c.PauseQueue, now: float, out: list[Event]) -> None:
        q = self._queue(cmd.queue)
        self._emit(out, now, "queue_paused", queue=q.id, reason=cmd.reason.strip())

    def _resume_queue(self, cmd: c.ResumeQueue, now: float, out: list[Event]) -> None:
        q = self._queue(cmd.queue)
        if q.id in self.state.paused_queues:
            self._emit(out, now, "queue_resumed", queue=q.id)

    def _sign_in(self, cmd: c.SignIn, now: float, out: list[Event]) -> None:
        if not self.state.kiosk_open:
            self._emit(out, now, "kiosk_signed_in")

    def _sign_out(self, cmd: c.SignOut, now: float, out: list[Event]) -> None:
        if self.state.kiosk_open:
            self._emit(out, now, "kiosk_signed_out")

    def _tick(self, cmd: c.Tick, now: float, out: list[Event]) -> None:
        pass  # the day roll in handle() is all a tick does

    def _settle_removed(self, cmd: c.SettleRemovedQueues, now: float, out: list[Event]) -> None:
        stranded = self.stranded()
        rules = self.cfg.removed_queues
        unsaid = sorted(q for q in stranded if q not in rules)
        if unsaid:
            raise Refused("tickets_waiting", queue=unsaid[0], count=stranded[unsaid[0]])
        for t in [t for t in self.state.tickets.values()
                  if t.state in _NOT_AT_A_WINDOW and t.queue in stranded]:  # in issue order
            to = rules[t.queue].transfer_to
            if to is None:
                self._emit(out, now, "ticket_closed", ticket=t.id, number=t.number,
                           queue=t.queue, state="not_served", was=t.state,
                           reason="business_removed")
                continue
            q = self._queue(to)
            self._emit(out, now, "ticket_transferred", ticket=t.id, number=t.number,
                       from_queue=t.queue, window=None, teller=None,
                       customer_type=t.customer_type, handle_s=None, was=t.state,
                       to_queue=q.id, high_return=q.high_return, reason="business_removed")


_DISPATCH: dict[type, Any] = {
    c.IssueTicket: Engine._issue,
    c.PrintFailed: Engine._print_failed,
    c.Login: Engine._login,
    c.Logout: Engine._logout,
    c.CallNext: Engine._call_next,
    c.Recall: Engine._recall,
    c.NoShow: Engine._no_show,
    c.Finish: Engine._finish,
    c.PauseWindow: Engine._pause_window,
    c.ResumeWindow: Engine._resume_window,
    c.Transfer: Engine._transfer,
    c.InsertFront: Engine._insert_front,
    c.Hold: Engine._hold,
    c.CallBack: Engine._call_back,
    c.Rate: Engine._rate,
    c.RateTicket: Engine._rate_ticket,
    c.PauseQueue: Engine._pause_queue,
    c.ResumeQueue: Engine._resume_queue,
    c.SignIn: Engine._sign_in,
    c.SignOut: Engine._sign_out,
    c.Tick: Engine._tick,
    c.Delivered: Engine._delivered,
    c.FillForm: Engine._fill_form,
    c.VoidUndelivered: Engine._void_undelivered,
    c.SettleRemovedQueues: Engine._settle_removed,
}
_NOT_AT_A_WINDOW = ("waiting", "held")  # tickets a removed business's directive applies to


def _password_ok(cmd: c.Login, password_hash: str) -> bool:
    """The verified-login fact the caller brought, else the (slow) check here."""
    if cmd.verified is not None:
        return cmd.verified
    return verify_password(password_hash, cmd.password)


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def _card_type(cfg: Config, card: str) -> Any:
    """The card type with the longest matching prefix (卡类型), or None."""
    best = None
    for ct in cfg.card_types:
        if card.startswith(ct.prefix) and (best is None or len(ct.prefix) > len(best.prefix)):
            best = ct
    return best


def vip_of(cfg: Config, card: str) -> c.CardCustomer | None:
    """The local VIP table's answer for ``card`` (a card or ID number, checked): the
    ``[[vip_customers]]`` entry holding it, as a lookup's ``local`` source (SPEC I1)."""
    for v in cfg.vip_customers:
        if card in v.cards or card in v.id_numbers:
            m = v.manager
            return c.CardCustomer(
                "local", "", v.id, v.customer_type, v.stars, v.name, v.queue,
                (m.id, m.name, m.terminal) if m is not None else None)
    return None


def _vip_queue(cfg: Config) -> str | None:
    return next((q.id for q in cfg.queues if q.customer_type == "vip"), None)


def _mask(card: str) -> str:
    """Card and ID numbers never leave the engine readable: keep the first 4 and last 4."""
    return card[:4] + "*" * max(len(card) - 8, 0) + card[-4:] if len(card) > 8 else "****"
