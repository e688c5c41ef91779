"""The push channel from the box to its screens: Server-Sent Events.

``GET /api/events/stream`` sends, in this order:

1. ``retry: 2000`` (how soon a browser reconnects by itself);
2. the events a reconnecting page missed, when it says where it was (``Last-Event-ID`` or
   ``?after=epoch:seq``) and the gap is small — each ``event: box`` with ``"replay": true``;
3. ``event: status`` — the whole :func:`~controller.web.live.live_view` snapshot;
4. then live: ``event: box`` for every committed event (``id: epoch:seq``), a fresh
   ``event: status`` after each burst, ``event: health`` when a device changes, and
   ``event: ping`` every ``web.ping_seconds`` (a named event, not a comment, so the page's
   watchdog can see it: silence for three pings means the link is dead), and
   ``event: notice`` for each alert the centre sends the branch (controller/notices.py),
   and, to kiosk pages only, ``event: outcome`` for what a card swipe or a ticket button
   on the box did (below).

Only committed events are sent — the hub is a :attr:`Box.listeners` callback, which the box
calls after the journal commit — and a status snapshot is computed only when every event
applied to the engine has been heard, so nothing is shown before it is durable.

Each client has a bounded queue. The listener never waits: a client whose queue is full
is dropped alone (its stream ends), and its browser reconnects, catches up by replay and
resyncs from the snapshot. A slow screen therefore never holds up the box or another
screen; one that reads nothing at all is cut by the server (``http.write_stall_s``).

Fanning out costs one write per screen, so it is done in ticks: the events committed
within ``coalesce_s`` (50 ms) and the status snapshot after them go to each screen as one
queue item and one write. A screen connecting or leaving is reported as device health at
most once per ``screens_report_s`` (a thousand screens reconnecting must not send each of
them a thousand messages). Bounds and figures: docs/screens.md, docs/performance.md.

``event: outcome`` is what became of a customer's card or button press at one of the box's
own devices (controller/kiosk.py :class:`~controller.kiosk.KioskRelay`): ``{"ok": true,
"code": "issued", "ticket": …}`` with the ticket as ``POST /api/tickets`` answers it
(``printed``, ``print_error``, ``reprint_token``) but without the customer's identity
(VIP name, stars; a card number is never in it), or ``{"ok": false, "error": {"code",
"message", "message_en"}}``. It goes to the streams of ``page=kiosk`` whose ``kiosk`` is
the device's (``/kiosk?id=door`` opens ``…&kiosk=door``). A device that names no kiosk is
shown on one kiosk page only, never on every one (a swipe must not replace the ticket a
customer is reading at another kiosk): the newest ``/kiosk`` page (the default id
``kiosk``), else the newest kiosk page of any id — newest, because a reloaded page's new
stream replaces its old one. It is not replayed: a page that was not connected missed it (the
box logs that nobody was shown it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from ..engine import Event
from ..health import Status
from ..kiosk import KioskOutcome, issued_view, kiosk_screens
from ..notices import notices, voice
from ..views import iso
from .live import live_view, offered_now

if TYPE_CHECKING:
    from ..box import Box

__all__ = ["Client", "EventHub", "HubDep", "hub_of", "public_event", "router"]

log = logging.getLogger(__name__)

Item = tuple[str, int, str]  # (kind, seq, SSE message)
Batch = tuple[Item, ...]

# never on a public screen: card numbers, VIP identities and their account manager, a
# pre-filled form's values (``form_filled`` goes out as "ticket n has a form",
# docs/integrations.md)
PRIVATE_FIELDS = frozenset({"card", "vip", "vip_name", "manager", "fields"})
KIOSK_ID = r"^[A-Za-z0-9_\-]{1,32}$"  # /kiosk?id=…
_AFTER = re.compile(r"^([0-9A-Za-z_\-]{1,64}):(\d{1,15})$")


def public_event(e: Event) -> dict[str, Any]:
    """An event as screens may see it: no card numbers, VIP identities or form values."""
    return {k: v for k, v in e.items() if k not in PRIVATE_FIELDS}


def sse(kind: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """One SSE message; ``data`` is one line of JSON."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@dataclass(eq=False)
class Client:
    """One connected screen. ``queue`` holds batches of ``(kind, seq, message)`` (one
    batch per tick or per notice); ``kiosk`` is the id of a kiosk page (``/kiosk?id=…``)."""

    page: str
    queue: asyncio.Queue[Batch]
    dropped: bool = False
    kiosk: str | None = None
    order: int = 0  # when it connected: the hub's count of subscriptions so far


@dataclass
class _Stats:
    connected: Counter[str] = field(default_factory=Counter)
    dropped: int = 0
    sent: int = 0


class EventHub:
    """Fans committed events out to every connected screen (see the module docstring).

    ``reprint_token`` (the staff gate's, controller/web/auth.py) gives a ticket shown on a
    kiosk page by ``event: outcome`` the token that page reprints it with.
    """

    def __init__(self, box: Box, *, queue_size: int = 256, ping_s: float = 15.0,
                 replay_limit: int = 1000, coalesce_s: float = 0.05,
                 hours_check_s: float = 5.0, screens_report_s: float = 1.0,
                 reprint_token: Callable[[str], str] | None = None) -> None:
        self.box = box
        self.reprint_token = reprint_token
        self.queue_size, self.ping_s = queue_size, ping_s
        self.replay_limit, self.coalesce_s = replay_limit, coalesce_s
        self.hours_check_s = hours_check_s
        self.screens_report_s = screens_report_s
        self._screens_timer: asyncio.TimerHandle | None = None
        self._screens_at: float | None = None  # loop time of the last screens report
        self._offered: tuple[bool, ...] | None = None
        self._hours_timer: asyncio.TimerHandle | None = None
        self.clients: set[Client] = set()
        self._subscribed = 0
        self.stats = _Stats()
        self.heard = box.last_seq  # the last seq the listener has been told of
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None
        self._pending: list[Item] = []  # committed events of this tick, not yet fanned out
        self._waiters: list[asyncio.Future[None]] = []

    def attach(self) -> EventHub:
        self.box.listeners.append(self.on_events)
        self.box.health.listeners.append(self.on_health)
        notices(self.box).listeners.append(self.on_notice)
        kiosk_screens(self.box).listeners.append(self.on_outcome)
        voice(self.box).listeners.append(self.on_voice)
        return self

    # --- clients -------------------------------------------------------------------------

    def subscribe(self, page: str, kiosk: str | None = None) -> Client:
        if self._hours_timer is None:
            self._watch_hours()
        self._subscribed += 1
        client = Client(page, asyncio.Queue(self.queue_size), kiosk=kiosk,
                        order=self._subscribed)
        self.clients.add(client)
        self.stats.connected[page] += 1
        self._report()
        return client

    def unsubscribe(self, client: Client) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self.stats.connected[client.page] -= 1
            self._report()

    def _report(self) -> None:
        """Say how many screens are connected (device health, which every screen hears) —
        at once if the last report is older than ``screens_report_s``, else once at the end
        of that time: a thousand screens reconnecting must not send a million messages."""
        if self._screens_timer is not None:
            return  # a report is due anyway and will count this one
        loop = asyncio.get_running_loop()
        wait = 0.0 if self._screens_at is None else \
            self._screens_at + self.screens_report_s - loop.time()
        if wait > 0:
            self._screens_timer = loop.call_later(wait, self._report_screens)
        else:
            self._report_screens()

    def _report_screens(self) -> None:
        self._screens_timer = None
        self._screens_at = asyncio.get_running_loop().time()
        detail = ", ".join(f"{p} {n}" for p, n in sorted(self.stats.connected.items()) if n)
        self.box.health.report("screens", "ok", detail or "none connected")

    def _broadcast(self, batch: Batch, to: Callable[[Client], bool] | None = None) -> int:
        """Queue ``batch`` for every client (or those ``to`` picks); how many got it."""
        sent = 0
        for client in list(self.clients):
            if client.dropped or (to is not None and not to(client)):
                continue
            try:
                client.queue.put_nowait(batch)
            except asyncio.QueueFull:
                client.dropped = True  # it reconnects and catches up by replay
                self.stats.dropped += 1
                log.warning("screen %s too slow: dropped (it will reconnect)", client.page)
                continue
            sent += 1
        return sent

    # --- listeners (called in the event loop; never block) ---------------------------------

    def on_events(self, events: list[Event]) -> None:
        # With no screen connected nothing is built: a screen that connects gets the replay
        # and a snapshot (the status of a day of 10,000 tickets, every tick, cost the HTTP
        # bench a tenth of its CPU for nobody).
        listened = bool(self.clients)
        for e in events:
            seq = int(e.get("seq", 0))
            self.heard = max(self.heard, seq)
            if listened:
                self._pending.append(("box", seq, self._box_message(e)))
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)
        self._dirty = True
        if self._timer is None and listened:
            self._timer = asyncio.get_running_loop().call_later(self.coalesce_s, self._tick)

    def _tick(self) -> None:
        """The tick's events and then the status after them, as one batch per screen."""
        self._timer = None
        batch, self._pending = self._pending, []
        if not self.clients:
            return  # the last screen left meanwhile
        status = self._status()
        if status is not None:
            batch.append(status)
        if batch:
            self._broadcast(tuple(batch))

    def on_health(self, status: Status) -> None:
        self._broadcast((("health", 0, sse("health", asdict(status))),))

    def on_notice(self, notice: dict[str, Any]) -> None:
        """The centre's alert (controller/notices.py): ``event: notice`` to every page."""
        self._broadcast((("notice", 0, sse("notice", notice)),))

    def on_voice(self, phase: str, said: dict[str, Any]) -> None:
        """The box's voice starts or ends a call (``event: voice``): the hall display shows
        a call when it is spoken, not before (docs/screens.md). It follows the call's own
        event: while events wait for the tick, it waits with them (the voice starts on the
        commit, up to ``coalesce_s`` before the tick sends the call it speaks)."""
        item = ("voice", 0, sse("voice", {"phase": phase, **said}))
        if self._timer is not None:
            self._pending.append(item)
        else:
            self._broadcast((item,))

    def on_outcome(self, outcome: KioskOutcome) -> None:
        """A card swipe's or ticket button's outcome: ``event: outcome`` to its kiosk page."""
        data = self._outcome_view(outcome)
        if data is None:
            return
        wanted = outcome.kiosk
        pages = self._kiosk_pages(wanted)
        if not self._broadcast((("outcome", 0, sse("outcome", data)),), pages.__contains__):
            log.warning("no kiosk page %s is open: %s not shown on a screen",
                        wanted or "at all", data.get("ticket", {}).get("number") or outcome.code)

    def _kiosk_pages(self, wanted: str | None) -> list[Client]:
        """The kiosk pages a device at kiosk ``wanted`` is shown on. A device with no kiosk
        of its own goes to one page: the newest ``/kiosk`` page (id ``kiosk``), else the
        newest kiosk page of any id (a reloaded page's new stream replaces the old one)."""
        pages = [c for c in self.clients if c.page == "kiosk" and not c.dropped]
        if wanted is not None:
            return [c for c in pages if c.kiosk == wanted]
        default = [c for c in pages if c.kiosk in (None, "kiosk")]
        newest = max(default or pages, key=lambda c: c.order, default=None)
        return [] if newest is None else [newest]

    def _outcome_view(self, outcome: KioskOutcome) -> dict[str, Any] | None:
        if not outcome.ok:
            return {"ok": False, "error": {"code": outcome.code, "message": outcome.message,
                                           "message_en": outcome.message_en}}
        if outcome.ticket is None:
            return None  # nothing to show (a redeemer that issued no ticket)
        view = issued_view(self.box, outcome.ticket, outcome.printed)
        ticket = {k: v for k, v in view.items() if k not in PRIVATE_FIELDS and k != "stars"}
        if self.reprint_token is not None:
            ticket["reprint_token"] = self.reprint_token(view["id"])
        return {"ok": True, "code": outcome.code, "ticket": ticket}

    def _watch_hours(self) -> None:
        """Opening and closing time change what the kiosk offers with no event at all (at
        08:30 nobody has done anything yet): look every few seconds, by the box's clock, and
        push a status when a business opened or closed."""
        cfg, now = self.box.config, self.box.clock.now()
        offered = tuple(offered_now(cfg, q, now) for q in cfg.queues)
        if self._offered is not None and offered != self._offered:
            self._dirty = True
            status = self._status()
            if status is not None:
                self._broadcast((status,))
        self._offered = offered
        self._hours_timer = asyncio.get_running_loop().call_later(
            self.hours_check_s, self._watch_hours)

    def close(self) -> None:
        """Stop looking at the clock (the box is stopping)."""
        for timer in (self._hours_timer, self._screens_timer, self._timer):
            if timer is not None:
                timer.cancel()

    def _status(self) -> Item | None:
        """A fresh status snapshot if something changed and all of it is heard."""
        if not self._dirty or not self._consistent():
            return None  # a commit is in flight: its listener call brings us back
        if self.box.journal is None:
            return None  # the box is stopping: its journal closed before this tick
        self._dirty = False
        seq = self.heard
        return ("status", seq, sse("status", live_view(self.box, seq)))

    def _consistent(self) -> bool:
        """True when every event the engine has applied is committed and heard."""
        return self.heard >= self.box.last_seq

    async def settled(self) -> None:
        """Wait until the engine's state holds nothing that is not yet durable and heard."""
        while not self._consistent():
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            # A failed commit rolls last_seq back without a listener call: look again soon.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await fut

    async def snapshot(self) -> dict[str, Any]:
        """The live view, once it holds nothing that is not yet durable."""
        await self.settled()
        return live_view(self.box, self.heard)

    def _box_message(self, e: Event, replay: bool = False) -> str:
        data = public_event(e)
        if replay:
            data["replay"] = True
        return sse("box", data, f"{self.box.epoch}:{e.get('seq', 0)}")

    # --- one stream ----------------------------------------------------------------------

    async def stream(self, page: str, after: str | None, kiosk: str | None = None
                     ) -> AsyncIterator[str]:
        """The messages for one screen (see the module docstring); ends if it is dropped.
        ``kiosk``: the id of a kiosk page, for the outcomes of its devices."""
        client = self.subscribe(page, kiosk)
        try:
            yield "retry: 2000\n\n"
            last_event = 0
            async for message, seq in self._replay(after):
                last_event = seq
                yield message
            snap = await self.snapshot()
            last_status = snap["seq"]
            last_event = max(last_event, last_status)
            yield sse("status", snap)
            while not client.dropped:
                try:
                    async with asyncio.timeout(self.ping_s):  # (no task per wait, unlike wait_for)
                        batches = [await client.queue.get()]
                except TimeoutError:
                    yield sse("ping", {"seq": self.heard, "now": iso(self.box.clock.now(),
                                                                     self.box.config)})
                    continue
                while not client.queue.empty():  # all that is ready goes in one write
                    batches.append(client.queue.get_nowait())
                out = []
                for kind, seq, message in (item for batch in batches for item in batch):
                    if kind == "box" and seq <= last_event:
                        continue  # already sent by the replay or covered by the snapshot
                    if kind == "status" and seq < last_status:
                        continue
                    last_event = max(last_event, seq) if kind == "box" else last_event
                    last_status = max(last_status, seq) if kind == "status" else last_status
                    out.append(message)
                if out:
                    self.stats.sent += len(out)
                    yield "".join(out)
        finally:
            self.unsubscribe(client)

    async def _replay(self, after: str | None) -> AsyncIterator[tuple[str, int]]:
        m = _AFTER.match(after or "")
        if m is None or m.group(1) != self.box.epoch:
            return  # a new journal, or a first visit: the snapshot is enough
        since, through = int(m.group(2)), self.heard
        if not 0 < through - since <= self.replay_limit:
            return  # nothing missed, or so much that the snapshot is the better catch-up
        for rec in await self.box.read_events(since, self.replay_limit, through):
            yield self._box_message(rec.event, replay=True), rec.seq


async def hub_of(request: Request) -> EventHub:
    """The app's event hub, as a route's dependency (:data:`HubDep`)."""
    hub: EventHub = request.app.state.screens["hub"]
    return hub


HubDep = Annotated[EventHub, Depends(hub_of)]

router = APIRouter(tags=["screens"])


@router.get("/api/events/stream", response_class=StreamingResponse)
async def event_stream(
    request: Request,
    hub: HubDep,
    page: str = Query("other", pattern=r"^[a-z]{1,16}$", description="kiosk, hall, …"),
    after: str | None = Query(None, max_length=90, description="epoch:seq seen last"),
    kiosk: str | None = Query(None, pattern=KIOSK_ID, description="a kiosk page's id"),
) -> StreamingResponse:
    """Server-Sent Events of the committed events (see controller/web/events.py)."""
    since = request.headers.get("last-event-id") or after
    return StreamingResponse(
        hub.stream(page, since, kiosk), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/api/live")
async def live(hub: HubDep) -> dict[str, Any]:
    """The snapshot the screens draw from: /api/status plus calls, hours and devices."""
    return await hub.snapshot()
