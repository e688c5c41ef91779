"""``python -m sim des …``: a branch-day in virtual time on the real engine.

    python -m sim des --config examples/branch.toml [--scenario S.toml] [--seed N]
                      [--json] [--excel day.xlsx] [--png day.png] [--events day.jsonl]
    python -m sim des --servers C --arrivals-per-hour L --service-minutes S
                      --service-dist exponential --hours H --seed N --json
    python -m sim des compare  --config … [--variant NAME[=k=v;k=v]]… [--seeds 10]
    python -m sim des staffing --config … [--target-min 15] [--level 0.85] [--seeds 5]
    python -m sim des learn    --config … --history events.jsonl [--date D] [--out S.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from controller.config import Config, load_config

from .compare import DEFAULT_VARIANTS, PRESETS, compare, parse_variant, write_compare_excel
from .day import simulate_day
from .errors import SimError
from .learn import learn
from .report import day_report, write_excel, write_png
from .scenario import Scenario, default_scenario, load_scenario
from .staffing import advise_staffing
from .theory import TheoryCase, theory_run

__all__ = ["main"]


def main(argv: list[str]) -> int:
    command = argv[0] if argv and argv[0] in _COMMANDS else "day"
    rest = argv[1:] if command != "day" else argv
    try:
        return _COMMANDS[command](rest)
    except (ConfigError, SimError, ValueError, OSError) as exc:
        print(f"python -m sim des: {exc}", file=sys.stderr)
        return 2


# --- shared options ----------------------------------------------------------------------


def _branch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="branch config (TOML)")
    p.add_argument("--set", action="append", default=[], dest="overrides",
                   metavar="KEY.PATH=VALUE", help="override a config key (repeatable)")
    p.add_argument("--scenario", help="scenario file (TOML or JSON); default: a typical day")
    p.add_argument("--date", type=dt.date.fromisoformat, help="business day (YYYY-MM-DD)")
    p.add_argument("--customers", type=float,
                   help="expected customers of the default day (default: 75%% of capacity)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--out", help="also write the JSON here")


def _jobs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=_positive, default=None, metavar="N",
                   help="days simulated at once, one process each (default: every core); "
                        "the results do not depend on it")


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _branch(args: argparse.Namespace) -> tuple[Config, Scenario]:
    if not args.config:
        raise ConfigError("--config", "give a branch config (or --servers for the theory check)",
                          "command line")
    config = load_config(args.config, args.overrides)
    day = args.date
    if args.scenario:
        scenario = load_scenario(args.scenario, config, day)
    else:
        scenario = default_scenario(config, day or dt.date(2026, 11, 25), args.customers)
    return config, scenario


def _emit(args: argparse.Namespace, result: dict[str, Any], human: str) -> None:
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text if args.json else human)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _min(s: float | None) -> str:
    return "-" if s is None else f"{s / 60:.1f} min"


# --- a day (and the theory check) -----------------------------------------------------------


def _day(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m sim des", description=__doc__)
    _branch_options(p)
    p.add_argument("--excel", help="write the day's report as .xlsx")
    p.add_argument("--png", help="write queue length and waits as .png")
    p.add_argument("--events", help="write the engine's events as JSON lines")
    t = p.add_argument_group("theory check (one FIFO queue, all windows serving it)")
    t.add_argument("--servers", type=int, help="windows (c)")
    t.add_argument("--arrivals-per-hour", type=float, help="Poisson arrival rate (λ per hour)")
    t.add_argument("--service-minutes", type=float, help="mean service time")
    t.add_argument("--service-dist", default="exponential",
                   help="exponential | lognormal | deterministic")
    t.add_argument("--cv", type=float, default=1.0, help="log-normal coefficient of variation")
    t.add_argument("--hours", type=float, default=8.0, help="hours of arrivals (≤ 20)")
    t.add_argument("--warmup-hours", type=float, help="not measured (default: hours/10)")
    t.add_argument("--replications", type=int, default=1, help="independent days")
    _jobs_option(p)
    args = p.parse_args(argv)
    if args.servers is not None:
        return _theory(args)
    config, scenario = _branch(args)
    run = simulate_day(config, scenario, args.seed)
    report = day_report(run)
    if args.excel:
        write_excel(report, args.excel)
    if args.png:
        write_png(report, args.png)
    if args.events:
        with open(args.events, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in run.events)
    _emit(args, report, _day_text(report))
    return 0


def _day_text(r: dict[str, Any]) -> str:
    w = r["wait"]
    lines = [
        f"{r['branch']['name']} {r['branch']['code']} {r['date']} seed {r['seed']}: "
        f"{r['customers']} tickets, {r['served']} served, {r['no_show']} no-show, "
        f"{r['not_served']} not served, {sum(r['turned_away'].values())} turned away",
        f"wait: mean {_min(w['mean_wait_s'])}, p90 {_min(w['p90_wait_s'])}, "
        f"within {r['target_wait_s'] / 60:g} min {_pct(w['within_target'])}; "
        f"utilisation {_pct(r['utilisation'])}; {r['window_hours']} window-hours",
    ]
    for group in ("by_queue", "by_customer_type"):
        for k, s in r[group].items():
            lines.append(f"  {k:>10}: {s['called']:4d} called, mean {_min(s['mean_wait_s'])}, "
                         f"p90 {_min(s['p90_wait_s'])}, within {_pct(s['within_target'])}")
    e = r["engine"]
    lines.append(f"engine: {e['commands']} commands, {e['events']} events, {e['wall_s']:.3f} s")
    return "\n".join(lines)


def _theory(args: argparse.Namespace) -> int:
    for name in ("arrivals_per_hour", "service_minutes"):
        if getattr(args, name) is None:
            raise ValueError(f"--{name.replace('_', '-')} is needed with --servers")
    if args.servers < 1 or args.arrivals_per_hour <= 0 or args.service_minutes <= 0:
        raise ValueError("--servers, --arrivals-per-hour and --service-minutes must be positive")
    if args.replications < 1:
        raise ValueError("--replications must be at least 1")
    case = TheoryCase(args.servers, args.arrivals_per_hour, args.service_minutes,
                      args.service_dist, args.hours, args.warmup_hours, args.cv)
    result = theory_run(case, args.seed, args.replications, jobs=args.jobs)
    theory = result["theory"] or {}
    lines = [f"served: {result['served']} of {result['customers']} "
             f"({result['measured']} measured after the warm-up)"]
    for key, ci_key in (("mean_wait_s", "mean_wait_ci"), ("p_wait_over_60s", "p_wait_over_60s_ci"),
                        ("utilisation", "utilisation_ci")):
        ci = result.get(ci_key)
        band = f"  [{ci['low']:.4g}, {ci['high']:.4g}] {ci['level']:.0%}" if ci else ""
        exact = theory.get(key)
        lines.append(f"{key}: {result[key]:.4g}{band}  theory: "
                     + ("-" if exact is None else f"{exact:.4g}"))
    lines.append(f"theory model: {theory.get('model', '-')}")
    human = "\n".join(lines)
    _emit(args, result, human)
    return 0


# --- compare, staffing, learn ---------------------------------------------------------------


def _compare(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m sim des compare")
    _branch_options(p)
    p.add_argument("--variant", action="append", default=[],
                   help=f"preset ({', '.join(PRESETS)}) or NAME=key=value;key=value; "
                        "the first is the baseline")
    p.add_argument("--seeds", type=int, default=10, help="days (seeds from --seed on)")
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--excel")
    _jobs_option(p)
    args = p.parse_args(argv)
    config, scenario = _branch(args)
    variants = [parse_variant(v) for v in (args.variant or DEFAULT_VARIANTS)]
    result = compare(config, scenario, variants, range(args.seed, args.seed + args.seeds),
                     args.level, jobs=args.jobs)
    if args.excel:
        write_compare_excel(result, args.excel)
    _emit(args, result, "\n".join(_compare_text(result)))
    return 0


def _compare_text(result: dict[str, Any]) -> Iterator[str]:
    yield (f"difference to {result['baseline']} over {len(result['seeds'])} days "
           f"({result['level']:.0%} interval):")
    for name, v in result["variants"].items():
        parts = []
        for k in ("mean_wait_s", "p90_wait_s", "within_target", "mean_wait_s.vip"):
            ci = v["difference"].get(k)
            if ci is not None:
                parts.append(f"{k} {ci['mean']:+.3g} [{ci['low']:+.3g}, {ci['high']:+.3g}]")
        yield f"  {name}: " + "; ".join(parts)


def _staffing(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m sim des staffing")
    _branch_options(p)
    p.add_argument("--target-min", type=float, default=15.0)
    p.add_argument("--level", type=float, default=0.85, help="share within the target")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--excel")
    _jobs_option(p)
    args = p.parse_args(argv)
    config, scenario = _branch(args)
    advice = advise_staffing(config, scenario, target_wait_s=args.target_min * 60,
                             level=args.level, seeds=range(args.seed, args.seed + args.seeds),
                             jobs=args.jobs)
    if args.excel:
        advice.to_excel(args.excel)
    lines = [f"{advice.window_hours} window-hours; all hours met: {advice.met}"]
    lines += [f"  {h['hour']:02d}:00 {h['windows']} windows {h['open']}: within target "
              f"{_pct(h['within_target'])}, mean {_min(h['mean_wait_s'])}"
              for h in advice.hours]
    _emit(args, advice.to_json(), "\n".join(lines))
    return 0


def _learn(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m sim des learn")
    p.add_argument("--config", required=True)
    p.add_argument("--history", required=True, help="events: JSON lines or a JSON list")
    p.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 25))
    p.add_argument("--service", default="auto", help="auto | empirical | lognormal | exponential")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", help="write the learned scenario (JSON) here")
    args = p.parse_args(argv)
    config = load_config(args.config)
    scenario = learn(_read_events(Path(args.history)), config, args.date, service=args.service)
    text = json.dumps(scenario.to_json(), ensure_ascii=False, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def _read_events(path: Path) -> Iterator[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        yield from json.loads(text)
        return
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                print(f"{path}:{n}: not JSON, skipped", file=sys.stderr)


_COMMANDS = {"day": _day, "compare": _compare, "staffing": _staffing, "learn": _learn}
