"""The live board: every branch's figures for today, rolled up the org tree, pushed to
browsers over Server-Sent Events and to MQTT as retained ``qms/v1/agg/{org}`` messages.

How it learns of changes (the cheapest way the store allows): every ``live.poll_s`` it
reads, on its own thread and connection,

1. the ``branches`` rows' ``status_at``/``live_at``/``health_at`` stamps — only rows whose
   stamps moved are read whole (the retained status, live snapshot and health report the
   consumers store);
2. the ``marks`` table — a branch whose contiguous mark moved past what the board has
   folded gets its new events (in seq order, only up to the mark, so never across a gap)
   folded into its :class:`~central.figures.BranchDay`.

At start (and after a centre restart) it loads each branch's events of its current day,
so the figures are whole again before the first browser asks. Figures never pretend to
be fresh: each branch carries when the centre last heard from it, and the aggregates say
how many branches are stale (online but silent for ``live.stale_after_s``) or offline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from common.clock import Clock, SystemClock
from common.tasks import still_cancelling, wait_at_most
from protocols import uplink as proto

from .auth import ApiError, Principal
from .boxclock import box_clock_offset
from .deps import BoardDep, GateDep, Viewer
from .figures import SLOT_S, SLOTS, WAIT_BAND_WORDS, WAIT_BANDS, BranchDay, utc_offset
from .mqtt import MqttError
from .orgs import Org, list_orgs, parent_code

if TYPE_CHECKING:
    from .context import PublishingContext
    from .settings import LiveSettings
    from .store import Store

__all__ = ["LiveBoard", "rollup", "router"]

log = logging.getLogger(__name__)

CHARTS_EVERY_S = 3.0  # charts go out at most this often (they are the heavier part)
FETCH_LIMIT = 20_000  # events read and folded per branch per poll, at most (a backlog, or
# a flooded day loaded after a restart, catches up over the next polls)
LOADS_PER_POLL = 100  # branches whose day is loaded per poll: after a restart the figures
# fill in over a few polls while the snapshots (waiting, windows) show at once
CHILDREN_PAGE = 100  # children of a node per view, unless the page asks for another size
CHILDREN_MAX = 500  # … at most
FEW_EVENTS = 500  # a branch this few events behind is read with others in one query …
FOLD_TOGETHER = 200  # … of at most this many branches
AGG_AT_ONCE = 100  # aggregate messages in flight at once (10,000 branches: 100 rounds)
HISTORY = 256  # versions remembered for "did my subtree change since version v?"
# Each poll reads only the `branches` and `marks` rows stamped since the newest it has
# seen, less a margin (a transaction stamps its rows before it commits); the whole tables
# are read again this often, for whatever committed later than the margin allows.
SINCE_MARGIN_S = 2.0
FULL_READ_EVERY_S = 5.0
OrgQuery = Annotated[str, Query(pattern=r"^\d{4,16}$", description="an org code")]
OffsetQuery = Annotated[int, Query(ge=0, le=1_000_000, description="first child shown")]
LimitQuery = Annotated[int, Query(ge=1, le=CHILDREN_MAX, description="children shown")]
SUMS = ("issued", "waiting", "serving", "served", "no_show", "not_served", "called",
        "windows_open", "windows_total", "devices_not_ok", "vips", "paused_queues")


# --- per-branch tracking (owned by the board's thread) -------------------------------------


@dataclass
class Tracked:
    code: str
    stamps: tuple[float | None, float | None, float | None] = (None, None, None)
    row: dict[str, Any] = field(default_factory=dict)
    epoch: str | None = None
    folded: int = 0
    fig: BranchDay = field(default_factory=BranchDay)
    online: bool | None = None
    online_since: float | None = None
    last_event: tuple[float, float] | None = None  # (box time, centre time stored)
    bad_events: int = 0  # events the engine's state could not take (counted, logged)

    def fold(self, body: Any, stored_at: float) -> None:
        event = _json(body)
        try:
            self.fig.fold(event)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.bad_events += 1
            if self.bad_events <= 3 or self.bad_events % 1000 == 0:
                log.warning("branch %s: event seq %s not folded (%r); %d so far", self.code,
                            event.get("seq") if isinstance(event, dict) else "?", exc,
                            self.bad_events)
            return
        at = event.get("at")
        if isinstance(at, int | float):
            self.last_event = (float(at), float(stored_at))


def _summary(t: Tracked) -> dict[str, Any]:
    """What the board publishes about one branch (plain data, safe to share)."""
    row = t.row
    live = (row.get("live") or {})
    status = live.get("status") or {}
    health = row.get("health") or {}
    counts = t.fig.counts()
    offset = box_clock_offset(row, t.last_event)
    queues = [{k: q.get(k) for k in ("id", "name", "waiting", "issued", "paused",
                                     "pause_reason")} for q in status.get("queues") or []]
    windows = [{k: w.get(k) for k in ("number", "name", "state", "teller", "teller_name",
                                      "current", "current_queue", "devices")}
               for w in status.get("windows") or []]
    if t.fig.events:  # the events are the truth; the snapshot names things
        queues, windows = t.fig.queues(queues), t.fig.windows(windows)
    devices = [{k: d.get(k) for k in ("name", "state", "detail")}
               for d in health.get("devices") or []]
    names = {q["id"]: q["name"] for q in queues}
    vips = t.fig.vips(names)
    if status and not t.fig.events:  # no events stored yet: the snapshot's own counts
        counts["waiting"] = int(status.get("waiting_total") or 0)
        counts["issued"] = sum(int(q["issued"] or 0) for q in queues)
    oldest = counts.pop("oldest_waiting_at")
    stamps = [s for s in (row.get("status_at"), row.get("live_at"), row.get("health_at")) if s]
    link = health.get("link") or {}
    return {
        **counts,
        "code": t.code, "name": status.get("branch_name"), "online": row.get("online"),
        "online_since": t.online_since, "heard_at": max(stamps) if stamps else None,
        "live_at": row.get("live_at"), "status_at": row.get("status_at"),
        "health_at": row.get("health_at"), "version": row.get("version"),
        "config_version": row.get("config_version"), "epoch": row.get("epoch"),
        "clock_offset": offset, "utc_offset": t.fig.offset,
        "oldest_waiting_centre": None if oldest is None else oldest - offset,
        "kiosk_open": status.get("kiosk_open"),
        "queues": queues, "windows": windows, "devices": devices,
        "windows_open": sum(1 for w in windows if w["state"] in ("open", "serving")),
        "windows_total": len(windows),
        "devices_not_ok": sum(1 for d in devices if d["state"] != "ok"),
        "link": {k: link.get(k) for k in ("connected", "connection_failures", "disconnects",
                                           "timeouts", "retries")},
        "outbox": health.get("outbox") or {},
        "vip_list": vips, "vips": len(vips), "bad_events": t.bad_events,
        "paused_queues": sum(1 for q in queues if q["paused"]),
        "hourly": list(t.fig.hourly),
        "series": t.fig.waiting_series(),
    }


# --- rolling figures up the tree ------------------------------------------------------------


def chains(summaries: Iterable[str], orgs: Iterable[Org]) -> dict[str, tuple[str, ...]]:
    """Each branch's code with its ancestors in the tree: (branch, parent, …, root)."""
    known = {o.code for o in orgs} | set(summaries)
    out: dict[str, tuple[str, ...]] = {}
    for code in known:
        chain: list[str] = []
        up: str | None = code
        while up is not None:
            chain.append(up)
            up = parent_code(up, known)
        out[code] = tuple(chain)
    return out


def rollup(summaries: dict[str, dict[str, Any]], orgs: Iterable[Org],
           ancestry: dict[str, tuple[str, ...]] | None = None) -> dict[str, dict[str, Any]]:
    """Each org node's totals over the branches of its subtree (time-independent parts);
    a branch of the tree never heard from counts as ``never``."""
    orgs = list(orgs)
    never = [o.code for o in orgs if o.kind == "branch" and o.code not in summaries]
    if never:
        empty = _summary(Tracked(""))
        summaries = {**summaries, **{code: empty for code in never}}
    if ancestry is None or any(code not in ancestry for code in summaries):
        ancestry = chains(summaries, orgs)
    acc: dict[str, dict[str, Any]] = {c: _empty() for c in ancestry}
    for code, s in summaries.items():
        for node in ancestry[code]:
            _add(acc[node], s)
    return acc


def _empty() -> dict[str, Any]:
    return {"branches": 0, "online": 0, "offline": 0, "never": 0, **dict.fromkeys(SUMS, 0),
            "wait_sum_s": 0.0, "max_called_wait_s": 0.0, "oldest_waiting_centre": None,
            "oldest_heard_online": None, "wait_hist": {n: 0 for n, _ in WAIT_BANDS},
            "hourly": [0] * 24}


def _add(a: dict[str, Any], s: dict[str, Any]) -> None:
    _add_sums(a, s, 1)
    _add_extremes(a, s)


def _add_sums(a: dict[str, Any], s: dict[str, Any], sign: int) -> None:
    """The additive figures of branch summary ``s`` into (sign 1) or out of (sign -1)
    ``a``: what an incremental roll-up can take back."""
    a["branches"] += sign
    online = s["online"]
    a["online" if online else "never" if online is None else "offline"] += sign
    for k in SUMS:
        a[k] += sign * (s[k] or 0)
    a["wait_sum_s"] += sign * s["wait_sum_s"]
    hist = a["wait_hist"]
    for k, v in s["wait_hist"].items():
        if v:
            hist[k] += sign * v
    hourly = a["hourly"]
    for i, v in enumerate(s["hourly"]):
        if v:
            hourly[i] += sign * v


def _add_extremes(a: dict[str, Any], s: dict[str, Any]) -> None:
    """The longest and oldest figures (a maximum cannot be taken back: recomputed)."""
    a["max_called_wait_s"] = max(a["max_called_wait_s"], s["max_called_wait_s"])
    o = s["oldest_waiting_centre"]
    if o is not None and (a["oldest_waiting_centre"] is None or o < a["oldest_waiting_centre"]):
        a["oldest_waiting_centre"] = o
    h = s["heard_at"]
    if s["online"] and h and (a["oldest_heard_online"] is None or h < a["oldest_heard_online"]):
        a["oldest_heard_online"] = h


def _copy(a: dict[str, Any]) -> dict[str, Any]:
    return {**a, "wait_hist": dict(a["wait_hist"]), "hourly": list(a["hourly"])}


class Rollup:
    """:func:`rollup` kept up to date by the branches that changed (the board's thread).

    A poll at 10,000 branches changes a few hundred: their old summaries are taken out of
    their ancestors' sums and the new ones put in, and only those nodes' totals are copied
    out; the maxima and minima of the changed nodes are recomputed in one tight pass. A
    change of the tree or of the set of branches, and every ``FULL_EVERY_S``, rolls up
    from scratch (which also clears any rounding the running float sums gathered)."""

    FULL_EVERY_S = 60.0

    def __init__(self) -> None:
        self.key: tuple[Any, ...] = ()
        self.ancestry: dict[str, tuple[str, ...]] = {}
        self.acc: dict[str, dict[str, Any]] = {}
        self.parts: dict[str, dict[str, Any]] = {}
        self.totals: dict[str, dict[str, Any]] = {}
        self.full_at = 0.0

    def update(self, summaries: dict[str, dict[str, Any]], orgs: list[Org],
               changed: Iterable[str], now: float) -> dict[str, dict[str, Any]]:
        """The totals of every node (a new dict; unchanged nodes' entries are shared)."""
        key = (len(summaries), tuple(o.code for o in orgs))
        changed = [c for c in changed if c in summaries]
        if (key != self.key or now - self.full_at > self.FULL_EVERY_S
                or any(c not in self.parts for c in changed)):
            if key != self.key:
                self.ancestry = chains(summaries, orgs)
            self.key, self.full_at = key, now
            never = [o.code for o in orgs if o.kind == "branch" and o.code not in summaries]
            empty = _summary(Tracked(""))
            self.parts = {**summaries, **dict.fromkeys(never, empty)}
            self.acc = rollup(self.parts, orgs, self.ancestry)
            self.totals = {c: _copy(a) for c, a in self.acc.items()}
            return self.totals
        dirty: set[str] = set()
        for code in changed:
            old, new = self.parts[code], summaries[code]
            for node in self.ancestry[code]:
                a = self.acc[node]
                _add_sums(a, old, -1)
                _add_sums(a, new, 1)
                dirty.add(node)
            self.parts[code] = new
        for node in dirty:
            a = self.acc[node]
            a.update(max_called_wait_s=0.0, oldest_waiting_centre=None,
                     oldest_heard_online=None)
        for code, s in self.parts.items():
            for node in self.ancestry[code]:
                if node in dirty:
                    _add_extremes(self.acc[node], s)
        totals = dict(self.totals)
        for node in dirty:
            totals[node] = _copy(self.acc[node])
        self.totals = totals
        return totals


def finish(totals: dict[str, Any], now: float, stale_after_s: float,
           stale: int = 0) -> dict[str, Any]:
    """Add the time-dependent figures: average and longest wait, staleness."""
    out = {k: v for k, v in totals.items() if k not in ("oldest_waiting_centre",)}
    out["avg_wait_s"] = round(totals["wait_sum_s"] / totals["called"], 1) \
        if totals["called"] else None
    waiting_now = (now - totals["oldest_waiting_centre"]
                   if totals["oldest_waiting_centre"] is not None else 0.0)
    out["longest_wait_s"] = (round(max(totals["max_called_wait_s"], waiting_now), 1)
                             if totals["called"] or totals["oldest_waiting_centre"] else None)
    out["longest_waiting_now_s"] = round(waiting_now, 1)
    heard = totals["oldest_heard_online"]
    out["oldest_age_s"] = round(now - heard, 1) if heard else None
    out["stale"] = stale
    return out


# --- the board ------------------------------------------------------------------------------


class LiveBoard:
    """Tracks every branch's figures and tells streams when their subtree changed."""

    def __init__(self, centre: PublishingContext, settings: LiveSettings,
                 clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()  # the centre's one clock: the board's now
        self.centre, self.settings = centre, settings
        # Whether this process publishes the aggregates now (several instances: the one
        # holding the ``aggregates`` lease, set by the composition root).
        self.publishes: Callable[[], bool] = lambda: True
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="centre-live")
        self._store: Store | None = None
        self._tracked: dict[str, Tracked] = {}  # the board thread's
        # the board thread's: the marks table as last read, branch → epoch → (contiguous,
        # updated_at); the newest stamp seen in each table; when both were last read whole;
        # the branches whose figures are not caught up yet (read on at the next poll)
        self._epochs: dict[str, dict[str, tuple[int, float]]] = {}
        self._newest: dict[str, float] = {}
        self._full_at = -FULL_READ_EVERY_S
        self._unfinished: set[str] = set()
        self.rows_read = 0  # rows of `branches` and `marks` the polls have read
        self._all_dirty = False  # a poll failed: summarise every branch at the next one
        self._ahead_logged = -math.inf
        self._cache: dict[str, dict[str, Any]] = {}  # the board thread's summaries
        self.summaries: dict[str, dict[str, Any]] = {}  # replaced whole, never mutated
        self.orgs: list[Org] = []
        self._nodes: dict[str, Org] = {}
        self._ancestry: dict[str, tuple[str, ...]] = {}
        self._ancestry_cache: dict[str, tuple[str, ...]] = {}
        self._rolled = Rollup()  # the board thread's
        self._stale: tuple[float, dict[str, int]] = (0.0, {})
        self.totals: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.loaded = asyncio.Event()
        self._history: deque[tuple[int, frozenset[str]]] = deque(maxlen=HISTORY)
        self._tick = asyncio.Event()
        self._published: dict[str, tuple[Any, ...]] = {}
        self._last_agg = 0.0
        self._agg_task: asyncio.Task[None] | None = None
        self._orgs_list: list[Org] = []  # the board thread's
        self._orgs_key: tuple[Any, ...] = ()
        self._index: tuple[list[Org], set[str], dict[str, list[Org]]] = ([], set(), {})

    # --- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll the store until cancelled; a failing store is reopened with back-off."""
        delay = 0.5
        try:
            while True:
                still_cancelling()
                try:
                    await self._poll_forever()
                except Exception as exc:  # the store went away: never end the centre
                    log.error("live board: %r; starting again", exc, exc_info=exc)
                    await self._in_thread(self._close_store)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 10.0)
        finally:
            agg, self._agg_task = self._agg_task, None
            if agg is not None:
                agg.cancel()
                await asyncio.gather(agg, return_exceptions=True)
            await self._in_thread(self._close_store)
            await asyncio.to_thread(self._executor.shutdown, True)

    async def _poll_forever(self) -> None:
        while True:
            still_cancelling()  # one swallowed below (a library's wait) still ends the loop
            changed, summaries, orgs = await self._in_thread(self._poll)
            if changed or orgs != self.orgs or not self.loaded.is_set():
                totals = await self._in_thread(self._rollup, summaries, orgs, changed)
                self._publish(changed, summaries, orgs, totals)
            self.loaded.set()
            if self.settings.agg_publish and (self._agg_task is None or self._agg_task.done()):
                # its own task: thousands of nodes' messages must not hold the next poll
                self._agg_task = asyncio.create_task(self._publish_aggregates(),
                                                     name="live-aggregates")
            await asyncio.sleep(self.settings.poll_s)  # a timer: the store has no signal

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

    def _publish(self, changed: set[str], summaries: dict[str, dict[str, Any]],
                 orgs: list[Org], totals: dict[str, dict[str, Any]] | None = None) -> None:
        self.summaries = summaries
        if orgs is not self.orgs:
            self.orgs = orgs
            self._nodes = {o.code: o for o in orgs}
        self.totals = totals if totals is not None else rollup(summaries, orgs)
        self._ancestry = chains(summaries, orgs) if totals is None else self._ancestry_cache
        self._stale = (0.0, {})
        self.version += 1
        self._history.append((self.version, frozenset(changed)))
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    # --- on the board's thread -----------------------------------------------------------

    def _poll(self) -> tuple[set[str], dict[str, dict[str, Any]], list[Org]]:
        from .store import open_store

        if self._store is None:
            self._store = open_store(self.centre.config.store.url, clock=self.clock)
        store = self._store
        now = time.monotonic()
        full = now - self._full_at >= FULL_READ_EVERY_S
        if full:
            self._full_at = now
        try:
            changed = self._read_branches(store, full)
            changed |= self._read_events(store, full, changed)
        except BaseException:
            # What this poll took in is not summarised yet and what it read is behind the
            # watermark: the next poll reads everything and summarises every branch.
            self._full_at, self._all_dirty = -math.inf, True
            raise
        if self._all_dirty:
            changed, self._all_dirty = changed | set(self._tracked), False
        for code in changed:
            self._cache[code] = _summary(self._tracked[code])
        return changed, dict(self._cache), self._list_orgs(store)

    def _list_orgs(self, store: Store) -> list[Org]:
        """The tree, read again only when it changed (a node added, renamed or deleted:
        its row count or newest stamp moves) or a branch reported for the first time."""
        count, newest = store.execute("SELECT count(*), max(updated_at) FROM orgs").fetchone()
        key = (int(count), newest, len(self._tracked))
        if key != self._orgs_key:
            self._orgs_list, self._orgs_key = list_orgs(store, self._tracked), key
        return self._orgs_list

    def _rollup(self, summaries: dict[str, dict[str, Any]], orgs: list[Org],
                changed: set[str]) -> dict[str, dict[str, Any]]:
        """The roll-up, on the board's thread: only the changed branches' ancestors are
        summed again (:class:`Rollup`)."""
        totals = self._rolled.update(summaries, orgs, changed, time.monotonic())
        self._ancestry_cache = self._rolled.ancestry
        return totals

    def _changed_rows(self, store: Store, table: str, columns: str, stamps: tuple[str, ...],
                      full: bool) -> list[tuple[Any, ...]]:
        """The rows of ``table`` stamped (any of ``stamps``, the last of ``columns``)
        since the newest stamp seen less :data:`SINCE_MARGIN_S`; all of them when
        ``full`` or on the first read."""
        newest = self._newest.get(table)
        if full or newest is None:
            rows = store.execute(f"SELECT {columns} FROM {table}").fetchall()
        else:
            since = newest - SINCE_MARGIN_S
            rows = store.execute(f"SELECT {columns} FROM {table} WHERE "
                                 + " OR ".join(f"{s} >= ?" for s in stamps),
                                 (since,) * len(stamps)).fetchall()
        self.rows_read += len(rows)
        # The watermark: the newest stamp read, never beyond this clock's now (a writer's
        # clock ahead, or stepped back since, would hold every change back to the whole
        # reads); a whole read sets it afresh. Stamps are Unix times, so 0 is below all.
        width, ceiling = len(stamps), self.clock.now() + SINCE_MARGIN_S
        seen = [float(x) for r in rows for x in r[-width:] if x is not None]
        ahead = [x for x in seen if x > ceiling]
        if ahead and time.monotonic() - self._ahead_logged >= 60.0:  # once a minute
            self._ahead_logged = time.monotonic()
            log.warning("%d %s rows stamped up to %.1f s ahead of this centre's clock: "
                        "are the instances' clocks on NTP?", len(ahead), table,
                        max(ahead) - ceiling + SINCE_MARGIN_S)
        kept = max((x for x in seen if x <= ceiling), default=0.0)
        self._newest[table] = kept if full or newest is None else max(kept, newest)
        return rows

    def _read_branches(self, store: Store, full: bool = True) -> set[str]:
        rows = self._changed_rows(store, "branches", "branch, status_at, live_at, health_at",
                                  ("status_at", "live_at", "health_at"), full)
        moved = [b for b, *stamps in rows
                 if b not in self._tracked or not self._tracked[b].row
                 or self._tracked[b].stamps != tuple(stamps)]
        if not moved:
            return set()
        for row in store.branches(moved):  # the whole rows, JSON decoded, of these only
            self._take_row(row)
        return set(moved)

    def _take_row(self, row: dict[str, Any]) -> None:
        code = row["branch"]
        t = self._tracked.get(code) or self._tracked.setdefault(code, Tracked(code))
        t.stamps = (row["status_at"], row["live_at"], row["health_at"])
        if row["online"] != t.online:
            t.online, t.online_since = row["online"], row["status_at"]
        t.row = row
        status = (row.get("live") or {}).get("status") or {}
        t.fig.offset = utc_offset(status.get("now"), t.fig.offset)
        if row["epoch"] and t.epoch is not None and row["epoch"] != t.epoch:
            t.epoch = None  # a new journal: its day is loaded afresh (_read_events)

    def _read_events(self, store: Store, full: bool = True,
                     moved: frozenset[str] | set[str] = frozenset()) -> set[str]:
        """Fold the new events of the branches whose marks moved (and of ``moved``, whose
        branch row changed, and of those not caught up at the last poll)."""
        rows = self._changed_rows(store, "marks", "branch, epoch, contiguous, updated_at",
                                  ("updated_at",), full)
        if full:
            self._epochs = {}
        for branch, epoch, contiguous, updated in rows:
            self._epochs.setdefault(branch, {})[epoch] = (int(contiguous), float(updated))
        touched = {r[0] for r in rows} | self._unfinished | set(moved)
        self._unfinished = set()
        current: dict[str, tuple[str, int, float]] = {}
        for branch in touched:
            t = self._tracked.get(branch)
            want = (t.row.get("epoch") if t else None)
            for epoch, (contiguous, updated) in self._epochs.get(branch, {}).items():
                if want is not None and epoch != want:
                    continue
                mine = current.get(branch)
                if mine is None or updated > mine[2]:
                    current[branch] = (epoch, contiguous, updated)
        changed, loads = set(), 0
        few: list[tuple[Tracked, int]] = []  # a few new events each: read together
        for branch, (epoch, contiguous, _) in current.items():
            t = self._tracked.get(branch) or self._tracked.setdefault(branch, Tracked(branch))
            if t.epoch != epoch:
                if loads >= LOADS_PER_POLL:
                    self._unfinished.add(branch)
                    continue  # the next poll loads it
                loads += 1
                t.epoch, t.folded, t.fig = epoch, 0, BranchDay(offset=t.fig.offset)
                self._load_day(store, t, contiguous)
                changed.add(branch)
            elif contiguous > t.folded:
                if contiguous - t.folded <= min(FEW_EVENTS, FETCH_LIMIT):  # the bound holds
                    few.append((t, contiguous))
                else:
                    self._fold_new(store, t, contiguous)
                changed.add(branch)
        for i in range(0, len(few), FOLD_TOGETHER):
            self._fold_few(store, few[i:i + FOLD_TOGETHER])
        self._unfinished |= {b for b, (epoch, contiguous, _) in current.items()
                             if (t := self._tracked[b]).epoch == epoch
                             and t.folded < contiguous}
        return changed

    def _load_day(self, store: Store, t: Tracked, contiguous: int) -> None:
        """A branch seen for the first time: fold its current day's events, at most
        :data:`FETCH_LIMIT` now (a flooded day is read on over the next polls, by
        ``_fold_new``, never all at once into memory)."""
        assert t.epoch is not None
        row = store.execute("SELECT max(day) FROM events WHERE branch = ? AND epoch = ? "
                            "AND seq <= ?", (t.code, t.epoch, contiguous)).fetchone()
        t.folded = contiguous
        if row and row[0]:
            rows = store.execute(
                "SELECT seq, body, stored_at FROM events WHERE branch = ? AND epoch = ? "
                "AND day = ? AND seq <= ? ORDER BY seq LIMIT ?",
                (t.code, t.epoch, row[0], contiguous, FETCH_LIMIT)).fetchall()
            for _, body, stored_at in rows:
                t.fold(body, stored_at)
            if len(rows) == FETCH_LIMIT:
                t.folded = int(rows[-1][0])

    def _fold_new(self, store: Store, t: Tracked, contiguous: int) -> None:
        rows = store.execute("SELECT seq, body, stored_at FROM events WHERE branch = ? AND "
                             "epoch = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                             (t.code, t.epoch, t.folded, contiguous, FETCH_LIMIT)).fetchall()
        for seq, body, stored_at in rows:
            t.fold(body, stored_at)
            t.folded = int(seq)

    def _fold_few(self, store: Store, wanted: list[tuple[Tracked, int]]) -> None:
        """The new events of many branches, each a few behind, in one query (a poll at
        10,000 branches finds hundreds of them: one round trip, not hundreds)."""
        values = ", ".join(["(?, ?, ?, ?)"] * len(wanted))
        args = [x for t, contiguous in wanted for x in (t.code, t.epoch, t.folded, contiguous)]
        rows = store.execute(
            f"WITH w(branch, epoch, low, high) AS (VALUES {values}) "
            "SELECT e.branch, e.seq, e.body, e.stored_at FROM events e JOIN w ON "
            "e.branch = w.branch AND e.epoch = w.epoch AND e.seq > w.low AND e.seq <= w.high "
            "ORDER BY e.branch, e.seq", args).fetchall()
        for branch, seq, body, stored_at in rows:
            t = self._tracked[branch]
            t.fold(body, stored_at)
            t.folded = int(seq)

    # --- reading (on the event loop) -----------------------------------------------------

    def node(self, code: str) -> Org | None:
        return self._nodes.get(code)

    def changed_since(self, version: int, org: str) -> bool:
        """Did a branch of ``org``'s subtree change after ``version``?"""
        if not self._history or self._history[0][0] > version + 1:
            return True  # older than what is remembered: assume so
        return any(v > version and any(c.startswith(org) for c in codes)
                   for v, codes in self._history)

    def stale_count(self, org: str, now: float) -> int:
        """Online branches of ``org``'s subtree silent for ``stale_after_s`` (counted for
        every node in one pass, at most once a second)."""
        at, counts = self._stale
        if now - at >= 1.0:
            limit, counts = now - self.settings.stale_after_s, {}
            for code, s in self.summaries.items():
                if s["online"] and (s["heard_at"] or 0) < limit:
                    for node in self._ancestry.get(code, (code,)):
                        counts[node] = counts.get(node, 0) + 1
            self._stale = (now, counts)
        return counts.get(org, 0)

    def view(self, org: str, scope: str, offset: int = 0,
             limit: int = CHILDREN_PAGE) -> dict[str, Any]:
        """The figures of ``org`` and one page of its children (``offset``, ``limit``, in
        code order; ``children_total`` says how many there are), and of the branch if it
        is one. A city of 500 branches is never sent whole."""
        now = self.clock.now()
        node = self.node(org)
        if node is None:
            raise ApiError("not_found")
        known = self._known()
        below = self._children().get(org, [])
        children = below[offset:offset + limit]
        path: list[dict[str, str]] = []
        up: str | None = org
        while up is not None and up.startswith(scope):
            n = self.node(up)
            path.insert(0, {"code": up, "name": n.name if n else up})
            up = parent_code(up, known)
        out: dict[str, Any] = {
            "now": now, "version": self.version, "node": node.to_json(), "path": path,
            "stale_after_s": self.settings.stale_after_s,
            "totals": self._totals(org, now),
            "children": [{**o.to_json(), **self._totals(o.code, now),
                          **self._branch_brief(o.code, now)} for o in children],
            "children_total": len(below), "offset": offset, "limit": limit,
        }
        summary = self.summaries.get(org)
        if summary is None and node.kind == "branch":
            summary = _summary(Tracked(org))  # never heard from: online is None
        if summary is not None:
            out["branch"] = self._branch_detail(summary, now)
        return out

    def _known(self) -> set[str]:
        if self._index[0] is not self.orgs:
            self._reindex()
        return self._index[1]

    def _children(self) -> dict[str, list[Org]]:
        if self._index[0] is not self.orgs:
            self._reindex()
        return self._index[2]

    def _reindex(self) -> None:
        """Each node's children, kept while the tree's list is the same object (a poll
        that changes figures but not the tree keeps it): a view no longer walks 10,000
        nodes to find a city's children."""
        children: dict[str, list[Org]] = {}
        for o in self.orgs:  # in code order
            if o.parent is not None and o.parent != o.code:
                children.setdefault(o.parent, []).append(o)
        self._index = (self.orgs, {o.code for o in self.orgs}, children)

    def _totals(self, code: str, now: float) -> dict[str, Any]:
        totals = self.totals.get(code) or _empty()
        result = finish(totals, now, self.settings.stale_after_s, self.stale_count(code, now))
        result.pop("hourly", None)
        return result

    def _branch_brief(self, code: str, now: float) -> dict[str, Any]:
        s = self.summaries.get(code)
        if s is None:
            return {"heard_at": None}
        return {"branch_online": s["online"], "online_since": s["online_since"],
                "heard_at": s["heard_at"], "age_s": _age(s, now),
                "is_stale": bool(s["online"] and _age(s, now) is not None
                                 and (_age(s, now) or 0) > self.settings.stale_after_s),
                "name_reported": s["name"]}

    def _branch_detail(self, s: dict[str, Any], now: float) -> dict[str, Any]:
        keep = ("code", "name", "online", "online_since", "heard_at", "live_at", "status_at",
                "health_at", "version", "config_version", "day", "kiosk_open", "queues",
                "windows", "devices", "link", "outbox", "vip_list", "clock_offset",
                "bad_events")
        detail = {k: s[k] for k in keep}
        detail["age_s"] = _age(s, now)
        detail["is_stale"] = bool(s["online"] and (detail["age_s"] or 0)
                                  > self.settings.stale_after_s)
        box_now = now + s["clock_offset"]
        for v in detail["vip_list"]:
            v["waited_s"] = round(box_now - v["issued_at"], 1)
        return detail

    def charts(self, org: str) -> dict[str, Any]:
        """Waiting over the day (15-minute slots), wait distribution, hourly arrivals."""
        now = self.clock.now()
        totals = self.totals.get(org) or _empty()
        series: list[int | None] = [None] * SLOTS
        for code, s in self.summaries.items():
            if not code.startswith(org):
                continue
            upto = int(((now + s["clock_offset"] + s["utc_offset"]) % 86400) // SLOT_S)
            last = None
            for slot, v in enumerate(s["series"]):
                if v is not None:
                    last = v
                if slot <= upto and last is not None:
                    series[slot] = (series[slot] or 0) + last
        return {"org": org, "now": now, "slot_s": SLOT_S, "waiting": series,
                "wait_hist": totals["wait_hist"], "hourly": totals["hourly"],
                "bands": [n for n, _ in WAIT_BANDS],
                "band_words": [list(words) for words in WAIT_BAND_WORDS]}

    async def stream(self, org: str, scope: str, allowed: Callable[[], Awaitable[bool]],
                     offset: int = 0, limit: int = CHILDREN_PAGE) -> AsyncIterator[str]:
        """Server-Sent Events: ``view`` now and after each change of the subtree (at most
        every ``push_s``, at least every ``ping_s``), ``charts`` after a change at most
        every :data:`CHARTS_EVERY_S`, and every minute (the line moves on with the clock).
        ``allowed()`` is asked every minute: a session that ended ends the stream."""
        s = self.settings
        yield f"retry: {int(max(1.0, s.push_s) * 1000)}\n\n"
        sent, charts_at, charted, checked = -1, 0.0, -1, time.monotonic()
        while True:
            still_cancelling()
            now = time.monotonic()
            if now - checked > 60.0:
                if not await allowed():
                    yield "event: ended\ndata: {}\n\n"
                    return
                checked = now
            yield _sse("view", self.view(org, scope, offset, limit), self.version)
            if charted < 0 or (now - charts_at >= CHARTS_EVERY_S
                               and self.changed_since(charted, org)) or now - charts_at > 60:
                yield _sse("charts", self.charts(org), self.version)
                charts_at, charted = now, self.version
            sent = self.version
            await self._wait_change(org, sent, s.ping_s)
            await asyncio.sleep(s.push_s)  # coalesce: at most one update per push_s

    async def _wait_change(self, org: str, version: int, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.changed_since(version, org):
            left = deadline - loop.time()
            if left <= 0:
                return
            await wait_at_most(self._tick, left)

    # --- MQTT aggregates -----------------------------------------------------------------

    async def _publish_aggregates(self) -> None:
        now = self.clock.now()
        if now - self._last_agg < self.settings.agg_every_s:
            return
        if not self.publishes():
            self._published.clear()  # another instance publishes: all of them if we take over
            return
        client = self.centre.mqtt_client()
        if client is None:
            return
        self._last_agg = now
        names = {o.code: o.name for o in self.orgs}
        due: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = []
        for code in sorted(names):
            msg = aggregate_message(code, names[code], self.totals.get(code) or _empty(),
                                    now, self.settings.stale_after_s,
                                    self.stale_count(code, now))
            key = tuple(v for k, v in msg.items() if k not in ("at", "longest_wait_s"))
            if self._published.get(code) != key:
                due.append((code, msg, key))
        for i in range(0, len(due), AGG_AT_ONCE):  # PUBACKs awaited together, not in turn
            chunk = due[i:i + AGG_AT_ONCE]
            done = await asyncio.gather(*(client.publish(proto.agg_topic(code),
                                                         proto.encode(msg), qos=1, retain=True)
                                          for code, msg, _ in chunk), return_exceptions=True)
            for (code, _, key), result in zip(chunk, done, strict=True):
                if isinstance(result, MqttError):  # reconnecting: publish next time
                    log.info("aggregates not published: %s", result)
                    return
                if isinstance(result, BaseException):
                    raise result
                self._published[code] = key


def aggregate_message(code: str, name: str, totals: dict[str, Any], now: float,
                      stale_after_s: float, stale: int) -> dict[str, Any]:
    """The retained ``qms/v1/agg/{org}`` payload (docs/dashboard.md)."""
    f = finish(totals, now, stale_after_s, stale)
    return {
        "v": proto.SCHEMA_VERSION, "org": code, "name": name, "at": round(now, 3),
        "branches": f["branches"], "online": f["online"], "offline": f["offline"],
        "never": f["never"],
        "stale": stale, "issued": f["issued"], "waiting": f["waiting"],
        "serving": f["serving"], "served": f["served"], "no_show": f["no_show"],
        "avg_wait_s": f["avg_wait_s"], "longest_wait_s": f["longest_wait_s"],
        "windows_open": f["windows_open"], "devices_not_ok": f["devices_not_ok"],
        "vips": f["vips"], "paused_queues": f["paused_queues"],
    }


def _age(s: dict[str, Any], now: float) -> float | None:
    return round(now - s["heard_at"], 1) if s["heard_at"] else None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _sse(event: str, data: Any, ident: int) -> str:
    return f"id: {ident}\nevent: {event}\ndata: {_dumps(data)}\n\n"


# --- routes ---------------------------------------------------------------------------------


router = APIRouter(tags=["live"])
"""The live dashboard: an org node's figures, its charts, and both as a stream."""


async def _ready(board: LiveBoard, org: str, who: Principal) -> None:
    who.check(org)
    await wait_at_most(board.loaded, 10)
    if board.node(org) is None:
        raise ApiError("not_found")


@router.get("/api/live")
async def live(org: OrgQuery, board: BoardDep, who: Viewer, offset: OffsetQuery = 0,
               limit: LimitQuery = CHILDREN_PAGE) -> dict[str, Any]:
    """The figures of an org node, a page of its children and (for a branch) its windows."""
    await _ready(board, org, who)
    return board.view(org, who.scope, offset, limit)


@router.get("/api/live/charts")
async def charts(org: OrgQuery, board: BoardDep, who: Viewer) -> dict[str, Any]:
    await _ready(board, org, who)
    return board.charts(org)


@router.get("/api/live/stream", response_class=StreamingResponse)
async def stream(org: OrgQuery, request: Request, board: BoardDep, gate: GateDep,
                 who: Viewer, offset: OffsetQuery = 0,
                 limit: LimitQuery = CHILDREN_PAGE) -> StreamingResponse:
    """Server-Sent Events: ``view`` and ``charts`` messages (the same JSON as the two
    routes above). A reconnecting browser simply gets the current view again."""
    await _ready(board, org, who)

    async def allowed() -> bool:
        again = await gate.principal(request)
        return again is not None and again.sees(org)

    return StreamingResponse(board.stream(org, who.scope, allowed, offset, limit),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache",
                                      "X-Accel-Buffering": "no"})
