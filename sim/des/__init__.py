"""A branch-day in a second: the real engine in virtual time (discrete-event simulation).

See docs/simulation.md. Entry points: :func:`simulate_day`, :func:`day_report`,
:func:`compare`, :func:`advise_staffing`, :func:`learn`, ``python -m sim des``.
"""

from .day import Day, DayRun, simulate_day
from .distributions import Empirical, Exponential, LogNormal, ServiceTime
from .errors import ScenarioError, SimError
from .scenario import (
    Behaviour,
    Scenario,
    Staffing,
    Stream,
    default_scenario,
    load_scenario,
    parse_scenario,
)

__all__ = [
    "Behaviour",
    "Day",
    "DayRun",
    "Empirical",
    "Exponential",
    "LogNormal",
    "Scenario",
    "ScenarioError",
    "ServiceTime",
    "SimError",
    "Staffing",
    "Stream",
    "default_scenario",
    "load_scenario",
    "parse_scenario",
    "simulate_day",
]
