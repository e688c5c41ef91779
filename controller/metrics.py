"""The box's ``/metrics`` (Prometheus text): what it is doing, for the branch's monitoring.

Built in: waiting per business, windows by state, device health, journal position.
Components add their own (the uplink: link state, outbox backlog and oldest unsent age)
with :func:`register`; the route is in ``controller/web/metrics.py``.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from protocols.metrics import Metric

if TYPE_CHECKING:
    from .box import Box

__all__ = ["Provider", "collect", "register", "unregister"]

Provider = Callable[[], Awaitable[list[Metric]]]
_providers: weakref.WeakKeyDictionary[Box, list[Provider]] = weakref.WeakKeyDictionary()


def register(box: Box, provider: Provider) -> None:
    _providers.setdefault(box, []).append(provider)


def unregister(box: Box, provider: Provider) -> None:
    providers = _providers.get(box, [])
    if provider in providers:
        providers.remove(provider)


async def collect(box: Box) -> list[Metric]:
    """Every metric of ``box``: the built-in ones, then each component's."""
    state, cfg = box.engine.state, box.config
    waiting = Metric("paidui_waiting", "gauge", "customers waiting, per business")
    for q in cfg.queues:
        waiting.add(state.waiting_count.get(q.id, 0), queue=q.id)
    windows = Metric("paidui_windows", "gauge", "windows by state")
    counts = {"open": 0, "paused": 0, "closed": 0}
    for w in cfg.windows:
        ws = state.window(w.number)
        counts["closed" if ws.teller is None else "paused" if ws.paused else "open"] += 1
    for name, n in counts.items():
        windows.add(n, state=name)
    devices = Metric("paidui_device_ok", "gauge", "1 when a device or link reports ok")
    for d in box.health.snapshot():
        devices.add(1 if d["state"] == "ok" else 0, device=d["name"], state=d["state"])
    out = [
        waiting.add(state.waiting_total, queue="all"),
        windows,
        devices,
        Metric("paidui_journal_last_seq", "gauge", "the journal's last sequence number")
        .add(box.last_seq),
        Metric("paidui_journal_failures_total", "counter", "journal writes that failed")
        .add(box.journal_failures),
    ]
    for provider in list(_providers.get(box, [])):
        out.extend(await provider())
    return out
