"""The centre's releases: upload checks, rollouts by branch/list/org/all, per-branch status
from the boxes' reports, files over HTTP with Range, and the command line — on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.releases import ReleaseError, ReleaseStore, Target, main
from protocols.release import ReleaseRefused, parse_update_command, sign_manifest, update_report

from .update_support import ROOT, centre_app, make_bundle, serving, write_public_key

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
PG = os.environ.get("PAIDUI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BRANCHES = ["1001010001", "1001010002", "1001020001", "1002010001"]
BASE = "http://centre.example:8000"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bundles")
    return {v: make_bundle(tmp / v, v, KEY, tmp / "wheels") for v in ("0.2.0", "0.3.0")}


def _pg_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG}: {exc}")
    schema = f"rel_{secrets.token_hex(5)}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReleaseStore]:
    if request.param == "sqlite":
        s = ReleaseStore.open(f"sqlite:///{tmp_path}/centre.sqlite3", tmp_path / "files")
        yield s
        s.close()
        return
    urls = _pg_url()
    s = ReleaseStore.open(next(urls), tmp_path / "files")
    yield s
    s.close()
    with pytest.raises(StopIteration):
        next(urls)


def known(store: ReleaseStore) -> None:
    for b in BRANCHES:
        store.record_running(b, "0.1.0", now=1.0)


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- upload --------------------------------------------------------------------------------


def test_upload_checks_the_signature_and_every_file(store: ReleaseStore, bundles: dict[str, Path],
                                                    tmp_path: Path) -> None:
    m = store.add(bundles["0.2.0"], [KEY.public_key()])
    assert [r["version"] for r in store.releases()] == ["0.2.0"]
    assert store.add(bundles["0.2.0"], [KEY.public_key()]) == m  # the same again: fine
    bad = copy_bundle(bundles["0.3.0"], tmp_path / "bad")
    wheel = next(bad.glob("paidui-*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"x")
    with pytest.raises(ReleaseRefused, match="size_mismatch"):
        store.add(bad, [KEY.public_key()])
    (bad / "manifest.sig").unlink()
    with pytest.raises(ReleaseRefused, match="unsigned"):
        store.add(bad, [KEY.public_key()])
    with pytest.raises(ReleaseRefused, match="unknown_key"):
        store.add(bundles["0.3.0"], [OTHER.public_key()])
    resigned = copy_bundle(bundles["0.2.0"], tmp_path / "resigned")
    manifest = resigned / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"notes":""', b'"notes":"v2"'))
    (resigned / "manifest.sig").write_bytes(sign_manifest(manifest.read_bytes(), KEY))
    with pytest.raises(ReleaseError, match="stored already"):
        store.add(resigned, [KEY.public_key()])
    assert [r["version"] for r in store.releases()] == ["0.2.0"]


# --- rollouts and status ---------------------------------------------------------------------


def test_rollout_to_one_branch_a_list_an_org_and_all(store: ReleaseStore,
                                                     bundles: dict[str, Path]) -> None:
    store.add(bundles["0.2.0"], [KEY.public_key()])
    known(store)
    one = store.roll_out("0.2.0", Target(("1001010001",)), base_url=BASE, now=2.0)
    assert [b for b, _ in one] == ["1001010001"]
    offer = parse_update_command(one[0][1])
    assert offer.manifest_url == f"{BASE}/api/releases/0.2.0/manifest.json"
    listed = store.roll_out("0.2.0", Target(("1001010002", "1002010001")), base_url=BASE)
    assert [b for b, _ in listed] == ["1001010002", "1002010001"]
    org = store.roll_out("0.2.0", Target(org="100101"), base_url=BASE)
    assert [b for b, _ in org] == ["1001010001", "1001010002"]
    every = store.roll_out("0.2.0", Target(all=True), base_url=BASE)
    assert [b for b, _ in every] == BRANCHES
    assert len({p["id"] for _, p in every}) == 1  # one command id per rollout
    assert {s["status"] for s in store.statuses("0.2.0")} == {"offered"}
    with pytest.raises(ReleaseError, match=r"no release 9\.9\.9"):
        store.roll_out("9.9.9", Target(all=True), base_url=BASE)
    with pytest.raises(ReleaseError, match="no known branch"):
        store.roll_out("0.2.0", Target(org="2001"), base_url=BASE)
    with pytest.raises(ReleaseError, match="organisation code"):
        store.roll_out("0.2.0", Target(("x; DROP TABLE releases",)), base_url=BASE)


def report(cmd_id: str, status: str, **kw: Any) -> dict[str, Any]:
    return update_report(cmd_id, "0.2.0", status, running=kw.pop("running", "0.1.0"),
                         at=kw.pop("at", 5.0), **kw)


def test_reports_move_each_branch_forward_once(store: ReleaseStore,
                                               bundles: dict[str, Path]) -> None:
    store.add(bundles["0.2.0"], [KEY.public_key()])
    known(store)
    offers = dict(store.roll_out("0.2.0", Target(org="100101"), base_url=BASE))
    cmd = offers["1001010001"]["id"]
    assert store.offer_for("1001010001", BASE) == offers["1001010001"]
    assert store.record_report("1001010001", report(cmd, "downloading"))
    assert store.record_report("1001010001", report(cmd, "installed"))
    assert not store.record_report("1001010001", report(cmd, "downloading"))  # late: ignored
    assert not store.record_report("1001010001", report(cmd, "installed"))  # repeat
    assert store.record_report("1001010001", report(cmd, "healthy", running="0.2.0"))
    assert not store.record_report("1001010001", report(cmd, "failed", reason="busy"))
    assert store.record_report("1001010002", report(cmd, "rolled_back", reason="health_failed",
                                                    detail="no answer in 180 s"))
    assert not store.record_report("1001010002", {"status": "exploded"})  # counted, not stored
    assert not store.record_report("1002010001", report(cmd, "healthy"))  # not targeted
    rows = {s["branch"]: s for s in store.statuses("0.2.0")}
    assert (rows["1001010001"]["status"], rows["1001010001"]["running_version"]) == \
        ("healthy", "0.2.0")
    assert (rows["1001010002"]["status"], rows["1001010002"]["reason"]) == \
        ("rolled_back", "health_failed")
    assert rows["1001010002"]["detail"] == "no answer in 180 s"
    assert store.offer_for("1001010001", BASE) is None  # done: nothing more to offer
    assert store.offer_for("1002010001", BASE) is None  # never targeted


# --- HTTP ------------------------------------------------------------------------------------


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


async def test_files_are_served_with_range_and_nothing_else_is(store: ReleaseStore,
                                                               bundles: dict[str, Path]) -> None:
    m = store.add(bundles["0.2.0"], [KEY.public_key()])
    known(store)
    store.roll_out("0.2.0", Target(("1001010001",)), base_url=BASE)
    wheel = m.box_wheel.name
    whole = (bundles["0.2.0"] / wheel).read_bytes()
    async with serving(centre_app(store)) as url:
        api = f"{url}/api/releases"

        def fetch_all() -> dict[str, Any]:
            return {
                "list": _get(api), "manifest": _get(f"{api}/0.2.0/manifest.json"),
                "sig": _get(f"{api}/0.2.0/manifest.sig"),
                "range": _get(f"{api}/0.2.0/files/{wheel}", {"Range": "bytes=1000-"}),
                "unknown": _get(f"{api}/0.2.0/files/evil.whl"),
                "traversal": _get(f"{api}/0.2.0/files/..%2F..%2Fcentre.sqlite3"),
                "noversion": _get(f"{api}/..%2F/manifest.json"),
                "offer": _get(f"{api}/offer/1001010001?running=0.1.0"),
                "none": _get(f"{api}/offer/1002010001"),
                "branches": _get(f"{api}/0.2.0/branches"),
            }

        got = await asyncio.to_thread(fetch_all)
    assert json.loads(got["list"][2])[0]["version"] == "0.2.0"
    assert got["manifest"][2] == (bundles["0.2.0"] / "manifest.json").read_bytes()
    assert got["sig"][2] == (bundles["0.2.0"] / "manifest.sig").read_bytes()
    status, headers, body = got["range"]
    assert status == 206 and body == whole[1000:]
    assert headers["content-range"] == f"bytes 1000-{len(whole) - 1}/{len(whole)}"
    assert got["unknown"][0] == got["traversal"][0] == got["noversion"][0] == 404
    offer = json.loads(got["offer"][2])
    assert offer["version"] == "0.2.0" and offer["manifest_url"].startswith("http://127.0.0.1")
    assert got["none"][0] == 204
    assert json.loads(got["branches"][2])[0]["status"] == "offered"


# --- command line ------------------------------------------------------------------------------


def test_command_line_from_keys_to_rollout(tmp_path: Path, bundles: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    assert main(["keygen", "--out", str(keys)]) == 0
    assert oct((keys / "release-key.pem").stat().st_mode & 0o777) == "0o600"
    assert main(["keygen", "--out", str(keys)]) == 1  # never overwrites a signing key
    wheels = [str(p) for p in bundles["0.3.0"].glob("*.whl") if not p.name.startswith("pip-")]
    bundle = tmp_path / "bundle"
    assert main(["build", "--version", "0.3.0", "--key", str(keys / "release-key.pem"),
                 "--out", str(bundle), *wheels]) == 0
    pub = str(keys / "release-key.pub")
    assert main(["verify", str(bundle), "--public-key", pub]) == 0
    db = ["--db", f"sqlite:///{tmp_path}/c.sqlite3", "--files", str(tmp_path / "files")]
    assert main(["upload", str(bundle), "--public-key", pub, *db]) == 0
    store = ReleaseStore.open(db[1], db[3])
    known(store)
    store.close()
    assert main(["rollout", "0.3.0", "--org", "100101", "--base-url", BASE, *db]) == 0
    assert main(["status", "0.3.0", *db]) == 0
    out = capsys.readouterr().out
    assert "1001010001  offered" in out and "1001010002  offered" in out
    assert "1001020001" not in out.split("offered")[-1]
    other = write_public_key(tmp_path / "other.pub", OTHER)
    assert main(["verify", str(bundle), "--public-key", str(other)]) == 1
    assert "unknown_key" in capsys.readouterr().err


def test_python_m_central_release_is_the_releases_command_line(
        tmp_path: Path, bundles: dict[str, Path]) -> None:
    def central(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "central", *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=60)

    shown = central("release", "--help")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: python -m central release")
    for command in ("keygen", "build", "verify", "upload", "rollout", "status"):
        assert command in shown.stdout
    assert "release" in central("--help").stdout
    made = central("release", "keygen", "--out", str(tmp_path / "keys"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "keys" / "release-key.pem").exists()
    pub = str(write_public_key(tmp_path / "ours.pub", KEY))
    checked = central("release", "verify", str(bundles["0.2.0"]), "--public-key", pub)
    assert checked.returncode == 0, checked.stderr
    assert "paidui 0.2.0: signature and" in checked.stdout
    wrong = central("release", "verify", str(bundles["0.2.0"]), "--public-key",
                    str(tmp_path / "keys" / "release-key.pub"))
    assert wrong.returncode == 1 and "unknown_key" in wrong.stderr


@pytest.mark.network
async def test_rollout_publishes_cmd_update_on_the_broker(tmp_path: Path,
                                                          bundles: dict[str, Path]) -> None:
    aiomqtt = pytest.importorskip("aiomqtt")
    db = ["--db", f"sqlite:///{tmp_path}/c.sqlite3", "--files", str(tmp_path / "files")]
    store = ReleaseStore.open(db[1], db[3])
    store.add(bundles["0.2.0"], [KEY.public_key()])
    known(store)
    store.close()
    got: list[tuple[str, dict[str, Any]]] = []
    try:
        async with aiomqtt.Client("127.0.0.1", 1883) as sub:
            await sub.subscribe("qms/v1/+/cmd/update", qos=1)
            code = await asyncio.to_thread(main, ["rollout", "0.2.0", "--branch", "1001020001",
                                                  "--base-url", BASE,
                                                  "--broker", "mqtt://127.0.0.1:1883", *db])
            assert code == 0
            async with asyncio.timeout(10):
                async for msg in sub.messages:
                    got.append((str(msg.topic), json.loads(msg.payload)))
                    break
    except aiomqtt.MqttError as exc:
        pytest.skip(f"no broker on 127.0.0.1:1883: {exc}")
    topic, payload = got[0]
    assert topic == "qms/v1/1001020001/cmd/update"
    assert payload["v"] == 1 and parse_update_command(payload).version == "0.2.0"


def test_a_bundle_missing_a_locked_wheel_is_not_built(tmp_path: Path) -> None:
    """A release without every locked dependency would only fail on the boxes (install,
    health check, rollback): the build refuses it and names what is missing."""
    from central.releases import build_bundle

    from .update_support import box_wheel, make_wheel

    key = Ed25519PrivateKey.generate()
    box = box_wheel(tmp_path / "w", "0.9.0")
    serial = make_wheel(tmp_path / "w", "pyserial", "3.5", {"serial/__init__.py": b""})
    ext = make_wheel(tmp_path / "w", "typing_extensions", "4.16.0", {"t.py": b""})
    lock = tmp_path / "requirements.lock"
    lock.write_text("# locked\npyserial==3.5\ntyping-extensions==4.16.0\nqrcode==8.2\n")
    with pytest.raises(ReleaseError, match=r"qrcode==8\.2"):
        build_bundle("0.9.0", [box, serial, ext], key, tmp_path / "b1", lock=lock)
    qr = make_wheel(tmp_path / "w", "qrcode", "8.2", {"qrcode/__init__.py": b""})
    m = build_bundle("0.9.0", [box, serial, ext, qr], key, tmp_path / "b2", lock=lock)
    assert {"pyserial-3.5-py3-none-any.whl", "qrcode-8.2-py3-none-any.whl"} <= \
        {f.name for f in m.files}


def test_the_shipped_lock_pins_every_run_time_dependency() -> None:
    import re
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*deps["dependencies"], *deps["optional-dependencies"]["pi"]]
    norm = [re.sub(r"[-_.]+", "_", re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]).lower()
            for d in wanted]
    lines = (ROOT / "deploy" / "requirements.lock").read_text().splitlines()
    pinned = {re.sub(r"[-_.]+", "_", line.split("==")[0]).lower() for line in lines
              if line and not line.startswith("#")}
    assert all("==" in line for line in lines if line and not line.startswith("#"))
    assert [d for d in norm if d not in pinned] == []
