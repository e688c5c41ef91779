"""The centre's commands act once (controller/uplink/commands.py, docs/uplink.md): a command
re-sent with the same id — the centre's reply was lost — gets its first answer and does
nothing again, also after the box restarted in between (the answers are kept on disk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.box import Box
from controller.uplink.commands import CommandDesk
from tests.appointments_support import desk


async def _nothing(*_: Any) -> dict[str, Any]:
    return {}


def command_desk(box: Box, state_dir: Path) -> CommandDesk:
    return CommandDesk(box, state_dir, replay=_nothing, totals=_nothing, on_config=_nothing)


async def kinds(box: Box, kind: str) -> list[dict[str, Any]]:
    return [r.event for r in await box.read_events(0, 10_000) if r.event["type"] == kind]


async def test_a_resent_pause_acts_once(box: Box, tmp_path: Path) -> None:
    msg = {"id": "cmd-1", "queue": "A", "reason": "系统升级"}
    first = await command_desk(box, tmp_path / "uplink").run("pause", msg)
    again = await command_desk(box, tmp_path / "uplink").run("pause", msg)  # a restarted desk
    assert again == first == ({"queue": "A", "paused": True, "reason": "系统升级"}, None)
    assert len(await kinds(box, "queue_paused")) == 1


async def test_a_resent_remote_ticket_gives_one_ticket(box: Box, tmp_path: Path) -> None:
    msg = {"id": "cmd-2", "queue": "A", "expires_at": 1e12}
    async with desk(box) as appointments:
        commands = command_desk(box, tmp_path / "uplink")
        commands.register("ticket", appointments.on_ticket)
        first, _ = await commands.run("ticket", msg)
        again, _ = await commands.run("ticket", msg)
        restarted = command_desk(box, tmp_path / "uplink")
        restarted.register("ticket", appointments.on_ticket)
        third, _ = await restarted.run("ticket", msg)
    assert first is not None and first["number"] == "A001"
    assert again == third == first
    assert [e["number"] for e in await kinds(box, "ticket_issued")] == ["A001"]
