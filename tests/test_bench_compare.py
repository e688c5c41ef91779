"""bench/compare.sh OLD NEW BENCH: both commits checked out in temporary worktrees, the
benchmark run alternately against each, a table with both and the ratio; a run whose
checks fail voids the comparison (docs/performance.md, "Before and after")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPARE = ROOT / "bench" / "compare.sh"


def compare(tmp: Path, *args: str, python: str = sys.executable
            ) -> subprocess.CompletedProcess[str]:
    """Run compare.sh with its temporary worktrees under ``tmp``."""
    return subprocess.run([str(COMPARE), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": python, "TMPDIR": str(tmp)})


def leftovers(tmp: Path) -> list[str]:
    """compare.sh's temporary worktrees under ``tmp`` still registered with git."""
    out = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return [line for line in out.splitlines() if str(tmp) in line]


def test_two_commits_are_run_in_turn_and_printed_with_their_ratio(tmp_path: Path) -> None:
    # the bench: a script that prints a figure (run from the copied bench/ of this tree)
    r = compare(tmp_path, "-n", "2", "-f", r"cores, Python ([0-9]+)\.", "HEAD", "HEAD",
                "bench/checks.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Machine: ") and "2 rounds, interleaved" in r.stdout
    assert "| round | OLD | NEW | NEW/OLD |" in r.stdout and "| median |" in r.stdout
    assert r.stderr.index("round 1 old") < r.stderr.index("round 1 new") \
        < r.stderr.index("round 2 old") < r.stderr.index("round 2 new")
    assert leftovers(tmp_path) == []  # the temporary worktrees are gone


def test_a_run_that_fails_voids_the_comparison(tmp_path: Path) -> None:
    """A benchmark exiting 1 (its checks failed) makes compare.sh exit 1 with its output."""
    failing = tmp_path / "python"
    failing.write_text(f"#!/bin/sh\ncase \"$1\" in -c) exec {sys.executable} \"$@\";; esac\n"
                       "echo 'FAIL: demo: not drained: 4 tickets of 5 sent' >&2\nexit 1\n")
    failing.chmod(0o755)
    (tmp_path / "work").mkdir()
    r = compare(tmp_path / "work", "-n", "1", "HEAD", "HEAD", "bench/checks.py",
                python=str(failing))
    assert r.returncode == 1
    assert "FAIL: round 1, old" in r.stderr and "not drained: 4 tickets of 5 sent" in r.stderr
    assert "| median |" not in r.stdout
    assert leftovers(tmp_path / "work") == []
