"""The same days under different selection strategies or thresholds (SPEC B5).

Each seed is one day of customers; every variant serves exactly those customers (common
random numbers: arrivals, services and behaviour come from their own streams, drawn before
the day runs, see :mod:`queueing.arrivals`). Differences are therefore paired per seed and
their confidence intervals are much narrower than comparing independent runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.config import STRATEGY_RULES, Config

from .arrivals import customers
from .batch import batch
from .branch import sim_config
from .day import Day
from .measures import Period, day_measures, utilisation
from .report import Sheet, write_tables
from .scenario import Scenario
from .stats import interval

__all__ = [
    "DEFAULT_VARIANTS",
    "PRESETS",
    "Variant",
    "compare",
    "compare_sheets",
    "day_metrics",
    "parse_variant",
    "write_compare_excel",
]


@dataclass(frozen=True, slots=True)
class Variant:
    """A named set of ``--set`` style config overrides (``windows.*.x`` = every window)."""

    name: str
    overrides: tuple[str, ...] = ()


_NO_ESCALATION = [r for r in STRATEGY_RULES if r != "escalated"]
PRESETS: dict[str, Variant] = {
    "branch": Variant("branch"),
    "vip_first": Variant("vip_first", (
        f"strategy.order={_NO_ESCALATION!r}".replace("'", '"'),
        "thresholds.escalate_after_min=0",
    )),
    "escalate_20": Variant("escalate_20", (
        f"strategy.order={list(STRATEGY_RULES)!r}".replace("'", '"'),
        "thresholds.escalate_after_min=20",
    )),
    "escalate_30": Variant("escalate_30", (
        f"strategy.order={list(STRATEGY_RULES)!r}".replace("'", '"'),
        "thresholds.escalate_after_min=30",
    )),
    "fifo": Variant("fifo", ('strategy.order=["front", "directed"]',)),
    "balancing_off": Variant("balancing_off", ("windows.*.balancing=false",)),
    "balancing_on": Variant("balancing_on", ("windows.*.balancing=true",)),
}
DEFAULT_VARIANTS = ("branch", "vip_first", "escalate_20", "escalate_30", "balancing_off")


def parse_variant(text: str) -> Variant:
    """``NAME`` (a preset) or ``NAME=key=value;key=value``."""
    name, sep, rest = text.partition("=")
    if not sep:
        if name not in PRESETS:
            raise ValueError(f"unknown variant {name!r}; presets: {', '.join(PRESETS)}")
        return PRESETS[name]
    return Variant(name, tuple(o.strip() for o in rest.split(";") if o.strip()))


def day_metrics(measures: Mapping[str, Any]) -> dict[str, float]:
    """The figures compared between variants, from :func:`day_measures` output."""
    w = measures["wait"]
    out = {
        "mean_wait_s": w["mean_wait_s"] or 0.0,
        "p90_wait_s": w["p90_wait_s"] or 0.0,
        "max_wait_s": w["max_wait_s"] or 0.0,
        "within_target": w["within_target"] or 0.0,
        "over_30min": float(w["over_min"]["30"]),
        "served": float(measures["served"]),
        "utilisation": utilisation(measures["windows"]) or 0.0,
    }
    for t, s in measures["by_customer_type"].items():
        out[f"mean_wait_s.{t}"] = s["mean_wait_s"] or 0.0
    for q, s in measures["by_queue"].items():
        out[f"mean_wait_s.queue_{q}"] = s["mean_wait_s"] or 0.0
    return out


def compare(
    config: Config, scenario: Scenario, variants: Sequence[Variant],
    seeds: Sequence[int | str] = tuple(range(1, 11)), level: float = 0.95,
    jobs: int | None = 1,
) -> dict[str, Any]:
    """Run every variant on every seed's day; the first variant is the baseline.

    Returns per variant the mean of each metric with its confidence interval over seeds,
    and the paired difference (variant − baseline) with its interval. The seeds' days run
    in ``jobs`` processes (None: every core; see :mod:`queueing.batch`).
    """
    if not variants:
        raise ValueError("no variants")
    per: dict[str, list[dict[str, float]]] = {v.name: [] for v in variants}
    with batch(jobs) as days:
        by_seed = days.map(_seed_metrics, [(config, scenario, seed, variants) for seed in seeds])
    for row in by_seed:
        for v, metrics in zip(variants, row, strict=True):
            per[v.name].append(metrics)
    base = variants[0].name
    out: dict[str, Any] = {"baseline": base, "seeds": list(seeds), "level": level,
                           "variants": {}}
    for v in variants:
        rows = per[v.name]
        keys = sorted(set().union(*rows))
        out["variants"][v.name] = {
            "overrides": list(v.overrides),
            "metrics": {k: interval([r.get(k, 0.0) for r in rows], level).to_json()
                        for k in keys},
            "difference": {
                k: interval([r.get(k, 0.0) - b.get(k, 0.0) for r, b in zip(rows, per[base],
                                                                         strict=True)],
                            level).to_json()
                for k in keys
            },
        }
    return out


def _seed_metrics(
    task: tuple[Config, Scenario, int | str, Sequence[Variant]],
) -> list[dict[str, float]]:
    """One seed's customers served under each variant: the variants' day metrics."""
    config, scenario, seed, variants = task
    people = customers(sim_config(config, scenario), scenario, seed)
    out = []
    for v in variants:
        run = Day(config, scenario, seed, v.overrides, people=people).run()
        period = Period(run.t0, run.t0 + 86400, run.config.tz)
        out.append(day_metrics(day_measures(run.events, period, scenario.target_wait_s)))
    return out


def compare_sheets(result: Mapping[str, Any]) -> list[Sheet]:
    names = list(result["variants"])
    metrics = sorted(set().union(*(result["variants"][n]["metrics"] for n in names)))
    sheets: list[Sheet] = []
    for key, title in (("metrics", "方案 Variants"), ("difference", "差异 Differences")):
        rows = []
        for n in names:
            for m in metrics:
                ci = result["variants"][n][key].get(m)
                if ci is not None:
                    rows.append([n, m, round(ci["mean"], 4), round(ci["low"], 4),
                                 round(ci["high"], 4), ci["n"]])
        sheets.append((title, ["方案 Variant", "指标 Metric", "均值 Mean",
                               f"下限 Low ({result['level']:.0%})", "上限 High", "天数 Days"],
                       rows))
    sheets.append(("设置 Overrides", ["方案 Variant", "配置 Overrides"],
                   [[n, "; ".join(result["variants"][n]["overrides"])] for n in names]))
    return sheets


def write_compare_excel(result: Mapping[str, Any], path: str | Path) -> Path:
    return write_tables(path, compare_sheets(result))
