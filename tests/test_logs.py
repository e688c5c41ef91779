"""``--log-format json``: one JSON object per line, from the box and the centre alike."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common.logs import JsonFormatter
from tests.browser import ROOT, free_port


def test_a_json_line_has_time_level_logger_message_extras_and_the_traceback() -> None:
    record = logging.LogRecord("central.ingest", logging.ERROR, __file__, 1,
                               "branch %s: %d events", ("1001010001", 12), None)
    record.branch = "1001010001"
    try:
        raise ValueError("bad batch")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    got = json.loads(line)
    assert got["level"] == "ERROR" and got["logger"] == "central.ingest"
    assert got["msg"] == "branch 1001010001: 12 events" and got["branch"] == "1001010001"
    assert got["ts"].endswith("+00:00") and "ValueError: bad batch" in got["exc"]


def test_the_box_logs_json_lines_from_start_to_clean_stop(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "--config", "examples/branch.toml",
         "--data-dir", str(tmp_path), "--http", f"127.0.0.1:{port}", "--log-format", "json",
         "--set", 'hardware="none"', "--set", "clock.start=2026-11-25T10:00:00+08:00"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None and time.monotonic() < deadline
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)  # another process starting: polling its port
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert lines, "the box logged nothing"
    assert {"ts", "level", "logger", "msg"} <= set(lines[0])
    assert any(line["logger"].startswith("controller") for line in lines)
