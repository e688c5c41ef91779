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

from bisect import bisect_left
from collections.abc import Callable, Iterable
from functools import lru_cache
from operator import attrgetter
from typing import Any, TypeVar

from ..config import Config, WindowConfig
from .state import State, Ticket, issue_key, kind_of

__all__ = ["ahead_by_walk", "ahead_of", "eligible", "rank_key", "select", "serving_windows"]

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
    """The ticket ``window`` calls next, or None when nobody is waiting for it.

    The smallest rank among :func:`eligible` tickets. Within a kind of waiting ticket
    (``State.kinds``) the rank grows with the issue time, so only each eligible kind's
    first ticket can be the smallest: a few comparisons however long the queue.
    """
    kinds = state.kinds
    if not kinds:
        return None
    number, queues = window.number, window.queues
    heads = [same[0] for k, same in kinds.items()
             if k[1] == number or (k[1] is None and k[0] in queues)]
    if not heads and window.balancing:
        counts, threshold = state.waiting_count, cfg.thresholds.balance_waiting
        heads = [same[0] for k, same in kinds.items()
                 if k[1] is None and counts.get(k[0], 0) >= threshold]
    if len(heads) < 2:
        return heads[0] if heads else None  # (one kind: no rank to compare)
    factory, escalate_s = _strategy(cfg)  # (rank_key's, inline)
    return min(heads, key=factory(queues, number, escalate_s, now))


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
    """How many waiting tickets will be called before ``t`` if nobody else arrives:
    :func:`ahead_by_walk`'s answer, without walking every waiting ticket when ``t`` has
    one lane.

    When one window serves ``t``, or its windows are alike and none has a ticket directed
    to it (so they take one lane in turn) and ``t`` is their own, the answer is the number
    of its lane's tickets ranked before it: per kind of waiting ticket (``State.kinds``)
    a bisection, since each kind's rank grows along its list. Otherwise (windows that rank
    differently share ``t``'s queue, or a balancing window would borrow it) the lanes are
    drained as :func:`ahead_by_walk` does, over kinds instead of tickets
    (:func:`_drain_kinds`).
    """
    windows = serving_windows(state, cfg, t)
    waiting = state.waiting
    if not windows or len(waiting) == 1:
        return len(waiting) - 1
    w = windows[0]
    if _one_lane(state, windows, t):
        return _ranked_before(state, rank_key(cfg, w, now), t, w)
    return _drain_kinds(state, cfg, t, now, windows)


def _one_lane(state: State, windows: list[WindowConfig], t: Ticket) -> bool:
    """Whether ``windows`` take one lane with ``t`` its own: ``t`` is the first window's
    own ticket and all rank alike (same priorities, nothing directed to them but ``t``'s
    own window when it is the only one), as :func:`_lanes` shares them."""
    w = windows[0]
    if not (t.directed == w.number or (t.directed is None and t.queue in w.queues)):
        return False
    if len(windows) == 1:
        return True
    sig = _priorities(w)
    if any(_priorities(v) != sig for v in windows):
        return False
    numbers = {v.number for v in windows}
    return not any(k[1] in numbers for k in state.kinds)


def _ranked_before(state: State, key: Callable[[Ticket], Rank], t: Ticket,
                   w: WindowConfig) -> int:
    """The number of ``w``'s eligible waiting tickets (not ``t``) ranked before ``t``."""
    kt = key(t)
    number, queues = w.number, w.queues
    n = 0
    for k, same in state.kinds.items():
        if k[1] == number or (k[1] is None and k[0] in queues):
            if same[-1] is t:  # a new ticket: the latest of its kind
                n += len(same) - 1
            else:
                n += _bisect_rank(same, kt, 0, len(same), key)
    return n


class _KindLane:
    """One window's lane in :func:`_drain_kinds`: the kinds it may take, how far into each
    (``limit``: the ticket index it must stop before), and the kind it takes from now on
    while that kind's next ticket still ranks before every other kind's next one (``end``)."""

    __slots__ = ("ahead", "at", "borrows", "dry", "end", "esc", "final", "key", "kind", "left",
                 "limit", "mine", "others", "own", "plan", "run", "then", "windows")

    def __init__(self, key: Callable[[Ticket], Rank], esc: tuple[float, float], own: bool,
                 mine: list[int], others: list[int], limit: list[int]) -> None:
        self.key = key
        self.esc = esc  # the now and escalation time key ranks with (see _bisect_rank)
        self.own = own  # t is this window's own: it is called when nothing before it is left
        self.mine = mine  # kinds of its own tickets
        self.others = others  # kinds it may borrow (a window t is not the own of)
        self.limit = limit
        self.kind = -1  # -1: to be chosen; _RUN: a run over several kinds (``plan``)
        self.end = 0
        self.borrows = False
        self.dry = False
        self.final = False  # it takes t's kind until t, nothing else (see _drain_kinds)
        self.then = False  # it takes its kind to ``end``, then is final (see _drain_kinds)
        self.run = 0  # calls left in the run (kind _RUN)
        self.windows = 1  # windows in the race (the most calls of one kind a round makes)
        self.plan: list[tuple[int, int]] = []  # the run's kinds and how far it takes each
        # its own kinds all of whose tickets rank before all of t's kind (see _before)
        self.ahead: list[int] | None = None
        self.at = 0  # the index it took of its kind in the last round
        self.left = 0  # the waiting count of that kind's business before it took


_RUN = -2


def _drain_kinds(state: State, cfg: Config, t: Ticket, now: float,
                 windows: list[WindowConfig]) -> int:
    """:func:`ahead_by_walk`'s drain, over kinds of waiting tickets instead of tickets.

    Every window takes a kind's tickets in the kind's order (its rank grows along it), so
    what has been called of a kind is always its first ``taken[k]`` tickets, and a window's
    next call is the best of each kind's next ticket. A window keeps taking the same kind
    until that kind's next ticket would rank after another kind's next one as it was when
    the window chose (the others' next tickets only rank later as they are taken): found
    by bisection, so a run of one kind costs a counter, not a ranking, per call; and the
    rounds in which every window keeps to its kind are played at once, worked out from
    the exact round before them (the index each window took and how many windows took
    its kind). Kinds that only one window takes (*alone*), or that the
    other windows taking them are surely busy elsewhere for longer, it may take in any
    order among themselves without anyone else noticing, so it takes all of their tickets
    that rank before its other kinds' next ones as one run (two such kinds a window ranks
    alike interleave by issue time: one kind at a time, the window would change kind at
    every turn of the interleaving). Kinds of a business some window borrows are never
    in a run: that window watches the business's count call by call.
    """
    kinds = list(state.kinds.values())
    kt_kind = list(state.kinds).index(kind_of(t))
    mates = kinds[kt_kind]
    t_at = (len(mates) - 1 if mates[-1] is t  # (a new ticket: the latest of its kind)
            else bisect_left(mates, issue_key(t), key=issue_key))
    places = [(same[0].directed, same[0].queue) for same in kinds]
    factory, escalate_s = _strategy(cfg)
    esc = (now, escalate_s)
    # nobody of t's kind is escalated (its first has waited longest): see _before
    calm = escalate_s <= 0 or now - mates[0].issued_at < escalate_s
    lanes = []
    # who may take each kind (None once known: a business some window borrows, whose
    # count that window watches: never taken in a run)
    users: list[list[_KindLane] | None] = [[] for _ in kinds]
    borrowed = set()
    for w in windows:
        number, queues = w.number, w.queues
        key = factory(queues, number, escalate_s, now)  # (rank_key's, inline)
        own = t.directed == number or (t.directed is None and t.queue in queues)
        kt = key(t) if own else ()  # (only t's own windows rank their kinds against t)
        lane = _KindLane(key, esc, own, [], [], [0] * len(kinds))
        for i, (d, q) in enumerate(places):
            same = kinds[i]
            if d == number or (d is None and q in queues):
                lane.mine.append(i)
                lane.limit[i] = (len(same) if not own else t_at if i == kt_kind
                                 else _before(lane, same, i, kt, calm))  # (t's kind: all
                # before t)
            elif not own and d is None:
                lane.others.append(i)
                lane.limit[i] = t_at + 1 if i == kt_kind else len(same)
                borrowed.add(q)
            else:
                continue
            users[i].append(lane)  # type: ignore[union-attr]
        lanes.append(lane)
    alone = [False] * len(kinds)
    for i, same in enumerate(kinds):
        if same[0].queue in borrowed:
            users[i] = None
        else:
            alone[i] = i != kt_kind and len(users[i]) == 1  # type: ignore[arg-type]
    for lane in lanes:
        lane.windows = len(lanes)
    threshold = cfg.thresholds.balance_waiting
    # each kind's business as an index, and the waiting count of each business
    names: dict[str, int] = {}
    kq = [names.setdefault(same[0].queue, len(names)) for same in kinds]
    counts = [state.waiting_count[q] for q in names]
    taken = [0] * len(kinds)
    called = 0
    qt = kq[kt_kind]
    active: list[_KindLane] = []  # (each round's, kept from round to round: emptied)
    runs: list[_KindLane] = []
    per_kind = [0] * len(kinds)
    while True:
        # one exact round; each window that takes one kind notes the index it took
        # (``at``) and, when it borrows, the business's count before it took (``left``)
        active.clear()  # the windows that took one kind, with how many took each kind
        runs.clear()  # and those in a run
        rounds = -1  # (the fewest calls left in a run)
        # t's own windows that take t's kind with nothing else left before t (``final``)
        # take its next ticket at every turn until t's: counted, not noted one by one
        finals = 0
        last = 0  # (the index the last of them took)
        thens = 0  # (windows final once their kind is taken: ``then``)
        for lane in lanes:
            if lane.final:
                last = taken[kt_kind]
                if last >= t_at:
                    return called  # nothing before t is left in its lane: t is called
                taken[kt_kind] = last + 1
                counts[qt] -= 1
                called += 1
                finals += 1
                continue
            k = lane.kind
            if k < 0 or taken[k] >= lane.end or (
                    lane.borrows and counts[kq[k]] < threshold):
                # (the usual window keeps its kind: the rest only here)
                if lane.dry:
                    continue
                if k != _RUN or not lane.run:  # (else its run goes on)
                    if k == _RUN:
                        _settle(lane, taken, counts, kq)
                    k = _choose(lane, kinds, taken, counts, kq, threshold, alone, users,
                                kt_kind, lanes)
                if k == _RUN:
                    r = lane.run = lane.run - 1
                    called += 1
                    runs.append(lane)
                    if rounds < 0 or r < rounds:
                        rounds = r
                    continue
                if k < 0:
                    if lane.own:
                        return called  # nothing before t is left in its lane: t is called
                    lane.dry = True
                    continue
                if lane.own and lane.end == lane.limit[k]:
                    # nothing of its other kinds left before t (t's own: up to t): final
                    # taking t's kind, or final once it has taken this one to the last
                    limit = lane.limit
                    for i in lane.mine:
                        if i != kt_kind and i != k and taken[i] < limit[i]:
                            break
                    else:
                        if k == kt_kind:
                            lane.final, lane.then = True, False
                        else:
                            lane.then = True
                            thens += 1
            elif lane.then:
                thens += 1
            j = taken[k]
            if k == kt_kind and j == t_at:
                return called  # a window borrows t
            taken[k] = j + 1
            b = kq[k]
            lane.at = j
            lane.left = counts[b]
            counts[b] = lane.left - 1
            called += 1
            active.append(lane)
            per_kind[k] += 1
        if not active and not runs:
            # only t's final windows are left, taking t's kind until t (or none: t is no
            # longer eligible anywhere, balancing fell away)
            return called + (t_at - taken[kt_kind] if finals else 0)
        if finals:
            per_kind[kt_kind] += finals
        through = -1
        if thens:
            # A window that takes its kind to the last and then t's kind to t (``then``),
            # when nobody else takes its kind, may turn final within the counted rounds
            # instead of ending them: ``through`` counts the rounds as if it took t's kind
            # (and business) all along besides its own (fewer rounds for the others that
            # take them), none reaching t. The longer of the two counts is played.
            pk = per_kind[kt_kind] + thens
            through = (t_at - taken[kt_kind]) // pk
            if 0 <= rounds < through:
                through = rounds  # (a run's)
            if finals:
                fits = (t_at - last - 1) // pk
                if fits < through:
                    through = fits
        if finals:
            fits = (t_at - last - 1) // per_kind[kt_kind]  # (the last of them is first at t)
            if rounds < 0 or fits < rounds:
                rounds = fits
        # The rounds to come in which every window takes the kind it took in this one
        # (none reaches its kind's ``end`` or ``t``, none borrows from a business under
        # the balancing count) are played at once. In each, a window's kind is taken by
        # the same windows in the same order: the window takes ``per_kind`` further
        # along it, and ``calls`` of its business (when it borrows) come between two of
        # its own.
        for lane in active:
            k = lane.kind
            end = lane.end
            if k == kt_kind and t_at < end:
                end = t_at
            fits = (end - lane.at - 1) // per_kind[k]  # rounds its index stays below end
            if lane.borrows:
                b = kq[k]
                calls = finals if b == qt else 0
                for other in active:
                    if kq[other.kind] == b:
                        calls += 1
                over = (lane.left - threshold) // calls  # (count >= threshold)
                if over < fits:
                    fits = over
            if rounds < 0 or fits < rounds:
                rounds = fits
            if not thens:
                if rounds <= 0:
                    break
            elif not (lane.then and per_kind[k] == 1):  # (one turning final: no bound)
                if k == kt_kind:
                    fits = (end - lane.at - 1) // (per_kind[k] + thens)
                if lane.borrows and kq[k] == qt:
                    over = (lane.left - threshold) // (calls + thens)
                    if over < fits:
                        fits = over
                if fits < through:
                    through = fits
        if through > rounds:
            rounds = through
        for lane in active:  # (the tallies emptied for the next round on the way)
            k = lane.kind
            if rounds > 0:
                if lane.then and per_kind[k] == 1 and (
                        rounds > (left := lane.end - lane.at - 1)):
                    # it takes the rest of its kind, then t's kind for the other rounds
                    taken[k] += left
                    counts[kq[k]] -= left
                    taken[kt_kind] += rounds - left
                    counts[qt] -= rounds - left
                    lane.final, lane.then, lane.kind, lane.end = True, False, kt_kind, t_at
                else:
                    taken[k] += rounds
                    counts[kq[k]] -= rounds
            per_kind[k] = 0  # (a kind two windows take is never 1 for the second: no then)
        if finals or thens:
            per_kind[kt_kind] = 0
        if rounds > 0:
            if finals:
                taken[kt_kind] += rounds * finals
                counts[qt] -= rounds * finals
            for lane in runs:
                lane.run -= rounds
            called += rounds * (len(active) + len(runs) + finals)
        if _only_ts_kind(lanes, kt_kind, taken, counts, kq, threshold):
            return called + t_at - taken[kt_kind]  # (as if only the final ones were left)


def _only_ts_kind(lanes: list[_KindLane], kt_kind: int, taken: list[int],
                  counts: list[int], kq: list[int], threshold: int) -> bool:
    """Whether the windows take t's kind and nothing else from now on, some of them to t:
    t's final ones, and the others dry or borrowing t's kind with nothing else left to
    borrow (every other kind taken or its business under the balancing count, which only
    falls). Then every call to come is of t's kind, in its order, until t's: as many as
    are left before t, whoever makes them (the final windows take them all if the others
    stop)."""
    final = False
    for lane in lanes:
        if lane.final:
            final = True
            continue
        if lane.dry:
            continue
        if lane.kind != kt_kind or not lane.borrows:
            return False
        limit = lane.limit
        for i in lane.others:
            if i != kt_kind and taken[i] < limit[i] and counts[kq[i]] >= threshold:
                return False
    return final


def _settle(lane: _KindLane, taken: list[int], counts: list[int], kq: list[int]) -> None:
    """A run is over: its kinds' tickets are taken as far as it planned."""
    for g, upto in lane.plan:
        counts[kq[g]] -= upto - taken[g]
        taken[g] = upto
    lane.plan = []
    lane.kind = -1


def _before(lane: _KindLane, same: list[Ticket], i: int, kt: Rank, calm: bool) -> int:
    """How many of kind ``i``'s tickets ``same`` rank before ``t`` (``kt``, its rank) at
    ``lane``'s window, one of t's own.

    When neither kind has anyone escalated (``calm``: t's), every ticket of either has its
    kind's parts of the rank but the issue key: if kind ``i``'s are the smaller, all of it
    ranks before all of t's kind, which :func:`_choose` then knows without ranking
    (``lane.ahead``).
    """
    key = lane.key
    first = key(same[0])
    if not first < kt:
        return 0
    if calm and first[:-2] != kt[:-2]:
        now, escalate_s = lane.esc
        if escalate_s <= 0 or now - same[0].issued_at < escalate_s:
            if lane.ahead is None:
                lane.ahead = [i]
            else:
                lane.ahead.append(i)
            return len(same)
    return _bisect_rank(same, kt, 0, len(same), key, first, lane.esc)


def _bisect_rank(same: list[Ticket], bound: Rank, lo: int, hi: int,
                 key: Callable[[Ticket], Rank], first: Rank | None = None,
                 esc: tuple[float, float] | None = None) -> int:
    """``bisect_left(same, bound, lo, hi, key=key)`` for a kind's tickets ``same``: the
    first index in ``lo:hi`` whose rank is not before ``bound``.

    A rank ends with the issue time and order; within a kind every other part is the same
    but whether the ticket is escalated, which only changes once along the kind. So when
    the first and last ticket of ``lo:hi`` share the other parts, the bisection compares
    issue keys only (in C) instead of building a rank per step: the queue's length then
    costs a few comparisons of two numbers, not a rank each. ``first``: the rank of
    ``same[lo]`` when the caller has it. ``esc``: the ``now`` and escalation time the
    rank was made with, when the caller has them: whether the first and last ticket
    share those parts is then told by their escalation alone, without ranking the last.
    """
    if lo >= hi:
        return lo
    if first is None:
        first = key(same[lo])
    if not first < bound:
        return lo
    if esc is not None:
        now, escalate_s = esc
        if escalate_s <= 0 or ((now - same[lo].issued_at < escalate_s)
                               == (now - same[hi - 1].issued_at < escalate_s)):
            # every ticket of lo:hi has first's parts before the issue key (the
            # `escalated` rule's among them, or it is not in the rank)
            if first[:-2] != bound[:-2]:
                return hi  # (first < bound: on those parts, so all of lo:hi)
            return _issued_before(same, bound[-2], bound[-1], lo + 1, hi)
    last = key(same[hi - 1])
    if last < bound:
        return hi
    # first < bound <= last: when both share the parts before the issue key, so does
    # bound (tuples compare part by part), and only the issue keys decide.
    if first[:-2] == last[:-2]:
        return _issued_before(same, bound[-2], bound[-1], lo + 1, hi - 1)
    return bisect_left(same, bound, lo + 1, hi - 1, key=key)


_issued_at = attrgetter("issued_at")


def _issued_before(same: list[Ticket], at: float, order: float, lo: int, hi: int) -> int:
    """``bisect_left(same, (at, order), lo, hi, key=issue_key)``: the first of a kind's
    tickets ``same[lo:hi]`` not issued before ``(at, order)``. Bisected by the issue time
    alone (a float a step: half the cost of building and comparing a pair), the order
    deciding only among tickets issued at that very time."""
    i = bisect_left(same, at, lo, hi, key=_issued_at)
    if i < hi and same[i].issued_at == at:
        i = bisect_left(same, (at, order), i, hi, key=issue_key)
    return i


def _choose(lane: _KindLane, kinds: list[list[Ticket]], taken: list[int],
            counts: list[int], kq: list[int], threshold: int, alone: list[bool],
            users: list[list[_KindLane] | None], kt_kind: int,
            lanes: list[_KindLane]) -> int:
    """The kind ``lane`` takes next (-1: none; _RUN: a run over several kinds), and how
    long it keeps taking it."""
    # (loops, not comprehensions: this runs a dozen times a race, with a handful of kinds)
    key, limit = lane.key, lane.limit
    pool = []
    for i in lane.mine:
        if taken[i] < limit[i]:
            pool.append(i)
    lane.borrows = not pool
    if not pool:
        for i in lane.others:
            if taken[i] < limit[i] and counts[kq[i]] >= threshold:
                pool.append(i)
        if not pool:
            lane.kind = -1
            return -1
    if len(pool) == 1:  # one kind left: no ranking, no run (a run needs two kinds)
        lane.kind = k = pool[0]
        lane.end = limit[k]
        return k
    if len(pool) == 2:  # (the usual choice: two kinds, ranked without a sort)
        a, b = pool
        ahead = lane.ahead
        if ahead is not None and not lane.borrows:
            i = a if b == kt_kind else b if a == kt_kind else -1
            if i in ahead and _no_run(lane, i, kt_kind, alone, users, taken):
                # all of i ranks before t's kind (_before), and no run: i to the last,
                # without a rank
                lane.kind = i
                lane.end = limit[i]
                return i
        ra, rb = key(kinds[a][taken[a]]), key(kinds[b][taken[b]])
        heads = [(ra, a), (rb, b)] if ra < rb else [(rb, b), (ra, a)]
    else:
        heads = sorted([(key(kinds[i][taken[i]]), i) for i in pool])
    k = heads[0][1]
    if not lane.borrows and not (len(heads) == 2 and _no_run(
            lane, k, heads[1][1], alone, users, taken)) and _run(
                lane, heads, kinds, taken, alone, users):
        return _RUN  # (two kinds: _no_run tells the usual no for less than planning)
    lane.kind = k
    end = _bisect_rank(kinds[k], heads[1][0], taken[k], limit[k], key, heads[0][0],
                       lane.esc)
    if end < limit[k]:
        end = _gallop(lane, k, end, heads, kinds, taken, lanes)
    lane.end = end
    return k


def _gallop(lane: _KindLane, k: int, end: int, heads: list[tuple[Rank, int]],
            kinds: list[list[Ticket]], taken: list[int], lanes: list[_KindLane]) -> int:
    """How far ``lane`` surely keeps taking kind ``k`` (its first in ``heads``), at least
    ``end``: where k's next ticket ranks after the second kind's next one as it is now.

    When another window takes that second kind at every turn (its ``end`` not reached, not
    borrowing) and nobody else takes k meanwhile, the second kind's next ticket is further
    on when ``lane`` reaches ``end``: one ticket for each of lane's turns, up to that
    window's end. So ``lane`` keeps k further, to where k ranks after that ticket, and so
    on while it moves (the window ending its kind stops it), in one choice instead of a
    phase of the race for each step. (A third kind's next ticket bounds it as it is now.)
    """
    k2 = heads[1][1]
    h2 = taken[k2]
    mend = h2
    for other in lanes:
        if other.kind == k2 and not other.borrows and other.end > mend:
            mend = other.end
    if mend == h2:
        return end  # (nobody takes the second kind at every turn)
    f0 = taken[k]
    limit = lane.limit
    cap = limit[k]
    for other in lanes:  # nobody else takes k in the rounds counted on (see _unshared)
        if other is not lane and other.limit[k] > f0:
            away = _away(other, k, taken)
            if f0 + away - 1 < cap:
                cap = f0 + away - 1
                if cap <= end:
                    return end
    key, esc, ours, second = lane.key, lane.esc, kinds[k], kinds[k2]
    if len(heads) > 2:  # (a third kind bounds k as it is now)
        cap = _bisect_rank(ours, heads[2][0], end, cap, key, None, esc)
    if end >= cap:
        return end
    stop = limit[k2]  # (from there on the second kind is no longer lane's to bound k)
    # When the tickets of both kinds in play share every part of the rank but the issue
    # key (the kinds' heads do, and none straddles the escalation moment), a ticket of k
    # ranks before one of the second kind exactly when it was issued before it: the steps
    # then compare issue keys, in C (as _bisect_rank does), not ranks.
    alike = False
    if heads[0][0][:-2] == heads[1][0][:-2]:
        now, escalate_s = esc
        last = mend if mend < stop else stop - 1
        alike = escalate_s <= 0 or ((now - ours[cap - 1].issued_at < escalate_s)
                                    == (now - second[last].issued_at < escalate_s)
                                    == (now - ours[f0].issued_at < escalate_s))
    while end < cap:
        # at lane's turn with k's next ticket at ``end``, the second kind's is at least at
        # ``g``: the other window has taken one at each of its turns since, up to its end
        g = h2 + end - f0
        if g > mend:
            g = mend
        if g >= stop:
            return cap
        x = second[g]
        nxt = (_issued_before(ours, x.issued_at, x.order, end, cap) if alike
               else bisect_left(ours, key(x), end, cap, key=key))
        if nxt <= end or g == mend:  # (it no longer moves)
            return nxt
        end = nxt
    return end


def _no_run(lane: _KindLane, i: int, j: int, alone: list[bool],
            users: list[list[_KindLane] | None], taken: list[int]) -> bool:
    """Whether :func:`_run` surely says no to ``lane``'s two kinds ``i`` (ranked first)
    and ``j``: i's business or j's is one some window borrows (never in a run), or
    another window may take kind j at once (so no run holds it, however short)."""
    if not alone[i] and users[i] is None:
        return True
    others = users[j]
    if others is None:
        return True
    return any(other is not lane and _away(other, j, taken) < 0 for other in others)


def _run(lane: _KindLane, heads: list[tuple[Rank, int]], kinds: list[list[Ticket]],
         taken: list[int], alone: list[bool], users: list[list[_KindLane] | None]) -> bool:
    """Whether ``lane`` takes its next tickets as a run over several kinds (and plans it):
    all the tickets of its kinds that nobody else takes meanwhile (*alone*, or taken by
    windows surely busy elsewhere for longer than the run) ranked before its other kinds'
    next tickets, in whatever order among themselves."""
    first = heads[0][1]
    if not alone[first] and users[first] is None:
        return False  # (a business some window borrows: never in a run, see below)
    free = []  # (in rank order; loops, not sets: a handful of kinds)
    for _, g in heads:
        if alone[g] or users[g] is not None:
            free.append(g)
    group = free
    while True:
        if len(group) < 2:  # (one kind: taking it as a kind is that)
            return False
        bound = None
        for rank, i in heads:
            if i not in group:
                bound = rank
                break
        plan = []
        length = 0
        limit = lane.limit
        for head, g in heads:
            if g in group:
                upto = limit[g] if bound is None else _bisect_rank(
                    kinds[g], bound, taken[g], limit[g], lane.key, head, lane.esc)
                if upto > taken[g]:
                    plan.append((g, upto))
                    length += upto - taken[g]
        if _unshared(lane, plan, length, taken, alone, users):
            lane.plan, lane.run, lane.kind = plan, length, _RUN
            return True
        if group is not free or not alone[first]:
            return False
        group = []  # (then the kinds only this window takes)
        for g in free:
            if alone[g]:
                group.append(g)


def _unshared(lane: _KindLane, plan: list[tuple[int, int]], length: int, taken: list[int],
              alone: list[bool], users: list[list[_KindLane] | None]) -> bool:
    """Whether nobody but ``lane`` takes the kinds of ``plan`` in the next ``length``
    calls: each is taken only by it, or the others taking it are surely away longer."""
    for g, _ in plan:
        if not alone[g]:
            for other in users[g] or ():
                if other is not lane and _away(other, g, taken) <= length + 1:
                    return False
    return True


def _away(lane: _KindLane, g: int, taken: list[int]) -> int:
    """Rounds in which ``lane`` surely does not take kind ``g`` (-1: it may at once): it
    keeps to its own kind at least until that kind reaches its ``end``, taken by every
    window at worst (``lane.windows`` calls a round)."""
    if lane.dry:
        return 1 << 60
    if lane.kind == _RUN:
        return lane.run if all(p != g for p, _ in lane.plan) else -1
    if lane.kind < 0 or lane.kind == g or lane.borrows:
        return -1
    return (lane.end - taken[lane.kind]) // lane.windows


def ahead_by_walk(state: State, cfg: Config, t: Ticket, now: float) -> int:
    """:func:`ahead_of` by ranking every waiting ticket, as it was computed before the
    kinds: the reference the property tests hold :func:`ahead_of` to (not used by it).

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
    return _walk(state, cfg, t, now, serving_windows(state, cfg, t))


def _walk(state: State, cfg: Config, t: Ticket, now: float,
          windows: list[WindowConfig]) -> int:
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
