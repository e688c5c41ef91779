"""Many days in several processes give exactly the answer of one process (queueing.batch)."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import threading

import pytest

from common.errors import ConfigError
from controller.errors import Refused
from queueing.batch import Batch, batch
from queueing.compare import PRESETS, compare, parse_variant
from queueing.errors import ScenarioError, SimError
from queueing.scenario import default_scenario
from queueing.staffing import advise_staffing
from queueing.theory import TheoryCase, theory_run
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


def test_a_bad_variant_is_the_same_clear_error_from_a_worker() -> None:
    scenario = default_scenario(CFG, DAY)
    variants = [PRESETS["branch"], parse_variant("x=thresholds.nope=1")]
    for jobs in (1, 2):
        with pytest.raises(ConfigError, match=r"thresholds\.nope") as info:
            compare(CFG, scenario, variants, seeds=range(1, 3), jobs=jobs)
        assert info.value.key == "thresholds.nope"


@pytest.mark.parametrize("error", [
    ConfigError("windows.2.queues", "unknown queue 'Z'", "simulation"),
    ScenarioError("service.A.dist", "'gamma' is not a distribution"),
    Refused("outside_hours", hours="08:30-17:00"),
])
def test_errors_cross_process_boundaries_whole(error: Exception) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error)
    assert vars(back) == vars(error)


def _die(n: int) -> int:
    if n == 3:
        os._exit(9)  # as the kernel's out-of-memory killer would leave it
    return n


def test_a_worker_that_dies_is_a_clear_error() -> None:
    with pytest.raises(SimError, match="worker process stopped unexpectedly"), \
            batch(2) as days:
        days.map(_die, list(range(6)))


def test_a_batch_without_a_pool_is_a_plain_loop() -> None:
    assert Batch(1, None).map(abs, [-1, 2, -3]) == [1, 2, 3]
