"""Many days in several processes give exactly the answer of one process (sim.des.batch)."""

from __future__ import annotations

import datetime as dt
import os
import threading

import pytest

from sim.des.batch import Batch, batch
from sim.des.compare import PRESETS, compare
from sim.des.scenario import default_scenario
from sim.des.staffing import advise_staffing
from sim.des.theory import TheoryCase, theory_run
from tests.conftest import example_config

CFG = example_config()
DAY = dt.date(2026, 11, 25)


def _square_and_pid(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def test_a_batch_of_two_runs_in_two_other_processes_and_keeps_the_order() -> None:
    with batch(2) as days:
        got = days.map(_square_and_pid, list(range(40)))
    assert [sq for sq, _ in got] == [n * n for n in range(40)]
    assert os.getpid() not in {pid for _, pid in got}


def test_one_job_runs_in_this_process() -> None:
    with batch(1) as days:
        assert [pid for _, pid in days.map(_square_and_pid, [1, 2])] == [os.getpid()] * 2


def test_a_process_with_threads_still_gets_its_batch() -> None:
    # The centre asks from a web server's worker thread: workers are spawned, not forked.
    got: list[list[tuple[int, int]]] = []
    t = threading.Thread(target=lambda: got.append(_in_a_batch()))
    t.start()
    t.join(60)
    assert [sq for sq, _ in got[0]] == [0, 1, 4]


def _in_a_batch() -> list[tuple[int, int]]:
    with batch(2) as days:
        return days.map(_square_and_pid, [0, 1, 2])


def test_zero_jobs_is_refused() -> None:
    with pytest.raises(ValueError, match="jobs"), batch(0):
        pass


def test_a_comparison_does_not_depend_on_the_processes() -> None:
    scenario = default_scenario(CFG, DAY).scaled(1.1)
    variants = [PRESETS["branch"], PRESETS["fifo"]]
    one = compare(CFG, scenario, variants, seeds=range(1, 4), jobs=1)
    two = compare(CFG, scenario, variants, seeds=range(1, 4), jobs=2)
    assert two == one


def test_theory_replications_do_not_depend_on_the_processes() -> None:
    case = TheoryCase(3, 120, 1.2, hours=4)
    one, two = theory_run(case, 7, 4, jobs=1), theory_run(case, 7, 4, jobs=2)
    for r in (one, two):
        r.pop("wall_s")
    assert two == one


def test_staffing_advice_does_not_depend_on_the_processes() -> None:
    scenario = default_scenario(CFG, DAY, 300)
    one = advise_staffing(CFG, scenario, seeds=(1, 2), rounds=1, jobs=1)
    two = advise_staffing(CFG, scenario, seeds=(1, 2), rounds=1, jobs=2)
    assert two.to_json() == one.to_json()


def test_a_batch_without_a_pool_is_a_plain_loop() -> None:
    assert Batch(1, None).map(abs, [-1, 2, -3]) == [1, 2, 3]
