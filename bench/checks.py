"""What every benchmark checks before its figures count, and the machine line it prints.

A benchmark that prints a rate while its requests fail, while a number comes out twice or
while work it sent is still somewhere in flight measures nothing. Each benchmark in
``bench/`` collects those three facts in a :class:`Checks` and ends with
``sys.exit(checks.verdict())``: exit 1 and a ``FAIL:`` line per problem on stderr when
anything failed, was duplicated or did not drain (tests/test_bench_checks.py).

    checks = Checks("bench_journal")
    checks.failed(refused, "issues")               # requests that did not succeed
    checks.unique(numbers, "ticket numbers")       # none twice
    checks.drained(sent=len(numbers), accounted=in_journal, what="tickets in the journal")
    print(machine_line())
    sys.exit(checks.verdict())
"""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

__all__ = ["Checks", "journal_numbers", "machine", "machine_line"]


class Checks:
    """The problems one benchmark run found; empty when its figures may be printed as true."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.problems: list[str] = []
        self.passed: list[str] = []

    def failed(self, count: int, what: str) -> None:
        """``count`` requests of kind ``what`` failed (an error answer, a refusal, a timeout)."""
        if count:
            self.problems.append(f"{count} {what} failed")
        else:
            self.passed.append(f"no {what} failed")

    def unique(self, values: Iterable[Hashable], what: str) -> None:
        """No value of ``values`` (ticket numbers, sequence numbers…) occurs twice."""
        counts = Counter(values)
        twice = {v: n for v, n in counts.items() if n > 1}
        if twice:
            shown = ", ".join(f"{v!s} ×{n}" for v, n in list(twice.items())[:5])
            more = f" (+{len(twice) - 5} more)" if len(twice) > 5 else ""
            self.problems.append(f"{len(twice)} {what} duplicated: {shown}{more}")
        else:
            self.passed.append(f"{len(counts)} {what}, none twice")

    def drained(self, sent: int, accounted: int, what: str) -> None:
        """Everything sent (``sent``) is accounted for at the end (``accounted``)."""
        if sent != accounted:
            self.problems.append(f"not drained: {accounted} {what} of {sent} sent")
        else:
            self.passed.append(f"drained: {accounted}/{sent} {what}")

    def true(self, ok: bool, problem: str) -> None:
        """Any other condition the figures need (``problem`` says what went wrong)."""
        if not ok:
            self.problems.append(problem)

    def fleet(self, stats: Mapping[str, Any], label: str = "fleet") -> None:
        """A ``python -m sim fleet`` result: every journaled event acknowledged by the
        centre, no ticket refused or failed, no link that could not connect."""
        self.failed(int(stats.get("refused", 0)), f"{label} tickets")
        self.failed(int(stats.get("connection_failures", 0)), f"{label} connections")
        self.drained(int(stats["events"]), int(stats["acked"]), f"{label} events acknowledged")
        self.true(bool(stats.get("drained")), f"{label}: the run did not drain")

    @property
    def ok(self) -> bool:
        return not self.problems

    def verdict(self, out: TextIO | None = None) -> int:
        """Print the outcome; the exit code: 0 if every check passed, else 1."""
        out = out or sys.stderr
        for problem in self.problems:
            print(f"FAIL: {self.bench}: {problem}", file=out)
        if self.problems:
            print(f"FAIL: {self.bench}: the figures above do not count", file=out)
            return 1
        print(f"checks: {'; '.join(self.passed) or 'none'}", file=out)
        return 0


def journal_numbers(data_dir: str | Path) -> list[str]:
    """The ticket numbers issued in a box's journal (``data_dir/journal.sqlite3``), read
    after the run from the file itself: what was made durable, not what the bench counted."""
    path = Path(data_dir) / "journal.sqlite3"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT json_extract(body, '$.day') || ' ' || "
                          "json_extract(body, '$.number') FROM events "
                          "WHERE type = 'ticket_issued' ORDER BY seq").fetchall()
    finally:
        db.close()
    return [str(r[0]) for r in rows]


def machine(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU model and its number of cores, from ``/proc/cpuinfo`` (where there is one)."""
    model, cores = "", 0
    try:
        lines = Path(cpuinfo).read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            cores += 1
        elif key in ("model name", "Model", "Hardware") and not model:
            model = value.strip()
    model = model or platform.processor() or platform.machine()
    return f"{model}, {cores or os.cpu_count()} cores"


def machine_line() -> str:
    """``Machine: <CPU model>, <n> cores, Python 3.11.7, load average 1.2``: printed by
    every benchmark beside its figures (docs/performance.md shows it beside each table)."""
    return (f"Machine: {machine()}, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":  # python bench/checks.py: the machine line alone
    print(machine_line())
