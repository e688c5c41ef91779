"""Refusal codes and their user-facing words (SPEC A7 and friends).

A refusal is the engine telling a customer or a teller "not now, and here is why".
Codes are stable API: the kiosk, the soft caller, the centre and the tests key on them.
Messages are Chinese first (the seed documents' wording), English second; ``{...}``
placeholders are filled from the refusal's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MESSAGES", "RefusalText", "render"]


@dataclass(frozen=True, slots=True)
class RefusalText:
    zh: str
    en: str
    status: int = 409  # HTTP status the box's API answers with


MESSAGES: dict[str, RefusalText] = {
    # --- tickets (A7) ---
    "queue_paused": RefusalText(
        "友情提示:对不起,你选择的业务因{reason}原因暂时不能办理,如有疑问请咨询大堂经理。",
        "Sorry, {queue_name} is temporarily unavailable ({reason}). "
        "Please ask the lobby manager if you have questions.",
    ),
    "outside_hours": RefusalText(
        "对不起,现在不在营业时间,请在营业时间内办理业务。营业时间:{hours}",
        "Sorry, we are outside business hours. Business hours: {hours}",
    ),
    "not_offered_today": RefusalText(
        "对不起,{queue_name}今日不办理,请在工作日办理。",
        "Sorry, {queue_name} is not offered today. Please come on a working day.",
    ),
    "daily_limit_reached": RefusalText(
        "对不起,{queue_name}今日号票已发完(每日限{limit}个),请明日再来。",
        "Sorry, today's tickets for {queue_name} are all given out (limit {limit}). "
        "Please come again tomorrow.",
    ),
    "branch_full": RefusalText(
        "对不起,网点等待人数已达上限({cap}人),暂停取号,请稍后再来。",
        "Sorry, the branch has reached its waiting limit ({cap}). Please come back later.",
    ),
    "disk_full": RefusalText(
        "对不起,系统存储空间不足,暂停取号,请咨询大堂经理。",
        "Sorry, the system is out of storage space: no tickets now. Please ask the lobby "
        "manager.", 503,
    ),
    "range_exhausted": RefusalText(
        "对不起,{queue_name}今日号段已用完,请咨询大堂经理。",
        "Sorry, the ticket range of {queue_name} is used up today. Please ask the lobby manager.",
    ),
    "kiosk_signed_out": RefusalText(
        "排队机已签出,暂停取号。",
        "The ticket machine is signed out. No tickets now.",
    ),
    "kiosk_out_of_service": RefusalText(  # its printer is down, another kiosk prints (I4)
        "本机打印机暂停服务,请到{other}取号。",
        "This machine's printer is out of service. Please take a ticket at {other_en}.",
        503,
    ),
    "unknown_kiosk": RefusalText(
        "没有该取号机:{kiosk}", "There is no such ticket machine: {kiosk}", 404
    ),
    "unknown_queue": RefusalText(
        "没有该业务:{queue}", "There is no such business: {queue}", 404
    ),
    "queue_is_menu": RefusalText(
        "请选择具体业务。", "Please choose a specific business.", 422
    ),
    "unknown_card": RefusalText(
        "无法识别该卡,请选择业务取号。",
        "This card is not recognised. Please choose a business on the screen.",
        404,
    ),
    "invalid_card": RefusalText(
        "卡号无效,请重新刷卡。", "The card number is not valid. Please swipe again.", 422
    ),
    # --- windows and tellers (B1–B4) ---
    "unknown_window": RefusalText(
        "没有该窗口:{window}", "There is no such window: {window}", 404
    ),
    "unknown_teller": RefusalText(
        "柜员号或密码错误。", "Wrong teller id or password.", 401
    ),
    "wrong_password": RefusalText(
        "柜员号或密码错误。", "Wrong teller id or password.", 401
    ),
    "teller_elsewhere": RefusalText(
        "柜员{teller}已在{other}号窗口登入,请先登出。",
        "Teller {teller} is logged in at window {other}. Log out there first.",
    ),
    "window_occupied": RefusalText(
        "{window}号窗口已有柜员{teller}登入。",
        "Window {window} is already in use by teller {teller}.",
    ),
    "not_logged_in": RefusalText(
        "{window}号窗口未登入,请先登入。", "Window {window}: please log in first.", 403
    ),
    "window_paused": RefusalText(
        "{window}号窗口已暂停服务,请先恢复服务。",
        "Window {window} is paused. Resume service first.",
    ),
    "window_not_paused": RefusalText(
        "{window}号窗口未暂停。", "Window {window} is not paused."
    ),
    "no_waiting": RefusalText(
        "当前没有等待的客户。", "Nobody is waiting for this window.", 404
    ),
    "no_current": RefusalText(
        "{window}号窗口当前没有正在服务的号码。",
        "Window {window} is not serving anybody now.",
    ),
    "busy": RefusalText(
        "{window}号窗口正在服务{number},请先完成。",
        "Window {window} is serving {number}. Finish it first.",
    ),
    "unknown_ticket": RefusalText(
        "今日没有该号码:{number}", "There is no ticket {number} today.", 404
    ),
    # --- pre-filled forms (预填单, I2) ---
    "no_form": RefusalText(
        "{number}所办业务无需填写预填单。", "The business of {number} has no pre-filled form.",
        404,
    ),
    "form_invalid": RefusalText(
        "预填单填写有误:{problem}", "The form is not filled in right: {problem_en}", 422,
    ),
    "form_closed": RefusalText(
        "{number}已办理完毕,不能再填写预填单。",
        "Ticket {number} is closed: its form can no longer be filled in.",
    ),
    "form_missing": RefusalText(
        "{number}没有预填单。", "Ticket {number} has no pre-filled form.", 404,
    ),
    "form_refused": RefusalText(
        "请在取号的排队机上填写{number}的预填单,或咨询大堂经理。",
        "Fill in the form of {number} at the kiosk that issued it, or ask the lobby manager.",
        403,
    ),
    "reprint_refused": RefusalText(
        "补打{number}请咨询大堂经理。", "Please ask the lobby manager to reprint {number}.",
        403,
    ),
    "ticket_not_waiting": RefusalText(
        "{number}当前不在等待中。", "Ticket {number} is not waiting."
    ),
    "ticket_not_held": RefusalText(
        "{number}不能回呼(未挂起也未弃号)。",
        "Ticket {number} can't be called back: it is neither held nor a no-show.",
    ),
    "queue_not_served": RefusalText(
        "{window}号窗口不办理该业务:{queue}",
        "Window {window} does not serve {queue}.",
    ),
    "same_place": RefusalText(
        "不能转移到原窗口或原业务。", "Can't transfer to the same window or business.", 422
    ),
    # --- configuration (G2): a business removed while its customers wait ---
    "tickets_waiting": RefusalText(
        "业务{queue}还有{count}位客户在等候,配置未采用:请在 removed_queues.{queue} 中写明"
        "转入的业务(transfer_to)或结束这些号(close = true)。",
        "{count} customers still wait for business {queue}: configuration refused. Say in "
        "removed_queues.{queue} where they go (transfer_to) or to close them (close = true).",
    ),
    # --- ratings (C1) ---
    "no_service_to_rate": RefusalText(
        "没有可评价的服务。", "There is no finished service to rate.", 404
    ),
    "already_rated": RefusalText(
        "本次服务已评价,谢谢您对我们工作的支持,再见。",
        "This service has already been rated. Thank you, goodbye.",
    ),
    "rating_expired": RefusalText(
        "评价时间已过。", "The time to rate this service has passed."
    ),
    "bad_score": RefusalText(
        "评价等级无效:{score}", "Not a valid rating: {score}", 422
    ),
    # --- appointments (A6) ---
    "appointment_unknown": RefusalText(
        "预约码无效,请核对后重新输入。", "Unknown appointment code. Please check and retry.", 404
    ),
    "appointment_early": RefusalText(
        "您的预约时段为{slot},请在预约时段内取号。",
        "Your appointment is for {slot}. Please come back within your slot.",
    ),
    "appointment_late": RefusalText(
        "您的预约时段{slot}已过,请正常取号。",
        "Your appointment slot {slot} has passed. Please take a normal ticket.",
    ),
    "appointment_used": RefusalText(
        "该预约已兑号,不能重复使用。", "This appointment has already been used."
    ),
    "appointment_cancelled": RefusalText(
        "该预约已取消。", "This appointment was cancelled."
    ),
    "appointment_other_branch": RefusalText(
        "该预约不是本网点的预约,请到{branch_name}办理。",
        "This appointment is for another branch: {branch_name}.",
    ),
    "appointment_other_day": RefusalText(
        "该预约不是今天的预约(预约日期:{day})。",
        "This appointment is not for today (it is for {day}).",
    ),
}


class _Blank(dict[str, object]):
    """Leaves an unknown placeholder visible instead of raising KeyError."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(code: str, params: dict[str, object]) -> tuple[str, str]:
    """Return the (Chinese, English) message for a refusal code and its parameters."""
    text = MESSAGES.get(code)
    if text is None:
        return code, code
    values = _Blank(params)
    return text.zh.format_map(values), text.en.format_map(values)
