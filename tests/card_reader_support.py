"""Shared by the card reader and appointment tests: a printer that keeps what it printed,
and a card reader running on a box with its outcomes in a queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from controller.box import Box
from controller.kiosk import PrintOutcome
from drivers.card_reader import CardReader, SwipeOutcome, SwipeSource


class PaperPrinter:
    """A printer that keeps what it was asked to print (the real one is another driver)."""

    def __init__(self) -> None:
        self.printed: list[dict[str, Any]] = []

    async def print_ticket(self, ticket: dict[str, Any]) -> PrintOutcome:
        self.printed.append(ticket)
        return PrintOutcome(True)


@contextlib.asynccontextmanager
async def running(box: Box, source: SwipeSource, **kw: Any
                  ) -> AsyncIterator[tuple[CardReader, asyncio.Queue[SwipeOutcome]]]:
    reader = CardReader(source=source, **kw)
    outcomes: asyncio.Queue[SwipeOutcome] = asyncio.Queue()
    reader.listeners.append(outcomes.put_nowait)
    task = asyncio.create_task(reader.run(box))
    try:
        yield reader, outcomes
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def next_outcome(q: asyncio.Queue[SwipeOutcome]) -> SwipeOutcome:
    return await asyncio.wait_for(q.get(), 5)
