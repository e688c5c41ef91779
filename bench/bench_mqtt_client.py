"""The centre consumers' MQTT client against paho (through aiomqtt), which it replaced:
CPU time a received message costs the receiving process (docs/performance.md, "A lean
MQTT client for the consumers").

    python bench/bench_mqtt_client.py [--messages 20000] [--rate 500] [--rounds 2]

A private Mosquitto on a free loopback port; 20 publishers (the swarm's MQTT link, one
connection each, as branches are) send real uplink event batches at QoS 1 to
``qms/v1/{branch}/events``; one subscriber process takes them through the shared
subscription the consumers use, at QoS 1, either with ``central.mqtt.MqttClient`` (its
messages handed to a callback, as the consumer's line takes them) or with aiomqtt 2 on
MQTT 3.1.1, clean session, 100 in flight (the consumers' settings before). Two loads:
a **burst** (everything published at once) and a **trickle** (``--rate`` messages a
second: a fleet's branches each sending a little, the centre woken for nearly every
message). Each subscriber reports the CPU time of its process from its first message
to its last; the two clients turn about, ``--rounds`` times, in one run.

Exits 1 (bench/checks.py) when a subscriber misses a message, gets one twice, or does
not drain within 60 s of the last publish.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pi import free_port  # noqa: E402
from bench.checks import Checks, machine_line  # noqa: E402
from protocols import uplink as proto  # noqa: E402
from sim.swarm import MqttLink  # noqa: E402

TOPIC = f"$share/bench/{proto.ROOT}/+/events"
PUBLISHERS = 20
CLIENTS = ("aiomqtt", "lean")


# --- the subscriber (a child process) ---------------------------------------------------------


async def subscribe(kind: str, port: int, n: int) -> dict[str, Any]:
    seen: list[bytes] = []
    first: list[float] = []
    done = asyncio.Event()

    def take(topic: str, payload: bytes) -> None:
        if not first:
            first.append(time.process_time())
        seen.append(payload[-24:])  # ends with the event's unique number
        if len(seen) >= n:
            done.set()

    if kind == "lean":
        from central.mqtt import MqttClient
        async with MqttClient("127.0.0.1", port, client_id="bench-lean",
                              on_message=take) as client:
            await client.subscribe([(TOPIC, 1)])
            print("ready", flush=True)
            await asyncio.wait_for(done.wait(), 600)
            end = time.process_time()
            await asyncio.sleep(0.5)  # anything doubled arrives meanwhile
    else:
        import aiomqtt
        async with aiomqtt.Client("127.0.0.1", port, identifier="bench-aiomqtt",
                                  protocol=aiomqtt.ProtocolVersion.V311, clean_session=True,
                                  max_inflight_messages=100) as ac:
            ac.pending_calls_threshold = 100_000
            await ac.subscribe([(TOPIC, 1)])
            print("ready", flush=True)
            end = 0.0
            try:
                async with asyncio.timeout(600):
                    async for m in ac.messages:
                        take(str(m.topic), bytes(m.payload))  # type: ignore[arg-type,unused-ignore]
                        if len(seen) == n:
                            end = time.process_time()
                            break
                async with asyncio.timeout(0.5):  # anything doubled arrives meanwhile
                    async for m in ac.messages:
                        take(str(m.topic), bytes(m.payload))  # type: ignore[arg-type,unused-ignore]
            except TimeoutError:
                pass
    return {"received": len(seen), "distinct": len(set(seen)),
            "cpu_us": (end - first[0]) / n * 1e6 if first and end else None}


# --- the publishers and the run ---------------------------------------------------------------


def payloads(n: int) -> list[tuple[str, bytes]]:
    out = []
    for k in range(n):
        branch = f"1001{k % PUBLISHERS:06d}"
        event = {"seq": k + 1, "type": "ticket_issued", "at": 1764036000.0 + k,
                 "day": "2026-11-25", "queue": "A", "number": f"A{k % 1000:03d}",
                 "business": "A", "ahead": 3, "note": f"{k:020d}"}
        out.append((proto.topic(branch, "events"),
                    proto.encode(proto.events_batch(branch, "e1", [event]))))
    return out


async def publish(port: int, messages: list[tuple[str, bytes]], rate: float | None) -> None:
    links = []
    for i in range(PUBLISHERS):
        link = MqttLink(lambda t, p: None)
        await link.connect("127.0.0.1", port, f"bench-pub-{i}", "", "", "bench/will", b"")
        links.append(link)
    start = time.perf_counter()
    for k, (topic, payload) in enumerate(messages):
        links[k % PUBLISHERS].publish(topic, payload)
        if rate:
            ahead = start + k / rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)  # pacing the trickle
        elif k % 200 == 0:
            await asyncio.sleep(0)  # a burst still lets the writes go out
    deadline = time.monotonic() + 60
    while any(link.inflight for link in links) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # the broker's PUBACKs come back
    for link in links:
        await link.close()


def one(kind: str, port: int, messages: list[tuple[str, bytes]],
        rate: float | None) -> dict[str, Any]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--subscriber", kind, "--port", str(port),
         "--messages", str(len(messages))], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        child.kill()
        raise SystemExit(f"the {kind} subscriber did not start")
    asyncio.run(publish(port, messages, rate))
    out, _ = child.communicate(timeout=120)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20_000, help="in a burst")
    ap.add_argument("--rate", type=float, default=500.0, help="the trickle's messages/s")
    ap.add_argument("--trickle-seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--subscriber", choices=CLIENTS, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.subscriber:
        print(json.dumps(asyncio.run(subscribe(args.subscriber, args.port, args.messages))))
        return 0

    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    checks = Checks("bench_mqtt_client")
    print(machine_line())
    loads = {"burst": (args.messages, None),
             "trickle": (round(args.rate * args.trickle_seconds), args.rate)}
    rows: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                        "max_queued_messages 1000000\nmax_inflight_messages 100\n")
        broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)  # the broker listening
            for r in range(args.rounds):
                for load, (n, rate) in loads.items():
                    messages = payloads(n)
                    for kind in CLIENTS if r % 2 == 0 else CLIENTS[::-1]:
                        got = one(kind, port, messages, rate)
                        label = f"{kind} {load} round {r + 1}"
                        checks.drained(n, got["received"], f"{label} messages received")
                        checks.true(got["distinct"] == got["received"],
                                    f"{label}: {got['received'] - got['distinct']} "
                                    f"messages twice")
                        if got["cpu_us"] is not None:
                            rows.setdefault((kind, load), []).append(got["cpu_us"])
                            print(f"{label:28} {n:>6} messages  "
                                  f"{got['cpu_us']:8.1f} µs CPU a message", flush=True)
        finally:
            broker.kill()
    print()
    print("| load | aiomqtt µs/message | lean µs/message | lean / aiomqtt |")
    print("|---|---|---|---|")
    for load in loads:
        a, b = rows.get(("aiomqtt", load), []), rows.get(("lean", load), [])
        if a and b:
            print(f"| {load} | {statistics.median(a):.1f} | {statistics.median(b):.1f} | "
                  f"{statistics.median(b) / statistics.median(a):.2f} |")
    return checks.verdict()


if __name__ == "__main__":
    raise SystemExit(main())
