"""Helpers for the "your turn is near" tests (H6): the centre's watcher, the notices it sent
by SMS and recorded in ``notices_sent``, and the box's kiosk API as the kiosk page calls it.
"""

from __future__ import annotations

from typing import Any

import httpx

from central.nearturn import NearTurn
from central.service import Centre
from controller.box import Box
from controller.web import create_app as box_app
from tests.customer_support import texts

FAST = ("customers.notify_every_s=0.05", "customers.notify_ahead=2")


def notices(centre: Centre, to: str | None = None) -> list[str]:
    """The near-turn and called SMS the centre sent (not the sign-in codes); ``to``: only
    those to that masked number (``138****5678``)."""
    return [text for masked, text in texts(centre)
            if text.startswith("【排队提醒】") and to in (None, masked)]


def watcher(centre: Centre) -> NearTurn:
    assert centre.customers is not None
    return centre.customers.near_turn


async def rows(centre: Centre) -> list[dict[str, Any]]:
    """Every row of ``notices_sent``, by kind then ticket."""
    def read(st: Any) -> list[dict[str, Any]]:
        cur = st.execute("SELECT branch, day, ticket, kind, customer, number, state, channel, "
                         "tries FROM notices_sent ORDER BY kind, ticket")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    return await watcher(centre).pool.read(read)


def kiosk(box: Box) -> httpx.AsyncClient:
    """The box's API as its kiosk page reaches it (``POST /api/appointments/redeem`` …)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=box_app(box)),
                             base_url="http://box")
