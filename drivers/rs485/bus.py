"""The bus master: one task owns the line and runs one exchange at a time.

Both device profiles sit behind the same small interface (:class:`Bus`)::

    bus.show(device, screen)       what a display, keypad or evaluator should show
    bus.beep(keypad, count)        a beep (a refused key)
    await bus.reports.get()        KeyReport / ScoreReport as devices send them
    await bus.run(link)            the line's one loop, until cancelled

What goes on the line next (highest first)::

    1. acknowledgements a device is waiting for (68-frame echoes); one display screen may
       go ahead of a single waiting acknowledgement (the number the customer waits for, a
       frame earlier), never ahead of a crowd of them (the keypads would resend)
    2. display screens that differ from what the display last acknowledged
    3. beeps, keypad and evaluator screens, Modbus report acknowledgements; while these
       wait, every other exchange is still a poll (a burst of keys must not stall the round)
    4. a heartbeat poll that is due (a quiet device every ``heartbeat_s``, offline ones too),
       at most one per round of regular polls so that heartbeats never starve the keypads
    5. the round of regular polls (Modbus keypads, and evaluators while they ask for a score)

Every request waits for the line to be quiet (3.5 character times), then for its answer
for the wire time of request and answer plus the device's ``answer_ms`` (counted again
from the end of any other device's frame that held the line meanwhile, up to 4 times).
A device that misses ``offline_after`` requests in a row is reported offline and then
only probed every
``heartbeat_s``, so a dead device costs the others almost nothing; it is reported back
online (and its screen sent again) when it answers. An answer that comes garbled is a
line fault, not a dead device: it is retried and counted, and ``offline_after`` of them in
a row raise a ``warning``. Garbage, broken frames and bad checksums are counted by the
decoder and skipped; an unfinished frame is given up once the line has been quiet for a
while, so nothing can wedge the bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from common.tasks import wait_at_most

from .devices import Device, Kind, Screen
from .errors import BusError
from .settings import Rs485Settings

if TYPE_CHECKING:
    from .link import SerialLink

__all__ = ["Bus", "KeyReport", "Profile", "Report", "ScoreReport"]

log = logging.getLogger(__name__)

HealthReport = Callable[[str, Any, str], None]

COUNTERS = (  # besides the decoder's frames, checksum_errors, garbage_bytes (, bad_end)
    "timeouts", "retries", "garbled_replies", "duplicates", "unexpected", "unknown_device",
    "bad_reports", "exceptions", "wrong_type", "polls", "rounds",
)


@dataclass(frozen=True, slots=True)
class KeyReport:
    """A keypad's digits and key (see protocols/rs485/keys.py); ``at`` is loop time.
    ``seq``: the keypad's own number for this press (Modbus EVENT_SEQ; None on 68-frame,
    whose frames carry none)."""

    device: Device
    key: int
    digits: bytes
    at: float
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class ScoreReport:
    """An evaluator's score (1–9); ``at`` is loop time."""

    device: Device
    score: int
    at: float


Report = KeyReport | ScoreReport


class Profile(Protocol):
    """What differs between the 68-frame and the Modbus profile."""

    name: str

    def decode(self, buf: bytearray, idle: bool) -> tuple[int, Any]: ...

    def counters(self) -> dict[str, int]: ...

    def received(self, bus: Bus, message: Any, at: float) -> None:
        """A message nobody was waiting for (a 68-frame key press, a stray reply)."""

    def polled(self, device: Device) -> bool:
        """Whether the device is polled every round (it cannot speak unasked)."""

    async def poll(self, bus: Bus, device: Device) -> None: ...

    async def check(self, bus: Bus, device: Device) -> None:
        """The heartbeat poll."""

    async def show(self, bus: Bus, device: Device, screen: Screen) -> bool: ...

    async def beep(self, bus: Bus, device: Device, count: int) -> bool: ...

    async def acknowledge(self, bus: Bus, device: Device) -> None: ...


@dataclass(slots=True)
class _Pending:
    device: Device
    match: Callable[[Any], bool]
    reply: asyncio.Future[Any]


class Bus:
    """One RS485 line and its devices. ``health(name, state, detail)`` hears of changes."""

    def __init__(self, settings: Rs485Settings, devices: Iterable[Device], profile: Profile,
                 *, health: HealthReport) -> None:
        self.settings = settings
        self.devices = list(devices)
        self.profile = profile
        self.health = health
        self.reports: asyncio.Queue[Report] = asyncio.Queue()
        self.stats: Counter[str] = Counter()
        self.byte_time = settings.byte_time
        # 3.5 characters of silence between frames (Modbus fixes 1.75 ms above 19200 baud).
        self.gap = 3.5 * self.byte_time if settings.baudrate <= 19200 else 0.00175
        self.idle_after = max(30 * self.byte_time, 0.05)  # USB adapters deliver in bursts
        self._index = {(d.kind, d.wire): d for d in self.devices}
        # Screens go out displays first: the customer's display is what the teller waits on.
        order = {"display": 0, "keypad": 1, "evaluator": 2}
        self._screens_first = sorted(self.devices, key=lambda d: order[d.kind])
        self._link: SerialLink | None = None
        self._rx = bytearray()
        self._swallow = 0
        self._pending: _Pending | None = None
        self._acks: list[Device] = []
        self._wake = asyncio.Event()
        self._rx_seen = asyncio.Event()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._last_rx = 0.0
        self._tx_end = 0.0
        self._round: list[Device] = []  # what this round of polls has still to poll
        self._turn = 0  # which waiting evaluators the next round polls
        self._heartbeat_slot = True
        self._settle_until = 0.0
        self._jumped = False  # a display screen went ahead of the acknowledgements
        self._poll_owed = False  # other work ran: the next exchange is a poll

    # --- the interface ------------------------------------------------------------------

    def show(self, device: Device, screen: Screen, *, again: bool = False) -> None:
        """Make ``device`` show ``screen`` (the latest wins; resent until acknowledged).

        ``again`` sends it even if the device already shows it (a recall flashes it).
        """
        if screen == device.screen and not again:
            return
        device.screen = screen
        if again:
            device.shown = None
        self._wake.set()

    def beep(self, device: Device, count: int = 1) -> None:
        device.beeps = min(device.beeps + count, 9)
        self._wake.set()

    def device(self, kind: Kind, wire: int) -> Device | None:
        return self._index.get((kind, wire))

    def counters(self) -> dict[str, int]:
        """Decoder and bus statistics: frames, checksum errors, garbage, timeouts, …"""
        return {**self.profile.counters(), **{k: self.stats[k] for k in COUNTERS}}

    async def run(self, link: SerialLink) -> None:
        """Own ``link`` until cancelled; raises PortError if the port fails."""
        self._link = link
        loop = asyncio.get_running_loop()
        now = loop.time()
        for i, d in enumerate(self.devices):  # first checks spread over the first second
            d.next_check = now + i / max(len(self.devices), 1)
        assert link.broken is not None
        broken = link.broken
        serve = asyncio.create_task(self._serve(), name="rs485-line")
        try:
            await asyncio.wait([broken, serve], return_when=asyncio.FIRST_COMPLETED)
        finally:
            serve.cancel()
            await asyncio.gather(serve, return_exceptions=True)
            if self._flush_timer is not None:
                self._flush_timer.cancel()
            self._link = None
        for done in (broken, serve):
            if done.done() and not done.cancelled() and done.exception() is not None:
                raise done.exception()  # type: ignore[misc]
        raise BusError("the line loop stopped")  # never quietly: the supervisor restarts us

    # --- receiving ----------------------------------------------------------------------

    def received(self, data: bytes, at: float) -> None:
        """Bytes from the port (the link calls this)."""
        if self._swallow:  # our own transmission heard back (local echo adapters)
            dropped = min(self._swallow, len(data))
            self._swallow -= dropped
            data = data[dropped:]
            if not data:
                return
        self._rx += data
        self._last_rx = at
        self._rx_seen.set()
        self._decode(idle=False, at=at)
        if self._rx:
            loop = asyncio.get_running_loop()
            if self._flush_timer is not None:
                self._flush_timer.cancel()
            self._flush_timer = loop.call_at(at + self.idle_after, self._quiet)

    def _quiet(self) -> None:
        """Give up on an unfinished frame once the line has been quiet for a while."""
        self._flush_timer = None
        now = asyncio.get_running_loop().time()
        if now - self._last_rx >= self.idle_after - 1e-3:
            self._decode(idle=True, at=now)

    def _decode(self, idle: bool, at: float) -> None:
        while self._rx:
            consumed, message = self.profile.decode(self._rx, idle)
            del self._rx[:consumed]
            if message is None:
                return
            pending = self._pending
            if pending is not None and not pending.reply.done() and pending.match(message):
                pending.reply.set_result(message)
            else:
                self.profile.received(self, message, at)

    # --- sending ------------------------------------------------------------------------

    async def exchange(self, device: Device, request: bytes, reply_len: int,
                       match: Callable[[Any], bool], tries: int = 1) -> Any:
        """Send ``request`` to ``device`` until a matching reply comes; None if none did."""
        loop = asyncio.get_running_loop()
        for attempt in range(tries):
            if attempt:
                self.stats["retries"] += 1
            await self._clear_to_send()
            errors = self._errors()
            reply: asyncio.Future[Any] = loop.create_future()
            self._pending = _Pending(device, match, reply)
            try:
                await self.send(request)
                await self._await_reply(reply, device, len(request), reply_len)
            finally:
                self._pending = None
            if reply.done():
                self.heard(device)
                return reply.result()
            reply.cancel()
            self.stats["timeouts"] += 1
            self._quiet()  # whatever half-frame is left will not be completed
            if self._errors() > errors:  # something answered, garbled: the line, not the device
                self._garbled(device)
            elif not self._missed(device):
                return None
        return None

    async def _await_reply(self, reply: asyncio.Future[Any], device: Device, sent: int,
                           reply_len: int) -> None:
        """Wait for the reply: its wire time and the device's answer time, counted again
        from the end of any other device's frame that held the line meanwhile (capped)."""
        loop = asyncio.get_running_loop()
        answer = reply_len * self.byte_time + self.gap + device.answer_s
        start = loop.time()
        deadline = start + sent * self.byte_time + answer
        cap = start + 4 * (deadline - start)
        while not reply.done():
            # (asyncio.wait, not wait_for: wait_for would cancel the reply on a timeout)
            await asyncio.wait([reply], timeout=max(deadline - loop.time(), 0.0))
            if reply.done():
                return
            await asyncio.sleep(0)  # the loop may have been busy: read what is waiting
            busy_until = min(self._last_rx + answer, cap) if self._last_rx > start else 0.0
            if reply.done() or busy_until <= deadline:
                return
            deadline = busy_until

    def _errors(self) -> int:
        counters = self.profile.counters()
        return sum(counters.get(k, 0) for k in ("checksum_errors", "garbage_bytes", "bad_end"))

    async def send(self, data: bytes) -> None:
        """Put ``data`` on the line now (after its quiet time); nothing is awaited back."""
        assert self._link is not None
        await self._clear_to_send()
        await self._link.write(data)
        now = asyncio.get_running_loop().time()
        self._tx_end = max(now, self._tx_end) + len(data) * self.byte_time
        if self.settings.local_echo:
            self._swallow += len(data)

    async def _clear_to_send(self) -> None:
        """Wait for the line to be quiet: our last frame out, 3.5 characters of silence,
        and no device part-way through a frame (re-checked as bytes come in)."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            earliest = max(self._tx_end, self._last_rx) + self.gap
            if self._rx:  # a device is part-way through a frame: let it finish
                earliest = max(earliest, self._last_rx + self.idle_after)
            if now >= earliest:
                return
            self._rx_seen.clear()
            await wait_at_most(self._rx_seen, earliest - now)

    def queue_ack(self, device: Device) -> None:
        """An acknowledgement ``device`` is waiting for: it goes before anything else."""
        self._acks.append(device)
        self._wake.set()

    # --- device state ---------------------------------------------------------------------

    def heard(self, device: Device) -> None:
        """``device`` answered (or spoke): it is online."""
        loop = asyncio.get_running_loop()
        if device.garbled >= self.settings.offline_after and device.online:
            self.health(device.name, "ok", "answering clearly again")
        device.misses = device.garbled = 0
        device.answered += 1
        device.next_check = loop.time() + self.settings.heartbeat_s
        if device.online is not True:
            again = device.online is False
            device.online = True
            self.health(device.name, "ok", "answering again" if again else "answering")
            if again:
                log.info("%s answers again", device.name)

    def _garbled(self, device: Device) -> None:
        """An answer came but was broken: count it; warn when it keeps happening."""
        self.stats["garbled_replies"] += 1
        device.garbled += 1
        if device.garbled == self.settings.offline_after:
            self.health(device.name, "warning",
                        "garbled replies: check the wiring, termination and baud rate")

    def _missed(self, device: Device) -> bool:
        """Count a miss; False once ``device`` is offline (no point trying again now)."""
        device.misses += 1
        device.timeouts += 1
        device.next_check = asyncio.get_running_loop().time() + self.settings.heartbeat_s
        if device.misses < self.settings.offline_after:
            return True
        if device.online is not False:
            device.online = False
            device.shown = None  # it may have lost power: send its screen when it is back
            device.beeps = 0
            # The first probe comes soon: a busy line or a slow moment is not a dead device.
            device.next_check = asyncio.get_running_loop().time() + min(
                1.0, self.settings.heartbeat_s)
            self.health(device.name, "offline", f"no answer to {device.misses} requests")
            log.warning("%s is offline (no answer to %d requests)", device.name, device.misses)
        return False

    # --- the schedule ---------------------------------------------------------------------

    def report(self, report: Report) -> None:
        """A device reported a key or score (the profiles call this)."""
        self.reports.put_nowait(report)
        # Hold the line a moment: the box is about to change a display, and that frame
        # should not wait behind a poll or an acknowledgement already on its way.
        self._settle_until = asyncio.get_running_loop().time() + self.settings.settle_ms / 1000

    async def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < self._settle_until and not any(
                d.dirty for d in self._screens_first if d.kind == "display"):
            self._wake.clear()
            await wait_at_most(self._wake, self._settle_until - loop.time())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._settle()
            job, wake_at = self._next_job(loop.time())
            if job is not None:
                await job
                continue
            self._wake.clear()
            await wait_at_most(self._wake, max(wake_at - loop.time(), 0.0))

    def _reachable(self, d: Device, now: float) -> bool:
        return d.online is not False or d.next_check <= now

    def _next_job(self, now: float) -> tuple[Any, float]:
        """The next exchange to run (a coroutine), or None and when to look again."""
        display = next((d for d in self._screens_first if d.kind == "display" and d.dirty
                        and self._reachable(d, now)), None)
        if display is not None and len(self._acks) == 1 and not self._jumped:
            self._jumped = True  # a display may go ahead of one waiting acknowledgement
            return self._show(display), now
        if self._acks:
            self._jumped = False
            return self.profile.acknowledge(self, self._acks.pop(0)), now
        if display is not None:
            return self._show(display), now
        if self._poll_owed:  # while other work waits, every other exchange is still a poll
            self._poll_owed = False
            polled = self._next_polled()
            if polled is not None:
                self.stats["polls"] += 1
                return self.profile.poll(self, polled), now
        other = self._other_work(now)
        if other is not None:
            self._poll_owed = True
            return other, now
        due = next((d for d in self.devices
                    if d.next_check <= now and not self._in_rounds(d)), None)
        if due is not None and (self._heartbeat_slot or not self._polling()):
            self._heartbeat_slot = False  # one heartbeat a round: they never starve keypads
            return self.profile.check(self, due), now
        polled = self._next_polled()
        if polled is not None:
            self.stats["polls"] += 1
            return self.profile.poll(self, polled), now
        return None, min((d.next_check for d in self.devices), default=now + 1.0)

    def _other_work(self, now: float) -> Any:
        """Beeps, keypad and evaluator screens, Modbus report acknowledgements."""
        for d in self.devices:
            if d.beeps and self._reachable(d, now):
                count, d.beeps = d.beeps, 0
                return self.profile.beep(self, d, count)
        for d in self._screens_first:
            if d.dirty and self._reachable(d, now):
                return self._show(d)
        for d in self.devices:
            if d.pending_ack and d.online is not False:
                return self.profile.acknowledge(self, d)
        return None

    def _in_rounds(self, d: Device) -> bool:
        return bool(d.online) and self.profile.polled(d)

    def _polling(self) -> bool:
        return any(self._in_rounds(d) for d in self.devices)

    def _next_polled(self) -> Device | None:
        """The next device of this round of polls; a new round starts when one ends.

        A round is every keypad, plus ``evaluators_per_round`` of the evaluators waiting for
        a score, in turn (a score can wait a round or two; a teller's key should not).
        """
        while True:
            while self._round:
                d = self._round.pop(0)
                if self._in_rounds(d):
                    return d
            keypads = [d for d in self.devices if self._in_rounds(d) and d.kind != "evaluator"]
            waiting = [d for d in self.devices if self._in_rounds(d) and d.kind == "evaluator"]
            if not keypads and not waiting:
                return None
            if waiting:
                start = self._turn % len(waiting)
                waiting = (waiting[start:] + waiting[:start])[: self.settings.evaluators_per_round]
                self._turn += len(waiting)
            self._round = keypads + waiting
            self._heartbeat_slot = True
            self.stats["rounds"] += 1

    async def _show(self, device: Device) -> None:
        screen = device.screen
        if await self.profile.show(self, device, screen):
            device.shown = screen
