"""Lobby devices: how long each takes, on the real code paths. Prints figures (ms).

    python bench/bench_lobby.py [--n 200]

* card: a swipe line → ticket issued and durable (``CardReader.handle``: parse, checks,
  ``issue_and_print`` with the journal's fsync; no printer attached); parsing alone.
* gpio: a mock-pin press → ticket durable (gpiozero callback, ``call_soon_threadsafe``,
  issue); measured from ``drive_low()`` to the ``ticket_issued`` listener.
* voice: clip pack load (espeak-ng pack, 3 languages), stitching one announcement.
* hall display: one frame rendered (1920×1080 quiet/busy, 256×128), PNG write,
  RGB565 framebuffer conversion; call → frame written through the component.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks import Checks, journal_numbers, machine_line
from common.clock import ManualClock
from controller.box import Box
from controller.config import Config, load_config
from controller.engine import commands as c
from controller.voice import ClipPack
from drivers.audio import make_clips
from drivers.card_reader import CardReader
from drivers.gpio import GpioConfig, GpioPanel
from drivers.hall_display import (
    HallCall,
    HallDisplay,
    HallDisplayConfig,
    HallView,
    PngOutput,
    WindowView,
    find_cjk_font,
    framebuffer_bytes,
    render,
)
from protocols.cards import format_track2, luhn_check_digit, parse_swipe
from protocols.voice import announcement_clips
from sim.card_swipes import SimSwipes

ROOT = Path(__file__).resolve().parent.parent
START = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def row(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name:<44} n={len(ms):<5} p50 {statistics.median(ms):8.3f}  p99 {p99:8.3f}  "
          f"max {ms[-1]:8.3f} ms")


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def config() -> Config:
    return load_config(ROOT / "examples" / "branch.toml",
                       ["thresholds.branch_waiting_cap=0", "thresholds.lobby_alert_waiting=0",
                        "queues.0.digits=4"])


CHECKS = Checks("bench_lobby")


async def in_box(body: Callable[[Box], Coroutine[Any, Any, None]], label: str,
                 tickets: int) -> None:
    """Run ``body`` against a fresh box; then check that it issued ``tickets`` tickets,
    none twice, every one in the journal on disk."""
    with tempfile.TemporaryDirectory() as tmp:
        issued: list[str] = []
        async with Box(config(), Path(tmp), ManualClock(START)) as box:
            box.listeners.append(lambda events: issued.extend(
                str(e["number"]) for e in events if e["type"] == "ticket_issued"))
            await body(box)
        durable = journal_numbers(tmp)
    CHECKS.unique(issued, f"{label} ticket numbers")
    CHECKS.drained(tickets, len(issued), f"{label} tickets issued")
    CHECKS.drained(len(issued), len(durable), f"{label} tickets in the journal")


async def bench_cards(n: int) -> None:
    pans = []
    for i in range(n):
        partial = f"62170000{i:010d}"
        pans.append(format_track2(partial + luhn_check_digit(partial), "2812", "101"))
    row("card: parse_swipe (track 2)", timed(lambda: parse_swipe(pans[0]), n))

    async def body(box: Box) -> None:
        reader = CardReader(source=SimSwipes())
        samples, failed = [], 0
        for line in pans:
            t = time.perf_counter()
            out = await reader.handle(box, line)
            samples.append(time.perf_counter() - t)
            failed += not out.ok
        row("card: swipe -> ticket durable", samples)
        CHECKS.failed(failed, "card swipes")

    await in_box(body, "card", n)


async def bench_gpio(n: int) -> None:
    from gpiozero.pins.mock import MockFactory

    async def body(box: Box) -> None:
        factory = MockFactory()
        panel = GpioPanel(GpioConfig.model_validate({"buttons": [{"pin": 17, "queue": "A"}],
                                                     "repeat_guard_ms": 0}),
                          pin_factory=factory)
        task = asyncio.create_task(panel.run(box))
        await panel.opened.wait()
        pin = factory.pin(17)
        samples = []
        for _ in range(n):
            done = asyncio.get_running_loop().create_future()

            def heard(events: list[dict[str, Any]], done: asyncio.Future[None] = done) -> None:
                if not done.done() and any(e["type"] == "ticket_issued" for e in events):
                    done.set_result(None)

            box.listeners.append(heard)
            t = time.perf_counter()
            pin.drive_low()
            pin.drive_high()
            try:
                await asyncio.wait_for(done, 10)
            except TimeoutError:
                missed[0] += 1
            samples.append(time.perf_counter() - t)
            box.listeners.remove(heard)
        row("gpio: button press -> ticket durable", samples)
        CHECKS.failed(missed[0], "button presses")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    missed = [0]
    await in_box(body, "gpio", n)


async def bench_voice(n: int) -> None:
    if shutil.which("espeak-ng") is None:
        print("voice: espeak-ng not installed, skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        count = await make_clips(Path(tmp), ["zh", "yue", "en"])
        print(f"{'voice: make-clips (3 languages, espeak-ng)':<44} {count} clips in "
              f"{time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        pack = ClipPack.load(Path(tmp), ["zh", "yue", "en"], volume=90)
        print(f"{'voice: load pack at volume 90':<44} {(time.perf_counter() - t) * 1000:.1f} ms")
        for langs in (["zh", "en"], ["zh", "yue", "en"]):
            seq = announcement_clips(langs, "A023", 3, chime=True)
            wav = pack.stitch(seq, 40, 350)
            row(f"voice: stitch {'+'.join(langs)} ({pack.duration(wav):.1f} s of sound)",
                timed(lambda seq=seq: pack.stitch(seq, 40, 350), n))


async def bench_hall(n: int) -> None:
    font = find_cjk_font()
    windows = [WindowView(i, f"{i}号窗口", f"A{i:03d}", "serving") for i in range(1, 17)]
    calls = [HallCall(f"A{i:03d}", i, 0) for i in range(16, 0, -1)]
    waiting = [("个人业务", 12), ("对公业务", 3), ("VIP业务", 1), ("挂失改密", 0), ("外汇业务", 2)]
    quiet = HallView("郑州金水路支行", "2026-11-25 10:00", calls, windows, waiting, False)
    busy = HallView("郑州金水路支行", "2026-11-25 10:00", calls, windows, waiting, True)
    render(quiet, 1920, 1080, font)  # warm the font cache
    m = max(10, n // 10)
    row("hall: render 1920x1080 quiet", timed(lambda: render(quiet, 1920, 1080, font), m))
    row("hall: render 1920x1080 busy (16 windows)", timed(lambda: render(busy, 1920, 1080, font),
                                                          m))
    row("hall: render 256x128 LED panel", timed(lambda: render(quiet, 256, 128, font), m))
    frame = render(quiet, 1920, 1080, font)
    with tempfile.TemporaryDirectory() as tmp:
        out = PngOutput(Path(tmp) / "latest.png")
        row("hall: PNG write 1920x1080", timed(lambda: out._save(frame), m))
    row("hall: RGB565 framebuffer bytes 1920x1080",
        timed(lambda: framebuffer_bytes(frame, 1920, 1080, 16), m))

    async def body(box: Box) -> None:
        await box.execute(c.Login(1, "t1", "1234"))
        with tempfile.TemporaryDirectory() as tmp:
            display = HallDisplay(HallDisplayConfig(min_interval_s=0),
                                  output=PngOutput(Path(tmp) / "latest.png"), font=font)
            written: asyncio.Queue[float] = asyncio.Queue()
            display.listeners.append(lambda _f: written.put_nowait(time.perf_counter()))
            task = asyncio.create_task(display.run(box))
            await written.get()
            samples = []
            for _ in range(m):
                await box.execute(c.IssueTicket(queue="A"))
                await box.settled()
                while not written.empty():
                    written.get_nowait()
                t = time.perf_counter()
                events = await box.execute(c.CallNext(1))
                number = events[-1]["number"]
                while True:
                    end = await written.get()
                    view = display.last_view
                    if view is not None and view.calls and view.calls[0].number == number:
                        break
                samples.append(end - t)
            row("hall: call -> frame written (1920x1080 PNG)", samples)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    await in_box(body, "hall", m)


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200)
    args = p.parse_args()
    print(machine_line())
    await bench_cards(args.n)
    await bench_gpio(args.n)
    await bench_voice(args.n // 4)
    await bench_hall(args.n)
    return CHECKS.verdict()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
