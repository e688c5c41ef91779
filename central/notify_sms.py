"""The SMS channel of "your turn is near" (H6): a :class:`~central.notify.Notifier` over the
centre's one SMS gateway (:mod:`central.sms`, ``[sms]``).

The customer's number is the registration's sealed copy (``customers.phone_sealed``,
opened with the customers' vault as the sign-in does, :mod:`central.privacy`); it is never
logged (the gateway logs the mask). A customer the centre has no registration for cannot
be reached here: :meth:`SmsNotifier.send` answers False and the watcher tries no further.
A gateway failure (:class:`~central.sms.SmsError`) is raised: the watcher tries again.

The words follow the seed's tone: "您的排队号A012前面还有3人,请做好准备" and
"请A012号到3号窗口办理"; the "called" message also says how to rate the service by SMS
(``PJ 分数``, :mod:`protocols.sms`), with the branch's own scale.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .notify import Notice

if TYPE_CHECKING:
    from .appointments import Appointments
    from .store import Store

__all__ = ["SmsNotifier", "notice_text"]

log = logging.getLogger(__name__)

SIGNATURE = "【排队提醒】"


def notice_text(notice: Notice, scores: tuple[int, int] = (1, 5)) -> str:
    """What the SMS says (Chinese, as every text to customers)."""
    where = f"({notice.branch_name} {notice.queue_name})"
    if notice.kind == "near":
        if not notice.ahead:
            return f"{SIGNATURE}您的排队号{notice.number}即将叫号,请做好准备{where}。"
        return f"{SIGNATURE}您的排队号{notice.number}前面还有{notice.ahead}人,请做好准备{where}。"
    low, high = scores
    return (f"{SIGNATURE}请{notice.number}号到{notice.window}号窗口办理{where}。"
            f"办理完毕后可回复PJ {high}({low}-{high}分)评价本次服务。")


class SmsNotifier:
    """Texts a registered customer at the number they signed in with."""

    name = "sms"

    def __init__(self, appointments: Appointments) -> None:
        self.appointments = appointments

    async def send(self, notice: Notice) -> bool:
        a = self.appointments
        sealed = await a.pool.read(_phone_sealed, notice.customer)
        if sealed is None:
            return False
        text = notice_text(notice, await self._scores(notice.branch))
        await a.sms.send(a.vault.open(sealed, "phone"), text)
        return True

    async def _scores(self, branch: str) -> tuple[int, int]:
        """The lowest and highest score of the branch's rating levels (its catalogue)."""
        cat: dict[str, Any] = await self.appointments.catalogue(branch) or {}
        scores = [int(r["score"]) for r in cat.get("ratings") or [] if "score" in r]
        return (min(scores), max(scores)) if scores else (1, 5)


def _phone_sealed(st: Store, customer: str) -> str | None:
    row = st.execute("SELECT phone_sealed FROM customers WHERE id = ?", (customer,)).fetchone()
    return None if row is None else str(row[0])
