"""A branch-day in a second: the real engine in virtual time (discrete-event simulation).

A library of its own (not the simulator's devices and people): the centre's staffing advice
imports it too. See docs/simulation.md. Entry points: :func:`simulate_day`, :func:`day_report`,
:func:`compare`, :func:`advise_staffing`, :func:`learn`, ``python -m sim des``.
"""

from .compare import PRESETS, Variant, compare
from .day import Day, DayRun, simulate_day
from .distributions import Empirical, Exponential, LogNormal, ServiceTime
from .errors import ScenarioError, SimError
from .learn import learn, read_history
from .report import day_report, write_excel, write_png
from .scenario import (
    Behaviour,
    Scenario,
    Staffing,
    Stream,
    default_scenario,
    load_scenario,
    parse_scenario,
)
from .staffing import StaffingAdvice, advise_from_history, advise_staffing
from .theory import MMc, TheoryCase, erlang_c, theory_run

__all__ = [
    "PRESETS",
    "Behaviour",
    "Day",
    "DayRun",
    "Empirical",
    "Exponential",
    "LogNormal",
    "MMc",
    "Scenario",
    "ScenarioError",
    "ServiceTime",
    "SimError",
    "Staffing",
    "StaffingAdvice",
    "Stream",
    "TheoryCase",
    "Variant",
    "advise_from_history",
    "advise_staffing",
    "compare",
    "day_report",
    "default_scenario",
    "erlang_c",
    "learn",
    "load_scenario",
    "parse_scenario",
    "read_history",
    "simulate_day",
    "theory_run",
    "write_excel",
    "write_png",
]
