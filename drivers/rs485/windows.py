"""The windows' devices driven by the box: keys become commands, events become screens.

- A key report goes to the box's window keys (``box.keys``, :class:`~controller.ports.
  WindowKeys`: the core turns it into an engine command); a refusal (or a key sequence
  that means nothing) beeps twice and shows the answer's words on the keypad for
  ``message_s``, then the keypad shows the window's number again. Nothing is ever raised.
- After every commit the box tells us its events (``box.listeners``); they go on our own
  queue and the windows they touch get their display and keypad screens from the box
  (``box.keys.screen``): the number being served, blank, or 暂停服务 (paused or logged
  out). A recall sends the number again (the display flashes it).
- Evaluators: after a finish (every finish with ``evaluator_prompt = "always"``, only the
  评价 key's with ``"asked"``) the evaluator prompts for up to the engine's
  ``rating_window_s``; a score goes to ``box.keys.rate``; the engine allows one rating
  per service (防重复评价); on ``ticket_rated`` it thanks (谢谢您对我们工作的支持,再见)
  for ``thanks_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from controller.ports import KeyPress

from .bus import Bus, KeyReport, Report, ScoreReport
from .devices import Device, Screen
from .settings import Rs485Settings

if TYPE_CHECKING:
    from controller.ports import Host

__all__ = ["Windows"]

log = logging.getLogger(__name__)

_EVERYWHERE = {"day_opened", "day_closed", "ticket_closed"}


class Windows:
    """Every window's keypad, display and evaluator on one bus."""

    def __init__(self, box: Host, bus: Bus, settings: Rs485Settings) -> None:
        self.box = box
        self.bus = bus
        self.settings = settings
        self.devices: dict[int, dict[str, Device]] = {}
        for d in bus.devices:
            self.devices.setdefault(d.window, {})[d.kind] = d
        self.stats: Counter[str] = Counter()
        self._events: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self._locks: dict[int, asyncio.Lock] = {}
        self._timers: dict[Device, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None

    def on_events(self, events: list[dict[str, Any]]) -> None:
        """The box's listener: called in the loop after each commit; never blocks."""
        self._events.put_nowait(events)

    def refresh(self) -> None:
        """Put every window's state on its display and keypad (at start, after a day roll)."""
        for window in self.devices:
            self._refresh(window)

    async def run(self) -> None:
        """Follow the box's events and the devices' reports until cancelled."""
        self.refresh()
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._follow(), name="rs485-events")
                while True:
                    report = await self.bus.reports.get()
                    tg.create_task(self._handle(report), name=f"rs485-{report.device.name}")
        finally:
            self._tg = None
            self._timers.clear()

    # --- events → screens ------------------------------------------------------------------

    async def _follow(self) -> None:
        while True:
            events = await self._events.get()
            for e in events:
                self._apply(e)

    def _apply(self, e: dict[str, Any]) -> None:
        kind = e["type"]
        if kind in _EVERYWHERE:
            self.refresh()
        window = e.get("window")
        if not isinstance(window, int) or window not in self.devices:
            return
        self._refresh(window, again=kind == "ticket_recalled")
        if kind == "ticket_finished" and (self.settings.evaluator_prompt == "always"
                                          or e.get("ask_rating")):
            self._prompt(window)
        elif kind == "ticket_rated":
            self._evaluator(window, Screen("thanks", self.settings.thanks_text),
                            self.settings.thanks_s)

    def _refresh(self, window: int, again: bool = False) -> None:
        shows = self.box.keys.screen(window)
        screen = Screen(shows.mode, shows.text)
        devices = self.devices[window]
        if "display" in devices:
            self.bus.show(devices["display"], screen, again=again)
        keypad = devices.get("keypad")
        if keypad is not None and keypad not in self._timers:
            self.bus.show(keypad, screen, again=again)

    def _prompt(self, window: int) -> None:
        rating_window = self.box.config.thresholds.rating_window_s
        self._evaluator(window, Screen("prompt", self.settings.prompt_text), rating_window)

    def _evaluator(self, window: int, screen: Screen, seconds: float) -> None:
        evaluator = self.devices[window].get("evaluator")
        if evaluator is not None:
            self.bus.show(evaluator, screen)
            self._later(evaluator, seconds, Screen("idle"))

    def _later(self, device: Device, seconds: float, then: Screen | None) -> None:
        """Show ``then`` on ``device`` after ``seconds`` (None: the window's own screen)."""
        old = self._timers.pop(device, None)
        if old is not None:
            old.cancel()
        if self._tg is not None:
            self._timers[device] = self._tg.create_task(self._after(device, seconds, then))

    async def _after(self, device: Device, seconds: float, then: Screen | None) -> None:
        await asyncio.sleep(seconds)
        if self._timers.get(device) is asyncio.current_task():
            del self._timers[device]
        if then is None:
            self._refresh(device.window)
        else:
            self.bus.show(device, then)

    # --- reports → commands ------------------------------------------------------------------

    async def _handle(self, report: Report) -> None:
        lock = self._locks.setdefault(report.device.window, asyncio.Lock())
        async with lock:  # one window's keys are carried out in the order pressed
            if isinstance(report, KeyReport):
                await self._key(report)
            else:
                await self._score(report)

    async def _key(self, report: KeyReport) -> None:
        keypad = report.device
        answer = await self.box.keys.press(KeyPress(keypad.window, report.key, report.digits,
                                                    keypad.name, report.seq))
        if answer.ok:
            self.stats["commands"] += 1
        else:
            self._tell(keypad, answer.message, answer.detail)

    async def _score(self, report: ScoreReport) -> None:
        evaluator = report.device
        answer = await self.box.keys.rate(evaluator.window, report.score)
        if answer.ok:
            self.stats["ratings"] += 1
            return
        if answer.code != "journal":
            self.stats[f"refused.{answer.code}"] += 1
        self.bus.show(evaluator, Screen("message", answer.message))
        self._later(evaluator, self.settings.thanks_s, Screen("idle"))

    def _tell(self, keypad: Device, message: str, why: str) -> None:
        """Beep twice and show ``message`` on the keypad for a while."""
        self.stats["refused"] += 1
        log.info("%s: refused: %s (%s)", keypad.name, message, why)
        self.bus.beep(keypad, 2)
        self.bus.show(keypad, Screen("message", message))
        self._later(keypad, self.settings.message_s, None)

