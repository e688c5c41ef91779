"""The box on a Raspberry Pi 4's budget: one slow core and an SD card's fsync.

    sudo python bench/bench_pi.py [--slowdown 10] [--sd-fsync-ms 2-10] [--kiosk-rate 2]
                                  [--rs485 modbus:115200,modbus:9600] [--samples 200]

Runs the box's benchmarks, or their core loops, with the box's process held to a Pi 4's
budget, and prints what it achieves there:

* **One slow core.** A cgroup of its own (v2 ``cpu.max``, else v1 ``cpu.cfs_quota_us``)
  gives the box ``1 / slowdown`` of one core, and ``taskset -c 0`` keeps it on one core.
  The quota is 1 ms in a period of ``slowdown`` ms, so the box is held up at most
  ``slowdown`` - 1 ms at a time (a real slow core is evenly slow; a 100 ms period would
  stall it for 90 ms in a row). The box's group, and the one this bench moves itself into,
  weigh 64 ordinary processes each, so other work on a shared machine does not take what
  the quota grants (the quota is a ceiling, not a promise). The slowdown comes from a
  reference workload with published Pi 4 figures (the n-body program,
  ``--reference-steps``): it is measured here and printed beside the chosen factor, and
  again under the budget, so the budget is checked.
* **An SD card's fsync.** Every ``fsync``/``fdatasync`` of the box's process takes at
  least a latency drawn uniformly from ``--sd-fsync-ms`` (the real disk's own time counts
  towards it): a small ``LD_PRELOAD`` shim, compiled here with ``cc``, around the C
  library's calls. Nothing in the box is changed or patched; SQLite's own commits meet
  the delay. The shim counts the calls it delayed, printed, so a run shows it was active.

The load generators and the simulated devices run outside the budget, on the other core
(they are other machines in a branch: the kiosk's browser, the keypads and displays).

Measured under the budget: engine commands/s (``bench_engine.py``), durable issue p50/p99
and group commit (``bench_journal.py``), HTTP tickets/s at a few connections (the box as
``python -m controller``, driven by ``wrk``, as ``bench_http.py`` does), and the keypad →
display p99 over the virtual RS485 bus (``bench_rs485.py``'s measurement) against the
real box process while a kiosk issues ``--kiosk-rate`` tickets a second over HTTP.

Exit status 1 when a Modbus keypad → display p99 misses its goal (≤ 2 × the 16-keypad
poll cycle, docs/performance.md), when any request fails (HTTP answers other than the
expected ones, a kiosk ticket refused), or when a benchmark it runs fails; 2 when the
budget cannot be set up here (not root, no cgroup cpu controller, no compiler, no wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from bench_rs485 import WINDOWS, Devices, branch_config, floor_s, percentile, poll_s  # noqa: E402

from common.passwords import hash_password  # noqa: E402

# Published: a Raspberry Pi 4 Model B (Cortex-A72, 1.5 GHz, performance governor) ran the
# n-body benchmark in Python for 5,000,000 steps in 158.263 s (C++: 1.743 s),
# https://chaitanyamehta.github.io/projects/performance-analysis-of-programming-languages
PI4_NBODY_US_PER_STEP = 158.263 / 5_000_000 * 1e6
# Published: an A1 card is rated for at least 500 random 4 KiB writes a second (2 ms each,
# SD Association Application Performance Class 1); a commit's fsync costs one or more such
# writes plus the file system's journal, and the card's own flushes come on top.
SD_FSYNC_MS = "2-10"
BOX_ARGS = ["--set", 'hardware="none"', "--set", "clock.start=2026-11-25T10:00:00+08:00",
            "--set", "thresholds.branch_waiting_cap=0", "--set", "thresholds.lobby_alert_waiting=0",
            "--set", "queues.0.digits=6", "--log-level", "WARNING"]

SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
/* Every fsync/fdatasync takes at least a latency drawn from PAIDUI_SD_FSYNC_MS ("lo-hi"). */
static double lo_ms, hi_ms;
static unsigned long calls;
static __thread unsigned int seed;
__attribute__((constructor)) static void init(void) {
    const char *s = getenv("PAIDUI_SD_FSYNC_MS");
    if (s && sscanf(s, "%lf-%lf", &lo_ms, &hi_ms) < 2) hi_ms = lo_ms;
}
static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
static void delay(double started) {
    if (!seed) /* per thread: the address of its own seed tells threads apart */
        seed = (unsigned int)time(NULL) ^ (unsigned int)getpid() ^ (unsigned int)(size_t)&seed;
    double ms = lo_ms + (hi_ms - lo_ms) * (rand_r(&seed) / (double)RAND_MAX);
    __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
    ms -= now_ms() - started; /* the real disk's own time counts towards it */
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - 1000.0 * (long)(ms / 1000)) * 1e6)};
    while (nanosleep(&ts, &ts) != 0) {}
}
int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    double t = now_ms();
    int r = real(fd);
    delay(t);
    return r;
}
int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    double t = now_ms();
    int r = real(fd);
    delay(t);
    return r;
}
__attribute__((destructor)) static void report(void) {
    const char *log = getenv("PAIDUI_SD_FSYNC_LOG");
    if (!log || !calls) return;
    FILE *f = fopen(log, "a");
    if (f) { fprintf(f, "%d %lu\n", (int)getpid(), calls); fclose(f); }
}
"""

# wrk: each connection alternates a ticket and a call-next at windows 1, 2, 3, and every
# answer's status is counted: 201 a ticket, 200 a call, 404 ``no_waiting`` a call with nobody
# waiting for that window; anything else is a failed request.
MIX_LUA = """
local tokens = {os.getenv("PAIDUI_T1"), os.getenv("PAIDUI_T2"), os.getenv("PAIDUI_T3")}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n = 0; created = 0; called = 0; nobody = 0; bad = 0; seen = "" end
function request()
  n = n + 1
  if n % 2 == 1 then
    return wrk.format("POST", "/api/tickets", {["Content-Type"] = "application/json"},
                      '{"queue": "A"}')
  end
  local w = (n / 2) % 3 + 1
  return wrk.format("POST", "/api/windows/" .. w .. "/call-next",
                    {["Authorization"] = "Bearer " .. tokens[w]}, "")
end
function response(status, headers, body)
  if status == 201 then created = created + 1
  elseif status == 200 then called = called + 1
  elseif status == 404 and string.find(body, '"no_waiting"', 1, true) then nobody = nobody + 1
  else
    bad = bad + 1
    if bad <= 3 then seen = seen .. " " .. status .. ":" .. string.sub(body, 1, 120) end
  end
end
function done(summary, latency, requests)
  local c, k, b = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created"); k = k + t:get("called") + t:get("nobody"); b = b + t:get("bad")
    if t:get("bad") > 0 then io.write("FAILED" .. t:get("seen") .. "\\n") end
  end
  io.write(string.format("RESULT %d %d %d %f %d %d %d\\n", c, k, b, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99), summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


# --- the budget ---------------------------------------------------------------------------


@dataclass
class Budget:
    """A cgroup holding its processes to ``1 / slowdown`` of one core, on CPU 0, with the
    SD-card fsync shim preloaded."""

    slowdown: float
    sd_fsync_ms: str
    work: Path
    cgroup: Path = field(init=False)
    rig: Path = field(init=False)
    home: str = field(init=False)
    kind: str = field(init=False)
    shim: Path = field(init=False)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.shim = build_shim(self.work)  # first: a missing compiler leaves no cgroup behind
        self.cgroup, self.kind = _make_cgroup(f"paidui-pi-{os.getpid()}", self.slowdown)
        # this process, the devices and the load generators: unlimited, as heavy as the box
        self.rig, _ = _make_cgroup(f"paidui-pi-rig-{os.getpid()}", None)
        self.home = _own_cgroup("v2" in self.kind)
        (self.rig / "cgroup.procs").write_text(str(os.getpid()))
        self.log = self.work / "sd_fsync.log"

    @property
    def quota(self) -> str:
        period_us = round(1000 * self.slowdown)
        return f"1000 µs of CPU every {period_us} µs ({100 / self.slowdown:.1f} % of one core)"

    def command(self, argv: list[str], sd: bool = True, limited: bool = True
                ) -> tuple[list[str], dict[str, str]]:
        """``argv`` run inside the budget: its process joins the cgroup, then execs. With
        ``limited`` false, on the same core without the quota (the control)."""
        procs = (self.cgroup if limited else self.rig) / "cgroup.procs"
        wrapped = ["sh", "-c", f'echo $$ > {procs} && exec taskset -c 0 "$@"', "sh", *argv]
        env = dict(os.environ)
        if sd:
            env.update(LD_PRELOAD=str(self.shim), PAIDUI_SD_FSYNC_MS=self.sd_fsync_ms,
                       PAIDUI_SD_FSYNC_LOG=str(self.log))
        return wrapped, env

    def delayed_fsyncs(self) -> int:
        """How many fsyncs the shim has delayed so far (processes that have ended)."""
        if not self.log.exists():
            return 0
        return sum(int(line.split()[1]) for line in self.log.read_text().splitlines())

    def throttled(self) -> str:
        stat = (self.cgroup / "cpu.stat").read_text().split()
        values = dict(zip(stat[::2], stat[1::2], strict=False))
        return f"{values.get('nr_throttled', '?')} of {values.get('nr_periods', '?')} periods"

    def close(self) -> None:
        home = self.rig.parent / self.home.lstrip("/")
        (home / "cgroup.procs").write_text(str(os.getpid()))  # back where it came from
        _remove(self.cgroup)
        _remove(self.rig)


SHARES = 64  # each group weighs as much as 64 ordinary processes when the CPU is contended


def _make_cgroup(name: str, slowdown: float | None) -> tuple[Path, str]:
    """A cgroup weighing ``SHARES`` ordinary processes; with ``slowdown``, a quota of 1 ms
    every ``slowdown`` ms. The weight keeps other work on this machine from taking what
    the budget grants (the quota is a ceiling, not a guarantee)."""
    mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    for _, where, fstype, *_ in mounts:
        if fstype == "cgroup2":
            root = Path(where)
            if "cpu" in (root / "cgroup.controllers").read_text().split():
                with contextlib.suppress(OSError):
                    (root / "cgroup.subtree_control").write_text("+cpu")
                group = root / name
                group.mkdir()
                (group / "cpu.weight").write_text(str(100 * SHARES))
                if slowdown is not None:
                    (group / "cpu.max").write_text(f"1000 {round(1000 * slowdown)}")
                return group, f"cgroup v2 cpu.max at {group}"
    for _, where, fstype, options, *_ in mounts:
        if fstype == "cgroup" and "cpu" in options.split(","):
            group = Path(where) / name
            group.mkdir()
            (group / "cpu.shares").write_text(str(1024 * SHARES))
            if slowdown is not None:
                (group / "cpu.cfs_period_us").write_text(str(round(1000 * slowdown)))
                (group / "cpu.cfs_quota_us").write_text("1000")
            return group, f"cgroup v1 cpu.cfs_quota_us at {group}"
    raise SetupError("no cgroup with the cpu controller is mounted here")


def _own_cgroup(v2: bool) -> str:
    """This process's cgroup (the path below the hierarchy's root)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if (v2 and number == "0") or (not v2 and "cpu" in controllers.split(",")):
            return path
    return "/"


def _remove(group: Path) -> None:
    for _ in range(50):
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.1)  # its last process is still exiting


def build_shim(work: Path) -> Path:
    """Compile the SD-card fsync shim into ``work``; its path (for ``LD_PRELOAD``)."""
    shim = work / "sd_fsync.so"
    (work / "sd_fsync.c").write_text(SHIM_C)
    subprocess.run([_compiler(), "-O2", "-Wall", "-shared", "-fPIC", "-o", str(shim),
                    str(work / "sd_fsync.c"), "-ldl"], check=True)
    return shim


def _compiler() -> str:
    for cc in ("cc", "gcc", "clang"):
        if found := shutil.which(cc):
            return found
    raise SetupError("no C compiler (cc) to build the fsync shim: apt-get install gcc")


class SetupError(Exception):
    """The budget cannot be set up on this machine."""


# --- the reference workload: n-body -----------------------------------------------------

NBODY = r'''
import sys, time
PI = 3.14159265358979323
SOLAR_MASS = 4 * PI * PI
DAYS = 365.24
SYSTEM = [
    ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], SOLAR_MASS),
    ([4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01],
     [1.66007664274403694e-03 * DAYS, 7.69901118419740425e-03 * DAYS,
      -6.90460016972063023e-05 * DAYS], 9.54791938424326609e-04 * SOLAR_MASS),
    ([8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01],
     [-2.76742510726862411e-03 * DAYS, 4.99852801234917238e-03 * DAYS,
      2.30417297573763929e-05 * DAYS], 2.85885980666130812e-04 * SOLAR_MASS),
    ([1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01],
     [2.96460137564761618e-03 * DAYS, 2.37847173959480950e-03 * DAYS,
      -2.96589568540237556e-05 * DAYS], 4.36624404335156298e-05 * SOLAR_MASS),
    ([1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01],
     [2.68067772490389322e-03 * DAYS, 1.62824170038242295e-03 * DAYS,
      -9.51592254519715870e-05 * DAYS], 5.15138902046611451e-05 * SOLAR_MASS)]
PAIRS = [(SYSTEM[i], b) for i in range(len(SYSTEM) - 1) for b in SYSTEM[i + 1:]]

def advance(dt, n, bodies=SYSTEM, pairs=PAIRS):
    for _ in range(n):
        for (([x1, y1, z1], v1, m1), ([x2, y2, z2], v2, m2)) in pairs:
            dx = x1 - x2; dy = y1 - y2; dz = z1 - z2
            mag = dt * ((dx * dx + dy * dy + dz * dz) ** (-1.5))
            b1m = m1 * mag; b2m = m2 * mag
            v1[0] -= dx * b2m; v1[1] -= dy * b2m; v1[2] -= dz * b2m
            v2[0] += dx * b1m; v2[1] += dy * b1m; v2[2] += dz * b1m
        for (r, [vx, vy, vz], m) in bodies:
            r[0] += dt * vx; r[1] += dt * vy; r[2] += dt * vz

n = int(sys.argv[1])
wall, cpu = time.perf_counter(), time.process_time()
advance(0.01, n)
print((time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6)
'''


def nbody(argv_prefix: list[str], env: dict[str, str] | None, steps: int) -> tuple[float, float]:
    """(wall, cpu) µs a step of the n-body program, run by ``argv_prefix + [python]``."""
    out = subprocess.run([*argv_prefix, sys.executable, "-c", NBODY, str(steps)], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


# --- helpers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    return percentile(values, p)


def toml_value(value: Any) -> str:
    """A TOML literal for ``--set`` (strings, numbers, lists and tables of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def disk_fsync(where: Path, n: int = 200) -> tuple[float, float]:
    """p50, p99 ms of a 4 KiB append + fsync on ``where``'s disk (no shim: this machine)."""
    path = where / "fsync-probe"
    lat = []
    with path.open("ab") as f:
        for _ in range(n):
            f.write(os.urandom(4096))
            f.flush()
            t = time.perf_counter()
            os.fsync(f.fileno())
            lat.append((time.perf_counter() - t) * 1000)
    path.unlink()
    return statistics.median(lat), pct(lat, 99)


@contextlib.contextmanager
def box_process(budget: Budget, data: Path, port: int, extra: list[str], limited: bool = True
                ) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m controller`` inside the budget (or, not ``limited``, the control: the
    same core, no quota, no SD latency), on ``port``; ended on leaving."""
    argv, env = budget.command(
        [sys.executable, "-m", "controller", "--config", "examples/branch.toml",
         "--data-dir", str(data), "--http", f"127.0.0.1:{port}", *BOX_ARGS, *extra],
        sd=limited, limited=limited)
    proc = subprocess.Popen(argv, cwd=ROOT, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as c:
        deadline = time.monotonic() + 120  # a slow core imports for a while
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the box exited with {proc.returncode}")
            try:
                if (await c.get("/api/status")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)  # the box is starting
    raise RuntimeError("the box did not answer /api/status within 120 s")


async def login(c: httpx.AsyncClient, windows: range) -> dict[int, str]:
    tokens = {}
    for n in windows:
        r = await c.post(f"/api/windows/{n}/login", json={"teller": f"t{n}", "password": "1234"})
        if r.status_code != 200:
            raise RuntimeError(f"login at window {n}: {r.status_code} {r.text}")
        tokens[n] = str(r.json()["token"])
    return tokens


def run_bench(budget: Budget, script: str, args: list[str]) -> str:
    """One of the other benchmarks, whole, inside the budget; its output, echoed."""
    argv, env = budget.command([sys.executable, str(BENCH / script), *args])
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        print(f"    | {line}")
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        raise BenchFailed(f"{script} exited with {done.returncode}")
    return done.stdout


class BenchFailed(Exception):
    """A benchmark run under the budget failed."""


# --- the measurements ---------------------------------------------------------------------


def engine(budget: Budget, customers: int) -> float:
    out = run_bench(budget, "bench_engine.py", ["--customers", str(customers), "--repeat", "3"])
    rates = [float(x.replace(",", "")) for x in re.findall(r"= ([\d,]+) commands/s", out)]
    if not rates:
        raise BenchFailed("bench_engine.py printed no commands/s")
    return max(rates)


def journal(budget: Budget, n: int, seconds: float, where: Path) -> dict[str, float]:
    out = run_bench(budget, "bench_journal.py", ["--n", str(n), "--seconds", f"{seconds:g}",
                                                 "--dir", str(where / "journal")])
    figures: dict[str, float] = {}
    for key, pattern in (("floor", r"floor .*?p50 ([\d.]+) ms\s+p99 ([\d.]+) ms"),
                         ("issue", r"issue .*?p50 ([\d.]+) ms\s+p99 ([\d.]+) ms")):
        if m := re.search(pattern, out):
            figures[f"{key}_p50"], figures[f"{key}_p99"] = float(m[1]), float(m[2])
    if m := re.search(r"group commit.*?: ([\d,]+) tickets/s, ([\d.]+) commands per commit", out):
        figures["group"], figures["batch"] = float(m[1].replace(",", "")), float(m[2])
    if "issue_p99" not in figures:
        raise BenchFailed("bench_journal.py printed no durable issue p50/p99")
    return figures


def http(budget: Budget, where: Path, connections: list[int], seconds: float
         ) -> list[tuple[int, float, float, float, int]]:
    """(connections, tickets/s, p50 ms, p99 ms, failed requests) for each count."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    lua = where / "mix.lua"
    lua.write_text(MIX_LUA)
    results = []
    with box_process(budget, where / "http", port, []) as proc:
        async def ready() -> dict[int, str]:
            await wait_ready(base, proc)
            async with httpx.AsyncClient(base_url=base, timeout=30) as c:
                return await login(c, range(1, 4))
        tokens = asyncio.run(ready())
        for n in connections:
            results.append((n, *wrk(base, tokens, n, seconds, lua)))
    return results


def wrk(base: str, tokens: dict[int, str], connections: int, seconds: float, lua: Path,
        cpu: str = "1") -> tuple[float, float, float, int]:
    """One wrk run of MIX_LUA on CPU ``cpu``: (tickets/s, p50 ms, p99 ms, failed requests);
    a failed request is any answer but the expected ones, or a socket error."""
    env = {**os.environ, **{f"PAIDUI_T{n}": t for n, t in tokens.items()}}
    done = subprocess.run(["taskset", "-c", cpu, "wrk", "-t1", f"-c{connections}",
                           f"-d{seconds:g}s", "--timeout", "10s", "-s", str(lua), base],
                          env=env, capture_output=True, text=True, check=True)
    out = done.stdout
    m = re.search(r"RESULT (\d+) (\d+) (\d+) ([\d.]+) (\d+) (\d+) (\d+)", out)
    if not m:
        raise BenchFailed(f"wrk printed no result: {out} {done.stderr}")
    created, _calls, bad, secs, p50, p99, errors = m.groups()
    for failed in re.findall(r"^FAILED.*$", out, re.M):
        print(f"    | {failed}")
    if int(errors):
        print(f"    | wrk: {errors} socket errors (connect, read, write, timeout)")
    return (int(created) / float(secs), int(p50) / 1000, int(p99) / 1000,
            int(bad) + int(errors))


@dataclass
class Rs485Result:
    profile: str
    baud: int
    limited: bool
    single: list[float]
    kiosk_ok: int
    kiosk_failed: list[str]
    kiosk_latency: list[float]

    @property
    def goal(self) -> float | None:
        """The documented goal for the p99, in seconds (Modbus: 2 × the poll cycle)."""
        return 2 * poll_s(self.baud) * WINDOWS if self.profile == "modbus" else None


async def rs485(budget: Budget, where: Path, profile: str, baud: int, samples: int,
                kiosk_rate: float, seed: int, limited: bool = True) -> Rs485Result:
    """bench_rs485's *single* load against the real box process, with a kiosk issuing."""
    rng = random.Random(seed)
    config = branch_config(profile, baud)
    cheap = hash_password("1234", n=2, r=1, p=1)  # a slow core need not spend seconds on logins
    tellers = [{"id": f"t{n}", "name": f"柜员{n}", "password_hash": cheap, "keypad_code": n}
               for n in range(1, WINDOWS + 1)]
    windows = [{"number": n, "queues": {"A": 5}} for n in range(1, WINDOWS + 1)]
    line = Devices()
    await line.start(profile, baud, in_process=True)  # the devices: here, outside the budget
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    extra = ["--set", f"windows={toml_value(windows)}", "--set", f"tellers={toml_value(tellers)}",
             "--set", f"rs485.profile={toml_value(profile)}", "--set", f"rs485.baudrate={baud}",
             "--set", f"rs485.port={toml_value(line.port)}"]
    assert config.rs485["profile"] == profile
    kiosk_ok, kiosk_failed, kiosk_latency = 0, [], []
    single: list[float] = []
    try:
        data = where / f"rs485-{profile}-{baud}-{'pi' if limited else 'control'}"
        with box_process(budget, data, port, extra, limited) as proc:
            await wait_ready(base, proc)
            async with httpx.AsyncClient(base_url=base, timeout=30) as c:
                for _ in range(samples + 2 * WINDOWS):  # enough waiting for every press
                    r = await c.post("/api/tickets", json={"queue": "A"})
                    if r.status_code != 201:
                        raise BenchFailed(f"issuing before the run: {r.status_code} {r.text}")
                await login(c, range(1, WINDOWS + 1))
                for n in range(1, WINDOWS + 1):  # every device online, the path warm
                    await line.press_and_wait(n)
                stop = asyncio.Event()

                async def kiosk() -> None:
                    nonlocal kiosk_ok
                    loop = asyncio.get_running_loop()
                    nxt = loop.time()
                    while not stop.is_set():
                        t = time.perf_counter()
                        r = await c.post("/api/tickets", json={"queue": "A"})
                        kiosk_latency.append(time.perf_counter() - t)
                        if r.status_code == 201:
                            kiosk_ok += 1
                        else:
                            kiosk_failed.append(f"{r.status_code} {r.text[:200]}")
                        nxt += 1 / kiosk_rate
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), max(0.0, nxt - loop.time()))

                issuing = asyncio.create_task(kiosk())
                loop = asyncio.get_running_loop()
                last = dict.fromkeys(range(1, WINDOWS + 1), 0.0)
                try:
                    for _ in range(samples):
                        await asyncio.sleep(rng.uniform(0, 0.05))  # a random moment in the cycle
                        # No teller presses the same key twice within a second (one press).
                        free_at = min(last.values()) + 1.2
                        if free_at > loop.time():
                            await asyncio.sleep(free_at - loop.time())  # a window is free then
                        window = rng.choice([w for w, t in last.items() if loop.time() - t > 1.2])
                        last[window] = loop.time()
                        single.append(await line.press_and_wait(window))
                finally:
                    stop.set()
                    await issuing
    finally:
        await line.stop()
    return Rs485Result(profile, baud, limited, single, kiosk_ok, kiosk_failed, kiosk_latency)


# --- the run ------------------------------------------------------------------------------


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    load = os.getloadavg()
    return (f"{model}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slowdown", type=float, default=10.0,
                   help="how many times slower than one core here (default 10: a published "
                        "Pi 4 n-body figure against this machine's, rounded down; the "
                        "reference line prints both)")
    p.add_argument("--sd-fsync-ms", default=SD_FSYNC_MS,
                   help="each fsync takes at least this many ms, drawn uniformly (lo-hi)")
    p.add_argument("--reference-steps", type=int, default=200_000)
    p.add_argument("--customers", type=int, default=5000, help="bench_engine.py --customers")
    p.add_argument("--journal-n", type=int, default=500, help="bench_journal.py --n")
    p.add_argument("--seconds", type=float, default=5.0, help="each timed load")
    p.add_argument("--connections", default="1,4,20")
    p.add_argument("--rs485", default="modbus:115200,modbus:9600",
                   help="profile:baud pairs (the goal is checked for Modbus)")
    p.add_argument("--samples", type=int, default=200, help="keypad presses per bus")
    p.add_argument("--kiosk-rate", type=float, default=2.0, help="kiosk tickets a second")
    p.add_argument("--seed", type=int, default=485)
    p.add_argument("--control", action="store_true",
                   help="before each bus under the budget, the same run without it (the same "
                        "core, no quota, this disk's fsync): what this machine does now")
    p.add_argument("--dir", default=None, help="where the journals go (default: a temp dir "
                   "on the disk under test)")
    p.add_argument("--only", default="reference,disk,engine,journal,http,rs485",
                   help="which parts to run")
    args = p.parse_args()
    parts = set(args.only.split(","))
    if os.geteuid() != 0:
        print("bench_pi: needs root (a cgroup of its own)", file=sys.stderr)
        return 2
    if "http" in parts and not shutil.which("wrk"):
        print("bench_pi: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    work = Path(args.dir or tempfile.mkdtemp(prefix="paidui-pi-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    os.sched_setaffinity(0, {1})  # the load generators and devices: off the box's core
    try:
        budget = Budget(args.slowdown, args.sd_fsync_ms, work)
    except (SetupError, OSError, subprocess.CalledProcessError) as exc:
        print(f"bench_pi: cannot set up the budget here: {exc}", file=sys.stderr)
        return 2
    failures: list[str] = []
    try:
        failures = run(args, parts, budget, work)
    except BenchFailed as exc:
        failures.append(str(exc))
    finally:
        budget.close()
    print(f"machine at the end: {machine()}")
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("all goals met, no request failed")
    return 0


def run(args: argparse.Namespace, parts: set[str], budget: Budget, work: Path) -> list[str]:
    failures: list[str] = []
    print(f"machine: {machine()}")
    print(f"budget: {budget.kind}: {budget.quota}, taskset -c 0 (slowdown {budget.slowdown:g}×)")
    print(f"SD card: each fsync/fdatasync of the box takes ≥ U({budget.sd_fsync_ms}) ms "
          f"(LD_PRELOAD shim {budget.shim})")
    print(f"data: {work} (the disk under test)")
    if "reference" in parts:
        here = nbody(["taskset", "-c", "0"], None, args.reference_steps)
        argv, env = budget.command([], sd=False)
        under = nbody(argv, env, max(1, round(args.reference_steps / budget.slowdown)))
        print(f"reference, n-body in Python: here {here[1]:.2f} µs a step (CPU time; "
              f"{here[0]:.2f} wall); Raspberry Pi 4 (published) {PI4_NBODY_US_PER_STEP:.2f} µs "
              f"= {PI4_NBODY_US_PER_STEP / here[1]:.1f}× slower; under this budget "
              f"{under[0]:.2f} µs a step wall = {under[0] / here[1]:.1f}× (chosen "
              f"{budget.slowdown:g}×)")
    if "disk" in parts:
        p50, p99 = disk_fsync(work)
        print(f"this disk, 4 KiB append + fsync: p50 {p50:.2f} ms  p99 {p99:.2f} ms "
              f"(under the budget each takes at least {budget.sd_fsync_ms} ms)")
    if "engine" in parts:
        print("engine (bench_engine.py) under the budget:")
        print(f"ENGINE: {engine(budget, args.customers):,.0f} commands/s at best")
    if "journal" in parts:
        print("journal (bench_journal.py) under the budget, SD-card fsync:")
        j = journal(budget, args.journal_n, args.seconds, work)
        print(f"DURABLE ISSUE: p50 {j['issue_p50']:.2f} ms  p99 {j['issue_p99']:.2f} ms "
              f"(floor p50 {j.get('floor_p50', float('nan')):.2f} ms  p99 "
              f"{j.get('floor_p99', float('nan')):.2f} ms); group commit "
              f"{j.get('group', float('nan')):,.0f} tickets/s, "
              f"{j.get('batch', float('nan')):.1f} commands per commit")
    if "http" in parts:
        print("HTTP (python -m controller under the budget, wrk on the other core):")
        for n, rate, p50, p99, bad in http(budget, work, [int(x) for x in
                                                          args.connections.split(",")],
                                           args.seconds):
            print(f"HTTP: {n:3d} connections: {rate:6,.0f} tickets/s (and as many call-next), "
                  f"p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  failed requests {bad}")
            if bad:
                failures.append(f"HTTP at {n} connections: {bad} requests failed")
    if "rs485" in parts:
        print(f"RS485 keypad → display, {WINDOWS} windows, the box under the budget, the "
              f"virtual bus outside it, a kiosk issuing {args.kiosk_rate:g} tickets/s over HTTP:")
        for item in args.rs485.split(","):
            profile, baud = item.split(":")
            control = None
            if args.control:
                control = asyncio.run(rs485(budget, work, profile, int(baud), args.samples,
                                            args.kiosk_rate, args.seed, limited=False))
                failures += report_rs485(control)
            r = asyncio.run(rs485(budget, work, profile, int(baud), args.samples,
                                  args.kiosk_rate, args.seed))
            failures += report_rs485(r)
            if control is not None:
                print(f"  the budget's cost: p50 {statistics.median(r.single) * 1000:.1f} ms "
                      f"against {statistics.median(control.single) * 1000:.1f} ms, p99 "
                      f"{pct(r.single, 99) / pct(control.single, 99):.2f} × the control's")
    print(f"the SD shim delayed {budget.delayed_fsyncs():,} fsyncs; the budget throttled the "
          f"box in {budget.throttled()}")
    return failures


def report_rs485(r: Rs485Result) -> list[str]:
    failures = []
    floor = floor_s(r.profile, r.baud)
    p50, p99 = statistics.median(r.single), pct(r.single, 99)
    what = "KEYPAD→DISPLAY" if r.limited else "control (no budget, this disk)"
    line = (f"{what} {r.profile} {r.baud}: n={len(r.single)} p50 {p50 * 1000:.1f} ms "
            f"p99 {p99 * 1000:.1f} ms max {max(r.single) * 1000:.1f} ms "
            f"(floor {floor * 1000:.1f} ms)")
    if r.goal is not None:
        met = p99 <= r.goal
        verdict = "met" if met else "MISSED"
        line += f"; goal p99 ≤ 2 × poll cycle = {r.goal * 1000:.0f} ms: {verdict}"
        if not met and r.limited:
            failures.append(f"{r.profile} {r.baud}: keypad→display p99 {p99 * 1000:.0f} ms "
                            f"> {r.goal * 1000:.0f} ms")
    print(line)
    kp99 = pct(r.kiosk_latency, 99) * 1000 if r.kiosk_latency else float("nan")
    print(f"  kiosk: {r.kiosk_ok} tickets issued, {len(r.kiosk_failed)} refused or failed, "
          f"p99 {kp99:.1f} ms")
    if r.kiosk_failed:  # the control's too: a failed request is a failure anywhere
        failures.append(f"{r.profile} {r.baud}: kiosk requests failed: {r.kiosk_failed[:3]}")
    return failures


if __name__ == "__main__":
    raise SystemExit(main())
