"""``python -m sim branch --config FILE [--url URL] [--data-dir DIR] [--speed N] …``

Customers and tellers of a simulated branch against a running box (docs/simulator.md).
Ctrl-C (or SIGTERM) stops: no more customers, tellers finish and log out; a second one
stops at once. Bad options exit with code 2 and one line naming the problem.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import sys
from pathlib import Path

from common.errors import ConfigError
from controller.config import load_config
from queueing import SimError

from .branch import LiveBranch, Options

__all__ = ["main", "parse_duration"]

PROG = "python -m sim branch"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smh]?)$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h`` → seconds."""
    m = _DURATION.match(text.strip())
    if m is None or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 15m or 2h, got {text!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


def _windows(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected window numbers like 1,3,5, got {text!r}"
                                         ) from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[2])
    p.add_argument("--config", required=True, help="the box's branch config (TOML)")
    p.add_argument("--set", action="append", default=[], dest="overrides",
                   metavar="KEY.PATH=VALUE", help="the box's --set overrides (repeatable)")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the box's HTTP address")
    p.add_argument("--data-dir", default="data", type=Path,
                   help="the box's data directory (its sim/rs485.sock and card pipe)")
    p.add_argument("--speed", type=_positive, default=1.0,
                   help="N× as many customers, services N× as short (docs/simulator.md)")
    p.add_argument("--tellers", type=int, default=None,
                   help="tellers at work (default: every teller with a keypad code)")
    p.add_argument("--windows", type=_windows, default=(),
                   help="their windows, e.g. 3,5,6 (default: those covering the most)")
    p.add_argument("--password", default="1234",
                   help="the tellers' keypad password (the example config's: 1234)")
    p.add_argument("--duration", type=parse_duration, default=None,
                   help="stop after this long, e.g. 90s, 15m (default: until Ctrl-C)")
    p.add_argument("--seed", default="1", help="the customers' random seed")
    p.add_argument("--scenario", type=Path, default=None,
                   help="a queueing scenario file (TOML or JSON; docs/simulation.md)")
    p.add_argument("--customers", type=_positive, default=None,
                   help="expected customers a day (default day profile)")
    p.add_argument("--vip-share", type=_share, default=None,
                   help="share of customers who are VIPs (default: the profile's)")
    p.add_argument("--card-share", type=_share, default=0.2,
                   help="share of ordinary customers who swipe a card (default 0.2)")
    p.add_argument("--every", type=_positive, default=5.0,
                   help="seconds between summary lines (default 5)")
    p.add_argument("--json", action="store_true", help="print the final report as JSON")
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config, args.overrides)
        branch = LiveBranch(Options(
            config, url=args.url, data_dir=args.data_dir, speed=args.speed,
            tellers=args.tellers, windows=args.windows, duration=args.duration,
            seed=args.seed, scenario=args.scenario, customers=args.customers,
            vip_share=args.vip_share, card_share=args.card_share, password=args.password,
            every=args.every,
        ))
    except (ConfigError, SimError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    names = ", ".join(f"{t.teller.id}@{t.n}" for t in branch.tellers)
    print(f"{PROG}: box {branch.url}, data {args.data_dir}, speed {args.speed:g}, "
          f"tellers {names}", flush=True)
    report = asyncio.run(_run(branch))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, sort_keys=True))
    return 0


async def _run(branch: LiveBranch) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def on_signal() -> None:
        if branch.stop.is_set():
            task.cancel()  # the second Ctrl-C: now
        else:
            branch.request_stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        return await branch.run()
    except asyncio.CancelledError:
        return branch.report()
