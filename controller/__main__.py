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
from pathlib import Path

from .components import build_components
from .config import Config, load_config
from .errors import ConfigError, JournalError
from .httpserver import ServerLimits, http_server
from .logs import FORMATS, setup_logging
from .supervisor import Component
from .uplink.commands import load_pushed

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


async def serve(config: Config, data_dir: Path, host: str, port: int,
                components: list[Component]) -> None:

    from .box import Box
    from .clock import clock_for
    from .supervisor import Supervisor
    from .web import create_app

    async with Box(config, data_dir, clock_for(config.clock.start)) as box:
        app = create_app(box)
        server = http_server(app, host, port, graceful_s=2, limits=ServerLimits.of(config.http))
        supervisor = Supervisor(box, components)
        log.info("branch %s (%s) epoch %s seq %d, http://%s:%d", config.branch.code,
                 config.branch.name, box.epoch, box.last_seq, host, port)
        async with asyncio.TaskGroup() as tg:
            devices = tg.create_task(supervisor.run(), name="supervisor")
            await server.serve()  # returns on SIGINT/SIGTERM
            devices.cancel()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hash-password"]:
        from .passwords import hash_password

        print(hash_password(getpass.getpass("teller password: ")))
        return 0
    args = parse_args(argv)
    setup_logging(args.log_level, getattr(args, "log_format", "text"))
    try:
        config = load_config(args.config, args.overrides)
        data_dir = Path(args.data_dir or "data")
        config = load_pushed(data_dir, config, args.overrides) or config
        host, port = http_address(args, config)
        components = build_components(config, data_dir)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(config, data_dir, host, port, components))
    except JournalError as exc:
        print(f"journal error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
