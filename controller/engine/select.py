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

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, TypeVar

from ..config import Config, WindowConfig
from .state import State, Ticket

__all__ = ["ahead_of", "eligible", "rank_key", "select", "serving_windows"]

Rank = tuple[float, ...]
KeyFactory = Callable[[dict[str, int], int, float, float], Callable[[Ticket], Rank]]

# Each rule's rank component; smaller sorts first (False < True).
_PARTS = {
    "front": "t.front or INF",
    "directed": "t.directed != number",
    "appointment": "t.appointment is None",
    "escalated": "now - t.issued_at < escalate_s",
    "vip": "-(t.type_priority * 10 + t.stars)",
    "high_return": "not t.high_return",
    "priority": "-prios.get(t.queue, 0)",
}


@lru_cache(maxsize=64)
def _key_factory(order: tuple[str, ...], escalate: bool) -> KeyFactory:
    # The rank is on the hot path of every call and every ``ahead``: build it once per
    # strategy as one flat lambda (as collections.namedtuple builds its classes) instead
    # of a loop over per-rule functions, which cost ten times as much.
    parts = [_PARTS[r] for r in order if r != "escalated" or escalate]
    body = ", ".join([*parts, "t.issued_at", "t.order"])
    src = f"lambda prios, number, escalate_s, now: lambda t: ({body},)"
    factory: KeyFactory = eval(src, {"INF": float("inf")})  # our own text, never input
    return factory


def rank_key(cfg: Config, window: WindowConfig, now: float) -> Callable[[Ticket], Rank]:
    """The rank function of ``window`` at ``now``: the smallest rank is called first."""
    factory, escalate_s = _strategy(cfg)
    return factory(window.queues, window.number, escalate_s, now)


V = TypeVar("V")


def _kept(owner: Any, name: str, basis: tuple[Any, ...], make: Callable[[], V]) -> V:
    """``make()``, computed once and kept on ``owner`` (a configuration model) as long as
    ``basis``, the parts it is made from, stays the same.

    Kept in the instance's ``__dict__`` as :meth:`Config._index` does, so it lives and
    dies with the configuration; keyed on its basis because a ``model_copy`` copies the
    ``__dict__`` along: a copy that replaced a part never answers from the original's.
    """
    got = owner.__dict__.get(name)
    if got is None or got[0] != basis:
        got = owner.__dict__[name] = (basis, make())
    value: V = got[1]
    return value


def _strategy(cfg: Config) -> tuple[KeyFactory, float]:
    """``cfg``'s rank factory and escalation time."""
    def make() -> tuple[KeyFactory, float]:
        escalate_s = cfg.thresholds.escalate_after_min * 60.0
        return _key_factory(tuple(cfg.strategy.order), escalate_s > 0), escalate_s

    return _kept(cfg, "_rank_factory", (cfg.strategy, cfg.thresholds), make)


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
    return min(pool, key=rank_key(cfg, window, now))


def serving_windows(state: State, cfg: Config, t: Ticket) -> list[WindowConfig]:
    """The windows that would serve ``t``: the open ones able to, else all configured ones.

    This is the set :func:`ahead_of` drains, in window-number order.
    """
    if t.directed is not None:
        able = [w for w in cfg.windows if w.number == t.directed]
    else:
        own, helped = _able(cfg, t.queue)
        over = state.waiting_count.get(t.queue, 0) >= cfg.thresholds.balance_waiting
        able = helped if over else own
    states = state.windows
    open_ = [w for w in able
             if (ws := states.get(w.number)) is not None and ws.teller is not None
             and not ws.paused]
    return open_ or able


def _able(cfg: Config, queue: str) -> tuple[list[WindowConfig], list[WindowConfig]]:
    """The windows serving ``queue``, and those with the balancing windows that may help it
    (both in configuration order), worked out once per configuration and queue."""
    known: dict[str, tuple[list[WindowConfig], list[WindowConfig]]] = _kept(
        cfg, "_able", (cfg.windows,), dict)
    pair = known.get(queue)
    if pair is None:
        pair = known[queue] = (
            [w for w in cfg.windows if queue in w.queues],
            [w for w in cfg.windows if queue in w.queues or w.balancing],
        )
    return pair


def _first(pair: tuple[Rank, Ticket]) -> Rank:
    return pair[0]


def ahead_of(state: State, cfg: Config, t: Ticket, now: float) -> int:
    """How many waiting tickets will be called before ``t`` if nobody else arrives.

    The windows of :func:`serving_windows` call in turn (lowest number first, round-robin),
    each by its own strategy; the answer is the number of calls before ``t``'s. With one
    window, or windows serving the same queues alike, this is exactly the customer's place.

    Each window's calls before it reaches ``t`` form a *lane*. A window calls its own
    tickets (directed there, or of its businesses) first; a balancing window with none left
    borrows from queues over the balancing count. So if ``t`` is its own, the lane is its own
    tickets ranked before ``t``, then ``t``; if it would borrow ``t``, the lane is all its own
    tickets, then the borrowable ones (``t`` among them) in rank order, each taken only
    while its queue is still over the count.
    """
    windows = serving_windows(state, cfg, t)
    waiting = state.waiting
    if not windows or len(waiting) == 1:
        return len(waiting) - 1
    if len(windows) == 1 and not windows[0].balancing:
        w = windows[0]
        key = rank_key(cfg, w, now)
        kt = key(t)
        num, qs = w.number, w.queues
        return sum(1 for x in waiting.values() if x is not t and key(x) < kt
                   and (x.directed == num or (x.directed is None and x.queue in qs)))
    lanes = _lanes(state, cfg, windows, t, now)
    own, borrow = lanes[0]
    if not borrow and all(lane is lanes[0] for lane in lanes):
        return len(own) - 1  # alike windows take the one lane in turn: t's place in it
    return _drain(lanes, t, state, cfg)


Lane = tuple[list[Ticket], list[Ticket]]


def _lanes(state: State, cfg: Config, windows: list[WindowConfig], t: Ticket,
           now: float) -> list[Lane]:
    """Each window's lane (see :func:`ahead_of`), sharing the work between alike windows.

    A window's rank differs from another's only by its priorities and by the tickets
    directed to it: windows with the same priorities that no waiting ticket is directed to
    rank every ticket alike (``t.directed != number`` is true for all), and serve the same
    queues, so they share one sort and one lane (ranked with window number 0, never a
    real window's).
    """
    waiting = list(state.waiting.values())
    targets = {x.directed for x in waiting if x.directed is not None}
    factory, escalate_s = _strategy(cfg)
    made: dict[tuple[int, tuple[tuple[str, int], ...]], Lane] = {}
    lanes: list[Lane] = []
    for w in windows:
        num = w.number if w.number in targets else 0
        sig = (num, _priorities(w))
        lane = made.get(sig)
        if lane is None:
            lane = made[sig] = _lane(factory(w.queues, num, escalate_s, now), waiting,
                                     t, w.number, w.queues)
        lanes.append(lane)
    return lanes


def _lane(key: Callable[[Ticket], Rank], waiting: list[Ticket], t: Ticket, num: int,
          qs: dict[str, int]) -> Lane:
    if t.directed == num or (t.directed is None and t.queue in qs):
        kt = key(t)
        ranked = [(rk, x) for x in waiting
                  if (x.directed == num or (x.directed is None and x.queue in qs))
                  and x is not t and (rk := key(x)) < kt]
        ranked.sort(key=_first)
        return [x for _, x in ranked] + [t], []
    mine = [x for x in waiting if x.directed == num or (x.directed is None and x.queue in qs)]
    mine.sort(key=key)
    others = [x for x in waiting if x.directed is None and x.queue not in qs]
    others.sort(key=key)
    return mine, others


def _priorities(w: WindowConfig) -> tuple[tuple[str, int], ...]:
    """``w``'s queues and priorities as a hashable value."""
    return _kept(w, "_priorities", (w.queues,), lambda: tuple(sorted(w.queues.items())))


def _drain(lanes: list[Lane], t: Ticket, state: State, cfg: Config) -> int:
    """Call from the lanes in turn until ``t`` is called; the number of calls before it."""
    threshold = cfg.thresholds.balance_waiting
    counts = dict(state.waiting_count)
    taken: set[str] = set()
    pos = [0] * len(lanes)
    bpos = [0] * len(lanes)
    called = 0
    while True:
        progressed = False
        for i, (own, borrow) in enumerate(lanes):
            j = pos[i]
            while j < len(own) and own[j].id in taken:
                j += 1
            pos[i] = j
            pick: Ticket | None = own[j] if j < len(own) else None
            if pick is None and borrow:
                # Counts only fall during the drain: a ticket skipped because its queue
                # is under the balancing count stays skipped, so a cursor suffices.
                k = bpos[i]
                while k < len(borrow) and (
                    borrow[k].id in taken or counts.get(borrow[k].queue, 0) < threshold
                ):
                    k += 1
                bpos[i] = k
                pick = borrow[k] if k < len(borrow) else None
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
