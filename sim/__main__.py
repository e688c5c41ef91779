"""``python -m sim <command> …``: the simulators.

Each command is a module with ``main(argv) -> int``; add one line to ``COMMANDS``.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "des": "queueing.cli",  # a branch-day in virtual time (docs/simulation.md)
    "fleet": "sim.fleet",  # N branches against a broker and the centre (docs/uplink.md)
    "swarm": "sim.swarm",  # thousands of light branches on the real uplink (bench_scale.py)
    "branch": "sim.live.cli",  # customers and tellers against a running box (docs/simulator.md)
    "demo": "sim.demo",  # a box with simulated customers flowing (docs/simulator.md)
    "tour": "sim.tour",  # a screenshot of every page, from the demo (docs/screens.md)
    "wechat": "sim.wechat",  # a follower of the centre's official account (docs/integrations.md)
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in COMMANDS:
        print(f"usage: python -m sim {{{','.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    return int(importlib.import_module(COMMANDS[args[0]]).main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())
