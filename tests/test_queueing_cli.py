"""``python -m sim des``: the day, the theory check, compare, staffing and learn commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image

from sim.__main__ import main
from tests.conftest import EXAMPLE, ROOT


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["des", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_theory_check_command_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "des", "--servers", "2", "--arrivals-per-hour", "50",
         "--service-minutes", "2", "--service-dist", "exponential", "--hours", "6",
         "--seed", "4", "--json"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in ("mean_wait_s", "p_wait_over_60s", "served", "utilisation"):
        assert key in result
    assert result["served"] == result["customers"] > 200
    assert 0.6 < result["utilisation"] < 1.0
    # M/M/2, a = 5/3: P(wait) = 25/33, mean wait = P(wait) / (2 - a) service times
    assert result["theory"]["p_wait"] == pytest.approx(25 / 33)
    assert result["theory"]["mean_wait_s"] == pytest.approx(25 / 33 / (1 / 3) * 120)


def test_a_day_with_every_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    xlsx, png, events = tmp_path / "d.xlsx", tmp_path / "d.png", tmp_path / "d.jsonl"
    code, out, _ = run(capsys, "--config", str(EXAMPLE), "--seed", "2", "--excel", str(xlsx),
                       "--png", str(png), "--events", str(events), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["customers"] > 200 and report["wait"]["within_target"] is not None
    assert set(report["by_queue"]) == {"A", "B", "V", "T", "F"}
    wb = load_workbook(xlsx)
    assert wb.sheetnames[:3] == ["概要 Summary", "按业务 By business", "按客户类型 By type"]
    assert Image.open(png).size == (1000, 640)
    lines = events.read_text(encoding="utf-8").splitlines()
    assert len(lines) == report["engine"]["events"]
    assert json.loads(lines[0])["type"] == "day_opened"


def test_learn_then_simulate_the_learned_day(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    events, learned = tmp_path / "h.jsonl", tmp_path / "learned.json"
    run(capsys, "--config", str(EXAMPLE), "--events", str(events), "--json")
    with events.open("a", encoding="utf-8") as f:
        f.write("not json\n")
    code, _, err = run(capsys, "learn", "--config", str(EXAMPLE), "--history", str(events),
                       "--out", str(learned))
    assert code == 0 and "not JSON, skipped" in err
    code, out, _ = run(capsys, "--config", str(EXAMPLE), "--scenario", str(learned), "--json")
    assert code == 0 and json.loads(out)["customers"] > 200


def test_compare_and_staffing_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path
                                       ) -> None:
    code, out, _ = run(capsys, "compare", "--config", str(EXAMPLE), "--seeds", "2",
                       "--variant", "branch", "--variant", "fifo", "--json")
    assert code == 0 and set(json.loads(out)["variants"]) == {"branch", "fifo"}
    code, out, _ = run(capsys, "compare", "--config", str(EXAMPLE), "--seeds", "2",
                       "--variant", "branch", "--variant", "balancing_off")
    assert code == 0 and out.startswith("difference to branch over 2 days")
    scenario = tmp_path / "s.toml"
    scenario.write_text('[[arrivals]]\nqueue = "A"\nper_hour = { "9-11" = 30 }\n'
                        '[staffing.open]\n"9-11" = [1, 2, 3]\n', encoding="utf-8")
    code, out, _ = run(capsys, "staffing", "--config", str(EXAMPLE), "--scenario",
                       str(scenario), "--seeds", "2", "--excel", str(tmp_path / "p.xlsx"),
                       "--json")
    advice = json.loads(out)
    assert code == 0 and advice["met"] and [h["hour"] for h in advice["hours"]] == [9, 10]
    assert (tmp_path / "p.xlsx").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--servers", "0", "--arrivals-per-hour", "1", "--service-minutes", "1"], "positive"),
    (["--servers", "2", "--service-minutes", "1"], "--arrivals-per-hour"),
    (["--servers", "2", "--arrivals-per-hour", "9", "--service-minutes", "1",
      "--service-dist", "gamma"], "--service-dist"),
    (["--config", "missing.toml"], "does not exist"),
    (["--config", str(EXAMPLE), "--set", "windows.0.queues={Z=1}"], "windows.0.queues"),
    ([], "--config"),
])
def test_bad_input_is_a_clear_error(capsys: pytest.CaptureFixture[str], argv: list[str],
                                    message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err


def test_the_dispatcher_lists_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nope"]) == 2
    assert "des" in capsys.readouterr().err
