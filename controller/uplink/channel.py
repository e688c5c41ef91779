"""The centre's commands through the box: ``cmd/{name}`` in, ``reply`` out.

A command received goes into the bounded :class:`~controller.uplink.inbox.CommandInbox`
(what it refuses or supersedes is answered at once); the
:class:`~controller.uplink.commands.CommandDesk` runs them one at a time and each answer
goes on ``reply``. The software updater's reports (offered, downloading, …, healthy or
failed) go on ``reply`` too, in order, as the results of their ``cmd/update``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt

from protocols import uplink as proto

from .commands import CommandDesk, Handler
from .inbox import CommandInbox

if TYPE_CHECKING:
    from ..box import Box
    from ..update import Updater

__all__ = ["CommandChannel"]

log = logging.getLogger(__name__)

REPORTS_KEPT = 200  # updater reports kept while offline (the updater keeps them too)


class CommandChannel:
    """Commands waiting, the desk that runs them, and every answer on ``reply``."""

    def __init__(self, command_queue: int) -> None:
        self.inbox = CommandInbox(command_queue)
        self.desk: CommandDesk | None = None
        self._extra: dict[str, Handler] = {}
        self._inbox_ready = asyncio.Event()
        self._reports: deque[dict[str, Any]] = deque()  # the updater's, not yet sent
        self._reports_ready = asyncio.Event()
        self.box: Box | None = None

    def register(self, name: str, handler: Handler) -> None:
        """Handle centre command ``name`` (e.g. ``update``) with ``handler(box, msg)``."""
        self._extra[name] = handler
        if self.desk is not None:
            self.desk.register(name, handler)

    def use_updater(self, updater: Updater) -> None:
        """``cmd/update`` goes to :meth:`Updater.offer`; its reports go on ``reply``."""
        async def offer(box: Box, msg: dict[str, Any]) -> dict[str, Any]:
            return await updater.offer(msg)

        self.register("update", offer)
        updater.listeners.append(self._on_update_report)

    def _on_update_report(self, report: dict[str, Any]) -> None:
        if len(self._reports) < REPORTS_KEPT:
            self._reports.append(report)
            self._reports_ready.set()

    def attach(self, box: Box, state_dir: Path, *,
               replay: Callable[[int, int], Awaitable[dict[str, Any]]],
               totals: Callable[[str], Awaitable[dict[str, Any]]],
               on_config: Callable[[], Awaitable[None]]) -> None:
        """The desk for ``box`` (its answers kept in ``state_dir``), with every handler."""
        self.box = box
        self.desk = CommandDesk(box, state_dir, replay=replay, totals=totals,
                                on_config=on_config)
        for name, handler in self._extra.items():
            self.desk.register(name, handler)

    # --- in ------------------------------------------------------------------------------

    async def offer(self, client: aiomqtt.Client, name: str, msg: dict[str, Any]) -> None:
        """A command received: into the line, or answered at once if refused."""
        for (refused_name, refused), refusal in self.inbox.offer(name, msg):
            log.warning("command %s %s: %s", refused_name, refused["id"], refusal.message_en)
            await self._reply(client, proto.reply(
                refused["id"], refused_name, error=refusal.to_json(),
                at=self._box().clock.now()))
        self._inbox_ready.set()

    async def refuse_malformed(self, client: aiomqtt.Client, topic: str, payload: Any,
                               exc: proto.ProtocolError) -> None:
        """A command we cannot read still gets an answer if it has a readable id."""
        if "/cmd/" not in topic:
            return
        try:
            cmd_id = json.loads(payload)["id"]
        except (ValueError, KeyError, TypeError, IndexError):
            return
        if isinstance(cmd_id, str) and 0 < len(cmd_id) <= 64:
            err = {"code": "invalid_command", "message": "命令格式错误",
                   "message_en": f"invalid command: {exc}"}
            await self._reply(client, proto.reply(cmd_id, topic.rsplit("/", 1)[-1], error=err))

    # --- out -----------------------------------------------------------------------------

    async def run_next(self, client: aiomqtt.Client) -> None:
        """Run the next command waiting and answer it; or wait for one to arrive."""
        desk = self.desk
        assert desk is not None
        taken = self.inbox.take()
        if taken is None:
            self._inbox_ready.clear()
            await self._inbox_ready.wait()
            return
        name, msg = taken
        result, refusal = await desk.run(name, msg)
        answer = proto.reply(msg["id"], name, result=result,
                             error=refusal.to_json() if refusal else None,
                             at=self._box().clock.now())
        log.info("command %s %s: %s", name, msg["id"], refusal.code if refusal else "done")
        await self._reply(client, answer)

    async def send_reports(self, client: aiomqtt.Client) -> None:
        """Wait for the updater's reports; send them, in order, as replies to ``cmd/update``."""
        await self._reports_ready.wait()
        while self._reports:
            report = self._reports[0]
            answer = proto.reply(str(report.get("id", "update")), "update", result=report,
                                 at=self._box().clock.now())
            await self._reply(client, answer)
            self._reports.popleft()
        self._reports_ready.clear()

    async def _reply(self, client: aiomqtt.Client, answer: dict[str, Any]) -> None:
        branch = self._box().config.branch.code
        await client.publish(proto.topic(branch, "reply"), proto.encode(answer), qos=1)

    def _box(self) -> Box:
        assert self.box is not None
        return self.box
