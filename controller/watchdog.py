"""systemd readiness and watchdog (``sd_notify``), spoken directly over ``NOTIFY_SOCKET``.

The box's unit is ``Type=notify`` with ``WatchdogSec=``: systemd starts the next unit
only once the box says ``READY=1`` (the journal is open and replayed), and restarts the
box if the pings stop. The :class:`Watchdog` component pings at half the interval, and
only while the journal still commits (``box.settled()`` returns): a hung event loop or
a stuck journal writer both end in a restart rather than a box that looks alive.

The protocol is one datagram per message on the ``AF_UNIX`` socket named by
``NOTIFY_SOCKET`` (``@name`` is an abstract socket); no library is needed. Outside
systemd the variable is unset and the component ends at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .box import Box

__all__ = ["Watchdog", "notify"]

log = logging.getLogger(__name__)


def notify(message: str, address: str | None = None) -> bool:
    """Send ``message`` (e.g. ``READY=1``) to systemd; False if not under systemd."""
    address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(message.encode(), target)
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", address, exc)
            return False
    return True


class Watchdog:
    """Tells systemd the box is ready, then keeps its watchdog fed while the box works."""

    name = "watchdog"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET", "")
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or (pid.isdigit() and int(pid) == os.getpid())
        self.interval = int(usec) / 1e6 if usec.isdigit() and mine else 0.0
        self.pings = 0

    async def run(self, box: Box) -> None:
        if not self.address:
            return  # not under systemd
        notify(f"READY=1\nSTATUS=branch {box.config.branch.code}: serving, seq {box.last_seq}",
               self.address)
        if not self.interval:
            return
        every = self.interval / 2
        while True:
            try:
                async with asyncio.timeout(every):
                    await box.settled()
            except TimeoutError:
                log.error("journal has not settled in %.1f s: not feeding the watchdog", every)
                box.health.report("watchdog", "fault", "journal does not settle")
            else:
                if notify("WATCHDOG=1", self.address):
                    self.pings += 1
                box.health.report("watchdog", "ok")
            await asyncio.sleep(every)
