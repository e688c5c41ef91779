"""Software update figures: signature checks, hashing, a resumable download over loopback
HTTP from the centre's router, installing a slot, switching it.

    python bench/bench_update.py [--mb 50]

Prints figures; exits 1 (bench/checks.py) if a download does not end as the manifest's
bytes, the slot is not installed or the switch does not end on the new version.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.checks import Checks, machine_line
from central.releases import ReleaseStore
from common.files import file_sha256
from controller.slots import Slots
from controller.update import UpdateSettings, download
from protocols.release import Manifest, ReleaseFile, sign_manifest, verify_manifest
from tests.update_support import DropOnce, centre_app, make_bundle, serving


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def row(name: str, ms: list[float], note: str = "") -> None:
    ms = sorted(ms)
    print(f"| {name} | {statistics.median(ms):.3f} | {ms[int(len(ms) * 0.99) - 1]:.3f} | {note} |")


async def main(mb: int) -> int:
    checks = Checks("bench_update")
    print(machine_line())
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bundle = make_bundle(tmp / "b", "0.2.0", key, tmp / "w")
        big = bundle / "bigdep-1.0-py3-none-any.whl"
        big.write_bytes(os.urandom(mb << 20))
        m = Manifest.from_bytes((bundle / "manifest.json").read_bytes())
        files = [*m.files, ReleaseFile(big.name, *file_sha256(big))]
        manifest = Manifest(m.version, tuple(files), m.installer, created_at=m.created_at)
        data = manifest.to_bytes()
        (bundle / "manifest.json").write_bytes(data)
        sig = sign_manifest(data, key)
        (bundle / "manifest.sig").write_bytes(sig)

        print("| step | p50 ms | p99 ms | note |\n|---|---|---|---|")
        row("verify manifest signature", timed(
            lambda: verify_manifest(data, sig, [key.public_key()]), 500), f"{len(data)} bytes")
        row(f"SHA-256 of {mb} MB", timed(lambda: file_sha256(big), 5),
            f"{mb / (statistics.median(timed(lambda: file_sha256(big), 3)) / 1000):.0f} MB/s")

        store = ReleaseStore.open(f"sqlite:///{tmp}/c.sqlite3", tmp / "files")
        store.add(bundle, [key.public_key()])
        entry = manifest.file(big.name)
        s = UpdateSettings(root=tmp, retry_delay_s=0.01)
        cases = (("download", 1 << 40), ("download, link cut at half", entry.size // 2))
        for label, after in cases:
            app = DropOnce(centre_app(store), r"/files/bigdep", after=after)
            dest = tmp / f"dl-{after}"
            async with serving(app) as url:
                t = time.perf_counter()
                await download(f"{url}/api/releases/0.2.0/files/{big.name}", dest, entry, s,
                               counters=Counter())
                ms = (time.perf_counter() - t) * 1000
            checks.drained(entry.size, file_sha256(dest)[1], f"bytes downloaded ({label})")
            checks.true(file_sha256(dest) == (entry.sha256, entry.size),
                        f"the download ({label}) is not the manifest's file")
            row(f"{label}: {mb} MB over loopback", [ms],
                f"{mb / (ms / 1000):.0f} MB/s incl. hash; {len(app.ranges)} request(s), "
                f"{app.sent >> 20} MB sent")
        store.close()

        slots = Slots(tmp / "opt")
        small = [f.name for f in m.files]
        t = time.perf_counter()
        slots.install("0.2.0", bundle, small, m.installer, python=sys.executable,
                      compile_bytecode=False)
        row("install a slot (venv + pip from the bundle's wheel, no compile)",
            [(time.perf_counter() - t) * 1000], "the box's wheel + 1 stand-in dependency")
        slots.path("0.1.0").mkdir()
        (slots.path("0.1.0") / ".complete").write_text("0.1.0")
        checks.true("0.2.0" in slots.installed(), "the slot 0.2.0 was not installed")
        row("switch current (symlink + rename + fsync dir)",
            timed(lambda: (slots.switch("0.1.0"), slots.switch("0.2.0")), 200), "two switches")
        checks.true(slots.current() == "0.2.0", f"current is {slots.current()} after the switches")
    return checks.verdict()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=50)
    sys.exit(asyncio.run(main(p.parse_args().mb)))
