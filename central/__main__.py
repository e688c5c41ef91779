"""``python -m central [--config FILE] [--set k=v …]`` runs the centre (consumers + HTTP API).

Other commands:

* ``python -m central reconcile --day YYYY-MM-DD [--replay]`` — the day's reconciliation
  (F3/F5) and long-wait exceptions (E5) as JSON; ``--replay`` asks the disagreeing
  branches for their missing events.
* ``python -m central broker-config --dir DIR [--port 1883] [--ws-port 9001] …`` — write
  the shipped Mosquitto configuration (password file + ACL) into DIR.
* ``python -m central provision --passwd FILE USER [--password PW]`` — add a branch
  (user = branch code) or ``centre``/``dashboard`` to the broker's password file.
* ``python -m central set-password USER [--password PW]`` — reset a centre user's
  password (a locked-out administrator); their sessions end, the audit log says so.
* ``python -m central release keygen|build|verify|upload|list|rollout|status|serve …`` —
  software releases for the boxes (docs/update.md); the same command line as
  ``python -m central.releases``, which it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from typing import Any

from common.logs import FORMATS, setup_logging

from .errors import CentreError

log = logging.getLogger("central")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="centre config file (TOML)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   dest="overrides", help="override a config key (repeatable)")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--log-format", choices=FORMATS, default="text",
                   help="text lines, or one JSON object per line (docs/deploy.md)")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m central", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command")
    _common(p)
    r = sub.add_parser("reconcile", help="a day's reconciliation and long waits (JSON)")
    _common(r)
    r.add_argument("--day", required=True, help="YYYY-MM-DD")
    r.add_argument("--replay", action="store_true", help="ask for the missing events")
    b = sub.add_parser("broker-config", help="write the shipped Mosquitto configuration")
    b.add_argument("--dir", required=True)
    b.add_argument("--host", default="127.0.0.1")
    b.add_argument("--port", type=int, default=1883)
    b.add_argument("--ws-port", type=int, default=9001, help="0: no websockets listener")
    b.add_argument("--tls-port", type=int, default=None)
    b.add_argument("--tls-cert", default=None)
    b.add_argument("--tls-key", default=None)
    b.add_argument("--tls-ca", default=None)
    b.add_argument("--log-file", default=None)
    b.add_argument("--run-as", default=None,
                   help="account to keep when started as root (default: mosquitto)")
    s = sub.add_parser("set-password", help="reset a centre user's password")
    _common(s)
    s.add_argument("user")
    s.add_argument("--password", default=None, help="default: asked for on the terminal")
    v = sub.add_parser("provision", help="add a user to the broker's password file")
    v.add_argument("--passwd", required=True, help="the broker's password file")
    v.add_argument("user", help="branch code, 'centre' or 'dashboard'")
    v.add_argument("--password", default=None, help="default: a new random one")
    # Listed for --help only: main() hands "release …" to the releases' own parser whole.
    sub.add_parser("release", add_help=False,
                   help="software releases: keygen, build, verify, upload, list, rollout, "
                        "status, serve (python -m central release --help)")
    return p.parse_args(argv)


async def _run_centre(args: argparse.Namespace) -> None:
    from .config import load_centre_config
    from .service import Centre
    from .store import open_store

    config = load_centre_config(args.config, args.overrides)
    def check_store() -> None:  # migrated, reachable, and the secret other instances share
        store = open_store(config.store.url)
        try:
            if config.customers.enabled:
                from .appointments.core import secret_path
                from .privacy import Vault, check_shared

                path = secret_path(config.customers, config.store.url)
                check_shared(store, Vault.from_file(path), path)
        finally:
            store.close()

    await asyncio.to_thread(check_store)
    centre = Centre(config)
    main = asyncio.current_task()
    if not config.http.enabled and main is not None:  # uvicorn handles signals otherwise
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, main.cancel)
    log.info("centre: store %s, broker(s) %s, %d consumer(s) each in group %s",
             config.store.url.split("@")[-1], " ".join(config.broker.all_urls),
             config.ingest.consumers, config.broker.group)
    with contextlib.suppress(asyncio.CancelledError):
        if not config.alerts.enabled:
            await centre.run()
            return
        from .alerts import AlertDesk
        from .sms import make_gateway

        # one gateway for the centre: the customers' (sign-in codes, SMS commands) if any
        gateway = (centre.customers.appointments.sms if centre.customers
                   else make_gateway(config.sms))
        desk = AlertDesk(config.alerts, config.store.url, gateway=gateway,
                         publish=lambda branch, args: centre.send_command(branch, "alert", args),
                         clock=centre.clock.now)
        async with asyncio.TaskGroup() as tg:
            alerts = tg.create_task(desk.run(centre.leases), name="alerts")
            try:
                await centre.run()
            finally:
                alerts.cancel()


async def _reconcile(args: argparse.Namespace) -> int:
    import datetime as dt

    from .config import load_centre_config
    from .ingest import Consumer
    from .reconcile import reconcile_day
    from .store import open_store

    dt.date.fromisoformat(args.day)
    config = load_centre_config(args.config, args.overrides)

    def reconcile() -> dict[str, Any]:
        # Opened, used and closed on one thread: a Ctrl-C cannot close it under the query.
        store = open_store(config.store.url)
        try:
            return reconcile_day(store, args.day, config.reconcile.long_wait_minutes)
        finally:
            store.close()

    report = await asyncio.to_thread(reconcile)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if args.replay and report["mismatch"]:
        consumer = Consumer(config)
        async with consumer._make_client() as client:
            for r in report["mismatch"]:
                for epoch, first, last in r["replay"]:
                    await consumer.request_replay(client, r["branch"], epoch, first, last)
        await asyncio.to_thread(consumer._executor.shutdown)
    return 1 if report["mismatch"] or report["no_data"] else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["release"]:
        from .releases import main as releases_main

        return releases_main(argv[1:], prog="python -m central release")
    args = parse_args(argv)
    setup_logging(getattr(args, "log_level", "INFO"), getattr(args, "log_format", "text"))
    try:
        if args.command == "broker-config":
            from .broker import render_config

            files = render_config(args.dir, port=args.port, host=args.host,
                                  ws_port=args.ws_port or None, tls_port=args.tls_port,
                                  tls_cert=args.tls_cert, tls_key=args.tls_key,
                                  tls_ca=args.tls_ca, log_file=args.log_file,
                                  run_as=args.run_as)
            print(files.conf)
            return 0
        if args.command == "provision":
            from .broker import provision

            password = provision(args.passwd, args.user, args.password)
            print(f"uplink.username={args.user}\nuplink.password={password}")
            return 0
        if args.command == "reconcile":
            return asyncio.run(_reconcile(args))
        if args.command == "release":  # options before it: the releases take none of them
            print("error: 'release' comes first: python -m central release …", file=sys.stderr)
            return 2
        if args.command == "set-password":
            from .accounts import reset_password

            return reset_password(args.config, args.overrides, args.user, args.password)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run_centre(args))
    except (CentreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
