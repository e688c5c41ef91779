"""Strategy comparison: the same customers under each variant, paired differences."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from openpyxl import load_workbook

from queueing.compare import PRESETS, compare, parse_variant, write_compare_excel
from queueing.scenario import default_scenario
from tests.conftest import example_config

CFG = example_config()
DAY = dt.date(2026, 11, 25)


@pytest.fixture(scope="module")
def result() -> dict[str, object]:
    scenario = default_scenario(CFG, DAY).scaled(1.1)
    variants = [PRESETS["branch"], PRESETS["escalate_30"], PRESETS["balancing_off"],
                parse_variant('fcfs=strategy.order=["front"]')]
    return compare(CFG, scenario, variants, seeds=range(1, 6))


def test_the_baseline_differs_from_itself_by_nothing(result: dict[str, object]) -> None:
    v = result["variants"]  # type: ignore[index]
    for ci in v["branch"]["difference"].values():
        assert ci["mean"] == 0 and ci["half_width"] == 0


def test_a_variant_equal_to_the_branch_config_changes_nothing(result: dict[str, object]) -> None:
    # the example branch already escalates at 30 minutes with the default order
    v = result["variants"]  # type: ignore[index]
    assert v["escalate_30"]["metrics"] == v["branch"]["metrics"]


def test_differences_are_paired_intervals(result: dict[str, object]) -> None:
    v = result["variants"]  # type: ignore[index]
    off, base = v["balancing_off"], v["branch"]
    d = off["difference"]["mean_wait_s"]
    assert d["n"] == 5 and d["low"] <= d["mean"] <= d["high"]
    assert d["mean"] == pytest.approx(off["metrics"]["mean_wait_s"]["mean"]
                                      - base["metrics"]["mean_wait_s"]["mean"])
    # first come, first served at every window (no VIP, no window priority): corporate
    # customers lose window 3's priority and wait longer, while the long tail shortens
    fcfs = v["fcfs"]["difference"]
    assert fcfs["mean_wait_s.corporate"]["low"] > 0
    assert fcfs["p90_wait_s"]["high"] < 0


def test_comparison_exports_to_excel(result: dict[str, object], tmp_path: Path) -> None:
    wb = load_workbook(write_compare_excel(result, tmp_path / "cmp.xlsx"))  # type: ignore[arg-type]
    assert wb.sheetnames == ["方案 Variants", "差异 Differences", "设置 Overrides"]
    names = {r[0] for r in wb["差异 Differences"].iter_rows(min_row=2, values_only=True)}
    assert names == {"branch", "escalate_30", "balancing_off", "fcfs"}


def test_unknown_presets_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        parse_variant("lifo")
    assert parse_variant("x=a.b=1; c=2").overrides == ("a.b=1", "c=2")
