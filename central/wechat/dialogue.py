"""The WeChat conversation (seed §2.5.2 微信预约取号): what the centre answers a follower.

The seed's path: 关注公众号 → send your location (WeChat's "位置") → the nearest branches
with how busy they are, numbered → reply a number → that branch's businesses, numbered →
reply a number → 远程取号 (a ticket of the branch's own numbering, "等同于直接在网点排队机
取号") or one of the next bookable slots → if this follower is not yet bound: a phone number
→ the SMS code sent to it (the web sign-in's code and limits) → bound, and the ticket
number or booking code comes back. A phone not yet registered registers as by SMS
(``ZC 姓名 身份证号``). The menu (自定义菜单) sends CLICK events with the keys
:data:`MENU`: 附近网点, 我的排号 (today's remote tickets with where they stand, and
bookings to come), 评价 (rate the last finished service, as the keypad would).

Where each follower stands is kept in the store (``wechat_dialogues``, one JSON row per
openid, gone after ``wechat.dialogue_ttl_s``); the binding in ``wechat_users``. Everything
a customer can do goes through the same services as the phone pages and SMS
(:mod:`central.appointments`, :mod:`central.remote`, :mod:`central.public`,
:mod:`central.code_limits`): the same rules, limits and refusals, in the same words.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from protocols import appointment as ap
from protocols import sms
from protocols.wechat import Message

from ..appointments import Customer, CustomerRefused
from ..names import check_name
from ..public import least_busy
from ..remote import ticket_position
from ..sms_commands import booked_words

if TYPE_CHECKING:
    from ..appointments import Appointments
    from ..code_limits import CodeLimits
    from ..public import PublicStatus
    from ..remote import RemoteTickets
    from ..store import Store
    from .settings import WeChatSettings

__all__ = ["HELP", "MENU", "WeChatDesk"]

log = logging.getLogger(__name__)

MENU = {"NEARBY": "附近网点", "MY_TICKETS": "我的排号", "RATE": "评价"}  # CLICK EventKeys
WELCOME = ("欢迎关注!发送您的位置(点击输入框旁“+”→“位置”),即可查看附近网点的排队情况,"
           "回复序号预约或远程取号。")
HELP = ("发送位置:查看附近网点;回复序号:选择;“我的排号”:查看排号与预约;"
        "“评价”:评价刚办理的服务;“取消”:退出当前操作。")
ASK_LOCATION = "请发送您的位置(点击输入框旁“+”→“位置”),为您查找附近网点。"
ASK_PHONE = "请回复您的手机号码,我们将发送短信验证码以确认身份。"
ASK_REGISTER = "该手机号尚未注册,请回复:ZC 姓名 身份证号(例如:ZC 王小明 410105199003071234)"
NOT_BOUND = "您尚未绑定手机号。" + ASK_PHONE
WORDS = {"帮助": "help", "?": "help", "BZ": "help", "HELP": "help",
         "取消": "cancel", "退出": "cancel",
         "附近网点": "NEARBY", "网点": "NEARBY",
         "我的排号": "MY_TICKETS", "排号": "MY_TICKETS", "评价": "RATE"}
STATES = {"waiting": "等候中", "called": "正在叫号", "serving": "正在办理",
          "finished": "已办结", "no_show": "过号", "not_served": "未办理", "voided": "已作废"}


class WeChatDesk:
    """Answers one official account's followers from the customer channels' services."""

    def __init__(self, appointments: Appointments, remote: RemoteTickets,
                 status: PublicStatus, code_limits: CodeLimits, settings: WeChatSettings,
                 wall: Callable[[], float]) -> None:
        self.appointments, self.remote, self.status = appointments, remote, status
        self.code_limits, self.settings = code_limits, settings
        self.pool = appointments.pool
        self.wall = wall  # real time: WeChat's timestamps (the store's expiries too)

    # --- the one entry -----------------------------------------------------------------------

    async def answer(self, m: Message) -> str | None:
        """The reply to one message (None: none is due, e.g. an unsubscribe)."""
        try:
            return await self._answer(m)
        except CustomerRefused as exc:
            return exc.message
        except ap.AppointmentFormatError as exc:
            return exc.message

    async def _answer(self, m: Message) -> str | None:
        who = m.from_user
        if m.msg_type == "event":
            if m.event == "subscribe":
                return WELCOME
            if m.event == "unsubscribe":  # gone: its binding and conversation with it
                await self.pool.run(_unbind, who)
                return None
            if m.event == "click" and m.event_key in MENU:
                return await self._menu(who, m.event_key)
            return None  # VIEW, LOCATION reports: nothing to say
        if m.msg_type == "location" and m.latitude is not None and m.longitude is not None:
            return await self._nearby(who, m.latitude, m.longitude)
        if m.msg_type != "text":
            return "暂不支持该类消息。" + HELP
        return await self._text(who, m.content or "")

    async def _menu(self, who: str, key: str) -> str:
        if key == "NEARBY":
            return ASK_LOCATION
        if key == "MY_TICKETS":
            return await self._mine(who)
        return await self._rate_start(who)

    async def _text(self, who: str, content: str) -> str:
        text = unicodedata.normalize("NFKC", content).strip()
        word = WORDS.get(text.upper())
        if word == "help":
            return HELP
        if word == "cancel":
            await self.pool.run(_forget, who)
            return "已退出当前操作。" + HELP
        if word in MENU:
            return await self._menu(who, word)
        state = await self.pool.read(_state, who, self.wall())
        step = state.get("step")
        command = sms.parse(text)
        if isinstance(command, sms.Register):
            return await self._register(who, state, command)
        if step == "phone":
            return await self._phone(who, state, text)
        if step == "code":
            return await self._code(who, state, text)
        if text.isascii() and text.isdigit() and len(text) <= 2 and step in CHOOSE:
            return await CHOOSE[step](self, who, state, int(text))
        if text.isascii() and text.isdigit() and len(text) == 11 and text.startswith("1"):
            return await self._phone(who, {}, text)  # binding without a pending choice
        return HELP

    # --- location → branches → businesses → options -------------------------------------------

    async def _nearby(self, who: str, lat: float, lon: float) -> str:
        s = self.settings
        every = list((await self.status.branches()).values())
        near = least_busy(every, lat, lon, radius_km=s.radius_km, limit=s.nearby)
        if not near:
            return "附近暂时没有可以服务的网点,请稍后再试。"
        await self._keep(who, {"step": "branch", "branches": [b["branch"] for b in near]})
        lines = [f"{i}. {b['name']} {b['distance_km']:.1f}公里 等候{b['waiting_total']}人 "
                 f"约{b['wait_minutes']}分钟" for i, b in enumerate(near, 1)]
        return "离您最近的网点(按等候时间):\n" + "\n".join(lines) + "\n回复序号查看业务。"

    async def _branch_chosen(self, who: str, state: dict[str, Any], n: int) -> str:
        codes = state.get("branches") or []
        if not 1 <= n <= len(codes):
            return f"请回复1–{len(codes)}之间的序号。"
        b = await self.status.branch(codes[n - 1])
        if b is None or not b["online"]:
            return "该网点暂时无法连接,请选择其他网点。"
        queues = [q for q in b["queues"] if not q["paused"]]
        if not queues:
            return f"{b['name']}暂停办理业务,请选择其他网点。"
        await self._keep(who, {"step": "queue", "branch": b["branch"],
                               "queues": [q["id"] for q in queues]})
        lines = [f"{i}. {q['name']} 等候{q['waiting']}人 约{q['wait_minutes']}分钟"
                 for i, q in enumerate(queues, 1)]
        return f"{b['name']}:\n" + "\n".join(lines) + "\n回复序号选择业务。"

    async def _queue_chosen(self, who: str, state: dict[str, Any], n: int) -> str:
        ids, branch = state.get("queues") or [], state.get("branch", "")
        if not 1 <= n <= len(ids):
            return f"请回复1–{len(ids)}之间的序号。"
        queue = ids[n - 1]
        options: list[dict[str, Any]] = [{"kind": "ticket", "branch": branch, "queue": queue}]
        words = ["远程取号(立即排队,等同于在网点取号)"]
        today = self.appointments.today()
        for day in self.appointments.days(2):
            try:
                offer = await self.appointments.bookable(branch, day)
            except CustomerRefused:
                break  # no catalogue yet: the branch takes no bookings
            q = next((x for x in offer["queues"] if x["id"] == queue), None)
            for slot in (q or {}).get("slots", []):
                if slot["open"] and len(options) <= self.settings.slots_listed:
                    options.append({"kind": "book", "branch": branch, "queue": queue,
                                    "day": day, "slot": slot["slot"]})
                    words.append(f"预约 {'今天' if day == today else '明天'} {slot['label']}"
                                 f"(余{slot['left']})")
        await self._keep(who, {"step": "action", "options": options})
        return "\n".join(f"{i}. {w}" for i, w in enumerate(words, 1)) + "\n回复序号。"

    async def _option_chosen(self, who: str, state: dict[str, Any], n: int) -> str:
        options = state.get("options") or []
        if not 1 <= n <= len(options):
            return f"请回复1–{len(options)}之间的序号。"
        return await self._act(who, options[n - 1])

    # --- binding: phone, code, registration ------------------------------------------------------

    async def _act(self, who: str, pending: dict[str, Any]) -> str:
        """Do ``pending`` for the bound, registered customer; else ask for what is missing."""
        customer = await self._customer(who)
        if customer is None:
            await self._keep(who, {"step": "phone", "pending": pending})
            return ASK_PHONE
        if customer.id is None:
            await self._keep(who, {"step": "register", "pending": pending})
            return ASK_REGISTER
        await self.pool.run(_forget, who)
        if pending["kind"] == "ticket":
            got = await self.remote.take(customer, pending["branch"], pending["queue"])
            link = f"{self.appointments.settings.public_url}/m/t/{got['token']}"
            return (f"取号成功!{got['branch_name']} {got['queue_name']} 排队号{got['number']},"
                    f"前面还有{got['ahead']}人,约{got['wait_minutes']}分钟。查看进度:{link}")
        done = await self.appointments.book(customer, pending["branch"], pending["queue"],
                                            pending["day"], int(pending["slot"]),
                                            channel="wechat")
        return booked_words(done)

    async def _phone(self, who: str, state: dict[str, Any], text: str) -> str:
        a = self.appointments
        try:
            phone = ap.parse_phone(text)
        except ap.AppointmentFormatError as exc:
            return f"{exc.message}请重新回复手机号码,或回复“取消”。"
        taken = await self.code_limits.reserve(a.vault.digest(phone), f"wechat:{who}",
                                               a.clock())
        try:
            sent = await a.send_code(phone)
        except Exception:  # not sent: not counted
            await self.code_limits.release(taken)
            raise
        await self._keep(who, {"step": "code", "phone": a.vault.seal(phone, "phone"),
                               "pending": state.get("pending")})
        return (f"验证码已发送至{sent['to']},请回复6位验证码"
                f"({sent['expires_in'] // 60}分钟内有效)。")

    async def _code(self, who: str, state: dict[str, Any], text: str) -> str:
        a = self.appointments
        if not (text.isascii() and text.isdigit() and len(text) == 6):
            return "请回复短信中的6位验证码,或回复“取消”。"
        phone = a.vault.open(state["phone"], "phone")
        signed = await a.sign_in(phone, text)  # the web's check: attempts counted
        await a.sign_out(signed["token"])  # the proof is all WeChat needs, not a session
        await self.pool.run(_bind, who, a.vault.digest(phone), a.vault.seal(phone, "phone"),
                            self.wall())
        log.info("WeChat follower bound to %s", ap.mask_phone(phone))
        pending = state.get("pending")
        if pending:
            return "绑定成功。" + await self._act(who, pending)
        await self.pool.run(_forget, who)
        return f"绑定成功:{ap.mask_phone(phone)}。" + ASK_LOCATION

    async def _register(self, who: str, state: dict[str, Any], c: sms.Register) -> str:
        customer = await self._customer(who)
        if customer is None:
            await self._keep(who, {"step": "phone", "pending": state.get("pending")})
            return NOT_BOUND
        await self.appointments.register(customer, check_name(c.name), None, c.id_number)
        pending = state.get("pending")
        if pending:
            return "注册成功。" + await self._act(who, pending)
        return "注册成功。" + ASK_LOCATION

    async def _customer(self, who: str) -> Customer | None:
        """The customer this follower is bound to (None: not bound)."""
        sealed = await self.pool.read(_bound, who)
        if sealed is None:
            return None
        return await self.appointments.customer_by_phone(
            self.appointments.vault.open(sealed, "phone"))

    # --- my tickets, rating ------------------------------------------------------------------

    async def _tickets(self, customer: Customer) -> list[dict[str, Any]]:
        """Today's remote tickets of the customer, newest first, with where each stands."""
        rows = await self.pool.read(_today_tickets, customer.id, self.appointments.today())
        out = []
        for r in rows:
            answer, _ = await self.remote.tracker.where(r["branch"], r["number"])
            out.append({**r, **ticket_position(answer, r["number"]),
                        "branch_name": await self.appointments.branch_name(r["branch"])})
        return out

    async def _mine(self, who: str) -> str:
        customer = await self._customer(who)
        if customer is None:
            await self._keep(who, {"step": "phone"})
            return NOT_BOUND
        if customer.id is None:
            await self._keep(who, {"step": "register"})
            return ASK_REGISTER
        lines = []
        for t in await self._tickets(customer):
            where = STATES.get(t["state"], "状态未知")
            if t["state"] == "waiting" and t.get("ahead") is not None:
                where = f"前面还有{t['ahead']}人,约{t.get('wait_minutes', '?')}分钟"
            elif t["state"] in ("called", "serving") and t.get("window"):
                where = f"请到{t['window']}号窗口"
            lines.append(f"{t['branch_name']} {t['number']}:{where}")
        for b in await self.appointments.my_bookings(customer):
            if b["state"] == "booked":
                lines.append(f"预约 {b['day'][5:]} {b['slot_label']} {b['branch_name']}"
                             f"{b['queue_name']} 预约码{b['code']}")
        return "\n".join(lines) if lines else "您今天没有排号,也没有待办理的预约。"

    async def _rate_start(self, who: str) -> str:
        customer = await self._customer(who)
        if customer is None:
            await self._keep(who, {"step": "phone"})
            return NOT_BOUND
        if customer.id is None:
            return ASK_REGISTER
        done = [t for t in await self._tickets(customer)
                if t["state"] == "finished" and not t.get("rated")]
        if not done:
            return "没有可评价的服务:服务结束后才能评价。"
        t = done[0]
        levels = (await self.remote.branch_words(t["branch"]))["rating_levels"]
        await self._keep(who, {"step": "rate", "branch": t["branch"], "number": t["number"],
                               "scores": [int(x["score"]) for x in levels]})
        return (f"请为{t['branch_name']} {t['number']}的服务评分,回复:\n"
                + "\n".join(f"{x['score']} {x['name']}" for x in levels))

    async def _score(self, who: str, state: dict[str, Any], n: int) -> str:
        if n not in (state.get("scores") or []):
            return "请回复评价对应的数字。"
        done = await self.remote.rate_number(state["branch"], state["number"], n)
        await self.pool.run(_forget, who)
        return str(done["message"])

    # --- state -----------------------------------------------------------------------------

    async def _keep(self, who: str, state: dict[str, Any]) -> None:
        await self.pool.run(_save, who, state, self.wall(), self.settings.dialogue_ttl_s)


CHOOSE = {"branch": WeChatDesk._branch_chosen, "queue": WeChatDesk._queue_chosen,
          "action": WeChatDesk._option_chosen, "rate": WeChatDesk._score}


# --- store -------------------------------------------------------------------------------------


def _state(st: Store, openid: str, now: float) -> dict[str, Any]:
    row = st.execute("SELECT state, expires_at FROM wechat_dialogues WHERE openid = ?",
                     (openid,)).fetchone()
    if row is None or float(row[1]) < now:
        return {}
    found = json.loads(row[0])
    return found if isinstance(found, dict) else {}


def _save(st: Store, openid: str, state: dict[str, Any], now: float, ttl: float) -> None:
    st.execute("DELETE FROM wechat_dialogues WHERE expires_at < ?", (now,))
    st.execute("INSERT INTO wechat_dialogues (openid, state, expires_at) VALUES (?, ?, ?) "
               "ON CONFLICT (openid) DO UPDATE SET state = excluded.state, "
               "expires_at = excluded.expires_at",
               (openid, json.dumps(state, ensure_ascii=False), now + ttl))


def _forget(st: Store, openid: str) -> None:
    st.execute("DELETE FROM wechat_dialogues WHERE openid = ?", (openid,))


def _bind(st: Store, openid: str, digest: str, sealed: str, now: float) -> None:
    st.execute("INSERT INTO wechat_users (openid, phone_digest, phone_sealed, bound_at) "
               "VALUES (?, ?, ?, ?) ON CONFLICT (openid) DO UPDATE SET "
               "phone_digest = excluded.phone_digest, phone_sealed = excluded.phone_sealed, "
               "bound_at = excluded.bound_at", (openid, digest, sealed, now))


def _unbind(st: Store, openid: str) -> None:
    """An unfollow: WeChat sends the openid nothing more, so its phone binding is kept no
    longer (and ``wechat_users`` holds the account's followers only)."""
    st.execute("DELETE FROM wechat_users WHERE openid = ?", (openid,))
    _forget(st, openid)


def _bound(st: Store, openid: str) -> str | None:
    row = st.execute("SELECT phone_sealed FROM wechat_users WHERE openid = ?",
                     (openid,)).fetchone()
    return None if row is None else str(row[0])


def _today_tickets(st: Store, customer: str | None, day: str) -> list[dict[str, Any]]:
    cur = st.execute("SELECT branch, number, queue FROM remote_tickets WHERE customer = ? "
                     "AND day = ? AND state = 'issued' AND number IS NOT NULL "
                     "ORDER BY created_at DESC LIMIT 10", (customer, day))
    return [{"branch": r[0], "number": r[1], "queue": r[2]} for r in cur.fetchall()]
