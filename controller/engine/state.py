"""The engine's state, changed only by applying events.

The engine decides (command -> events) and this module applies (event -> state). Replaying
the journal through :meth:`State.apply` therefore rebuilds exactly the state the running box
had: there is no other way for state to change. ``apply`` never consults the configuration,
so a replay gives the same state whatever config is loaded later.

Ticket life (one day)::

    issued ──► waiting ──call──► called ──finish──► finished ─(rate once)
                ▲  ▲              │  │ │
                │  └──transfer────┘  │ └─no-show──► no_show ──call back──► called
                │                    └─hold──► held ──call back──► called
                └── day end: waiting / held / called ──► not_served
     └── at start-up, issued with ``confirm`` and never delivered nor called ──► voided
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter
from typing import Any

__all__ = ["OPEN_STATES", "TERMINAL_STATES", "Kind", "State", "Ticket", "WindowState",
           "kind_of"]

TERMINAL_STATES = frozenset({"finished", "no_show", "not_served", "voided"})
OPEN_STATES = frozenset({"waiting", "called", "held"})


@dataclass(slots=True, eq=False)  # a ticket is itself: identity, not field-by-field
class Ticket:
    id: str
    number: str
    queue: str
    day: str
    n: int
    issued_at: float
    order: int  # branch-wide issue order within the day: the final tie-break
    customer_type: str = "normal"
    type_priority: int = 0
    stars: int = 0
    vip: str | None = None
    vip_name: str | None = None
    channel: str = "kiosk"
    appointment: str | None = None
    high_return: bool = False
    state: str = "waiting"
    window: int | None = None
    teller: str | None = None
    called_at: float | None = None
    first_called_at: float | None = None
    finished_at: float | None = None
    recalls: int = 0
    calls: int = 0
    front: int = 0  # >0: inserted at the front (号码插前), in this order
    directed: int | None = None  # transferred to this window (柜面协同)
    rated: int | None = None
    print_error: str | None = None  # why its paper ticket did not print, if it did not
    # issued with ``confirm``: "pending" until it reached its customer ("printed" or
    # "answered"); None: its issuer does not confirm (a remote ticket, the simulator)
    delivery: str | None = None
    manager: str | None = None  # the account manager's name (a customer looked up, SPEC I1)


@dataclass(slots=True)
class WindowState:
    number: int
    teller: str | None = None
    paused: bool = False
    current: str | None = None  # ticket id being served
    last_finished: str | None = None  # the service a rating would belong to
    held: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.teller is not None and not self.paused


@dataclass(slots=True)
class State:
    day: str = ""
    last_now: float = 0.0
    kiosk_open: bool = True
    counters: dict[str, int] = field(default_factory=dict)  # queue -> last n today
    tickets: dict[str, Ticket] = field(default_factory=dict)  # today's, by id
    by_number: dict[str, str] = field(default_factory=dict)  # number -> id
    waiting: dict[str, Ticket] = field(default_factory=dict)  # insertion-ordered
    waiting_count: dict[str, int] = field(default_factory=dict)  # queue -> waiting tickets
    windows: dict[int, WindowState] = field(default_factory=dict)
    tellers: dict[str, int] = field(default_factory=dict)  # teller -> window logged in at
    paused_queues: dict[str, str] = field(default_factory=dict)  # queue -> reason
    issued: int = 0  # tickets issued today (the next ticket's order)
    fronts: int = 0  # insert-front counter
    lobby_alert_at: int | None = None  # alert raised: re-armed at or below this count
    lobby_alert_last: float | None = None  # when the last lobby alert was raised
    # who asked -> (their latest request key today, the ticket it issued if it issued one);
    # at most one entry per asker, and only askers whose request made an event today
    requests: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # ticket id -> its pre-filled form (预填单, I2): the latest ``form_filled`` of today,
    # at most one per ticket (bounded by the day's tickets; each form by protocols/forms.py)
    forms: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The waiting tickets again, by kind (:func:`kind_of`: everything a rank reads except
    # the issue time), each kind's in issue order. Every window's rank grows along such a
    # list (the escalation rule only flips from "escalated" to "not" as the issue time
    # grows), so the next ticket of a kind is its first and the number of a kind ranked
    # before a ticket is a bisection: ``select`` and ``ahead_of`` read this, not every
    # waiting ticket. Derived: kept by ``_enqueue``/``_dequeue``, never serialised. Bound:
    # one entry per kind with a ticket waiting (empty kinds are dropped).
    kinds: dict[Kind, list[Ticket]] = field(default_factory=dict, compare=False, repr=False)

    # --- reading -----------------------------------------------------------------------

    def window(self, number: int) -> WindowState:
        w = self.windows.get(number)
        if w is None:
            w = self.windows[number] = WindowState(number)
        return w

    def by_num(self, number: str) -> Ticket | None:
        tid = self.by_number.get(number)
        return self.tickets.get(tid) if tid is not None else None

    def repeated(self, request: tuple[str, str]) -> bool:
        """Whether ``(who, key)`` is ``who``'s latest request, already acted on today."""
        seen = self.requests.get(request[0])
        return seen is not None and seen[0] == request[1]

    def requested(self, who: str) -> Ticket | None:
        """The ticket ``who``'s latest request issued (None: it issued none)."""
        seen = self.requests.get(who)
        return self.tickets.get(seen[1]) if seen is not None and seen[1] else None

    def note_request(self, e: dict[str, Any]) -> None:
        """Remember the request an event records (the engine, and replay, call this)."""
        who, key = e["request"]
        self.requests[who] = (key, e["ticket"] if e["type"] == "ticket_issued" else None)

    @property
    def waiting_total(self) -> int:
        return len(self.waiting)

    # --- applying ----------------------------------------------------------------------

    def apply(self, e: dict[str, Any]) -> None:
        """Apply one event. Unknown event types are ignored (newer journal, older box)."""
        handler = _HANDLERS.get(e["type"])
        if handler is not None:
            handler(self, e)
        if "request" in e:
            self.note_request(e)
        at = e.get("at")
        if at is not None and at > self.last_now:
            self.last_now = at

    def apply_new(self, e: dict[str, Any]) -> None:
        """:meth:`apply` for an event the engine has just made: it always has ``at`` and
        has no ``request`` yet (the engine notes that itself), so neither is looked up."""
        handler = _HANDLERS.get(e["type"])
        if handler is not None:
            handler(self, e)
        at = e["at"]
        if at > self.last_now:
            self.last_now = at

    def _enqueue(self, t: Ticket) -> None:
        t.state = "waiting"
        self.waiting[t.id] = t
        self.waiting_count[t.queue] = self.waiting_count.get(t.queue, 0) + 1
        self._index(t)

    def _index(self, t: Ticket) -> None:
        k = kind_of(t)
        same = self.kinds.get(k)
        if same is None:
            self.kinds[k] = [t]
        elif (last := same[-1]).issued_at < t.issued_at or (
                last.issued_at == t.issued_at and last.order < t.order):
            same.append(t)  # a new ticket: the latest of its kind
        else:
            insort(same, t, key=issue_key)  # back in the queue (transfer, snapshot)

    def _unindex(self, t: Ticket) -> None:
        k = kind_of(t)
        same = self.kinds[k]
        if same[0] is t:
            del same[0]  # the common case: the first of its kind is called
        else:
            del same[bisect_left(same, issue_key(t), key=issue_key)]
        if not same:
            del self.kinds[k]

    def _dequeue(self, t: Ticket) -> None:
        if self.waiting.pop(t.id, None) is not None:
            self._unindex(t)
            self.waiting_count[t.queue] -= 1
            if self.lobby_alert_at is not None and len(self.waiting) <= self.lobby_alert_at:
                self.lobby_alert_at = None  # down to the clear mark: re-armed

    def _leave_window(self, t: Ticket) -> None:
        if t.window is not None:
            w = self.windows.get(t.window) or self.window(t.window)
            if w.current == t.id:
                w.current = None

    # --- snapshots -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "last_now": self.last_now,
            "kiosk_open": self.kiosk_open,
            "counters": dict(self.counters),
            # each ticket a row of its fields' values, named once: a third of the bytes of
            # one object per ticket, and building and encoding it ~3× faster (a snapshot
            # of an 11,000-ticket day: 27 ms instead of 90 on the writer thread and the loop)
            "ticket_fields": list(_TICKET_FIELDS),
            "ticket_rows": [_ticket_values(t) for t in self.tickets.values()],
            "waiting": list(self.waiting),
            "windows": [asdict(w) for w in sorted(self.windows.values(), key=_num)
                        if w != WindowState(w.number)],  # untouched windows are implicit
            "paused_queues": dict(self.paused_queues),
            "issued": self.issued,
            "fronts": self.fronts,
            "lobby_alert_at": self.lobby_alert_at,
            "lobby_alert_last": self.lobby_alert_last,
            "requests": {who: list(seen) for who, seen in self.requests.items()},
            "forms": dict(self.forms),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> State:
        s = cls(day=d["day"], last_now=d["last_now"], kiosk_open=d["kiosk_open"])
        s.counters = dict(d["counters"])
        tickets: Iterable[dict[str, Any]]
        if "ticket_rows" in d:
            names = d["ticket_fields"]
            tickets = (dict(zip(names, row, strict=True)) for row in d["ticket_rows"])
        else:  # a snapshot written before the rows (one object per ticket)
            tickets = d["tickets"]
        for td in tickets:
            t = Ticket(**td)
            s.tickets[t.id] = t
            s.by_number[t.number] = t.id
        for tid in d["waiting"]:
            s._enqueue(s.tickets[tid])
        for wd in d["windows"]:
            w = WindowState(**wd)
            s.windows[w.number] = w
            if w.teller is not None:
                s.tellers[w.teller] = w.number
        s.paused_queues = dict(d["paused_queues"])
        s.issued, s.fronts = d["issued"], d["fronts"]
        s.lobby_alert_at = d["lobby_alert_at"]
        s.lobby_alert_last = d.get("lobby_alert_last")  # absent in older snapshots
        s.requests = {who: (key, ticket) for who, (key, ticket) in d.get("requests", {}).items()}
        s.forms = dict(d.get("forms", {}))  # absent in older snapshots
        return s


# A waiting ticket's kind: queue, directed, front, no appointment, customer-type priority,
# stars, high return. Two tickets of one kind differ, for every window's rank, only by
# their issue time and order (see ``State.kinds``).
Kind = tuple[str, int | None, int, bool, int, int, bool]


def kind_of(t: Ticket) -> Kind:
    return (t.queue, t.directed, t.front, t.appointment is None, t.type_priority, t.stars,
            t.high_return)


issue_key = attrgetter("issued_at", "order")

_TICKET_FIELDS = tuple(f.name for f in fields(Ticket))
_ticket_values = attrgetter(*_TICKET_FIELDS)


def _num(w: WindowState) -> int:
    return w.number


# --- event handlers ---------------------------------------------------------------------


def _day_opened(s: State, e: dict[str, Any]) -> None:
    s.day = e["day"]
    s.counters.clear()
    s.tickets.clear()
    s.by_number.clear()
    s.waiting.clear()
    s.waiting_count.clear()
    s.kinds.clear()
    s.issued = s.fronts = 0
    s.lobby_alert_at = s.lobby_alert_last = None
    s.requests.clear()
    s.forms.clear()
    for w in s.windows.values():
        w.current = w.last_finished = None
        w.held.clear()


def _issued(s: State, e: dict[str, Any]) -> None:
    t = Ticket(  # positional (as the fields are declared): twice as fast as keywords
        e["ticket"], e["number"], e["queue"], e["day"], e["n"], e["at"], s.issued,
        e["customer_type"], e.get("type_priority", 0), e.get("stars", 0), e.get("vip"),
        e.get("vip_name"), e.get("channel", "kiosk"), e.get("appointment"),
        e.get("high_return", False),
    )
    if e.get("confirm"):
        t.delivery = "pending"
    if (manager := e.get("manager")) is not None:
        t.manager = manager.get("name")
    s.issued += 1
    s.counters[t.queue] = t.n
    s.tickets[t.id] = t
    s.by_number[t.number] = t.id
    s._enqueue(t)


def _form_filled(s: State, e: dict[str, Any]) -> None:
    s.forms[e["ticket"]] = {k: e.get(k) for k in ("form", "title", "title_en", "fields",
                                                    "channel", "at")}


def _called(s: State, e: dict[str, Any]) -> None:
    t = s.tickets[e["ticket"]]
    s._dequeue(t)
    if t.state == "held" and t.window is not None:
        held = s.window(t.window).held
        if t.id in held:
            held.remove(t.id)
    w = s.windows.get(e["window"]) or s.window(e["window"])  # (a window seen before: inline)
    t.state, t.window, t.teller = "called", w.number, e.get("teller")
    t.called_at = e["at"]
    if t.first_called_at is None:
        t.first_called_at = e["at"]
    t.calls += 1
    t.recalls = 0
    t.directed = None
    t.front = 0
    w.current = t.id


def _recalled(s: State, e: dict[str, Any]) -> None:
    s.tickets[e["ticket"]].recalls = e["recalls"]


def _no_show(s: State, e: dict[str, Any]) -> None:
    t = s.tickets[e["ticket"]]
    s._leave_window(t)
    t.state = "no_show"
    t.finished_at = e["at"]


def _finished(s: State, e: dict[str, Any]) -> None:
    t = s.tickets[e["ticket"]]
    s._leave_window(t)
    t.state = "finished"
    t.finished_at = e["at"]
    (s.windows.get(e["window"]) or s.window(e["window"])).last_finished = t.id


def _transferred(s: State, e: dict[str, Any]) -> None:
    t = s.tickets[e["ticket"]]
    s._leave_window(t)
    if t.state == "held" and t.window is not None and t.id in s.window(t.window).held:
        s.window(t.window).held.remove(t.id)  # moved on: no longer held at that window
    s._dequeue(t)
    if e.get("to_queue"):
        t.queue = e["to_queue"]
        t.high_return = e.get("high_return", t.high_return)
        t.directed = None
    if e.get("to_window") is not None:
        t.directed = e["to_window"]
    t.window = t.teller = None
    s._enqueue(t)


def _front(s: State, e: dict[str, Any]) -> None:
    s.fronts += 1
    t = s.tickets[e["ticket"]]
    if t.id in s.waiting:  # its kind changes: out of the index and back in
        s._unindex(t)
        t.front = s.fronts
        s._index(t)
    else:
        t.front = s.fronts


def _held(s: State, e: dict[str, Any]) -> None:
    t = s.tickets[e["ticket"]]
    s._leave_window(t)
    t.state = "held"
    s.window(e["window"]).held.append(t.id)


def _rated(s: State, e: dict[str, Any]) -> None:
    s.tickets[e["ticket"]].rated = e["score"]
    w = s.window(e["window"])
    if w.last_finished == e["ticket"]:
        w.last_finished = None


def _closed(s: State, e: dict[str, Any]) -> None:
    t = s.tickets[e["ticket"]]
    s._dequeue(t)
    s._leave_window(t)
    if t.window is not None and t.id in s.window(t.window).held:
        s.window(t.window).held.remove(t.id)
    t.state = e["state"]
    t.finished_at = e["at"]


def _delivered(s: State, e: dict[str, Any]) -> None:
    s.tickets[e["ticket"]].delivery = e["how"]


def _voided(s: State, e: dict[str, Any]) -> None:
    """Nobody holds the number: it leaves the queue for good. Its request is forgotten (a
    retry with the same key gets a new ticket) and so is its appointment (redeemable again)."""
    t = s.tickets[e["ticket"]]
    s._dequeue(t)
    t.state = "voided"
    t.finished_at = e["at"]
    t.appointment = None
    for who, (_, ticket) in list(s.requests.items()):
        if ticket == t.id:
            del s.requests[who]


def _print_failed(s: State, e: dict[str, Any]) -> None:
    s.tickets[e["ticket"]].print_error = e["reason"]


def _login(s: State, e: dict[str, Any]) -> None:
    w = s.window(e["window"])
    w.teller, w.paused = e["teller"], False
    s.tellers[e["teller"]] = w.number


def _logout(s: State, e: dict[str, Any]) -> None:
    w = s.window(e["window"])
    if w.teller is not None:
        s.tellers.pop(w.teller, None)
    w.teller, w.paused = None, False


def _window_paused(s: State, e: dict[str, Any]) -> None:
    s.window(e["window"]).paused = True


def _window_resumed(s: State, e: dict[str, Any]) -> None:
    s.window(e["window"]).paused = False


def _queue_paused(s: State, e: dict[str, Any]) -> None:
    s.paused_queues[e["queue"]] = e.get("reason", "")


def _queue_resumed(s: State, e: dict[str, Any]) -> None:
    s.paused_queues.pop(e["queue"], None)


def _kiosk(s: State, e: dict[str, Any]) -> None:
    s.kiosk_open = e["type"] == "kiosk_signed_in"


def _lobby_alert(s: State, e: dict[str, Any]) -> None:
    s.lobby_alert_at = e.get("clear", e["threshold"])  # older events: no hysteresis
    s.lobby_alert_last = e["at"]


_HANDLERS = {
    "day_opened": _day_opened,
    "ticket_issued": _issued,
    "ticket_called": _called,
    "form_filled": _form_filled,
    "ticket_recalled": _recalled,
    "ticket_no_show": _no_show,
    "ticket_finished": _finished,
    "ticket_transferred": _transferred,
    "ticket_front": _front,
    "ticket_held": _held,
    "ticket_rated": _rated,
    "ticket_closed": _closed,
    "ticket_print_failed": _print_failed,
    "ticket_delivered": _delivered,
    "ticket_voided": _voided,
    "teller_login": _login,
    "teller_logout": _logout,
    "window_paused": _window_paused,
    "window_resumed": _window_resumed,
    "queue_paused": _queue_paused,
    "queue_resumed": _queue_resumed,
    "kiosk_signed_in": _kiosk,
    "kiosk_signed_out": _kiosk,
    "lobby_alert": _lobby_alert,
}
