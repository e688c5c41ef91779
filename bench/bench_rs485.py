"""Keypad press → window display frame written, over the virtual RS485 bus at real baud timing.

A 16-window branch (48 devices: a keypad, a display and an evaluator per window) runs on
the simulator with the box's real journal. A teller presses 呼叫 (call next); the time
counted is from the press to the moment the last byte of the new number's frame reaches
that window's display, so it includes the bus schedule, the engine, the journal's commit
(fsync) and both frames' wire time.

Two loads:
- ``single``: one press at a time on a random window, at a random moment;
- ``burst``: all 16 tellers press at the same instant (the worst case a branch can make).

Reported against the wire-time floor (the key frame in, the display frame out) and, for
Modbus, the poll cycle (16 keypads polled in turn). The goal: p99 ≤ 2 × the poll cycle.

    python bench/bench_rs485.py [--samples 200] [--bursts 10] [--profiles legacy68,modbus]
                                [--bauds 9600,115200]
"""

from __future__ import annotations

import argparse
import asyncio
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

from controller.box import Box  # noqa: E402
from controller.clock import ManualClock  # noqa: E402
from controller.config import Config, parse_config  # noqa: E402
from controller.engine import commands as c  # noqa: E402
from drivers.rs485 import Device, Rs485  # noqa: E402
from protocols.rs485 import legacy68 as l68  # noqa: E402
from protocols.rs485 import modbus as mb  # noqa: E402
from protocols.rs485.keys import KEY_CALL  # noqa: E402
from sim.rs485 import SimDisplay, VirtualBus  # noqa: E402

WINDOWS = 16
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


async def press_and_wait(line: VirtualBus, window: int) -> float:
    """Press 呼叫 on ``window``; return seconds until its display shows the new number."""
    display: SimDisplay = line.display(window)
    before = len(display.history)
    loop = asyncio.get_running_loop()
    pressed = loop.time()
    await line.keypad(window).press(KEY_CALL, timeout=10)
    await display.wait_until(lambda: len(display.history) > before, timeout=10)
    return display.history[before][0] - pressed


async def settled(devices: list[Device]) -> None:
    """Wait (polling; this is a benchmark) until every device shows what it should."""
    while any(d.dirty or d.online is None for d in devices):
        await asyncio.sleep(0.05)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


async def run(profile: str, baud: int, samples: int, bursts: int, seed: int) -> dict[str, Any]:
    config = branch_config(profile, baud)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as data_dir:
        async with Box(config, data_dir, ManualClock(TEN_AM)) as box, \
                VirtualBus.from_config(config) as line:
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
                    single.append(await press_and_wait(line, window))
                elapsed, rounds = time.monotonic() - t0, rs485.bus.stats["rounds"] - rounds0
                burst: list[float] = []
                for _ in range(bursts):
                    await asyncio.sleep(rng.uniform(1.0, 1.5))  # past the anti-repeat window
                    burst += await asyncio.gather(
                        *(press_and_wait(line, n) for n in range(1, WINDOWS + 1)))
                counters = rs485.bus.counters()
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
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
    args = p.parse_args()
    print(f"RS485 keypad press → display frame, {WINDOWS} windows, virtual bus at baud timing")
    for profile in args.profiles.split(","):
        for baud in (int(b) for b in args.bauds.split(",")):
            report(asyncio.run(run(profile, baud, args.samples, args.bursts, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
