"""Real PostgreSQL 15 servers for the store's failover tests and bench/bench_pg_failover.py.

* :class:`PgServer` — one standalone PostgreSQL (``initdb`` + ``pg_ctl``) on a free loopback
  port in its own folder: the store's reconnection is tested against it (stopped, started,
  its backends terminated, made read-only).
* :class:`PatroniCluster` — one etcd and two Patroni-managed PostgreSQL nodes (synchronous
  mode), each on free loopback ports in its own folder: the centre's failover test.

Nothing here touches the machine's own PostgreSQL (5432) or Patroni/etcd services: every
process is started here, on its own ports, and stopped by its own process id. PostgreSQL
refuses to run as root, so when the tests run as root its processes run as the ``postgres``
system user (the Debian package's), in a folder made for it under the system temp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from central.broker import LocalBroker, free_port
from common.clock import ManualClock
from controller.box import Box
from tests.conftest import example_config
from tests.uplink_support import (
    assert_exactly_the_journal,
    centre_running,
    drive,
    running,
    settled_everything,
    uplink_for,
    wait_for,
)

PG_BIN = Path(os.environ.get("PAIDUI_PG_BIN", "/usr/lib/postgresql/15/bin"))
PATRONI = shutil.which("patroni") or "/usr/bin/patroni"
PATRONICTL = shutil.which("patronictl") or "/usr/bin/patronictl"
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
SCOPE = "paidui-test"
SUPERUSER = ("postgres", "su-pw-test")  # scram passwords of this throw-away cluster
REPLICATION = ("replicator", "rep-pw-test")
BRANCHES = ("1001010001", "1001010002", "1001010003")


def missing_postgres() -> str | None:
    """Why a standalone PostgreSQL 15 cannot be started here, or None."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL 15 is not installed ({PG_BIN}; Debian package 'postgresql-15')"
    if os.geteuid() == 0 and not _user_exists("postgres"):
        return "running as root and there is no 'postgres' user to run PostgreSQL as"
    return None


def missing_patroni() -> str | None:
    """Why the Patroni cluster cannot be started here, or None."""
    if not Path(PATRONI).exists() or not Path(PATRONICTL).exists():
        return "Patroni is not installed (Debian package 'patroni')"
    if not Path(ETCD).exists():
        return "etcd is not installed (Debian package 'etcd-server')"
    return missing_postgres()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _as_postgres() -> dict[str, Any]:
    """subprocess arguments that run a PostgreSQL tool as its own user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres",
            "env": {**os.environ, "HOME": tempfile.gettempdir()}}


def own_folder(prefix: str) -> Path:
    """A fresh folder PostgreSQL's user owns (pytest's tmp_path is root's, mode 0700)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    return root


def wait_until(predicate: Any, timeout: float, what: str, poll: float = 0.1) -> Any:
    """Poll ``predicate()`` until it is truthy (the state of another process is the signal)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            last = predicate()
            if last:
                return last
        time.sleep(poll)  # polling another process's state
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM,
          timeout: float = 30.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


# --- one standalone server ---------------------------------------------------------------


class PgServer:
    """A standalone PostgreSQL 15 on ``127.0.0.1:port``, trust authentication."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port or free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> PgServer:
        subprocess.run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--locale=C"],
                       check=True, capture_output=True, **_as_postgres())
        return self

    def start(self) -> None:
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.root} -c shared_buffers=16MB "
                "-c max_connections=30")
        subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l",
                        str(self.root / "log"), "-o", opts, "-w", "-t", "60", "start"],
                       check=True, capture_output=True, **_as_postgres())

    def stop(self, mode: str = "fast") -> None:
        subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                        "-t", "60", "stop"], check=False, capture_output=True,
                       **_as_postgres())

    def admin(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser, on a connection of its own."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            cur = db.execute(sql, args)
            return cur.fetchall() if cur.description else []

    def read_only(self, on: bool) -> None:
        """New transactions read-only (as on a demoted primary) or writable again."""
        want = "on" if on else "off"
        self.admin(f"ALTER SYSTEM SET default_transaction_read_only = {want}")
        self.admin("SELECT pg_reload_conf()")
        # The reload is asynchronous: once a new session sees the setting, the postmaster has
        # reloaded and signalled every backend, which applies it before its next command.
        deadline = time.monotonic() + 10
        while self.admin("SHOW default_transaction_read_only") != [(want,)]:
            assert time.monotonic() < deadline, "the server did not reload its settings"
            time.sleep(0.02)  # polling the server's reload, a few milliseconds


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    reason = missing_postgres()
    if reason:
        pytest.skip(reason)
    root = own_folder("paidui-pg-")
    server = PgServer(root).init()
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


# --- etcd + two Patroni nodes -------------------------------------------------------------


class PatroniNode:
    def __init__(self, cluster: PatroniCluster, name: str) -> None:
        self.cluster, self.name = cluster, name
        self.folder = cluster.root / name
        self.pg_port, self.api_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def config_file(self) -> Path:
        return self.folder / "patroni.yml"

    def write_config(self) -> None:
        self.folder.mkdir(mode=0o700)
        c = self.cluster
        config = {
            "scope": SCOPE, "name": self.name,
            "log": {"level": "INFO"},
            "restapi": {"listen": f"127.0.0.1:{self.api_port}",
                        "connect_address": f"127.0.0.1:{self.api_port}"},
            "etcd3": {"hosts": [f"127.0.0.1:{c.etcd_port}"]},
            "bootstrap": {
                "dcs": {
                    # Short timings so a test fails over in seconds (production: docs/deploy.md).
                    "ttl": 10, "loop_wait": 1, "retry_timeout": 4,
                    "maximum_lag_on_failover": 1048576,
                    # An acknowledged commit is on the sync standby too; Patroni promotes only
                    # the sync standby: no acknowledged event is lost to a failover.
                    "synchronous_mode": True,
                    "postgresql": {"use_pg_rewind": True, "parameters": {
                        "wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
                        "max_wal_senders": 5, "max_replication_slots": 5,
                        "max_connections": 40, "shared_buffers": "16MB"}},
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, {"auth": "scram-sha-256"}],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{self.pg_port}",
                "connect_address": f"127.0.0.1:{self.pg_port}",
                "data_dir": str(self.folder / "data"),
                "bin_dir": str(PG_BIN),
                "pgpass": str(self.folder / "pgpass"),
                "authentication": {
                    "superuser": {"username": SUPERUSER[0], "password": SUPERUSER[1]},
                    "replication": {"username": REPLICATION[0], "password": REPLICATION[1]},
                    "rewind": {"username": SUPERUSER[0], "password": SUPERUSER[1]},
                },
                "parameters": {"unix_socket_directories": str(self.folder)},
                "pg_hba": [
                    "local all all trust",
                    f"host replication {REPLICATION[0]} 127.0.0.1/32 scram-sha-256",
                    "host all all 127.0.0.1/32 scram-sha-256",
                ],
            },
            "tags": {"nofailover": False, "noloadbalance": False},
        }
        self.config_file.write_text(json.dumps(config, indent=1))  # JSON is YAML
        if os.geteuid() == 0:
            for p in (self.folder, self.config_file):
                shutil.chown(p, "postgres", "postgres")

    def start(self) -> None:
        log = (self.folder / "patroni.out").open("ab")
        self.proc = subprocess.Popen([PATRONI, str(self.config_file)], stdout=log,
                                     stderr=subprocess.STDOUT, **_as_postgres())

    def stop(self) -> None:
        _stop(self.proc, timeout=60)

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}{path}",
                                    timeout=3) as r:
            return json.loads(r.read())

    def postmaster_pid(self) -> int | None:
        pid = self.folder / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pid.read_text().splitlines()[0])
        return None


class PatroniCluster:
    """One etcd, two Patroni nodes (``pg1``, ``pg2``), synchronous mode."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.etcd_port, self.etcd_peer = free_port(), free_port()
        self.etcd: subprocess.Popen[bytes] | None = None
        self.nodes = [PatroniNode(self, "pg1"), PatroniNode(self, "pg2")]

    @property
    def url(self) -> str:
        """The centre's URL: both nodes, whichever is the primary (libpq multi-host)."""
        hosts = ",".join(f"127.0.0.1:{n.pg_port}" for n in self.nodes)
        return (f"postgresql://{SUPERUSER[0]}:{SUPERUSER[1]}@{hosts}/postgres"
                "?target_session_attrs=read-write&connect_timeout=3")

    def start(self) -> None:
        etcd_dir = self.root / "etcd"
        log = (self.root / "etcd.out").open("ab")
        peer = f"http://127.0.0.1:{self.etcd_peer}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        self.etcd = subprocess.Popen(
            [ETCD, "--name", "e1", "--data-dir", str(etcd_dir),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"e1={peer}", "--initial-cluster-state", "new",
             "--initial-cluster-token", f"paidui-{self.etcd_port}"],
            stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: _get_json(f"{client}/health").get("health") == "true", 30,
                   "etcd to be healthy")
        for node in self.nodes:
            node.write_config()
        self.nodes[0].start()
        wait_until(lambda: self.leader() == "pg1", 90, "pg1 to bootstrap as the leader")
        self.nodes[1].start()
        self.wait_healthy(180)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        for node in self.nodes:  # a postgres Patroni could not stop (it was SIGKILLed)
            pid = node.postmaster_pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGQUIT)
        _stop(self.etcd)

    def members(self) -> list[dict[str, Any]]:
        for node in self.nodes:
            with contextlib.suppress(OSError, ValueError):
                members: list[dict[str, Any]] = node.api("/cluster")["members"]
                return members
        return []

    def leader(self) -> str | None:
        return next((m["name"] for m in self.members() if m.get("role") == "leader"
                     and m.get("state") == "running"), None)

    def sync_standby(self) -> str | None:
        return next((m["name"] for m in self.members() if m.get("role") == "sync_standby"
                     and m.get("state") in ("running", "streaming")), None)

    def wait_healthy(self, timeout: float = 120.0) -> tuple[str, str]:
        """A running leader and a streaming synchronous standby."""
        def both() -> tuple[str, str] | None:
            leader, sync = self.leader(), self.sync_standby()
            return (leader, sync) if leader and sync else None

        found: tuple[str, str] = wait_until(both, timeout, "a leader and a sync standby",
                                            poll=0.3)
        return found

    def node(self, name: str) -> PatroniNode:
        return next(n for n in self.nodes if n.name == name)

    def switchover(self) -> subprocess.CompletedProcess[str]:
        """``patronictl switchover --force``: the leader hands over to the sync standby."""
        leader, candidate = self.wait_healthy()
        return subprocess.run(
            [PATRONICTL, "-c", str(self.node(leader).config_file), "switchover",
             "--leader", leader, "--candidate", candidate, "--force"],
            check=True, capture_output=True, text=True, timeout=120, **_as_postgres())

    def kill_leader_node(self) -> str:
        """SIGKILL the leader's Patroni, then its postmaster: the node is gone as if its
        machine died (postgres alone killed is restarted in place by its Patroni)."""
        leader, _ = self.wait_healthy()
        node = self.node(leader)
        pid = node.postmaster_pid()
        assert node.proc is not None and pid is not None, f"{leader} is not running"
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.wait(10)
        os.kill(pid, signal.SIGKILL)
        return leader


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as r:
        return json.loads(r.read())


@contextlib.contextmanager
def patroni_cluster() -> Iterator[PatroniCluster]:
    reason = missing_patroni()
    if reason:
        pytest.skip(reason)
    root = own_folder("paidui-patroni-")
    cluster = PatroniCluster(root)
    try:
        cluster.start()
        yield cluster
    except BaseException:
        for f in [*sorted(root.glob("*/patroni.out")), root / "etcd.out"]:
            with contextlib.suppress(OSError):
                print(f"--- {f}\n{f.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- a fleet under load through a failover ------------------------------------------------


async def keep_busy(box: Box, clock: ManualClock, stop: asyncio.Event, seed: int) -> None:
    """A busy branch until ``stop``: a few commands, then a breath (the box serves a command
    in well under 1 ms: unpaced, the load would be over before the failover)."""
    step = 0
    while not stop.is_set():
        await drive(box, clock, 3, seed=seed * 10_000 + step)
        step += 1
        # ~30 events/s per box (~90 for the centre): the load spans the failover, and a
        # branch's simulated day (1-20 s a step) stays within business hours.
        await asyncio.sleep(0.1)  # pacing, as above


@contextlib.asynccontextmanager
async def fleet_under_load(broker: LocalBroker, url: str, clock: ManualClock, data: Path,
                           branches: tuple[str, ...] = BRANCHES
                           ) -> AsyncIterator[tuple[Any, list[tuple[Box, Any]]]]:
    """A centre (two consumers) on ``url`` and three boxes sending to it, busy, for the
    block; afterwards every box settles and the centre holds exactly each journal."""
    async with contextlib.AsyncExitStack() as stack:
        pairs, clocks = [], []
        for code in branches:  # a clock each: one shared would run three times as fast
            clocks.append(ManualClock(clock.now()))
            box = await stack.enter_async_context(
                Box(example_config(f"branch.code='{code}'"), data / code, clocks[-1]))
            pairs.append((box, uplink_for(broker, code)))
        centre = await stack.enter_async_context(
            centre_running(broker, url, "ingest.consumers=2"))
        for box, uplink in pairs:
            await stack.enter_async_context(running(uplink.run(box)))
        stop = asyncio.Event()
        load = [asyncio.create_task(keep_busy(box, clocks[i], stop, i + 1))
                for i, (box, _) in enumerate(pairs)]
        stack.push_async_callback(_cancel, load)
        await wait_for(lambda: all(u.acked >= 60 for _, u in pairs), 60,
                       "each box to have 60 events acknowledged")
        yield centre, pairs
        await wait_for(lambda: all(b.last_seq >= 300 for b, _ in pairs), 60,
                       "300 events in each journal")
        stop.set()
        # Every box's last commands done first: an event made after a box settled would
        # reach the centre but not the journal read that the centre is compared with.
        await asyncio.wait_for(asyncio.gather(*load), 30)
        for box, uplink in pairs:
            await settled_everything(box, uplink, timeout=90)
        for code in branches:
            await assert_exactly_the_journal(url, data / code, code, timeout=60)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def failover_seconds(centre: Any) -> list[float]:
    """Each consumer's outages: first failed commit → first commit on the new primary."""
    return [o.seconds for c in centre.consumers if c._store is not None
            for o in c._store.outages]


async def under_failover(cluster: PatroniCluster, broker: LocalBroker, clock: ManualClock,
                         data: Path, fail: Callable[[], Awaitable[str]],
                         branches: tuple[str, ...] = BRANCHES) -> list[float]:
    """``fail()`` (returning how) while three boxes load a centre on the cluster; the
    centre ends holding exactly each journal. Prints and returns each consumer's failover
    time (first failed commit → first commit on the new primary)."""
    before = cluster.leader()
    async with fleet_under_load(broker, cluster.url, clock, data, branches) as (centre, pairs):
        acked = [u.acked for _, u in pairs]
        how = await fail()
        await wait_for(lambda: cluster.leader() not in (None, before), 120,
                       "the other node to lead")
        await wait_for(lambda: all(u.acked >= a + 60 for a, (_, u) in zip(acked, pairs,
                                                                          strict=True)),
                       120, "60 more events acknowledged by each box after the failover")
        times = failover_seconds(centre)
    assert times, "no commit failed: the failover happened outside the load"
    print(f"\nPostgreSQL failover ({how}) under load, {len(branches)} boxes: "
          f"{before} → {cluster.leader()}; first failed commit → first commit on the new "
          f"primary, per consumer: {', '.join(f'{t:.2f} s' for t in times)}")
    return times
