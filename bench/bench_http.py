"""HTTP: durable tickets/s on loopback against a real box, as the day fills; fails loudly.

    python bench/bench_http.py [--devices none,sim] [--connections 50] [--waiting 0,1000]
                               [--day 100,1000,3000,10000] [--chunk 1] [--max-seconds 40]
                               [--tree DIR ...] [--client wrk|httpx]

For each box (``--tree``: the source folder its ``python -m controller`` runs from, default
this checkout; give an old commit's worktree and this one to compare them in one run, turn
about), each device setting (``none``: ``hardware = "none"``; ``sim``: every simulated
device, the ESC/POS printer drawing its PNGs included) and each queue length
(``--waiting``), a fresh box on a free port with three tellers logged in. ``W`` tickets are
taken first (the queue), then ``--connections`` keep-alive connections send, in turn,
``POST /api/tickets`` and ``POST /api/windows/{n}/call-next`` (n = 1, 2, 3 in turn) over
and over, so the queue stays ``W`` long while the day fills. A ticket is counted when the
box's day holds it (durable): the rate is what the day grew by per second. The load runs
in chunks of ``--chunk`` seconds until the day has the largest ``--day`` figure (or
``--max-seconds`` pass); each chunk prints its tickets/s and the day's size before and
after it: that is the curve, and the chunks holding the ``--day`` figures are its summary.
Each chunk also prints the CPU the box's process used per ticket (and its call-next, all
its threads, from /proc): on a shared machine, where the box gets only part of a core and
the rate swings with the neighbours' load, that is the figure to compare (1,000 divided by
it is the rate one free core would give, were nothing else the limit).

It exits non-zero (and says why) when

* a request fails: any status but 201 (a ticket), 200 (a call) or 404 ``no_waiting`` (a
  call with nobody waiting for that window), or a socket error or timeout;
* a ticket number is given twice, or a number a client got is missing from the box's day;
* the run does not drain: within ``--drain`` seconds after the load, the box must answer,
  its day must hold every ticket (what the clients got plus at most one request per
  connection and chunk cut off at a chunk's end), and with the simulated printer every
  ticket must have been printed (its ``.bin`` and ``.txt`` written) or its print failure
  recorded (``print_error``: the kiosk showed the number and offered a reprint; counted
  and reported). A PNG the printer's bounded drawing queue dropped is counted, not a
  failure.

The load generator is ``wrk`` (Debian package ``wrk``, C, one thread) when installed, so
that the figures are the box's and not the client's; otherwise an ``httpx`` client in this
process, which saturates first (its figures are a floor for the box).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

# wrk's script: each connection alternates a ticket and a call-next at windows 1, 2, 3.
# Every answer is written out ("T <number>" for a ticket, "S <status> <error code>"
# otherwise), so the bench counts failures and duplicates itself.
MIX_LUA = """
local tokens = {os.getenv("PAIDUI_T1"), os.getenv("PAIDUI_T2"), os.getenv("PAIDUI_T3")}
local n = 0
request = function()
  n = n + 1
  if n % 2 == 1 then
    return wrk.format("POST", "/api/tickets", {["Content-Type"] = "application/json"},
                      '{"queue": "A"}')
  end
  local w = (n / 2) % 3 + 1
  return wrk.format("POST", "/api/windows/" .. w .. "/call-next",
                    {["Authorization"] = "Bearer " .. tokens[w]}, "")
end
response = function(status, headers, body)
  if status == 201 then
    io.write("T ", string.match(body, '"number":%s*"([^"]*)"') or "?", "\\n")
  else
    io.write("S ", status, " ", string.match(body, '"code":%s*"([^"]*)"') or "-", "\\n")
  end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %f %d %d %d %d\\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
"""

EXPECTED = {(200, "-"), (404, "no_waiting")}  # a call; a call with nobody waiting for it


class BenchFailed(Exception):
    """The run broke one of the rules in the module's docstring."""


@dataclasses.dataclass
class Chunk:
    seconds: float
    numbers: list[str]  # of the tickets issued, as the clients got them
    other: Counter[tuple[int, str]]  # (status, error code) of every other answer
    p50: float  # ms, over all requests
    p99: float
    socket_errors: int
    day_before: int = 0
    day_after: int = 0
    wall: float = 0.0  # seconds between the box's counts before and after the chunk
    cpu: float = 0.0  # CPU seconds the box's process used meanwhile (all its threads)

    @property
    def rate(self) -> float:
        """Durable tickets/s: what the box's day grew by (a request cut off at the chunk's
        end counts in the next one), over the time between its two counts."""
        return (self.day_after - self.day_before) / self.wall if self.wall else 0.0

    @property
    def cpu_ms(self) -> float:
        """The box's CPU per ticket (and its call-next), ms: what the figures are on a
        shared machine, where the box gets only part of a core."""
        tickets = self.day_after - self.day_before
        return self.cpu * 1000 / tickets if tickets else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_box(tree: Path, port: int, data: Path, devices: str) -> subprocess.Popen[bytes]:
    log = (data / "box.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "controller", "--config", "examples/branch.toml",
         "--data-dir", str(data), "--http", f"127.0.0.1:{port}", "--log-level", "WARNING",
         "--set", f'hardware="{devices}"', "--set", "clock.start=2026-11-25T10:00:00+08:00",
         "--set", "thresholds.branch_waiting_cap=0", "--set", "queues.0.digits=6"],
        cwd=tree, stdout=log, stderr=subprocess.STDOUT,
    )


async def ready(c: httpx.AsyncClient, devices: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait for the box to answer and, with simulated devices, for every device to be
    ready (the voice's clip pack is spoken with espeak-ng at the first start: seconds)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchFailed(f"the box exited with {proc.returncode} while starting")
        try:
            health = (await c.get("/api/health")).json()
            states = {d["name"]: d["state"] for d in health["devices"]}
            if devices == "none" or ({"printer", "audio"} <= states.keys()
                                     and all(v == "ok" for v in states.values())):
                return
        except (httpx.TransportError, ValueError):
            pass
        await asyncio.sleep(0.1)  # the box is starting
    raise BenchFailed("the box did not get ready within 60 s")


async def tellers(c: httpx.AsyncClient) -> dict[int, str]:
    """Log in three tellers; their tokens by window."""
    tokens = {}
    for n, t in ((1, "t1"), (2, "t2"), (3, "t3")):
        r = await c.post(f"/api/windows/{n}/login", json={"teller": t, "password": "1234"})
        if r.status_code != 200:
            raise BenchFailed(f"teller {t} could not log in: {r.status_code} {r.text[:200]}")
        tokens[n] = str(r.json()["token"])
    return tokens


async def take(c: httpx.AsyncClient, count: int, connections: int = 20) -> list[str]:
    """Issue ``count`` tickets (the queue the load then keeps); their numbers."""
    numbers: list[str] = []
    left = count

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            r = await c.post("/api/tickets", json={"queue": "A"})
            if r.status_code != 201:
                raise BenchFailed(f"taking the queue: {r.status_code} {r.text[:200]}")
            numbers.append(str(r.json()["number"]))

    await asyncio.gather(*(client() for _ in range(connections)))
    return numbers


def wrk_chunk(base: str, tokens: dict[int, str], connections: int, seconds: int) -> Chunk:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(MIX_LUA)
    env = {**os.environ, **{f"PAIDUI_T{n}": t for n, t in tokens.items()}}
    try:
        run = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout",
                              "10s", "-s", f.name, base], env=env, capture_output=True,
                             text=True, check=False)
    finally:
        os.unlink(f.name)
    m = re.search(r"RESULT (\d+) ([\d.]+) (\d+) (\d+) (\d+) (\d+)", run.stdout)
    if run.returncode != 0 or not m:
        raise BenchFailed(f"wrk failed ({run.returncode}): {run.stderr[-500:]}")
    numbers, other = [], Counter[tuple[int, str]]()
    for line in run.stdout.splitlines():
        if line.startswith("T "):
            numbers.append(line[2:])
        elif line.startswith("S "):
            _, status, code = line.split(" ", 2)
            other[int(status), code] += 1
    _, secs, p50, p99, _, errors = m.groups()
    return Chunk(float(secs), numbers, other, int(p50) / 1000, int(p99) / 1000, int(errors))


async def httpx_chunk(c: httpx.AsyncClient, tokens: dict[int, str], connections: int,
                      seconds: int) -> Chunk:
    lat: list[float] = []
    numbers: list[str] = []
    other = Counter[tuple[int, str]]()
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(i: int) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            w = i % 3 + 1
            for path, headers in (("/api/tickets", {}),
                                  (f"/api/windows/{w}/call-next",
                                   {"authorization": f"Bearer {tokens[w]}"})):
                t = time.perf_counter()
                try:
                    if path == "/api/tickets":
                        r = await c.post(path, json={"queue": "A"})
                    else:
                        r = await c.post(path, headers=headers)
                except httpx.TransportError:
                    errors += 1
                    continue
                lat.append(time.perf_counter() - t)
                if r.status_code == 201:
                    numbers.append(str(r.json()["number"]))
                else:
                    body = r.json() if r.headers.get("content-type", "").startswith(
                        "application/json") else {}
                    code = body.get("error", {}).get("code", "-") if r.status_code >= 400 \
                        else "-"
                    other[r.status_code, code] += 1

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(connections)))
    elapsed = time.perf_counter() - start
    lat.sort()
    return Chunk(elapsed, numbers, other, lat[len(lat) // 2] * 1000 if lat else 0.0,
                 lat[int(0.99 * len(lat))] * 1000 if lat else 0.0, errors)


async def day_size(c: httpx.AsyncClient) -> tuple[int, int]:
    """(tickets issued today, waiting now)."""
    status = (await c.get("/api/status")).json()
    return sum(q["issued"] for q in status["queues"]), int(status["waiting_total"])


async def drained(c: httpx.AsyncClient, data: Path, devices: str, got: list[str],
                  cut_off: int, timeout: float) -> str:
    """Wait for the box to hold and print every ticket; what was checked, in words."""
    deadline = time.monotonic() + timeout
    printed = data / "sim" / "printer"
    why = "the box did not answer"
    while time.monotonic() < deadline:
        try:
            day = (await c.get("/api/tickets", timeout=30)).json()["tickets"]
        except (httpx.TransportError, ValueError):
            await asyncio.sleep(0.5)  # the box is still busy
            continue
        numbers = [t["number"] for t in day]
        twice = [n for n, k in Counter(numbers).items() if k > 1]
        if twice:
            raise BenchFailed(f"the box's day holds numbers twice: {twice[:5]}")
        missing = set(got) - set(numbers)
        if missing:
            raise BenchFailed(f"{len(missing)} numbers the clients got are not in the box's "
                              f"day: {sorted(missing)[:5]}")
        if len(numbers) - len(got) > cut_off:
            raise BenchFailed(f"the box issued {len(numbers) - len(got)} tickets no client "
                              f"heard of (at most {cut_off} cut off at the chunks' ends)")
        if devices == "none":
            return f"day of {len(numbers)} tickets, all distinct, all the clients' there"
        bins = {p.stem for p in printed.glob("*.bin")}
        txts = {p.stem for p in printed.glob("*.txt")}
        pngs = len(list(printed.glob("*.png")))
        # a print the box recorded as failed (the kiosk showed the number on screen and
        # offered a reprint) is accounted for; a ticket neither printed nor failed is not
        failed = {t["number"] for t in day if t.get("print_error")}
        owed = set(numbers) - failed
        if owed <= bins and owed <= txts:
            return (f"day of {len(numbers)} tickets, all distinct, {len(owed)} printed, "
                    f"{len(failed)} print failures recorded ({pngs} PNGs drawn, "
                    f"{len(bins) - pngs} drawings dropped)")
        why = f"{len(owed - bins)} of {len(numbers)} tickets neither printed nor failed"
        await asyncio.sleep(0.5)  # the printer is still printing
    raise BenchFailed(f"the run did not drain within {timeout:g} s: {why}")


@dataclasses.dataclass
class Run:
    tree: str
    devices: str
    waiting: int
    chunks: list[Chunk]
    drain: str


async def one_run(tree: Path, devices: str, waiting: int, args: argparse.Namespace) -> Run:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = Path(tempfile.mkdtemp(prefix="paidui-http-"))
    proc = start_box(tree, port, data, devices)
    limits = httpx.Limits(max_connections=args.connections,
                          max_keepalive_connections=args.connections)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as c:
            await ready(c, devices, proc)
            tokens = await tellers(c)
            got = await take(c, waiting)
            chunks: list[Chunk] = []
            target, start = max(args.day), time.monotonic()
            day, _ = await day_size(c)
            counted, cpu = time.monotonic(), cpu_seconds(proc.pid)
            while day < target and time.monotonic() - start < args.max_seconds:
                if args.client == "wrk":
                    chunk = await asyncio.to_thread(wrk_chunk, base, tokens, args.connections,
                                                    args.chunk)
                else:
                    chunk = await httpx_chunk(c, tokens, args.connections, args.chunk)
                chunk.day_before, (day, now_waiting) = day, await day_size(c)
                chunk.day_after, chunk.wall = day, time.monotonic() - counted
                chunk.cpu = cpu_seconds(proc.pid) - cpu
                counted, cpu = time.monotonic(), cpu_seconds(proc.pid)
                chunks.append(chunk)
                got += chunk.numbers
                unexpected = {k: v for k, v in chunk.other.items() if k not in EXPECTED}
                if unexpected or chunk.socket_errors:
                    raise BenchFailed(f"failed requests: {unexpected} "
                                      f"(socket errors and timeouts: {chunk.socket_errors})")
                print(f"  day {chunk.day_before:6,d} → {chunk.day_after:6,d}: "
                      f"{chunk.rate:7,.0f} tickets/s  p50 {chunk.p50:6.1f} ms  "
                      f"p99 {chunk.p99:7.1f} ms  waiting {now_waiting:5,d}  box CPU "
                      f"{chunk.cpu / chunk.wall if chunk.wall else 0:4.0%}, "
                      f"{chunk.cpu_ms:5.2f} ms/ticket", flush=True)
            twice = [n for n, k in Counter(got).items() if k > 1]
            if twice:
                raise BenchFailed(f"ticket numbers given twice: {twice[:5]}")
            drain = await drained(c, data, devices, got, args.connections * len(chunks),
                                  args.drain)
            return Run(str(tree), devices, waiting, chunks, drain)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


def at_day(run: Run, day: int) -> Chunk | None:
    """The chunk during which the day reached ``day`` tickets (or the first one after)."""
    return next((ch for ch in run.chunks if ch.day_after >= day), None)


def summary(runs: list[Run], days: list[int], trees: list[Path]) -> None:
    for title, cell, fmt in (
            ("tickets/s at each day size (the chunk holding it)", "rate", "9,.0f"),
            ("the box's CPU ms per ticket (and its call-next) at each day size", "cpu_ms",
             "9.2f")):
        print(f"\n{title}:")
        print(f"{'box':>10} {'devices':>7} {'waiting':>7} " + "".join(
            f"{d:>9,d}" for d in days) + "      all")
        for r in runs:
            cells = []
            for d in days:
                ch = at_day(r, d)
                cells.append(format(getattr(ch, cell), fmt)
                             if ch and ch.day_before <= max(d, r.waiting) else f"{'—':>9}")
            tickets = sum(ch.day_after - ch.day_before for ch in r.chunks)
            secs = sum(ch.wall for ch in r.chunks)
            cpu = sum(ch.cpu for ch in r.chunks)
            total = (tickets / secs if secs else 0.0) if cell == "rate" else \
                (cpu * 1000 / tickets if tickets else 0.0)
            name = Path(r.tree).name if len(trees) > 1 else "this"
            print(f"{name[-10:]:>10} {r.devices:>7} {r.waiting:>7,d} " + "".join(cells)
                  + format(total, fmt))


async def main_async(args: argparse.Namespace) -> int:
    trees = [Path(t).resolve() for t in args.tree] or [ROOT]
    runs: list[Run] = []
    print(f"load generator: {args.client}, {args.connections} connections, chunks of "
          f"{args.chunk} s; machine: {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    failed = []
    for devices in args.devices:
        for waiting in args.waiting:
            for tree in trees:  # turn about, so both boxes meet the same machine
                what = f"box {tree} · devices {devices} · {waiting:,d} waiting"
                print(what, flush=True)
                try:
                    run = await one_run(tree, devices, waiting, args)
                except BenchFailed as exc:  # said at once, and again at the end
                    print(f"  FAILED: {exc}", flush=True)
                    failed.append(f"{what}: {exc}")
                    continue
                print(f"  drained: {run.drain}")
                runs.append(run)
    summary(runs, args.day, trees)
    for why in failed:
        print(f"FAILED: {why}", file=sys.stderr)
    return 1 if failed else 0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--devices", default="none,sim", help="none and/or sim, comma separated")
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--waiting", default="0,1000", help="queue lengths, comma separated")
    p.add_argument("--day", default="100,1000,3000,10000", help="day sizes for the summary")
    p.add_argument("--chunk", type=int, default=1, help="seconds per load chunk")
    p.add_argument("--max-seconds", type=float, default=40.0, help="of load, per run")
    p.add_argument("--drain", type=float, default=60.0, help="seconds allowed to drain")
    p.add_argument("--tree", action="append", default=[],
                   help="source folder to run the box from (repeat to compare)")
    p.add_argument("--client", choices=["wrk", "httpx"],
                   default="wrk" if shutil.which("wrk") else "httpx")
    args = p.parse_args()
    args.devices = args.devices.split(",")
    args.waiting = [int(x) for x in args.waiting.split(",")]
    args.day = [int(x) for x in args.day.split(",")]
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
