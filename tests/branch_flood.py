"""A misbehaving branch: publishes valid ``live`` snapshots on its own topic, flat out;
and what well-behaved branches send (:func:`ticket`).

    python -m tests.branch_flood --port 1883 --branch 1001010001 --password PW [--rate 10000]

Run as its own process (its CPU is not the centre's) by tests/test_central_flood.py and
bench/bench_centre_flood.py. QoS 0, up to ``--rate`` messages a second (paced every 10 ms),
until SIGTERM; then prints ``sent N`` and exits.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt


def snapshot(branch: str, n: int) -> bytes:
    """A valid live message (the shape a box sends), a little different each time."""
    return json.dumps({"v": 1, "branch": branch, "at": time.time(), "status": {
        "branch_name": "洪水支行", "waiting_total": n % 50,
        "now": datetime.now().astimezone().isoformat(timespec="seconds"),
        "queues": [{"id": "A", "name": "个人业务", "waiting": n % 50, "issued": n % 1000,
                    "paused": False}],
        "windows": [{"number": 1, "name": "1号窗口", "state": "open"}]}},
        ensure_ascii=False).encode()


def ticket(seq: int) -> dict[str, Any]:
    """A ticket as a box's engine issues it (``controller/engine/engine.py``)."""
    number = f"A{seq:03d}"
    return {"seq": seq, "type": "ticket_issued", "at": 1764036000.0 + seq,
            "day": "2026-11-25", "ticket": f"20261125-{number}", "number": number,
            "queue": "A", "n": seq, "customer_type": "normal", "type_priority": 0,
            "stars": 0, "vip": None, "vip_name": None, "card": None, "channel": "kiosk",
            "kiosk": None, "appointment": None, "high_return": False, "ahead": 0,
            "waiting": seq}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--branch", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--rate", type=float, default=10_000.0)
    p.add_argument("--kind", default="live", choices=("live", "status", "health"))
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                         client_id=f"flood-{args.branch}")
    client.username_pw_set(args.branch, args.password)
    client.max_queued_messages_set(10_000)
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    topic = f"qms/v1/{args.branch}/{args.kind}"
    sent, start = 0, time.monotonic()
    payloads: list[Any] = [snapshot(args.branch, i) for i in range(64)]
    while not stop.is_set():
        due = int((time.monotonic() - start) * args.rate)
        while sent < due and not stop.is_set():
            client.publish(topic, payloads[sent % 64], qos=0)
            sent += 1
        time.sleep(0.01)  # the flood's pace (the behaviour)
    client.loop_stop()
    client.disconnect()
    print(f"sent {sent} in {time.monotonic() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
