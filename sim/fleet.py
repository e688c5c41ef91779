"""``python -m sim fleet --branches N``: N simulated branches against a broker and a centre.

Each branch is a real box core — engine, journal (SQLite) and uplink (its own MQTT
connection) — without device drivers. Customers arrive at random (Poisson, ``--rate``
tickets per hour per branch, a busy hour by default) in four businesses; three tellers
call the next customer after an exponential service time. The boxes run on the system
clock (open all day, every day) so that event times compare with the centre's commit
times: that is the end-to-end latency the benchmark reports; ``--clock-start`` puts them
on a demo's simulated clock instead (``python -m sim demo``: one clock for every process).

The branches differ (:func:`branch_plan`): each has its own name — the organisation's, from
``--orgs FILE`` (a centre configuration with ``[[web.orgs]]``), else a street of its own
with its code — its own size (one to three tellers at work, a busier or quieter day: the
rate times 0.4 to 1.6) and its own random stream, drawn from ``--seed`` and its code, so
two fleets with the same seed do not repeat each other.

Start a broker and a centre first, e.g.::

    python -m central --set broker.url=mqtt://127.0.0.1:1883 --set http.port=8090 &
    python -m sim fleet --branches 200 --rate 120 --duration 60 --broker mqtt://127.0.0.1:1883

The broker must accept the branches' logins: user name = branch code, no password (a
test broker with ``allow_anonymous true``), or ``--password`` for all of them.

Where the journals are: by default in a temporary folder on ``/dev/shm`` (tmpfs), so the
branch side pays no fsync — a figure measured so says it (:func:`journal_label`, printed in
the result as ``journals``). ``--disk-sample N`` puts N of the branches (spread over the
codes) on a real disk instead (``--disk-dir``, default a temporary folder under
``/var/tmp``); their codes are in the result (``disk_branches``) so that a benchmark can
report them apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import tomllib
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.clock import Clock, SystemClock, clock_for
from common.passwords import hash_password
from controller.appointments import build_appointments
from controller.box import Box
from controller.config import Config, load_config, parse_config
from controller.engine import commands as c
from controller.errors import JournalError, Refused
from controller.uplink import Uplink, UplinkSettings

__all__ = ["BranchPlan", "Fleet", "FleetSettings", "branch_config", "branch_plan", "main",
           "org_names"]

log = logging.getLogger(__name__)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "branch.toml"
BUSINESSES = (("A", 0.55), ("B", 0.2), ("V", 0.1), ("T", 0.15))
WINDOWS = ((1, "t1"), (3, "t2"), (5, "t3"))
# Names for branches the organisation file does not name (zh, en); the code makes them unique.
STREETS = (("人民路", "Renmin Road"), ("解放路", "Jiefang Road"), ("建设路", "Jianshe Road"),
           ("文化路", "Wenhua Road"), ("中原路", "Zhongyuan Road"), ("大学路", "Daxue Road"),
           ("经三路", "Jingsan Road"), ("纬五路", "Weiwu Road"), ("农业路", "Nongye Road"),
           ("黄河路", "Huanghe Road"), ("嵩山路", "Songshan Road"), ("南阳路", "Nanyang Road"))
Names = Mapping[str, tuple[str, str]]  # branch code → (name, English name)


@dataclass(frozen=True)
class BranchPlan:
    """What makes one simulated branch unlike the others."""

    code: str
    name: str
    name_en: str
    tellers: int  # at work, at the first ``tellers`` of :data:`WINDOWS`
    busy: float  # × the fleet's rate
    seed: int  # its own random stream

    @property
    def windows(self) -> tuple[tuple[int, str], ...]:
        return WINDOWS[:self.tellers]


def branch_plan(code: str, seed: int = 1, names: Names | None = None) -> BranchPlan:
    """Branch ``code``'s name, size and seed: the same for the same code and seed."""
    rng = random.Random(f"{seed}:{code}")
    if names and code in names:
        name, name_en = names[code]
    else:
        street, street_en = STREETS[int(code) % len(STREETS)]
        name, name_en = f"{street}支行({code})", f"{street_en} Sub-branch ({code})"
    return BranchPlan(code, name, name_en, tellers=rng.randint(1, len(WINDOWS)),
                      busy=round(rng.uniform(0.4, 1.6), 2), seed=rng.getrandbits(32))


def org_names(path: str | Path) -> dict[str, tuple[str, str]]:
    """The branches' names in a centre configuration's ``[[web.orgs]]`` (code → names)."""
    with open(path, "rb") as f:
        orgs = tomllib.load(f).get("web", {}).get("orgs", [])
    return {str(o["code"]): (str(o["name"]), str(o.get("name_en") or o["name"]))
            for o in orgs if o.get("kind") == "branch"}


@dataclass
class FleetSettings:
    branches: int = 10
    broker: str = "mqtt://127.0.0.1:1883"
    password: str | None = None
    rate: float = 120.0  # tickets per hour per branch (a busy hour)
    service_minutes: float = 1.5  # a teller's mean handling time
    first_code: int = 9_000_000_001
    data_dir: Path | None = None  # default: a temporary folder (in /dev/shm when there)
    seed: int = 1
    uplink: dict[str, Any] = field(default_factory=dict)  # extra [uplink] settings
    appointments: bool = False  # each box keeps an appointment book, as a real one does
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # org_names(); others: streets
    disk_sample: int = 0  # this many branches keep their journals on a real disk …
    disk_dir: Path | None = None  # … here (default: a temporary folder under /var/tmp)


def fs_type(path: str | Path) -> str:
    """The file system ``path`` is on (``ext4``, ``tmpfs``…), from ``/proc/mounts``."""
    where, best, kind = os.path.realpath(path), "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind


def journal_label(path: str | Path) -> str:
    """How a figure measured with journals under ``path`` must be named: on tmpfs the
    journal's fsync costs nothing, which a branch's SD card or disk does not give."""
    kind = fs_type(path)
    if kind in ("tmpfs", "ramfs"):
        return f"{kind} journals, no fsync"
    return f"{kind} journals, fsync to disk"


def disk_codes(codes: list[str], sample: int) -> set[str]:
    """``sample`` of ``codes``, spread evenly over them (the first, then every k-th)."""
    if sample <= 0 or not codes:
        return set()
    sample = min(sample, len(codes))
    return {codes[i * len(codes) // sample] for i in range(sample)}


def branch_config(code: str, base: Config | None = None,
                  plan: BranchPlan | None = None) -> Config:
    """The example branch as branch ``code`` (named as ``plan`` says): open all day every
    day, quick teller logins."""
    plan = plan or branch_plan(code)
    data = (base or load_config(EXAMPLE)).model_dump(mode="json")
    data["branch"].update(code=code, name=plan.name, name_en=plan.name_en)
    data.update(hardware="none", calendar={"holidays": [], "workdays": []},
                hours={"workday": ["00:00-24:00"], "weekend": ["00:00-24:00"],
                       "holiday": ["00:00-24:00"]}, kiosk={})
    for q in data["queues"]:
        q.update(hours=None, days="all", daily_limit=0, digits=4)
    quick = hash_password("1234", n=2)  # simulated tellers: a cheap hash
    for t in data["tellers"]:
        t["password_hash"] = quick
    data["thresholds"]["branch_waiting_cap"] = 0
    data.pop("uplink", None)
    return parse_config(data, f"fleet:{code}")


class Fleet:
    """N simulated branches; ``async with Fleet(...) as f: await f.run(seconds)``."""

    def __init__(self, settings: FleetSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.boxes: list[Box] = []
        self.plans: dict[str, BranchPlan] = {}
        self.uplinks: list[Uplink] = []
        self.tickets = 0
        self.refused = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._made_dirs: list[Path] = []
        self.root: Path | None = None  # where most journals are
        self.disk_root: Path | None = None  # where the disk sample's are
        self.on_disk: set[str] = set()  # the codes of the disk sample

    async def __aenter__(self) -> Fleet:
        s = self.settings
        root = self.root = s.data_dir or self._temp_dir()
        base = load_config(EXAMPLE)
        link = UplinkSettings(broker=s.broker, password=s.password, **s.uplink)
        codes = [str(s.first_code + i) for i in range(s.branches)]
        self.on_disk = disk_codes(codes, s.disk_sample)
        if self.on_disk:
            self.disk_root = s.disk_dir or self._temp_dir(Path("/var/tmp"))
        self.plans = {code: branch_plan(code, s.seed, s.names) for code in codes}
        for start in range(0, len(codes), 50):  # open the journals 50 at a time
            chunk = codes[start:start + 50]
            boxes = [Box(branch_config(code, base, self.plans[code]),
                         (self.disk_root if code in self.on_disk and self.disk_root
                          else root) / code, self.clock)
                     for code in chunk]
            await asyncio.gather(*(b.__aenter__() for b in boxes))
            self.boxes += boxes
        for box in self.boxes:
            uplink = Uplink(link)
            self.uplinks.append(uplink)
            if s.appointments:  # the centre's booking lists are taken, not refused
                for comp in build_appointments(box.config, box.data_dir, [uplink]):
                    self._tasks.append(asyncio.create_task(comp.run(box),
                                                           name="fleet-appointments"))
            self._tasks.append(asyncio.create_task(uplink.run(box), name="fleet-uplink"))
        return self

    def _temp_dir(self, under: Path = Path("/dev/shm")) -> Path:
        made = Path(tempfile.mkdtemp(prefix="paidui-fleet-",
                                     dir=under if under.is_dir() else None))
        self._made_dirs.append(made)
        return made

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the traffic and the uplinks, close the journals. Safe twice."""
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        boxes, self.boxes = self.boxes, []
        await asyncio.gather(*(b.close() for b in boxes), return_exceptions=True)
        made, self._made_dirs = self._made_dirs, []
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)

    async def connected(self, timeout: float = 120.0) -> None:
        """Wait until every uplink is connected."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not all(u.connected for u in self.uplinks):
            if loop.time() > deadline:
                up = sum(u.connected for u in self.uplinks)
                raise TimeoutError(f"{up}/{len(self.uplinks)} uplinks connected")
            await asyncio.sleep(0.1)  # polling many links: there is no single event

    async def run(self, seconds: float) -> None:
        """Customers and tellers at every branch for ``seconds``."""
        for box in self.boxes:
            await self._login(box)
        traffic = [asyncio.create_task(self._arrivals(box), name="fleet-arrivals")
                   for box in self.boxes]
        traffic += [asyncio.create_task(self._window(box, n), name="fleet-window")
                    for box in self.boxes for n, _ in self._plan(box).windows]
        try:
            await asyncio.sleep(seconds)
        finally:
            for t in traffic:
                t.cancel()
            await asyncio.gather(*traffic, return_exceptions=True)

    def _plan(self, box: Box) -> BranchPlan:
        return self.plans[box.config.branch.code]

    async def _login(self, box: Box) -> None:
        for window, teller in self._plan(box).windows:
            with contextlib.suppress(Refused):
                await box.execute(c.Login(window, teller, "1234"))

    async def _arrivals(self, box: Box) -> None:
        plan = self._plan(box)
        rng = random.Random(plan.seed)
        queues = [q for q, _ in BUSINESSES]
        weights = [w for _, w in BUSINESSES]
        mean = 3600.0 / (self.settings.rate * plan.busy)
        await asyncio.sleep(rng.uniform(0, mean))  # branches out of step
        while True:
            try:
                await box.execute(c.IssueTicket(queue=rng.choices(queues, weights)[0]))
                self.tickets += 1
            except (Refused, JournalError):
                self.refused += 1
            await asyncio.sleep(rng.expovariate(1 / mean))

    async def _window(self, box: Box, window: int) -> None:
        rng = random.Random(self._plan(box).seed + window)
        mean = self.settings.service_minutes * 60
        while True:
            await asyncio.sleep(rng.expovariate(1 / mean))
            with contextlib.suppress(Refused, JournalError):
                await box.execute(c.CallNext(window))

    def stats(self) -> dict[str, Any]:
        journaled = sum(b.last_seq for b in self.boxes)
        acked = sum(u.acked for u in self.uplinks)
        return {
            "branches": len(self.boxes),
            "connected": sum(u.connected for u in self.uplinks),
            "tickets": self.tickets,
            "refused": self.refused,
            "events": journaled,
            "acked": acked,
            "backlog": journaled - acked,
            "retries": sum(u.counters.retries for u in self.uplinks),
            "timeouts": sum(u.counters.timeouts for u in self.uplinks),
            "disconnects": sum(u.counters.disconnects for u in self.uplinks),
            "connection_failures": sum(u.counters.connection_failures for u in self.uplinks),
            # what the figures must be called: tmpfs journals pay no fsync
            "journals": journal_label(self.root) if self.root else "none",
            "disk_journals": journal_label(self.disk_root) if self.disk_root else None,
            "disk_branches": sorted(self.on_disk),
        }

    async def drained(self, timeout: float = 120.0) -> bool:
        """Wait until the centre has acknowledged every journaled event."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if all(u.acked == b.last_seq for u, b in zip(self.uplinks, self.boxes,
                                                           strict=True)):
                return True
            await asyncio.sleep(0.2)  # polling many links: there is no single event
        return False


def raise_file_limit() -> None:
    """Thousands of branches need thousands of sockets and SQLite files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _instant(text: str) -> dt.datetime:
    """``--clock-start``: an ISO instant with its zone (2026-11-25T10:00:00+08:00)."""
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2026-11-25T10:00:00+08:00")
    return when


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sim fleet", description=__doc__.splitlines()[0])
    p.add_argument("--branches", type=int, default=10)
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    p.add_argument("--password", default=None, help="every branch's broker password")
    p.add_argument("--rate", type=float, default=120.0, help="tickets/hour per branch")
    p.add_argument("--service-minutes", type=float, default=1.5)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of traffic")
    p.add_argument("--first-code", type=int, default=9_000_000_001)
    p.add_argument("--data-dir", type=Path, default=None,
                   help="where the journals are (default: a temporary folder on /dev/shm)")
    p.add_argument("--disk-sample", type=int, default=0, metavar="N",
                   help="N branches (spread over the codes) keep their journals on a real disk")
    p.add_argument("--disk-dir", type=Path, default=None,
                   help="where the disk sample's journals are (default: under /var/tmp)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drain", type=float, default=60.0, help="seconds to wait for acks")
    p.add_argument("--clock-start", type=_instant, default=None,
                   metavar="ISO", help="the boxes' clock starts here (with a zone) and runs on; "
                                       "default: the system clock")
    p.add_argument("--orgs", type=Path, default=None, metavar="FILE",
                   help="a centre configuration: the branches are named as its [[web.orgs]]")
    p.add_argument("--appointments", action="store_true",
                   help="each branch keeps an appointment book (takes the centre's bookings)")
    p.add_argument("--procs", type=int, default=1,
                   help="split the branches over this many processes (one event loop each)")
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


def run_split(args: argparse.Namespace) -> dict[str, Any]:
    """Run the fleet as ``args.procs`` processes of about equal size; add up their figures."""
    import subprocess

    share, extra = divmod(args.branches, args.procs)
    base = ["--broker", args.broker, "--rate", str(args.rate), "--service-minutes",
            str(args.service_minutes), "--duration", str(args.duration), "--drain",
            str(args.drain), "--log-level", args.log_level]
    if args.password is not None:
        base.append(f"--password={args.password}")  # (one word: it may begin with "-")
    if args.appointments:
        base.append("--appointments")
    if args.orgs is not None:
        base += ["--orgs", str(args.orgs)]
    if args.clock_start is not None:  # each part's clock from the same instant
        base += ["--clock-start", args.clock_start.isoformat()]
    procs, first = [], args.first_code
    on_disk = disk_codes([str(args.first_code + i) for i in range(args.branches)],
                         args.disk_sample)
    for i in range(args.procs):
        n = share + (i < extra)
        cmd = [sys.executable, "-m", "sim", "fleet", *base, "--branches", str(n),
               "--first-code", str(first), "--seed", str(args.seed + i)]
        if args.data_dir is not None:
            cmd += ["--data-dir", str(args.data_dir / f"part{i}")]
        mine = sum(str(first + k) in on_disk for k in range(n))
        if mine:  # this part's share of the sample (spread in each part the same way)
            cmd += ["--disk-sample", str(mine)]
            if args.disk_dir is not None:
                cmd += ["--disk-dir", str(args.disk_dir / f"part{i}")]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
        first += n
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    total: dict[str, Any] = {k: sum(r[k] for r in results) for k in results[0]
                             if isinstance(results[0][k], int | float)
                             and not isinstance(results[0][k], bool)}
    total.update(drained=all(r["drained"] for r in results), procs=args.procs,
                 start_s=max(r["start_s"] for r in results), duration_s=args.duration,
                 journals=results[0]["journals"],
                 disk_journals=next((r["disk_journals"] for r in results
                                     if r["disk_journals"]), None),
                 disk_branches=sorted(c for r in results for c in r["disk_branches"]))
    return total


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    settings = FleetSettings(branches=args.branches, broker=args.broker, password=args.password,
                             rate=args.rate, service_minutes=args.service_minutes,
                             first_code=args.first_code, data_dir=args.data_dir, seed=args.seed,
                             appointments=args.appointments,
                             names=org_names(args.orgs) if args.orgs else {},
                             disk_sample=args.disk_sample, disk_dir=args.disk_dir)
    started = time.monotonic()
    async with Fleet(settings, clock_for(args.clock_start)) as fleet:
        await fleet.connected()
        ready = time.monotonic() - started
        cpu = time.process_time()
        stopped = await _until_done_or_signal(fleet.run(args.duration))
        cpu = time.process_time() - cpu  # what the simulated branches cost during traffic
        # stopped by a signal: a short wait; what is not acked stays in the journals
        drained = await fleet.drained(min(args.drain, 5.0) if stopped else args.drain)
        return {**fleet.stats(), "start_s": round(ready, 1), "duration_s": args.duration,
                "traffic_cpu_s": round(cpu, 1), "drained": drained, "stopped": stopped}


async def _until_done_or_signal(work: Coroutine[Any, Any, None]) -> bool:
    """Run ``work``; SIGINT or SIGTERM cuts it short. Returns whether a signal came."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task, stopper = asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        stopper.cancel()
        task.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    if not task.cancelled():
        task.result()  # the traffic's own failure, if it had one
    return stop.is_set()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # paho reports every socket of thousands of simulated links closing at the end
    logging.getLogger("mqtt").setLevel(logging.CRITICAL)
    raise_file_limit()
    try:
        result = run_split(args) if args.procs > 1 else asyncio.run(_main(args))
    except (TimeoutError, JournalError, ValueError) as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0 if result["drained"] or result.get("stopped") else 1
