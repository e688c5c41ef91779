"""Telling a customer about their ticket: the one shape every channel is handed (H6).

A :class:`Notice` says what happened to one remote or booked ticket ("your turn is near",
"called to window 3"); a :class:`Notifier` delivers it on one channel (SMS, a WeChat
template message, …). The watcher that decides *when* to send (once near, once called)
and the channels that deliver are separate modules; this one is only the contract between
them, so that each channel can be written and tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["Notice", "NoticeKind", "Notifier"]

NoticeKind = Literal["near", "called"]


@dataclass(frozen=True, slots=True)
class Notice:
    """One message about one ticket, for the customer who took or booked it.

    ``customer`` is the centre's key of that customer (``customers.id`` or, for a remote
    ticket, ``remote_tickets.customer``). ``ahead`` is set for ``near``, ``window`` for
    ``called``. ``key`` identifies the notice for "at most once" (branch, day, ticket, kind).
    """

    kind: NoticeKind
    customer: str
    branch: str
    branch_name: str
    day: str  # YYYY-MM-DD in the branch's zone
    ticket: str  # the box's ticket id
    number: str  # as printed, e.g. "A012"
    queue_name: str
    ahead: int | None = None
    window: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.branch, self.day, self.ticket, self.kind)


class Notifier(Protocol):
    """A channel that can tell a customer about a :class:`Notice`."""

    name: str  # "sms", "wechat": stored with what was sent

    async def send(self, notice: Notice) -> bool:
        """Deliver ``notice``; True when the channel accepted it, False when this customer
        cannot be reached on this channel (no binding). Raise on a transient failure."""
        ...
