"""Remote tickets (H3): phone → centre → MQTT → box → reply → phone, latency and rate.

    python bench/bench_remote.py [--rate 5] [--clients 10] [--seconds 20] [--customers 20]
                                 [--store postgresql://postgres@127.0.0.1:5432/test]

Four processes on loopback, as deployed: a private Mosquitto (the shipped config, password
file and ACL), ``python -m central`` (consumers + HTTP, SQLite store), ``python -m
controller`` on the example branch with its uplink, and this one driving the centre's
HTTP API as signed-in customers taking tickets (``POST /api/public/tickets``):

1. open loop: tickets arriving at random (Poisson) at ``--rate`` per second for one
   branch — a busy branch sees a few a minute — the p99 that H3's "within 2 s" is about;
2. closed loop: ``--clients`` customers each taking ticket after ticket as fast as the
   branch answers — how many one branch can take, and the latency when saturated.

Three tellers call the next customer at the box as tickets come (untimed), so the queue
stays at a branch's length. Last, the time an offline branch takes to be reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.checks import Checks, machine_line  # noqa: E402
from central.broker import LocalBroker, free_port  # noqa: E402
from protocols.cards import id_check_char  # noqa: E402

BRANCH = "1001010001"
CHECKS = Checks("bench_remote")
NUMBERS: list[str] = []  # every ticket the phones were given: none twice


def given(r: httpx.Response) -> None:
    data = r.json()
    NUMBERS.append(f"{data.get('day')} {data.get('number') or data.get('token')}")
START = "2026-11-25T10:00:00+08:00"


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    try:
        return subprocess.Popen([sys.executable, *cmd], cwd=ROOT, stdout=out, stderr=out)
    finally:
        out.close()


async def until(url: str, ok: int = 200, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as c:
        while time.monotonic() < deadline:
            try:
                if (await c.get(url)).status_code == ok:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)  # another process starting up: nothing to await
    raise TimeoutError(url)


async def customer(c: httpx.AsyncClient, outbox: Path, i: int) -> str:
    phone = f"1370000{i:04d}"
    r = await c.post("/api/public/login/code", json={"phone": phone})
    r.raise_for_status()
    text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    r = await c.post("/api/public/login", json={"phone": phone,
                                                "code": text.split("验证码是")[1][:6]})
    token = str(r.json()["token"])
    first = f"410105198{i % 10}0101{i % 1000:03d}"
    r = await c.post("/api/public/register", headers={"Authorization": f"Bearer {token}"},
                     json={"name": f"压测{i}", "id_number": first + id_check_char(first)})
    r.raise_for_status()
    return token


async def teller_tokens(box: str) -> list[tuple[int, str]]:
    tellers = []
    async with httpx.AsyncClient(base_url=box, timeout=10) as b:
        for window, teller in ((1, "t1"), (2, "t2"), (3, "t3")):
            r = await b.post(f"/api/windows/{window}/login",
                             json={"teller": teller, "password": "1234"})
            tellers.append((window, r.json()["token"]))
    return tellers


async def open_loop(centre: str, box: str, tokens: list[str], tellers: list[tuple[int, str]],
                    rate: float, seconds: float) -> tuple[list[float], dict[str, int]]:
    lat: list[float] = []
    refused: dict[str, int] = {}
    rng = random.Random(7)
    async with httpx.AsyncClient(base_url=centre, timeout=15, limits=httpx.Limits(
            max_connections=200)) as c, httpx.AsyncClient(base_url=box, timeout=10) as b:

        async def one(k: int) -> None:
            t0 = time.perf_counter()
            r = await c.post("/api/public/tickets", json={"branch": BRANCH, "queue": "A"},
                             headers={"Authorization": f"Bearer {tokens[k % len(tokens)]}"})
            if r.status_code == 201:
                lat.append(time.perf_counter() - t0)
                given(r)
            else:
                code = r.json().get("error", {}).get("code", str(r.status_code))
                refused[code] = refused.get(code, 0) + 1
            window, teller = tellers[k % len(tellers)]
            await b.post(f"/api/windows/{window}/call-next",
                         headers={"Authorization": f"Bearer {teller}"})

        tasks = []
        end, k = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            tasks.append(asyncio.create_task(one(k)))
            k += 1
            await asyncio.sleep(rng.expovariate(rate))  # the next arrival: a timer by design
        await asyncio.gather(*tasks)
    CHECKS.drained(len(tasks), len(lat) + sum(refused.values()), "open-loop tickets answered")
    return lat, refused


async def drive(centre: str, box: str, tokens: list[str], clients: int, seconds: float
                ) -> tuple[list[float], int, dict[str, int]]:
    lat: list[float] = []
    refused: dict[str, int] = {}
    tellers = await teller_tokens(box)
    deadline = time.monotonic() + seconds

    async def one(k: int) -> None:
        auth = {"Authorization": f"Bearer {tokens[k % len(tokens)]}"}
        window, teller = tellers[k % len(tellers)]
        async with httpx.AsyncClient(base_url=centre, timeout=15) as c, \
                httpx.AsyncClient(base_url=box, timeout=10) as b:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                r = await c.post("/api/public/tickets", headers=auth,
                                 json={"branch": BRANCH, "queue": "A"})
                if r.status_code == 201:
                    lat.append(time.perf_counter() - t0)
                    given(r)
                else:
                    code = r.json().get("error", {}).get("code", str(r.status_code))
                    refused[code] = refused.get(code, 0) + 1
                await b.post(f"/api/windows/{window}/call-next",
                             headers={"Authorization": f"Bearer {teller}"})

    await asyncio.gather(*(one(k) for k in range(clients)))
    return lat, len(lat), refused


def figures(lat: list[float], seconds: float) -> str:
    ms = sorted(x * 1000 for x in lat)
    q = statistics.quantiles(ms, n=100, method="inclusive")  # never above the max
    return (f"{len(ms)} tickets in {seconds:.0f} s = {len(ms) / seconds:.1f}/s; "
            f"p50 {q[49]:.0f} ms, p90 {q[89]:.0f} ms, p99 {q[98]:.0f} ms, max {ms[-1]:.0f} ms")


async def main_async(rate: float, clients: int, seconds: float, customers: int,
                     store: str | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="paidui-remote-"))
    broker = LocalBroker(work / "broker")
    broker.add_user("centre", "centre-pw")
    branch_pw = broker.add_user(BRANCH)
    broker.start()
    port = free_port()
    outbox = work / "sms.jsonl"
    centre = start(["-m", "central", "--log-level", "WARNING",
                    "--set", f"broker.url={broker.url}", "--set", "broker.username=centre",
                    "--set", "broker.password=centre-pw",
                    "--set", f"store.url={store or 'sqlite:///' + str(work / 'c.sqlite3')}",
                    "--set", f"http.port={port}", "--set", f"clock.start={START}",
                    "--set", f"sms.outbox_file={outbox}",
                    "--set", "customers.remote_per_customer=1000000",
                    "--set", "customers.codes_per_address=1000",
                    # every phone here is one loopback address: the edge's per-address
                    # bucket (1/s) would measure itself, not the ticket path
                    "--set", "http.public.act_per_s=1000000",
                    "--set", "http.public.act_burst=1000000"], work / "centre.log")
    box_port = free_port()
    box = start(["-m", "controller", "--config", "examples/branch.toml", "--log-level",
                 "WARNING", "--data-dir", str(work / "box"), "--http", f"127.0.0.1:{box_port}",
                 "--set", 'hardware="none"', "--set", f"clock.start={START}",
                 "--set", "thresholds.branch_waiting_cap=0", "--set", "queues.0.digits=6",
                 "--set", f"uplink.broker={broker.url}", "--set", f"uplink.password={branch_pw}"],
                work / "box.log")
    base, box_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{box_port}"
    try:
        await until(f"{base}/api/public/branches/{BRANCH}/bookable")
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            tokens = [await customer(c, outbox, i) for i in range(customers)]
        tellers = await teller_tokens(box_base)
        lat, refused = await open_loop(base, box_base, tokens, tellers, rate, seconds)
        print(f"open loop at {rate}/s: {figures(lat, seconds)}; refused {refused or 'none'}")
        CHECKS.failed(sum(refused.values()), "open-loop tickets")
        lat, _, refused = await drive(base, box_base, tokens, clients, seconds)
        print(f"closed loop, {clients} clients: {figures(lat, seconds)}; "
              f"refused {refused or 'none'}")
        CHECKS.failed(sum(refused.values()), "closed-loop tickets")
        box.terminate()  # a clean stop says nothing: the broker's Will is what a power cut
        box.wait(15)     # leaves; stand in for it with the retained offline status
        import aiomqtt

        from protocols import uplink as proto
        async with aiomqtt.Client("127.0.0.1", broker.port, username=BRANCH,
                                  password=branch_pw) as m:
            await m.publish(proto.topic(BRANCH, "status"),
                            proto.encode(proto.will(BRANCH, "x")), qos=1, retain=True)
        await asyncio.sleep(2.5)  # the centre flushes the live picture every second
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            t0 = time.perf_counter()
            r = await c.post("/api/public/tickets", json={"branch": BRANCH, "queue": "A"},
                             headers={"Authorization": f"Bearer {tokens[0]}"})
            took = (time.perf_counter() - t0) * 1000
        print(f"offline branch: HTTP {r.status_code} {r.json()['error']['code']} "
              f"in {took:.0f} ms")
        CHECKS.true(r.status_code == 503, f"the offline branch was answered {r.status_code}")
    finally:
        for p in (box, centre):
            if p.poll() is None:
                p.terminate()
                p.wait(15)
        broker.kill()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=5.0, help="open-loop tickets per second")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--customers", type=int, default=20)
    p.add_argument("--store", default=None, help="the centre's store (default: SQLite)")
    a = p.parse_args()
    print(machine_line())
    asyncio.run(main_async(a.rate, a.clients, a.seconds, a.customers, a.store))
    CHECKS.unique(NUMBERS, "tickets given to phones")
    return CHECKS.verdict()


if __name__ == "__main__":
    sys.exit(main())
