"""Keypad press → window display frame written, over the virtual RS485 bus at real baud timing.

A 16-window branch (48 devices: a keypad, a display and an evaluator per window) runs on
the simulator with the box's real journal. A teller presses 呼叫 (call next); the time
counted is from the press to the moment the last byte of the new number's frame reaches
that window's display, so it includes the bus schedule, the engine, the journal's commit
(fsync) and both frames' wire time.

The virtual bus runs in a process of its own (``--serve-bus``), as real devices are
separate hardware: the box's event loop does not carry the devices' timers. Both processes
read the same monotonic clock, so a press and a display frame are timed on one scale.

Two loads:
- ``single``: one press at a time on a random window, at a random moment;
- ``burst``: all 16 tellers press at the same instant (the worst case a branch can make).

Reported against the wire-time floor (the key frame in, the display frame out) and, for
Modbus, the poll cycle (16 keypads polled in turn). The goal: p99 ≤ 2 × the poll cycle.

    python bench/bench_rs485.py [--samples 200] [--bursts 10] [--profiles legacy68,modbus]
                                [--bauds 9600,115200] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.checks import Checks, journal_numbers, machine_line  # noqa: E402
from common.clock import ManualClock  # noqa: E402
from controller.box import Box  # noqa: E402
from controller.config import Config, parse_config  # noqa: E402
from controller.engine import commands as c  # noqa: E402
from drivers.rs485 import Device, Rs485  # noqa: E402
from protocols.rs485 import legacy68 as l68  # noqa: E402
from protocols.rs485 import modbus as mb  # noqa: E402
from protocols.rs485.keys import KEY_CALL  # noqa: E402
from sim.rs485 import VirtualBus  # noqa: E402

WINDOWS = 16
CHECKS = Checks("bench_rs485")
TEN_AM = 1795572000.0  # Wed 2026-11-25 10:00 +08:00


def branch_config(profile: str, baud: int) -> Config:
    """The example branch grown to 16 windows, all serving 个人业务 (A)."""
    data: dict[str, Any] = tomllib.loads((ROOT / "examples" / "branch.toml").read_text("utf-8"))
    password = data["tellers"][0]["password_hash"]  # demo password 1234
    data["windows"] = [{"number": n, "queues": {"A": 5}} for n in range(1, WINDOWS + 1)]
    data["tellers"] = [{"id": f"t{n}", "name": f"柜员{n}", "password_hash": password,
                        "keypad_code": n} for n in range(1, WINDOWS + 1)]
    data["thresholds"].update(branch_waiting_cap=0, lobby_alert_waiting=0)
    data["rs485"] = {"profile": profile, "baudrate": baud}
    return parse_config(data, "bench")


def floor_s(profile: str, baud: int) -> float:
    """Wire time of one frame each way: the key report in and the number's frame out."""
    byte = 10 / baud
    if profile == "legacy68":
        return (l68.frame_length(1) + l68.frame_length(l68.WIDTH)) * byte
    poll_reply = mb.reply_length(mb.ReadRequest(1, mb.REG_EVENTS, mb.POLL_COUNT))
    screen = mb.WriteMultiple(1, mb.REG_MODE, mb.screen_registers(mb.MODE_TEXT, b"A001"))
    return (poll_reply + len(mb.encode(screen))) * byte


def poll_s(baud: int) -> float:
    """One Modbus poll of one node: request, silence, reply, silence."""
    byte = 10 / baud
    gap = 3.5 * byte if baud <= 19200 else 0.00175
    request = mb.ReadRequest(1, mb.REG_EVENTS, mb.POLL_COUNT)
    return (len(mb.encode(request)) + mb.reply_length(request)) * byte + 2 * gap


class Devices:
    """The virtual bus, here or in its own process; press keys, hear what displays show."""

    def __init__(self) -> None:
        self.shown: dict[int, list[tuple[float, str]]] = {}
        self.changed = asyncio.Event()
        self.port = ""
        self._line: VirtualBus | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pressed: dict[int, asyncio.Future[float]] = {}

    async def start(self, profile: str, baud: int, in_process: bool) -> None:
        if in_process:
            self._line = VirtualBus.from_config(branch_config(profile, baud))
            await self._line.__aenter__()
            self.port = self._line.port
            return
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve-bus", f"{profile}:{baud}",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert self._proc.stdout is not None
        self.port = json.loads(await self._proc.stdout.readline())["port"]
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            msg = json.loads(raw)
            if "shown" in msg:
                self.shown.setdefault(msg["shown"], []).append((msg["at"], msg["text"]))
                self.changed.set()
            elif "pressed" in msg:
                self._pressed.pop(msg["pressed"]).set_result(msg["at"])

    async def press(self, window: int) -> float:
        """Press 呼叫 on ``window``; the (monotonic) time it was pressed."""
        if self._line is not None:
            pressed = asyncio.get_running_loop().time()
            await self._line.keypad(window).press(KEY_CALL, timeout=10)
            return pressed
        assert self._proc is not None and self._proc.stdin is not None
        done = self._pressed[window] = asyncio.get_running_loop().create_future()
        self._proc.stdin.write(json.dumps({"press": window}).encode() + b"\n")
        return await done

    def history(self, window: int) -> list[tuple[float, str]]:
        if self._line is not None:
            return self._line.display(window).history
        return self.shown.get(window, [])

    async def press_and_wait(self, window: int) -> float:
        """Press 呼叫 on ``window``; seconds until its display has the new number."""
        before = len(self.history(window))
        pressed = await self.press(window)
        if self._line is not None:
            history = self._line.display(window).history
            await self._line.display(window).wait_until(lambda: len(history) > before, 10)
        while len(self.history(window)) <= before:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)
        return self.history(window)[before][0] - pressed

    async def stop(self) -> None:
        if self._line is not None:
            self._line.close()
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            await self._proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


async def serve_bus(profile: str, baud: int) -> None:
    """The child process: the virtual bus, driven over stdin/stdout in JSON lines."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with VirtualBus.from_config(branch_config(profile, baud)) as line:
        def say(**msg: Any) -> None:
            sys.stdout.write(json.dumps(msg, ensure_ascii=False) + "\n")
            sys.stdout.flush()

        for (kind, _), device in line.devices.items():
            if kind == "display":
                device.watch(lambda d, text, at: say(shown=d.address, text=text, at=at))
        say(port=line.port)
        presses: set[asyncio.Task[float]] = set()
        async for raw in reader:
            window = json.loads(raw)["press"]
            say(pressed=window, at=loop.time())
            task = asyncio.create_task(line.keypad(window).press(KEY_CALL, timeout=10))
            presses.add(task)
            task.add_done_callback(presses.discard)


async def settled(devices: list[Device]) -> None:
    """Wait (polling; this is a benchmark) until every device shows what it should."""
    while any(d.dirty or d.online is None for d in devices):
        await asyncio.sleep(0.05)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


async def run(profile: str, baud: int, samples: int, bursts: int, seed: int,
              in_process: bool) -> dict[str, Any]:
    config = branch_config(profile, baud)
    rng = random.Random(seed)
    line = Devices()
    await line.start(profile, baud, in_process)
    with tempfile.TemporaryDirectory() as data_dir:
        async with Box(config, data_dir, ManualClock(TEN_AM)) as box:
            for _ in range(samples + bursts * WINDOWS + WINDOWS):
                await box.execute(c.IssueTicket(queue="A"))
            for n in range(1, WINDOWS + 1):
                await box.execute(c.Login(n, f"t{n}", "1234"))
            rs485 = Rs485(config, port=line.port)
            task = asyncio.create_task(rs485.run(box))
            try:
                await asyncio.wait_for(rs485.running.wait(), 10)
                assert rs485.bus is not None
                await settled(rs485.bus.devices)
                rounds0, t0 = rs485.bus.stats["rounds"], time.monotonic()
                single = []
                last = dict.fromkeys(range(1, WINDOWS + 1), 0.0)
                loop = asyncio.get_running_loop()
                for _ in range(samples):
                    await asyncio.sleep(rng.uniform(0, 0.05))  # a random moment in the cycle
                    # No teller presses the same key twice within a second (that is one press).
                    free_at = min(last.values()) + 1.2
                    if free_at > loop.time():
                        await asyncio.sleep(free_at - loop.time())
                    window = rng.choice([w for w, t in last.items() if loop.time() - t > 1.2])
                    last[window] = loop.time()
                    single.append(await line.press_and_wait(window))
                elapsed, rounds = time.monotonic() - t0, rs485.bus.stats["rounds"] - rounds0
                burst: list[float] = []
                for _ in range(bursts):
                    await asyncio.sleep(rng.uniform(1.0, 1.5))  # past the anti-repeat window
                    burst += await asyncio.gather(
                        *(line.press_and_wait(n) for n in range(1, WINDOWS + 1)))
                counters = rs485.bus.counters()
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await line.stop()
        issued = journal_numbers(data_dir)
    label = f"{profile} {baud}"
    CHECKS.unique(issued, f"ticket numbers ({label})")
    CHECKS.drained(samples + bursts * WINDOWS + WINDOWS, len(issued),
                   f"tickets in the journal ({label})")
    CHECKS.drained(samples, len(single), f"single presses shown ({label})")
    CHECKS.drained(bursts * WINDOWS, len(burst), f"burst presses shown ({label})")
    CHECKS.failed(int(counters.get("checksum_errors", 0)) + int(counters.get("timeouts", 0)),
                  f"bus frames ({label}: checksum errors, timeouts)")
    cycle = elapsed / rounds if rounds else None
    return {"profile": profile, "baud": baud, "single": single, "burst": burst,
            "cycle": cycle, "counters": counters}


def report(r: dict[str, Any]) -> None:
    profile, baud = r["profile"], r["baud"]
    floor = floor_s(profile, baud)
    theory = poll_s(baud) * WINDOWS if profile == "modbus" else None
    print(f"\n{profile} at {baud} baud — floor (one frame each way) {floor * 1000:.1f} ms", end="")
    if theory is not None:
        measured = r["cycle"] * 1000 if r["cycle"] else float("nan")
        print(f"; poll {poll_s(baud) * 1000:.1f} ms a node, cycle of {WINDOWS} keypads "
              f"{theory * 1000:.0f} ms (measured round, with evaluators, screens and "
              f"acknowledgements between polls: {measured:.0f} ms)", end="")
    print()
    for load in ("single", "burst"):
        values = r[load]
        if not values:
            continue
        p50, p99 = statistics.median(values), percentile(values, 99)
        line = (f"  {load:6} n={len(values):4}"
                f"  p50 {p50 * 1000:7.1f} ms ({p50 / floor:5.1f}× floor)"
                f"  p99 {p99 * 1000:7.1f} ms ({p99 / floor:5.1f}× floor)"
                f"  max {max(values) * 1000:7.1f} ms")
        if theory is not None:
            verdict = "met" if p99 <= 2 * theory else "MISSED"
            line += f"  p99/cycle {p99 / theory:4.2f} (goal ≤ 2: {verdict})"
            if r["cycle"]:
                line += f", p99/measured round {p99 / r['cycle']:4.2f}"
        print(line)
    c = r["counters"]
    print(f"  bus: {c.get('frames', 0)} frames, {c.get('checksum_errors', 0)} checksum errors, "
          f"{c.get('timeouts', 0)} timeouts, {c.get('duplicates', 0)} resends ignored")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--bursts", type=int, default=10)
    p.add_argument("--profiles", default="legacy68,modbus")
    p.add_argument("--bauds", default="9600,115200")
    p.add_argument("--seed", type=int, default=485)
    p.add_argument("--in-process", action="store_true",
                   help="run the virtual bus in the box's own event loop")
    p.add_argument("--serve-bus", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_bus:
        profile, baud = args.serve_bus.split(":")
        asyncio.run(serve_bus(profile, int(baud)))
        return 0
    where = "in the box's loop" if args.in_process else "in its own process"
    print(machine_line())
    print(f"RS485 keypad press → display frame, {WINDOWS} windows, virtual bus at baud timing "
          f"{where}")
    for profile in args.profiles.split(","):
        for baud in (int(b) for b in args.bauds.split(",")):
            report(asyncio.run(run(profile, baud, args.samples, args.bursts, args.seed,
                                   args.in_process)))
    return CHECKS.verdict()


if __name__ == "__main__":
    raise SystemExit(main())
