"""``python -m sim demo --data-dir DIR --http HOST:PORT [--set KEY=VALUE …] [--speed N]``

A whole simulated branch in one command (what ``./flash.sh sim`` runs): the box on the
example config with every device simulated and its clock at 10:00 today, Beijing time,
and simulated customers and tellers (``python -m sim branch``) flowing through it.
Ctrl-C or SIGTERM stops both cleanly, the customers first.

One clock (:class:`DemoClock`): the launcher decides one simulated start instant and hands
each process, as it starts it, where that clock stands then — the box's ``clock.start``,
the centre's ``clock.start``, the fleets' ``--clock-start`` — so every process
runs on the same simulated time and a remote ticket or a booking made on the centre is
on time at the box.

The processes are :class:`Service` s, started in order (each waited for until it is
ready) and stopped in reverse order; :func:`services` lists them. ``--centre DIR`` adds
the provincial centre that way: a broker with the shipped configuration (passwords, ACL),
``python -m central`` on SQLite and two ``python -m sim fleet`` s, all started before the
box, which gets the ``--set`` lines that point its uplink at that broker; and the simulated
WeChat API (``python -m sim wechat api``) the centre's official account sends its
near-turn messages through, into ``DIR/wechat.jsonl``; and a simulated CIF (``python -m
sim.cif``) the centre asks who books (its ``[cif]``, on the demo's clock).

The box's peers are simulated inside it (printers, card readers, the CIF); the demo gives
its last kiosk a 二代证 reader too (``id``: ``echo <ID number> > <data dir>/sim/cards/id``).
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
import tomllib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from common.errors import ConfigError
from common.tasks import wait_at_most
from controller.config import Calendar, load_config
from controller.errors import JournalError
from controller.journal import Journal

from .cif import SIM_KEY

__all__ = ["DemoClock", "Service", "demo_clock", "demo_start", "main", "run_services",
           "seed_media", "services"]

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
    late: Callable[[], list[str]] | None = None  # more arguments, made when it is started

    def command(self) -> list[str]:
        """What to run, now: :attr:`argv` and the :attr:`late` arguments made at this
        moment (where the demo's one clock stands)."""
        return [*self.argv, *(self.late() if self.late is not None else [])]


@dataclass(frozen=True)
class DemoClock:
    """The demo's one simulated clock: it stood at ``start`` when the real clock stood at
    ``real`` (epoch s) and runs on in real time. A process is handed :meth:`now` as its
    clock's start at the moment it is started, so all of them tell the same time (up to
    the few hundred milliseconds a process takes to build its clock)."""

    start: dt.datetime
    real: float

    def now(self, real: float | None = None) -> dt.datetime:
        since = (time.time() if real is None else real) - self.real
        return self.start + dt.timedelta(seconds=since)

    def setting(self, key: str) -> Callable[[], list[str]]:
        """``--set KEY=<now>`` as a :attr:`Service.late`."""
        return lambda: ["--set", f"{key}={self.now().isoformat()}"]

    def setting_arg(self, option: str) -> Callable[[], list[str]]:
        """``OPTION <now>`` as a :attr:`Service.late` (a simulator's own clock option)."""
        return lambda: [option, self.now().isoformat()]


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
    p.add_argument("--scenario", default=None, help="a queueing scenario file")
    p.add_argument("--log-level", default="WARNING", help="the box's log level")
    p.add_argument("--kiosks", type=int, default=2, choices=range(1, 10), metavar="N",
                   help="kiosks in the branch, each with its simulated printer and card "
                        "reader, one numbering (default 2; 1: the example's one kiosk)")
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
    c.add_argument("--wechat-api-port", type=int, default=0,
                   help="the simulated WeChat API's port (default: a free one)")
    return p.parse_args(argv)


# The demo organisation (examples/centre.toml): the example box is 1001010001; the fleet
# fills the rest of 郑州分行 (100101…) and 洛阳分行 (100102…). Demo passwords only.
FLEET_FIRST = ("1001010002", "1001020001")
CENTRE_CONFIG = ROOT / "examples" / "centre.toml"
CENTRE_PASSWORD = "centre-demo-pw"
BRANCH_PASSWORD = "branch-demo-pw"
ADMIN = ("admin", "paidui-demo-2026")  # examples/centre.toml's demo seed
WECHAT_SECRET = "paidui-demo-wechat-secret"  # the demo account's AppSecret: demo only


def services(args: argparse.Namespace) -> list[Service]:
    """The demo's processes, in start order."""
    py = sys.executable
    host, _, port = args.http.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"  # served on every interface: reach it on loopback
    url = f"http://{host}:{port}"
    clock = demo_clock(args)
    overrides = _box_overrides(args)
    box = [py, "-m", "controller", "--config", args.config, "--data-dir", str(args.data_dir),
           "--http", args.http, "--log-level", args.log_level]
    branch = [py, "-m", "sim", "branch", "--config", args.config, "--url", url,
              "--data-dir", str(args.data_dir), "--speed", args.speed, "--seed", args.seed]
    centre = centre_services(args, clock) if args.centre is not None else []
    if centre:
        overrides = [f"uplink.broker=mqtt://127.0.0.1:{args.broker_port}",
                     f"uplink.password={BRANCH_PASSWORD}", *overrides]
    for o in overrides:
        box += ["--set", o]
        branch += ["--set", o]
    branch += ["--tellers", str(sim_tellers(args))]
    if args.scenario:
        branch += ["--scenario", args.scenario]
    return [
        *centre,
        # SIGINT, as Ctrl-C: the box then closes its devices and journal before it exits
        # (on SIGTERM uvicorn re-raises the signal once it has stopped serving).
        Service("box", box, ready=http_ready(url, args.data_dir / "sim" / "rs485.sock"),
                stop_signal=signal.SIGINT, late=clock.setting("clock.start")),
        Service("customers", branch),
    ]


def centre_services(args: argparse.Namespace, clock: DemoClock) -> list[Service]:
    """The broker (its files written and its users provisioned here), the centre and two
    simulated fleets, in start order, all on the demo's ``clock``."""
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
    wechat = wechat_account()
    api_port = int(args.wechat_api_port) or _free_port()
    cif_port = _free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    centre = [py, "-m", "central", "--config", str(CENTRE_CONFIG), "--log-level", "WARNING"]
    for o in (f"broker.url=mqtt://127.0.0.1:{port}", f"broker.password={CENTRE_PASSWORD}",
              f"store.url=sqlite:///{d / 'centre.sqlite3'}", f"http.host={host or '127.0.0.1'}",
              f"http.port={http_port}", f"customers.secret_file={d / 'customers.key'}",
              f"sms.outbox_file={sms_outbox(args)}", f"wechat.api_base={api_url}",
              f"wechat.appsecret={WECHAT_SECRET}", "cif.enabled=true",
              f"cif.url=http://127.0.0.1:{cif_port}", f"cif.key_id={SIM_KEY[0]}",
              f"cif.secret={SIM_KEY[1].decode()}"):
        centre += ["--set", o]
    # the centre's CIF (who books: docs/integrations.md), on the demo's clock
    cif = Service("cif", [py, "-m", "sim.cif", "--port", str(cif_port)],
                  ready=port_ready(cif_port), late=clock.setting_arg("--clock-start"))
    api = [py, "-m", "sim", "wechat", "api", "--appid", wechat.get("appid", ""),
           "--secret", WECHAT_SECRET, "--port", str(api_port), "--outbox",
           str(wechat_outbox(args))]
    fleets = [Service(f"fleet-{first}", [
        py, "-m", "sim", "fleet", "--first-code", first, "--branches", str(args.fleet),
        "--broker", f"mqtt://127.0.0.1:{port}", "--password", BRANCH_PASSWORD,
        "--rate", "90", "--duration", "86400", "--data-dir", str(d / f"fleet-{first}"),
        "--appointments", "--orgs", str(CENTRE_CONFIG), "--log-level", "WARNING"],
        late=lambda: ["--clock-start", clock.now().isoformat()])
        for first in FLEET_FIRST if args.fleet > 0]
    loopback = "127.0.0.1" if host in ("", "0.0.0.0", "[::]", "::") else host
    return [
        Service("broker", [MOSQUITTO, "-c", str(files.conf)], ready=mqtt_ready(port)),
        Service("wechat", api, ready=http_ready(api_url, path="/")),
        cif,
        Service("centre", centre, ready=http_ready(f"http://{loopback}:{http_port}",
                                                   path="/api/public/branches"),
                late=clock.setting("clock.start")),
        *fleets,
    ]


def sms_outbox(args: argparse.Namespace) -> Path:
    """Where the demo centre writes the SMS it would send (sign-in codes, alerts)."""
    return Path(args.centre).resolve() / "sms.jsonl"


def wechat_outbox(args: argparse.Namespace) -> Path:
    """Where the demo's simulated WeChat API records the messages the centre sends through
    it (near-turn and called notices, late answers): one JSON line each."""
    return Path(args.centre).resolve() / "wechat.jsonl"


def wechat_account(config: Path = CENTRE_CONFIG) -> dict[str, str]:
    """The demo centre's ``[wechat]`` section (token, appid, mode), as a follower needs it."""
    try:
        with config.open("rb") as f:
            section = tomllib.load(f).get("wechat", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}  # the centre itself will say what is wrong with it
    return {k: str(v) for k, v in section.items() if isinstance(v, str | bool)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _code(first: str, i: int) -> str:
    return str(int(first) + i).zfill(len(first))


def _box_code(args: argparse.Namespace) -> str:
    try:
        return load_config(args.config, args.overrides).branch.code
    except ConfigError:
        return "1001010001"  # the box itself will refuse the config, naming the key


def port_ready(port: int) -> Ready:
    """Ready when something listens on loopback ``port``."""

    async def check() -> bool:
        return _port_open(port)

    return check


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


def demo_start(data_dir: Path, calendar: Calendar, today: dt.date,
               journals: Iterable[Path] = ()) -> dt.datetime:
    """10:00 today in Beijing — unless an earlier demo on this data directory (or in one
    of the other ``journals``: the fleet's boxes) went past that: the engine never goes
    back in time, so the box would keep the journal's last time until its clock caught
    up. Then 10:00 on the next working day after it."""
    ten = dt.datetime.combine(today, dt.time(10), BEIJING)
    lasts = [t for j in (data_dir / JOURNAL, *journals) if (t := _last_event_at(j)) is not None]
    last = max(lasts, default=None)
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


def demo_clock(args: argparse.Namespace, real: float | None = None) -> DemoClock:
    """The demo's one clock: from the user's ``--set clock.start=…`` if given, else from
    :func:`demo_start` (which looks at the box's and the fleet's journals)."""
    real = time.time() if real is None else real
    try:
        config = load_config(args.config, args.overrides)
        calendar, start = config.calendar, config.clock.start
    except ConfigError:  # the box itself will refuse the config, naming the key
        calendar, start = Calendar(), None
    if start is None:
        fleet = [] if args.centre is None else sorted(
            Path(args.centre).glob(f"fleet-*/*/{JOURNAL}"))
        start = demo_start(args.data_dir, calendar,
                           dt.datetime.fromtimestamp(real, BEIJING).date(), fleet)
    return DemoClock(start, real)


def _box_overrides(args: argparse.Namespace) -> list[str]:
    """Voice paced to the speed, the demo's kiosks; then the user's ``--set`` (later
    wins). The clock comes last, at start (:attr:`Service.late`)."""
    out = []
    with contextlib.suppress(ValueError, ZeroDivisionError):
        out.append(f"audio.sim_pace={1 / float(args.speed):.4g}")
    # the 二代证 reader's twin and a bank IC card reader's simulated PC/SC slot
    readers = f'{{name = "{ID_READER}", kind = "id"}}, {{name = "{IC_READER}", kind = "pcsc"}}'
    if args.kiosks > 1:  # [[kiosks]]: each with its printer and card reader (docs/printer.md)
        ids = kiosk_ids(args)
        stands = [f'{{id = "{k}", name = "{n}号取号机", name_en = "Kiosk {n}"' + (
            f', card_reader = {{readers = [{{name = "{k}", kind = "sim"}}, {readers}]}}}}'
            if k == ids[-1] else "}") for n, k in enumerate(ids, 1)]
        out.append("kiosks=[" + ", ".join(stands) + "]")
    else:
        out.append(f'card_reader.readers=[{{name = "sim", kind = "sim"}}, {readers}]')
    return out + list(args.overrides)


ID_READER = "id"  # the demo's 二代证 reader: sim/cards/id, at the last kiosk
IC_READER = "ic"  # the demo's bank IC card reader (PC/SC, simulated slot): sim/cards/ic


def card_pipe(args: argparse.Namespace, reader: str | None = None) -> Path:
    """The named pipe of one of the demo box's simulated readers: ``reader``, or the
    swipe reader at the first kiosk (the one the simulated customers use)."""
    name = reader or (kiosk_ids(args)[0] if args.kiosks > 1 else "sim")
    return Path(args.data_dir).resolve() / "sim" / "cards" / name


def kiosk_ids(args: argparse.Namespace) -> list[str]:
    """The demo's kiosk page ids: ``kiosk1``, ``kiosk2`` … (the first is ``/kiosk``'s)."""
    return [f"kiosk{n}" for n in range(1, args.kiosks + 1)]


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


DEMO_PASSWORD = "1234"  # the example config's tellers and lobby manager: demo only


def sim_tellers(args: argparse.Namespace) -> int:
    """How many tellers the simulator puts to work: ``--tellers``, else all but one of the
    tellers with a keypad code — the last one is left for the person trying the demo."""
    if args.tellers:
        return int(args.tellers)
    try:
        staff = [t for t in load_config(args.config, args.overrides).tellers if t.keypad_code]
    except ConfigError:
        return 1  # the box itself will refuse the config, naming the key
    return max(1, len(staff) - 1)


@dataclass(frozen=True)
class Staffing:
    """Who is where in the demo: the simulated tellers at their windows, the teller and the
    window left for the person trying it, the lobby manager (names as the config gives)."""

    simulated: list[tuple[str, str, str]]  # (teller id, name, window name)
    yours: tuple[str, str, str, str] | None  # (teller id, name, window name, business name)
    lobby: tuple[str, str] | None  # (id, name)
    password: str  # the demo password, or how to find it out


def staffing(args: argparse.Namespace) -> Staffing:
    """The simulator's own choice of tellers and windows (:class:`sim.live.branch.LiveBranch`
    with the options the demo gives it), and what is left over."""
    from common.passwords import verify_password
    from controller.web_settings import web_settings
    from queueing import SimError
    from sim.live.branch import LiveBranch, Options

    try:
        cfg = load_config(args.config, args.overrides)
        lms = web_settings(cfg).lobby_managers
        live = LiveBranch(Options(cfg, data_dir=Path(args.data_dir), speed=float(args.speed),
                                  tellers=sim_tellers(args), seed=args.seed,
                                  scenario=Path(args.scenario) if args.scenario else None))
    except (ConfigError, SimError, ValueError):  # the simulator will say what, in its words
        return Staffing([], None, None, "see the config")
    busy = {t.teller.id for t in live.tellers}
    taken = {t.n for t in live.tellers}
    simulated = [(t.teller.id, t.teller.name, t.window.name or f"{t.n}号窗口")
                 for t in live.tellers]
    free_teller = next((t for t in cfg.tellers if t.id not in busy), None)
    free_window = next((w for w in cfg.windows if w.number not in taken), None)
    yours = None
    if free_teller is not None and free_window is not None:
        top = max(free_window.queues, key=lambda q: free_window.queues[q])
        queue = next((q for q in cfg.queues if q.id == top), None)
        yours = (free_teller.id, free_teller.name,
                 free_window.name or f"{free_window.number}号窗口",
                 f"{queue.name} {queue.name_en}".strip() if queue else top)
    lobby = (lms[0].id, lms[0].name) if lms else None
    hashes = [t.password_hash for t in cfg.tellers if t.id in busy or
              (free_teller is not None and t.id == free_teller.id)] + \
        [m.password_hash for m in lms[:1]]
    ok = all(verify_password(h, DEMO_PASSWORD) for h in hashes)
    return Staffing(simulated, yours, lobby, DEMO_PASSWORD if ok else "see the config")


def wechat_command(args: argparse.Namespace, centre: str) -> str:
    """``python -m sim wechat …`` with the demo account's token, appid (and key)."""
    w = wechat_account()
    key = f" --aes-key {w['encoding_aes_key']}" if w.get("mode") == "safe" else ""
    return (f"python -m sim wechat --url {centre} --token {w.get('token', '?')} "
            f"--appid {w.get('appid', '?')}{key}")


def _branch_at(args: argparse.Namespace) -> str:
    """The box's branch's latitude and longitude (where a follower sends their location)."""
    try:
        b = load_config(args.config, args.overrides).branch
    except ConfigError:
        return "34.7736 113.6849"
    return f"{b.latitude} {b.longitude}" if b.latitude is not None else "34.7736 113.6849"


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "[::]", "::") else host


def banner(args: argparse.Namespace, staff: Staffing | None = None) -> str:
    """What to open, who is logged in where, and what to try first; printed once
    everything is ready. Chinese first, then English."""
    staff = staffing(args) if staff is None else staff
    host, _, port = args.http.rpartition(":")
    box = f"http://{_loopback(host)}:{port}"
    pw = f"密码 password {staff.password}"
    sims = " · ".join(f"{w} {tid} {name}" for tid, name, w in staff.simulated) or "—"
    lines = [
        "",
        f"  取号机 Kiosk                {box}/kiosk",
    ]
    if args.kiosks > 1:  # one numbering, a printer each: sim/printer/<kiosk>/
        lines += [f"    {n}号取号机 kiosk {n}: {box}/kiosk?id={k}"
                  for n, k in enumerate(kiosk_ids(args), 1)]
    lines += [
        f"  软呼叫器 Soft caller         {box}/caller",
        f"    模拟柜员 simulated tellers (keypads, {pw}): {sims}",
    ]
    if staff.yours:
        tid, name, window, _ = staff.yours
        lines.append(f"    留给你 yours: {tid} {name} at {window}, {pw}")
    lobby = f"{staff.lobby[0]} {staff.lobby[1]}, {pw}" if staff.lobby else "—"
    id_kiosk = "the kiosk" if args.kiosks == 1 else f"{args.kiosks}号取号机 kiosk {args.kiosks}"
    lines += [
        f"  综合屏 Hall display          {box}/hall",
        f"  大堂经理 Lobby manager        {box}/lobby    {lobby}",
        f"  接口 Box API + OpenAPI       {box}/docs",
        f"  模拟输出 Simulator output     {Path(args.data_dir).resolve() / 'sim'}/"
        "  (printed tickets, announcements, hall display frames)",
        "  客户信息 CIF (simulated, in the box)  a card only the CIF knows as a VIP: echo "
        f"';6217000010009872=2812101?' > {card_pipe(args)}",
        f"  二代证 ID card reader at {id_kiosk}  echo 410105198001012311 > "
        f"{card_pipe(args, ID_READER)}"
        "  (a booking's ID card redeems it; echo remove > … takes it away)",
        f"  IC卡 bank IC card reader at {id_kiosk}  echo 6225880137001237 > "
        f"{card_pipe(args, IC_READER)}  (inserts a PBOC debit card with that number)",
    ]
    centre = ""
    if args.centre is not None:
        chost, _, cport = args.centre_http.rpartition(":")
        centre = f"http://{_loopback(chost)}:{cport}"
        outbox = sms_outbox(args)
        lines += [
            f"  监控中心 Centre dashboard     {centre}/   {ADMIN[0]}, password {ADMIN[1]}"
            " (demo only)",
            f"  手机页面 Customer pages       {centre}/m",
            f"  短信发件箱 SMS outbox          {outbox}  (sign-in codes: no SMS is sent)",
            f"  消息代理 Broker               mqtt://127.0.0.1:{args.broker_port}"
            f"  (branches {BRANCH_PASSWORD}, centre {CENTRE_PASSWORD}; demo only)",
            f"  微信公众号 WeChat (simulated)  {wechat_command(args, centre)} location "
            f"{_branch_at(args)}",
            "    then: … say 1 (a branch, a business, then 远程取号 or a slot) · say <phone> · "
            "say <SMS code> (in the SMS outbox) · say 'ZC 陈明 410105198001012311' (a new"
            " customer: name and ID number) · click MY_TICKETS",
            f"  微信消息 WeChat messages       {wechat_outbox(args)}  (排队提醒 near-turn and "
            "called, through the simulated WeChat API)",
        ]
    lines += ["", "  先试试 Try first:"]
    if staff.yours:
        tid, _, window, business = staff.yours
        lines += [f"   1. 取号 Take a ticket: {box}/kiosk, press {business}",
                  f"   2. 叫号 Call it: {box}/caller, log in as {tid} at {window}, press 叫号"
                  " (Call next)"]
    else:
        lines += [f"   1. 取号 Take a ticket: {box}/kiosk",
                  "   2. 叫号 Call it: a simulated teller calls it (run with --tellers to"
                  " leave one for you)"]
    lines.append(f"   3. 看综合屏 See it on the hall display: {box}/hall")
    if centre:
        lines += [f"   4. 看中心 See it in the centre: {centre}/ (the branch's queue on the"
                  " dashboard)",
                  f"   5. 手机取号/预约 Take a ticket or book from the phone: {centre}/m"
                  " (the sign-in code is in the SMS outbox)",
                  "   6. 微信预约 Book on WeChat: the WeChat command above; redeem the booking"
                  " at the kiosk with its code or the ID card; 排队提醒 lands in the WeChat"
                  " messages file"]
    return "\n".join([*lines, "", "  Ctrl-C 停止全部 stops everything.", ""])


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
                *s.command(), start_new_session=True, preexec_fn=_die_with_parent)
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
        await wait_at_most(stop, 0.2)
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
            async with asyncio.timeout(s.stop_timeout):
                await proc.wait()
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
