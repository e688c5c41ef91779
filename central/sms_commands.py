"""The customers' SMS commands (H4): received from the gateway, answered through it.

Received messages come in on ``POST /api/sms/inbound {"from", "text"}`` (the gateway's own
token, ``customers.sms.inbound_token``, required; the route is in :mod:`central.customers`).
:func:`protocols.sms.parse` reads the message; :class:`SmsDesk` answers it from the
sender's own bookings and the public status, in parts of at most
``customers.sms.max_length`` characters, sent back through the centre's one gateway
(:mod:`central.sms`, ``[sms]``) and also returned in the response. See docs/sms.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from protocols import appointment as ap
from protocols import sms

from .names import check_name

if TYPE_CHECKING:
    from .appointments import Appointments
    from .public import PublicStatus
    from .store import Store

Rater = Callable[[str, str, int], Awaitable[dict[str, Any]]]  # (branch, number, score)

__all__ = ["SmsDesk", "booked_words"]

log = logging.getLogger(__name__)


def booked_words(done: dict[str, Any]) -> str:
    """A new booking as the customer is told it (by SMS, by WeChat): where, when, the code."""
    return (f"预约成功:{done['branch_name']} {done['queue_name']} {done['day']} "
            f"{done['slot_label']},预约码{done['code']}。请在时段内到网点取号机输入预约码。")


# --- the commands ---------------------------------------------------------------------------


class SmsDesk:
    """Answers customers' SMS commands (the sender's number is who they are)."""

    def __init__(self, appointments: Appointments, status: PublicStatus,
                 rate: Rater | None = None) -> None:
        self.appointments = appointments
        self.status = status
        self.rate = rate  # cmd/rate to the branch (central/remote.py), for PJ
        self.limit = appointments.settings.sms.max_length

    async def handle(self, phone: str, text: str) -> list[str]:
        """The reply messages to one received message (also sent through the gateway)."""
        from .appointments import CustomerRefused

        command = sms.parse(text)
        try:
            reply = await self._answer(phone, command)
        except CustomerRefused as exc:
            reply = exc.message
        except ap.AppointmentFormatError as exc:
            reply = exc.message
        parts = sms.split(reply, self.limit)
        for part in parts:
            await self.appointments.sms.send(phone, part)
        log.info("SMS command %s from %s: %d message(s) back", type(command).__name__,
                 ap.mask_phone(phone), len(parts))
        return parts

    async def _answer(self, phone: str, command: sms.SmsCommand) -> str:
        if isinstance(command, sms.Help):
            return sms.HELP if command.problem is None else f"{command.problem}。{sms.HELP}"
        if isinstance(command, sms.QueueStatus):
            return await self._queue_status(command.branch)
        who = await self.appointments.customer_by_phone(phone)
        if isinstance(command, sms.Register):
            await self.appointments.register(who, check_name(command.name), None,
                                             command.id_number)
            return "注册成功。预约:YY 网点号 业务 时段;查询:CXYY"
        if who.id is None:
            return "您尚未注册,请发送:ZC 姓名 身份证号"
        if isinstance(command, sms.Book):
            return await self._book(who, command)
        if isinstance(command, sms.MyBookings):
            return await self._mine(who)
        if isinstance(command, sms.Rate):
            return await self._rate(who.id, command)
        done = await self.appointments.cancel(who, command.code)
        return f"已取消{done['day']} {done['slot_label']}的预约({done['branch_name']})。"

    async def _queue_status(self, branch: str) -> str:
        b = await self.status.branch(branch)
        if b is None:
            return f"没有网点{branch}的排队信息。"
        if not b["online"]:
            return f"{b['name']}暂时无法连接,请稍后再试。"
        parts = [f"{q['name']}{q['waiting']}人约{q['wait_minutes']}分"
                 + ("(暂停)" if q["paused"] else "") for q in b["queues"]]
        return f"{b['name']}当前等待{b['waiting_total']}人:" + ";".join(parts)

    async def _book(self, who: Any, c: sms.Book) -> str:
        day = self._day_for(c)
        done = await self.appointments.book(who, c.branch, c.queue, day, c.slot, channel="sms")
        return booked_words(done)

    def _day_for(self, c: sms.Book) -> str:
        """The given date (this year, or next if passed), else today or tomorrow: the first
        day the slot has not yet ended."""
        today = dt.date.fromisoformat(self.appointments.today())
        if c.month_day is not None:
            month, day = c.month_day
            try:
                wanted = dt.date(today.year, month, day)
                if wanted < today:
                    wanted = dt.date(today.year + 1, month, day)
            except ValueError:
                raise ap.AppointmentFormatError("bad_date", "日期无效。", "Invalid date.") \
                    from None
            return wanted.isoformat()
        _, last = ap.redeem_window(today.isoformat(), c.slot, self.appointments.settings.tz,
                                   0, 0)
        if self.appointments.clock() < last:
            return today.isoformat()
        return (today + dt.timedelta(days=1)).isoformat()

    async def _rate(self, customer: str, c: sms.Rate) -> str:
        """PJ: rate today's service of a ticket this customer was called for (the "called"
        notice, central/nearturn.py, says how) — only their own; the box's engine decides
        the rest like a keypad rating (a finished service, rated once: ``already_rated``)."""
        called = await self.appointments.pool.read(_called_today, customer,
                                                   self.appointments.today())
        mine = [(b, n) for b, n in called if c.number in (None, n)]
        if not mine or self.rate is None:
            return (f"今天没有{c.number}号的叫号记录,无法评价。" if c.number
                    else "今天没有可评价的服务。")
        branch, number = mine[0]
        done = await self.rate(branch, number, c.score)
        level = done.get("level") or c.score
        return f"已收到您对{number}号服务的评价:{level}。谢谢您对我们工作的支持,再见"

    async def _mine(self, who: Any) -> str:
        items = [b for b in await self.appointments.my_bookings(who)
                 if b["state"] == "booked"]
        if not items:
            return "您没有待办理的预约。"
        return "您的预约:" + ";".join(
            f"{b['day'][5:]} {b['slot_label']} {b['branch_name']}{b['queue_name']} "
            f"码{b['code']}" for b in items[:5])


def _called_today(st: Store, customer: str, day: str) -> list[tuple[str, str]]:
    """(branch, number) of the customer's tickets called today, the latest first."""
    return [(str(b), str(n)) for b, n in st.execute(
        "SELECT branch, number FROM notices_sent WHERE customer = ? AND day = ? AND "
        "kind = 'called' ORDER BY at DESC LIMIT 20", (customer, day)).fetchall()]
