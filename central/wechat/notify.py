"""The WeChat channel of "your turn is near" (H6): a :class:`~central.notify.Notifier`.

:class:`WeChatNotifier` finds the follower bound to the notice's customer (``wechat_users``
by the phone of ``customers.id``; :mod:`central.wechat.dialogue` binds them) and sends a
template message (``wechat.templates.near`` / ``.called``), or a customer-service text when
no template id is configured. No follower bound: ``False`` (another channel may reach
them). WeChat refusing or not answering raises :class:`~central.wechat.api.WeChatApiError`
(transient for the watcher: it tries again).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..notify import Notice

if TYPE_CHECKING:
    from ..appointments import StorePool
    from ..store import Store
    from .api import WeChatApi
    from .settings import WeChatSettings

__all__ = ["WeChatNotifier", "notice_text", "openid_of_customer"]

log = logging.getLogger(__name__)


def openid_of_customer(st: Store, customer: str) -> str | None:
    """The follower bound to the customer ``customers.id`` (the latest binding)."""
    row = st.execute("SELECT w.openid FROM wechat_users w JOIN customers c ON "
                     "c.phone_digest = w.phone_digest WHERE c.id = ? "
                     "ORDER BY w.bound_at DESC LIMIT 1", (customer,)).fetchone()
    return None if row is None else str(row[0])


def notice_text(n: Notice) -> str:
    """The notice in words (the seed's: 前面还有N人 / 请到N号窗口办理)."""
    if n.kind == "near":
        return (f"【{n.branch_name}】您的{n.queue_name}排队号{n.number}前面还有{n.ahead}人,"
                "请尽快到网点等候叫号。")
    return f"【{n.branch_name}】请{n.number}号到{n.window}号窗口办理{n.queue_name}。"


class WeChatNotifier:
    """Sends :class:`~central.notify.Notice`\\ s to the customer's WeChat follower."""

    name = "wechat"

    def __init__(self, api: WeChatApi, pool: StorePool, settings: WeChatSettings) -> None:
        self.api, self.pool, self.settings = api, pool, settings

    async def send(self, notice: Notice) -> bool:
        openid = await self.pool.read(openid_of_customer, notice.customer)
        if openid is None:
            return False
        template = (self.settings.templates.near if notice.kind == "near"
                    else self.settings.templates.called)
        if template:
            state = (f"前面还有{notice.ahead}人" if notice.kind == "near"
                     else f"请到{notice.window}号窗口")
            await self.api.send_template(openid, template, {
                "first": notice_text(notice), "keyword1": notice.number,
                "keyword2": f"{notice.branch_name} {notice.queue_name}",
                "keyword3": state, "remark": "感谢您的耐心等候。"})
        else:
            await self.api.send_text(openid, notice_text(notice))
        log.info("WeChat notice %s for ticket %s of %s sent", notice.kind, notice.number,
                 notice.branch)
        return True
