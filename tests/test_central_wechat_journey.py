"""Issue 18 end to end: a WeChat follower books a slot in the official account's
conversation (safe mode: signed and AES-encrypted by the simulated WeChat), the booking is
pushed to the box, the customer redeems it at the kiosk with their ID card, and as the queue
moves WeChat (the simulated API, sim/wechat.py) carries "your turn is near" once and then
"called" with the window — and no SMS, since WeChat reached them.

A real centre (SQLite and PostgreSQL), a real box and a real broker; Wed 2026-11-25 10:00
at the example branch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from central.broker import LocalBroker
from common.clock import ManualClock
from controller.box import Box
from controller.engine import commands as c
from sim.wechat import ApiServer
from tests.customer_support import (
    ID_NUMBER,
    an_id,
    bearer,
    bookable,
    customer_centre,
    http,
    linked_box,
    pushed,
    sign_in,
    texts,
)
from tests.nearturn_support import kiosk, notices, rows, watcher
from tests.uplink_support import (  # noqa: F401
    BRANCH,
    broker_fixture,
    pg_url_fixture,
    store_url_fixture,
    wait_for,
)
from tests.wechat_support import APPID, HERE, SECRET, follower, wechat_sets

TODAY = "2026-11-25"
PHONE, MASKED = "13912345678", "139****5678"  # the follower's
NEAR_AT_ONE = ("customers.notify_every_s=0.05", "customers.notify_ahead=1")


async def test_a_wechat_booking_is_redeemed_at_the_kiosk_and_near_turn_arrives_once_on_wechat(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    with ApiServer(APPID, SECRET) as wechat:
        sets = wechat_sets("safe", wechat.url, "wechat.templates.near=TPL_NEAR",
                           "wechat.templates.called=TPL_CALLED")
        async with customer_centre(broker, store_url, clock, tmp_path, *NEAR_AT_ONE,
                                   *sets) as centre, \
                linked_box(box, broker), http(centre) as api, kiosk(box) as desk:
            await bookable(centre)

            # Two customers booked the same slot on the phone pages (no WeChat): they will
            # be at the kiosk first.
            codes = []
            for n, phone in enumerate(("13812345601", "13812345602"), 1):
                token = await sign_in(api, centre, phone=phone, id_number=an_id(n))
                r = await api.post("/api/public/bookings", headers=bearer(token),
                                   json={"branch": BRANCH, "queue": "A", "day": TODAY,
                                         "slot": 3})
                assert r.status_code == 201, r.text
                codes.append(r.json()["code"])

            # 王小明 books from WeChat: location → branch → business → the slot under way →
            # phone → SMS code → registration → the booking code.
            wang = follower(api, safe=True)

            async def listed() -> str:
                reply = await wang.location(*HERE)
                return reply if reply and "1. 郑州金水路支行" in reply else ""

            await wait_for(listed, 20, "the branch's live picture with its coordinates")
            assert "1. 个人业务" in (await wang.say("1") or "")
            options = await wang.say("1")
            assert options is not None and options.startswith("1. 远程取号")
            line = next(x for x in options.splitlines() if "预约 今天 10:00-11:00" in x)
            assert "手机号码" in (await wang.say(line.split(".")[0]) or "")
            sent = await wang.say(PHONE)
            assert sent is not None and MASKED in sent and PHONE not in sent
            code_sms = texts(centre)[-1]
            assert code_sms[0] == MASKED
            bound = await wang.say(code_sms[1].split("验证码是")[1][:6])
            assert bound is not None and "ZC 姓名 身份证号" in bound
            booked = await wang.say(f"ZC 王小明 {ID_NUMBER}")
            assert booked is not None and "预约成功" in booked and "10:00-11:00" in booked
            code = booked.split("预约码")[1][:6]
            assert f"预约码{code}" in (await wang.click("MY_TICKETS") or "")
            assert centre.customers is not None
            row = await centre.customers.appointments.pool.read(lambda st: st.execute(
                "SELECT channel, state FROM bookings WHERE code = ?", (code,)).fetchone())
            assert tuple(row) == ("wechat", "booked")

            # The bookings reach the box; at the kiosk the two others type their codes,
            # then 王小明 lays the ID card he registered with on the reader.
            await pushed(centre, TODAY)
            numbers = []
            for redeem in ({"code": codes[0]}, {"code": codes[1]}, {"id_number": ID_NUMBER}):
                r = await desk.post("/api/appointments/redeem", json=redeem)
                assert r.status_code == 201, r.text
                numbers.append(r.json()["number"])
            mine = numbers[2]
            ticket = box.engine.state.by_num(mine)
            assert ticket is not None and ticket.channel == "appointment"

            def wechat_to_wang() -> list[dict[str, Any]]:
                return [m for m in wechat.sent if m["touser"] == wang.openid]

            # Issued with two ahead (both earlier appointments): not near yet (N = 1).
            followed = watcher(centre)._followed
            key = (BRANCH, ticket.id)

            async def seen() -> bool:
                f = followed.get(key)
                return f is not None and f.ahead == 2

            await wait_for(seen, 10, "the watcher to follow the redeemed ticket")
            assert wechat_to_wang() == []

            await box.execute(c.Login(1, "t1", "1234"))
            await box.execute(c.Login(2, "t2", "1234"))
            await box.execute(c.CallNext(1))  # the first booking: one ahead of 王小明

            async def near() -> list[dict[str, Any]]:
                return wechat_to_wang()

            (told,) = await wait_for(near, 10, "the near message on WeChat")
            assert told["kind"] == "template" and told["template_id"] == "TPL_NEAR"
            assert told["data"]["keyword1"]["value"] == mine
            assert told["data"]["keyword2"]["value"] == "郑州金水路支行 个人业务"
            assert told["data"]["keyword3"]["value"] == "前面还有1人"

            await box.execute(c.CallNext(2))  # the second: none ahead, not told again
            second = box.engine.state.by_num(numbers[1])
            assert second is not None
            await wait_for(lambda: (BRANCH, second.id) in watcher(centre)._calls, 10,
                           "the watcher to read the second call")
            assert len(wechat_to_wang()) == 1

            await box.execute(c.Finish(1))
            await box.execute(c.CallNext(1))  # 王小明, to window 1
            called = await wait_for(lambda: wechat_to_wang()[1:], 10, "the called message")
            (call,) = called
            assert call["template_id"] == "TPL_CALLED"
            assert call["data"]["keyword1"]["value"] == mine
            assert call["data"]["keyword3"]["value"] == "请到1号窗口"
            assert f"请{mine}号到1号窗口办理个人业务" in call["data"]["first"]["value"]

            # WeChat reached him: the SMS chain stopped there. The others, whom no
            # follower stands for, were told by SMS.
            assert notices(centre, MASKED) == []
            assert [to for to, _ in texts(centre)].count(MASKED) == 1  # the sign-in code
            assert notices(centre, "138****5601") and notices(centre, "138****5602")

            async def settled() -> dict[tuple[str, str], tuple[str, str | None]]:
                # WeChat's API records the message before the watcher marks it "sent"
                done = {(r["number"], r["kind"]): (r["state"], r["channel"])
                        for r in await rows(centre)}
                return done if "sending" not in {v[0] for v in done.values()} else {}

            done = await wait_for(settled, 10, "every notice marked as sent")
            assert done[mine, "near"] == done[mine, "called"] == ("sent", "wechat")
            assert done[numbers[0], "near"] == ("sent", "sms")
            assert len(wechat.sent) == 2  # nobody else was sent anything on WeChat
