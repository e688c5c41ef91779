"""Who is called next at a window (SPEC B5), and how many are ahead of a ticket.

A window serves the tickets *eligible* for it:

* tickets transferred to this window (``directed``);
* undirected tickets of the queues the window serves;
* a balancing window (均衡窗口) with none of those waiting also serves undirected tickets of
  any queue whose waiting count has reached ``thresholds.balance_waiting``.

Among eligible tickets it calls the smallest *rank*. The rank is a tuple built from the
branch's ``strategy.order`` (each rule one component, earlier rules weigh more), then the
original issue time and issue order (first come, first served):

==============  =====================================================================
rule            comes first
==============  =====================================================================
``front``       tickets inserted at the front (号码插前), in the order inserted
``directed``    tickets transferred to this very window
``appointment`` appointment tickets (预约) before walk-ins
``escalated``   tickets that have waited ``escalate_after_min`` or longer
``vip``         higher customer-type priority (VIP, corporate), then more stars
``high_return`` high-return businesses (高回报业务)
``priority``    the window's priority for the ticket's queue (larger = first)
==============  =====================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

from ..config import Config, WindowConfig
from .state import State, Ticket

__all__ = ["Ranker", "ahead_of", "eligible", "select", "serving_windows"]

Rank = tuple[float, ...]

_INF = float("inf")


class Ranker:
    """Builds the rank function of one window at one instant."""

    __slots__ = ("key",)

    def __init__(self, cfg: Config, window: WindowConfig, now: float) -> None:
        prios = window.queues
        number = window.number
        escalate_s = cfg.thresholds.escalate_after_min * 60.0
        # Every rule's value is computed inline (no call per rule), then the configured
        # order is picked in C: the same rank tuple as one function per rule, ~3x cheaper.
        slots = [_SLOT[r] for r in cfg.strategy.order if r != "escalated" or escalate_s > 0]
        pick = itemgetter(*slots, 7, 8)

        def key(t: Ticket) -> Rank:
            return pick((
                t.front or _INF,
                0.0 if t.directed == number else 1.0,
                0.0 if t.appointment else 1.0,
                0.0 if now - t.issued_at >= escalate_s else 1.0,
                -(t.type_priority * 10 + t.stars),
                0.0 if t.high_return else 1.0,
                -prios.get(t.queue, 0),
                t.issued_at,
                t.order,
            ))

        self.key = key


# Position of each rule's value in the tuple Ranker.key builds (7, 8: issue time, order).
_SLOT = {rule: i for i, rule in enumerate(
    ("front", "directed", "appointment", "escalated", "vip", "high_return", "priority"))}


def eligible(
    window: WindowConfig, tickets: Iterable[Ticket], counts: dict[str, int], threshold: int
) -> list[Ticket]:
    """The tickets ``window`` may call now, from ``tickets`` (see the module docstring)."""
    number, queues = window.number, window.queues
    own = [
        t for t in tickets
        if t.directed == number or (t.directed is None and t.queue in queues)
    ]
    if own or not window.balancing:
        return own
    return [
        t for t in tickets
        if t.directed is None and counts.get(t.queue, 0) >= threshold
    ]


def select(state: State, cfg: Config, window: WindowConfig, now: float) -> Ticket | None:
    """The ticket ``window`` calls next, or None when nobody is waiting for it."""
    pool = eligible(
        window, state.waiting.values(), state.waiting_count, cfg.thresholds.balance_waiting
    )
    if not pool:
        return None
    return min(pool, key=Ranker(cfg, window, now).key)


def serving_windows(state: State, cfg: Config, t: Ticket) -> list[WindowConfig]:
    """The windows that would serve ``t``: the open ones able to, else all configured ones.

    This is the set :func:`ahead_of` drains, in window-number order.
    """
    threshold = cfg.thresholds.balance_waiting

    def can(w: WindowConfig) -> bool:
        if t.directed is not None:
            return w.number == t.directed
        return t.queue in w.queues or (
            w.balancing and state.waiting_count.get(t.queue, 0) >= threshold
        )

    able = [w for w in cfg.windows if can(w)]
    open_ = [w for w in able if state.window(w.number).open]
    return open_ or able


def ahead_of(state: State, cfg: Config, t: Ticket, now: float) -> int:
    """How many waiting tickets will be called before ``t`` if nobody else arrives.

    The windows of :func:`serving_windows` call in turn (lowest number first, round-robin),
    each by its own strategy; the answer is the number of calls before ``t``'s. With one
    window, or windows serving the same queues alike, this is exactly the customer's place.
    """
    if len(state.waiting) == 1:  # t alone: nobody can be called before it
        return 0
    windows = serving_windows(state, cfg, t)
    if not windows:
        return len(state.waiting) - 1
    threshold = cfg.thresholds.balance_waiting
    waiting = list(state.waiting.values())
    counts = dict(state.waiting_count)
    # Each window's candidates in its rank order, computed once; taken ones are skipped.
    own: list[list[Ticket]] = []
    borrow: list[list[Ticket]] = []
    # Counts only fall while draining: with no queue at the threshold now, no window
    # can ever borrow, so the borrow lists need not be ranked.
    can_borrow = any(n >= threshold for n in counts.values())
    for w in windows:
        key = Ranker(cfg, w, now).key
        mine = [
            x for x in waiting
            if x.directed == w.number or (x.directed is None and x.queue in w.queues)
        ]
        own.append(sorted(mine, key=key))
        if w.balancing and can_borrow:
            others = [x for x in waiting if x.directed is None and x.queue not in w.queues]
            borrow.append(sorted(others, key=key))
        else:
            borrow.append([])
    pos = [0] * len(windows)
    taken: set[str] = set()
    called = 0
    while True:
        progressed = False
        for i, w in enumerate(windows):
            pick = _next_untaken(own[i], pos, i, taken)
            if pick is None and w.balancing:
                pick = next(
                    (x for x in borrow[i]
                     if x.id not in taken and counts.get(x.queue, 0) >= threshold),
                    None,
                )
            if pick is None:
                continue
            if pick is t:
                return called
            taken.add(pick.id)
            counts[pick.queue] -= 1
            called += 1
            progressed = True
        if not progressed:  # t is no longer eligible anywhere (balancing fell away)
            return called


def _next_untaken(
    ranked: list[Ticket], pos: list[int], i: int, taken: set[str]
) -> Ticket | None:
    j = pos[i]
    while j < len(ranked) and ranked[j].id in taken:
        j += 1
    pos[i] = j
    return ranked[j] if j < len(ranked) else None
