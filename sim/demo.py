"""``python -m sim demo --data-dir DIR --http HOST:PORT [--set KEY=VALUE …] [--speed N]``

A whole simulated branch in one command (what ``./flash.sh sim`` runs): the box on the
example config with every device simulated and its clock at 10:00 today, Beijing time,
and simulated customers and tellers (``python -m sim branch``) flowing through it.
Ctrl-C or SIGTERM stops both cleanly, the customers first.

The processes are :class:`Service` s, started in order (each waited for until it is
ready) and stopped in reverse order; :func:`services` lists them. ``--centre DIR`` adds
the provincial centre that way: a broker with the shipped configuration (passwords, ACL),
``python -m central`` on SQLite and two ``python -m sim fleet`` s, all started before the
box, which gets the ``--set`` lines that point its uplink at that broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import getpass
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from controller.config import Calendar, load_config
from controller.errors import ConfigError, JournalError
from controller.journal import Journal

__all__ = ["Service", "demo_start", "main", "run_services", "seed_media", "services"]

PROG = "python -m sim demo"
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "branch.toml"
SAMPLE_MEDIA = ROOT / "examples" / "media"  # copied into <data dir>/media (seed_media)
BEIJING = ZoneInfo("Asia/Shanghai")
JOURNAL = "journal.sqlite3"  # the box's journal in its data directory (controller/box.py)
_PR_SET_PDEATHSIG = 1

Ready = Callable[[], Awaitable[bool]]


@dataclass
class Service:
    """One process of the demo: its command, how to tell it is ready, how to stop it."""

    name: str
    argv: list[str]
    ready: Ready | None = None  # polled until True; None: ready once started
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 20.0  # after the stop signal, then SIGKILL


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[2])
    p.add_argument("--data-dir", default="data", type=Path, help="the box's data directory")
    p.add_argument("--http", default="127.0.0.1:8080", metavar="HOST:PORT",
                   help="where the box serves its screens and API")
    p.add_argument("--config", default=str(EXAMPLE), help="branch config (default: the example)")
    p.add_argument("--set", action="append", default=[], dest="overrides",
                   metavar="KEY.PATH=VALUE", help="config override for the box (repeatable; "
                                                  "e.g. clock.start=2026-11-25T10:00:00+08:00)")
    p.add_argument("--speed", default="10", help="simulated customers' speed (default 10)")
    p.add_argument("--tellers", default=None, help="tellers at work (default: all)")
    p.add_argument("--seed", default="1", help="the customers' random seed")
    p.add_argument("--scenario", default=None, help="a sim/des scenario file")
    p.add_argument("--log-level", default="WARNING", help="the box's log level")
    p.add_argument("--ready-timeout", type=float, default=90.0,
                   help="seconds a process may take to become ready")
    c = p.add_argument_group(
        "the provincial centre", "with --centre DIR the demo also runs a broker with the shipped "
        "configuration (passwords, ACL), the centre on SQLite and simulated branches beside "
        "the box, all on loopback; their files live in DIR")
    c.add_argument("--centre", type=Path, default=None, metavar="DIR",
                   help="run the broker, the centre and a simulated fleet too")
    c.add_argument("--centre-http", default="127.0.0.1:8090", metavar="HOST:PORT",
                   help="where the centre serves its dashboard, back office and API")
    c.add_argument("--broker-port", type=int, default=1884,
                   help="the demo broker's port (not 1883: that is the machine's own broker)")
    c.add_argument("--fleet", type=int, default=3,
                   help="simulated branches in each of the two sub-branches (default 3)")
    return p.parse_args(argv)


# The demo organisation (examples/centre.toml): the example box is 1001010001; the fleet
# fills the rest of 郑州分行 (100101…) and 洛阳分行 (100102…). Demo passwords only.
FLEET_FIRST = ("1001010002", "1001020001")
CENTRE_CONFIG = ROOT / "examples" / "centre.toml"
CENTRE_PASSWORD = "centre-demo-pw"
BRANCH_PASSWORD = "branch-demo-pw"
ADMIN = ("admin", "paidui-demo-2026")  # examples/centre.toml's demo seed


def services(args: argparse.Namespace) -> list[Service]:
    """The demo's processes, in start order."""
    py = sys.executable
    host, _, port = args.http.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"  # served on every interface: reach it on loopback
    url = f"http://{host}:{port}"
    overrides = _box_overrides(args)
    box = [py, "-m", "controller", "--config", args.config, "--data-dir", str(args.data_dir),
           "--http", args.http, "--log-level", args.log_level]
    branch = [py, "-m", "sim", "branch", "--config", args.config, "--url", url,
              "--data-dir", str(args.data_dir), "--speed", args.speed, "--seed", args.seed]
    centre = centre_services(args) if args.centre is not None else []
    if centre:
        overrides = [f"uplink.broker=mqtt://127.0.0.1:{args.broker_port}",
                     f"uplink.password={BRANCH_PASSWORD}", *overrides]
    for o in overrides:
        box += ["--set", o]
        branch += ["--set", o]
    if args.tellers:
        branch += ["--tellers", args.tellers]
    if args.scenario:
        branch += ["--scenario", args.scenario]
    return [
        *centre,
        # SIGINT, as Ctrl-C: the box then closes its devices and journal before it exits
        # (on SIGTERM uvicorn re-raises the signal once it has stopped serving).
        Service("box", box, ready=http_ready(url, args.data_dir / "sim" / "rs485.sock"),
                stop_signal=signal.SIGINT),
        Service("customers", branch),
    ]


def centre_services(args: argparse.Namespace) -> list[Service]:
    """The broker (its files written and its users provisioned here), the centre and two
    simulated fleets, in start order."""
    from central.broker import MOSQUITTO, provision, render_config

    py = sys.executable
    d = Path(args.centre).resolve()
    port = int(args.broker_port)
    if _port_open(port):
        raise SystemExit(f"{PROG}: port {port} is in use; choose another with --broker-port")
    run_as = getpass.getuser() if os.geteuid() == 0 else None
    files = render_config(d / "broker", port=port, ws_port=None, run_as=run_as,
                          log_file=str(d / "broker" / "mosquitto.log"))
    codes = [_code(first, i) for first in FLEET_FIRST for i in range(args.fleet)]
    provision(files.passwd, "centre", CENTRE_PASSWORD)
    for code in [_box_code(args), *codes]:
        provision(files.passwd, code, BRANCH_PASSWORD)
    host, _, http_port = args.centre_http.rpartition(":")
    centre = [py, "-m", "central", "--config", str(CENTRE_CONFIG), "--log-level", "WARNING"]
    for o in (f"broker.url=mqtt://127.0.0.1:{port}", f"broker.password={CENTRE_PASSWORD}",
              f"store.url=sqlite:///{d / 'centre.sqlite3'}", f"http.host={host or '127.0.0.1'}",
              f"http.port={http_port}", f"customers.secret_file={d / 'customers.key'}",
              f"sms.outbox_file={d / 'sms.jsonl'}"):
        centre += ["--set", o]
    fleets = [Service(f"fleet-{first}", [
        py, "-m", "sim", "fleet", "--first-code", first, "--branches", str(args.fleet),
        "--broker", f"mqtt://127.0.0.1:{port}", "--password", BRANCH_PASSWORD,
        "--rate", "90", "--duration", "86400", "--data-dir", str(d / f"fleet-{first}"),
        "--appointments", "--log-level", "WARNING"]) for first in FLEET_FIRST if args.fleet > 0]
    loopback = "127.0.0.1" if host in ("", "0.0.0.0", "[::]", "::") else host
    return [
        Service("broker", [MOSQUITTO, "-c", str(files.conf)], ready=mqtt_ready(port)),
        Service("centre", centre, ready=http_ready(f"http://{loopback}:{http_port}",
                                                   path="/api/public/branches")),
        *fleets,
    ]


def _code(first: str, i: int) -> str:
    return str(int(first) + i).zfill(len(first))


def _box_code(args: argparse.Namespace) -> str:
    try:
        return load_config(args.config, args.overrides).branch.code
    except ConfigError:
        return "1001010001"  # the box itself will refuse the config, naming the key


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def mqtt_ready(port: int) -> Ready:
    """Ready when a broker on loopback ``port`` answers an MQTT CONNECT."""
    from central.broker import answers_connect

    async def check() -> bool:
        return await asyncio.to_thread(answers_connect, port)

    return check


def demo_start(data_dir: Path, calendar: Calendar, today: dt.date) -> dt.datetime:
    """10:00 today in Beijing — unless an earlier demo on this data directory went past
    that: the engine never goes back in time, so the box would keep the journal's last
    time until its clock caught up. Then 10:00 on the next working day after it."""
    ten = dt.datetime.combine(today, dt.time(10), BEIJING)
    last = _last_event_at(data_dir / JOURNAL)
    if last is None or last < ten.timestamp():
        return ten
    day = dt.datetime.fromtimestamp(last, BEIJING).date() + dt.timedelta(days=1)
    while calendar.kind(day) != "workday" and day < today + dt.timedelta(days=400):
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(10), BEIJING)


def _last_event_at(path: Path) -> float | None:
    if not path.exists():
        return None
    try:
        journal = Journal(path)
        try:
            records = journal.read(journal.last_seq - 1, 1) if journal.last_seq else []
        finally:
            journal.close()
    except JournalError:
        return None  # the box will say what is wrong with it
    return float(records[0].event.get("at", 0)) if records else None


def _box_overrides(args: argparse.Namespace) -> list[str]:
    """The demo's clock (:func:`demo_start`); voice paced to the speed; then the user's
    ``--set`` (later wins)."""
    try:
        calendar = load_config(args.config, args.overrides).calendar
    except ConfigError:
        calendar = Calendar()  # the box itself will refuse the config, naming the key
    start = demo_start(args.data_dir, calendar, dt.datetime.now(BEIJING).date())
    out = [f"clock.start={start.isoformat()}"]
    with contextlib.suppress(ValueError, ZeroDivisionError):
        out.append(f"audio.sim_pace={1 / float(args.speed):.4g}")
    return out + list(args.overrides)


def http_ready(url: str, *files: Path, path: str = "/api/health") -> Ready:
    """Ready when ``GET url + path`` answers 200 and ``files`` exist."""

    async def check() -> bool:
        if not all(f.exists() for f in files):
            return False
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                return (await client.get(url + path)).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the launcher dies without stopping us (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def banner(args: argparse.Namespace) -> str:
    """What to open, printed once everything is ready."""
    host, _, port = args.http.rpartition(":")
    box = f"http://{'127.0.0.1' if host in ('', '0.0.0.0', '[::]', '::') else host}:{port}"
    lines = [
        "",
        f"  Kiosk (取号机)          {box}/kiosk",
        f"  Soft caller (软呼叫器)   {box}/caller   tellers t1 t2 t3, password 1234 (demo only)",
        f"  Hall display (综合屏)    {box}/hall",
        f"  Lobby manager (大堂经理) {box}/lobby    lm1, password 1234 (demo only)",
        f"  Box API + OpenAPI       {box}/docs",
        f"  Simulator output        {Path(args.data_dir).resolve() / 'sim'}/"
        "  (printed tickets, announcements, hall display frames)",
    ]
    if args.centre is not None:
        chost, _, cport = args.centre_http.rpartition(":")
        centre = f"http://{'127.0.0.1' if chost in ('', '0.0.0.0') else chost}:{cport}"
        lines += [
            f"  Centre dashboard (监控中心) {centre}/   {ADMIN[0]}, password {ADMIN[1]}"
            " (demo only)",
            f"  Customer pages (手机)     {centre}/m",
            f"  Broker                  mqtt://127.0.0.1:{args.broker_port}"
            f"  (branches {BRANCH_PASSWORD}, centre {CENTRE_PASSWORD}; demo only)",
        ]
    return "\n".join([*lines, "", "  Ctrl-C stops everything.", ""])


async def run_services(list_: list[Service], ready_timeout: float = 90.0,
                       ready_text: str = "") -> int:
    """Start ``list_`` in order, run until SIGINT/SIGTERM or one exits, stop in reverse.

    Returns 0 after a signal, 1 if a process failed to start or exited by itself.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running: list[tuple[Service, asyncio.subprocess.Process]] = []
    code = 0
    try:
        for s in list_:
            proc = await asyncio.create_subprocess_exec(
                *s.argv, start_new_session=True, preexec_fn=_die_with_parent)
            running.append((s, proc))
            _say(f"{s.name} started (pid {proc.pid})")
            if not await _until_ready(s, proc, stop, ready_timeout):
                return 0 if stop.is_set() else 1
        _say("running; Ctrl-C stops")
        if ready_text:
            print(ready_text, flush=True)
        code = await _until_stop_or_exit(running, stop)
    finally:
        for s, proc in reversed(running):
            await _stop(s, proc)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return code


async def _until_ready(s: Service, proc: asyncio.subprocess.Process, stop: asyncio.Event,
                       timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while s.ready is not None and not await s.ready():
        if proc.returncode is not None:
            _say(f"{s.name} exited with code {proc.returncode} before it was ready")
            return False
        if stop.is_set():
            return False
        if time.monotonic() > deadline:
            _say(f"{s.name} was not ready after {timeout:g} s")
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
    return True


async def _until_stop_or_exit(running: list[tuple[Service, asyncio.subprocess.Process]],
                              stop: asyncio.Event) -> int:
    waits = {asyncio.ensure_future(proc.wait()): s for s, proc in running}
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([stopper, *waits], return_when=asyncio.FIRST_COMPLETED)
    for fut in [stopper, *waits]:
        if fut not in done:
            fut.cancel()
    if stopper in done:
        return 0
    for fut in done:
        _say(f"{waits[fut].name} exited with code {fut.result()}; stopping the rest")
    return 1


async def _stop(s: Service, proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(s.stop_signal)
        try:
            await asyncio.wait_for(proc.wait(), s.stop_timeout)
        except TimeoutError:
            _say(f"{s.name} did not stop in {s.stop_timeout:g} s: killed")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    _say(f"{s.name} stopped (pid {proc.pid}, code {proc.returncode})")


def _say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def seed_media(data_dir: Path, samples: Path = SAMPLE_MEDIA) -> Path:
    """Copy the sample kiosk images into the box's media folder, ``<data dir>/media``, the
    first time (a folder that exists is the box's own, left as it is: the centre may have
    pushed into it). The checkout is never written to."""
    folder = Path(data_dir) / "media"
    if not folder.exists():
        folder.mkdir(parents=True)
        for f in sorted(samples.iterdir()):
            shutil.copyfile(f, folder / f.name)
    return folder


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    seed_media(args.data_dir)
    return asyncio.run(run_services(services(args), args.ready_timeout, banner(args)))


if __name__ == "__main__":
    sys.exit(main())
