"""Which configuration a box starts on (controller/components.py ``Startup``): the centre's
last push if it can start, else the push before it, else the local file; a push that
cannot start is set aside, never retried at every restart; a push is checked against the
same local file and ``--set`` overrides a restart will use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.clock import ManualClock
from controller.box import Box
from controller.components import Startup
from controller.compose import build_components
from controller.uplink.commands import KEEP_REJECTED, config_command
from tests.conftest import WEDNESDAY_10AM, example_config
from tests.uplink_support import without_a

NOW = WEDNESDAY_10AM.timestamp()


def renamed_a(name: str = "个人综合业务") -> dict[str, Any]:
    push = example_config().model_dump(mode="json")
    push["queues"][0]["name"] = name
    return push


def startup(data: Path, *overrides: str) -> Startup:
    return Startup(example_config(*overrides), overrides, data, build_components)


def keep(data: Path, name: str, body: Any) -> None:
    data.mkdir(parents=True, exist_ok=True)
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    (data / name).write_text(text, encoding="utf-8")


def test_a_push_that_cannot_start_falls_back_to_the_one_accepted_before_it(
        tmp_path: Path) -> None:
    keep(tmp_path, "pushed-config.previous.json", renamed_a())
    keep(tmp_path, "pushed-config.json", without_a(example_config()))
    start = startup(tmp_path).begin(NOW)
    assert start.config.queue("A").name == "个人综合业务"  # type: ignore[union-attr]
    assert "pushed-config.json: gpio.buttons.0.queue: unknown queue 'A'" in start.set_aside
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pushed-config.json", "pushed-config.rejected-20261125T020000Z.json"]
    # the one it runs on is now the kept push: the next start needs no fallback
    again = startup(tmp_path).begin(NOW + 60)
    assert again.config.version == start.config.version and again.set_aside == ""


def test_an_unreadable_or_foreign_push_is_set_aside_and_the_local_file_runs(
        tmp_path: Path) -> None:
    keep(tmp_path, "pushed-config.json", '{"queues": [')  # cut short by a full disk
    start = startup(tmp_path).begin(NOW)
    assert start.config.version == example_config().version
    assert "cannot read pushed-config.json" in start.set_aside
    other = renamed_a()
    other["branch"]["code"] = "1001010002"
    keep(tmp_path, "pushed-config.json", other)
    start = startup(tmp_path).begin(NOW + 1)
    assert "branch.code: 1001010002, this box is 1001010001" in start.set_aside
    assert len(list(tmp_path.glob("pushed-config.rejected-*.json"))) == 2


def test_set_aside_pushes_are_bounded(tmp_path: Path) -> None:
    for i in range(KEEP_REJECTED + 3):
        keep(tmp_path, "pushed-config.json", {"windows": []})
        assert startup(tmp_path).begin(NOW + i).set_aside
    aside = sorted(p.name for p in tmp_path.glob("pushed-config.rejected-*.json"))
    assert len(aside) == KEEP_REJECTED
    assert aside[-1] == f"pushed-config.rejected-20261125T0200{KEEP_REJECTED + 2:02d}Z.json"


def test_twice_in_one_second_keeps_both(tmp_path: Path) -> None:
    keep(tmp_path, "pushed-config.previous.json", {"windows": []})
    keep(tmp_path, "pushed-config.json", {"windows": []})
    start = startup(tmp_path).begin(NOW)
    assert start.config.version == example_config().version
    assert len(list(tmp_path.glob("pushed-config.rejected-*.json"))) == 2


async def test_an_accepted_push_is_what_the_next_start_runs(tmp_path: Path) -> None:
    """The box started with ``--set queues.0.digits=4``: a push is checked and applied with
    that override, as the restart will apply it; a restart runs the very same config."""
    how = startup(tmp_path / "data", "queues.0.digits=4")
    async with Box(how.local, how.data_dir, ManualClock(WEDNESDAY_10AM)) as box:
        done = await config_command(how)(box, {"id": "c1", "config": renamed_a()})
        assert box.config.queue("A").digits == 4  # type: ignore[union-attr]
    restarted = how.begin(NOW)
    assert restarted.config.version == done["config_version"] and not restarted.set_aside
    assert restarted.config.queue("A").name == "个人综合业务"  # type: ignore[union-attr]


async def test_the_push_before_is_kept_as_the_fallback(tmp_path: Path) -> None:
    how = startup(tmp_path / "data")
    async with Box(how.local, how.data_dir, ManualClock(WEDNESDAY_10AM)) as box:
        handler = config_command(how)
        await handler(box, {"id": "c1", "config": renamed_a("一")})
        await handler(box, {"id": "c2", "config": renamed_a("二")})
        await handler(box, {"id": "c2", "config": renamed_a("二")})  # a retry: no rotation
    kept = {p.name: json.loads(p.read_text("utf-8"))["queues"][0]["name"]
            for p in how.data_dir.glob("pushed-config*.json")}
    assert kept == {"pushed-config.json": "二", "pushed-config.previous.json": "一"}
