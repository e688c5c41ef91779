"""``python -m controller``: bad configs refused with the key named, and a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLE, ROOT
from tests.test_crash import free_port, start_box, wait_ready


def run_box(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "--config", str(EXAMPLE), *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(("args", "key"), [
    (["--set", "thresholds.balance_waiting=0"], "thresholds.balance_waiting"),
    (["--set", "windows.0.queues.Q=1"], "windows.0.queues"),
    (["--set", "branch.timezone=\"Mars/Olympus\""], "branch.timezone"),
    (["--set", "queues.9.digits=2"], "queues.9.digits"),
    (["--set", "nonsense"], "nonsense"),
    (["--set", "printer.encoding=\"latin1\""], "printer.encoding"),
    (["--set", "rs485.profile=\"morse\""], "rs485.profile"),
    (["--set", 'vip_customers.0.cards=["6225880137001238"]'], "vip_customers.0.cards"),
    (["--set", 'vip_customers.0.id_numbers=["410105198001012312"]'],
     "vip_customers.0.id_numbers"),
    (["--http", "localhost"], "--http"),
])
def test_a_bad_config_is_one_clear_message_and_exit_code_2(args: list[str], key: str) -> None:
    done = run_box(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error:"), done.stderr
    assert key in lines[0]


def test_a_missing_config_file_is_exit_code_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "controller", "--config", str(tmp_path / "none.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and "does not exist" in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_the_box_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    proc = start_box(tmp_path, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            await wait_ready(c, proc)
            assert (await c.post("/api/tickets", json={"queue": "A"})).status_code == 201
        proc.send_signal(sig)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The journal was closed: SQLite removes the write-ahead log with its last connection.
    assert not (tmp_path / "journal.sqlite3-wal").exists()
