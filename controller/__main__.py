"""``python -m controller --config FILE [--data-dir DIR] [--http HOST:PORT] [--set k=v …]``

Also: ``python -m controller hash-password`` prints a teller password hash for a config.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from common.clock import clock_for
from common.errors import ConfigError
from common.httpserver import ServerLimits, http_server
from common.logs import FORMATS, setup_logging

from .components import Start, Startup
from .compose import build_components
from .config import Config, load_config
from .engine import commands as c
from .errors import JournalError, Refused
from .uplink.commands import HEALTH

if TYPE_CHECKING:
    from .box import Box

log = logging.getLogger("controller")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m controller", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="branch config file (TOML)")
    p.add_argument("--data-dir", default=None, help="journal and device files (default ./data)")
    p.add_argument("--http", default=None, metavar="HOST:PORT", help="serve the API here")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   dest="overrides", help="override a config key (repeatable)")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--log-format", choices=FORMATS, default="text",
                   help="text lines, or one JSON object per line (docs/deploy.md)")
    return p.parse_args(argv)


def http_address(args: argparse.Namespace, config: Config) -> tuple[str, int]:
    if not args.http:
        return config.http.host, config.http.port
    host, sep, port = args.http.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError("--http", f"expected HOST:PORT, got {args.http!r}", "command line")
    return host or "127.0.0.1", int(port)


async def serve(start: Start, data_dir: Path, host: str, port: int) -> None:

    from .box import Box
    from .supervisor import Supervisor
    from .web import create_app

    config = start.config
    async with Box(config, data_dir, clock_for(config.clock.start)) as box:
        if start.set_aside:  # on the screens' device list and in the centre's health
            box.health.report(HEALTH, "fault", "中心下发的配置无法启动,已搁置 (the centre's "
                              f"configuration cannot start, set aside): {start.set_aside}")
        await settle_removed(box)
        app = create_app(box)
        server = http_server(app, host, port, graceful_s=2, limits=ServerLimits.of(config.http))
        supervisor = Supervisor(box, start.components)
        log.info("branch %s (%s) epoch %s seq %d, http://%s:%d", config.branch.code,
                 config.branch.name, box.epoch, box.last_seq, host, port)
        async with asyncio.TaskGroup() as tg:
            devices = tg.create_task(supervisor.run(), name="supervisor")
            await server.serve()  # returns on SIGINT/SIGTERM
            devices.cancel()


async def settle_removed(box: Box) -> None:
    """Tickets waiting today for a business the configuration started on does not have
    (e.g. it fell back from a set-aside push): moved or closed as its ``removed_queues``
    says; if it says nothing, they stay listed and the health entry says so."""
    if not box.engine.stranded():
        return
    try:
        await box.execute(c.SettleRemovedQueues())
    except Refused as exc:
        box.health.report(f"{HEALTH}.removed_queues", "warning", exc.message_en)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``http.loop`` names: uvloop's (libuv, in C: the HTTP path's
    system calls and callbacks cost less), or None for the standard library's."""
    if name != "uvloop":
        return None
    import uvloop

    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hash-password"]:
        from common.passwords import hash_password

        print(hash_password(getpass.getpass("teller password: ")))
        return 0
    args = parse_args(argv)
    setup_logging(args.log_level, getattr(args, "log_format", "text"))
    try:
        local = load_config(args.config, args.overrides)
        data_dir = Path(args.data_dir or "data")
        startup = Startup(local, tuple(args.overrides), data_dir, build_components)
        start = startup.begin(clock_for(local.clock.start).now())
        host, port = http_address(args, start.config)
    except ConfigError as exc:  # the local file's own mistake: fix it on site
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt), \
                asyncio.Runner(loop_factory=loop_factory(start.config.http.loop)) as runner:
            runner.run(serve(start, data_dir, host, port))
    except JournalError as exc:
        print(f"journal error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
