"""The centre's WeChat official account (H5) against a simulated WeChat (sim/wechat.py):
real signatures, real AES, real XML. Wed 2026-11-25 10:00 at the example branch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from central.broker import LocalBroker
from central.notify import Notice
from central.wechat.api import WeChatApi
from central.wechat.endpoint import STATUS, Refused, WeChatAccount
from central.wechat.notify import WeChatNotifier
from common.clock import ManualClock
from controller.box import Box
from controller.engine import commands as c
from protocols import wechat as wx
from sim.wechat import ApiServer, WeChatRefused
from tests.customer_support import (
    ID_NUMBER,
    bookable,
    customer_centre,
    http,
    linked_box,
    plain_centre,
    put_catalogue,
    texts,
)
from tests.uplink_support import (  # noqa: F401
    BRANCH,
    broker_fixture,
    pg_url_fixture,
    store_url_fixture,
    wait_for,
)
from tests.wechat_support import (
    AES_KEY,
    APPID,
    HERE,
    SECRET,
    TOKEN,
    follower,
    put_live,
    wechat_sets,
)

PHONE = "13912345678"


def last_code(centre: object) -> str:
    return texts(centre)[-1][1].split("验证码是")[1][:6]  # type: ignore[arg-type]


async def test_wechat_verifies_the_url_with_the_token_and_refuses_anyone_else(
        tmp_path: Path, clock: ManualClock) -> None:
    async with plain_centre(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path, clock,
                            *wechat_sets()) as (centre, api):
        ts, nonce = str(int(time.time())), "20261125"
        good = {"signature": wx.signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
                "echostr": "5837397749384"}
        r = await api.get("/api/wechat", params=good)
        assert r.status_code == 200 and r.text == "5837397749384"
        for bad in ({**good, "signature": wx.signature("not-the-token", ts, nonce)},
                    {**good, "nonce": "20261126"}, {"echostr": "1"}, {},
                    {**good, "echostr": "<script>"}):
            r = await api.get("/api/wechat", params=bad)
            assert r.status_code in (400, 403) and r.text == ""  # nothing echoed
        assert centre.customers is not None and centre.customers.wechat is not None
        assert centre.customers.wechat.refused["bad_signature"] == 2


async def test_unsigned_garbled_stale_and_replayed_messages_are_refused_and_counted(
        tmp_path: Path, clock: ManualClock, store_url: str) -> None:
    async with plain_centre(store_url, tmp_path, clock,
                            *wechat_sets("safe")) as (centre, api):
        assert centre.customers is not None and centre.customers.wechat is not None
        account = centre.customers.wechat
        wang = follower(api, safe=True)
        assert "发送您的位置" in (await wang.subscribe() or "")
        params, body = wang.signed(wang.message({"MsgType": "text", "Content": "帮助"}))

        async def post(p: dict[str, str], b: str) -> int:
            r = await api.post("/api/wechat", params=p, content=b.encode())
            assert "帮助" not in r.text  # a refusal says nothing of the request
            return r.status_code

        assert await post(params, body) == 200
        assert await post(params, body) == 403  # the same request again: a replay
        plain = follower(api)  # a plain-mode message to a safe-mode account
        assert await post(*plain.signed(plain.message({"MsgType": "text", "Content": "1"}))) \
            == 400
        params, body = wang.signed(wang.message({"MsgType": "text", "Content": "帮助"}))
        enc = wx.parse_xml(body)["Encrypt"]
        forged = body.replace(enc, enc[:10] + ("B" if enc[10] != "B" else "C") + enc[11:])
        assert await post(params, forged) == 403  # Encrypt changed: msg_signature fails
        assert await post({**params, "msg_signature": "0" * 40}, body) == 403
        assert await post({k: v for k, v in params.items() if k != "signature"}, body) == 400
        old = follower(api, safe=True, clock=lambda: time.time() - 3600)
        assert await post(*old.signed(old.message({"MsgType": "text", "Content": "1"}))) \
            == 403  # an hour old: stale, whatever its signature
        # signed properly but not WeChat's XML inside
        p, _ = wang.signed("<xml/>")
        key = wx.aes_key(wang.aes_key or "")
        enc = wx.encrypt(key, APPID, b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml>&a;</xml>",
                         b"0" * 16)
        p["msg_signature"] = wx.signature(TOKEN, p["timestamp"], p["nonce"], enc)
        assert await post(p, wx.message_xml({"ToUserName": "gh", "Encrypt": enc})) == 400
        p, _ = wang.signed("<xml/>")
        enc = wx.encrypt(key, "wxsomeoneelse", b"<xml/>", b"0" * 16)  # another account's
        p["msg_signature"] = wx.signature(TOKEN, p["timestamp"], p["nonce"], enc)
        assert await post(p, wx.message_xml({"ToUserName": "gh", "Encrypt": enc})) == 403
        assert await post(params, "x" * (wx.MAX_BODY + 1)) == 413
        assert {k: account.refused[k] for k in ("replayed", "wrong_mode", "bad_signature",
                                                 "bad_query", "stale", "bad_xml", "bad_appid",
                                                 "too_large")} == {
            "replayed": 1, "wrong_mode": 1, "bad_signature": 2, "bad_query": 1, "stale": 1,
            "bad_xml": 1, "bad_appid": 1, "too_large": 1}
        assert account.answered == 2


async def test_a_follower_books_a_slot_by_location_number_phone_and_code(
        tmp_path: Path, clock: ManualClock, store_url: str) -> None:
    """The seed's path, in safe mode: location → branches → business → slot → phone →
    SMS code → registration → the booking code; then 我的排号 shows it."""
    async with plain_centre(store_url, tmp_path, clock,
                            *wechat_sets("safe")) as (centre, api):
        assert centre.customers is not None
        a = centre.customers.appointments
        await put_catalogue(a, clock)
        await put_live(centre, clock, {"A": 2, "B": 1})
        wang = follower(api, safe=True)

        near = await wang.location(*HERE, "金水路")
        assert near is not None and "1. 郑州金水路支行" in near and "等候3人" in near
        businesses = await wang.say("1")
        assert businesses is not None and "1. 个人业务 等候2人" in businesses
        options = await wang.say("1")
        assert options is not None and options.startswith("1. 远程取号")
        line = next(x for x in options.splitlines() if "预约 今天 11:00-12:00" in x)
        assert await wang.say("9") == "请回复1–7之间的序号。"  # 1 ticket + 6 slots listed
        asked = await wang.say(line.split(".")[0])
        assert asked is not None and "手机号码" in asked
        assert "手机号" in (await wang.say("12345") or "")  # not a mobile number: again
        sent = await wang.say(PHONE)
        assert sent is not None and "139****5678" in sent and PHONE not in sent
        assert "验证码" in (await wang.say("000000") or "")  # wrong code: refused, counted
        registered = await wang.say(last_code(centre))
        assert registered is not None and registered.startswith("绑定成功")
        assert "ZC 姓名 身份证号" in registered  # the phone is not registered yet
        booked = await wang.say(f"ZC 王小明 {ID_NUMBER}")
        assert booked is not None and "注册成功" in booked and "预约成功" in booked
        assert "11:00-12:00" in booked and "2026-11-25" in booked
        code = booked.split("预约码")[1][:6]
        row = await a.pool.read(lambda st: st.execute(
            "SELECT branch, queue, slot, channel FROM bookings WHERE code = ?",
            (code,)).fetchone())
        assert tuple(row) == (BRANCH, "A", 4, "wechat")

        mine = await wang.click("MY_TICKETS")
        assert mine is not None and f"预约码{code}" in mine and "11:00-12:00" in mine
        stranger = follower(api, safe=True, openid="oSomeoneElse02")
        assert "尚未绑定" in (await stranger.click("MY_TICKETS") or "")
        assert "已退出" in (await wang.say("取消") or "")
        assert (await wang.say("您好") or "").startswith("发送位置:查看附近网点")  # help


async def test_a_follower_takes_a_remote_ticket_then_rates_the_service(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path, *wechat_sets()) as centre, \
            linked_box(box, broker), http(centre) as api:
        await bookable(centre)
        await box.execute(c.IssueTicket(queue="A"))  # a walk-in at the kiosk first
        wang = follower(api)

        async def listed() -> str:
            reply = await wang.location(*HERE)
            return reply if reply and "郑州金水路支行" in reply else ""

        await wait_for(listed, 20, "the branch's live picture with its coordinates")
        assert "个人业务" in (await wang.say("1") or "")
        assert (await wang.say("1") or "").startswith("1. 远程取号")
        assert "手机号码" in (await wang.say("1") or "")
        await wang.say(PHONE)
        await wang.say(last_code(centre))
        got = await wang.say(f"ZC 王小明 {ID_NUMBER}")
        assert got is not None and "取号成功" in got and "排队号A002" in got, got
        assert "前面还有1人" in got and "/m/t/" in got
        t = box.engine.state.by_num("A002")
        assert t is not None and t.channel == "remote"  # the branch's own numbering

        mine = await wang.click("MY_TICKETS")
        assert mine is not None and "A002:前面还有1人" in mine
        assert "服务结束后才能评价" in (await wang.click("RATE") or "")
        await box.execute(c.Login(1, "t1", "1234"))
        for _ in range(2):
            await box.execute(c.CallNext(1))
        await box.execute(c.Finish(1))

        async def rateable() -> str:
            reply = await wang.click("RATE")
            return reply if reply and reply.startswith("请为") else ""

        ask = await wait_for(rateable, 15, "the finished service to be rateable")
        assert "A002" in ask and "5 非常满意" in ask
        assert await wang.say("7") == "请回复评价对应的数字。"
        assert "谢谢您对我们工作的支持" in (await wang.say("5") or "")
        t = box.engine.state.by_num("A002")
        assert t is not None and t.rated == 5  # written like a keypad rating


async def test_the_wechat_notifier_sends_a_template_to_the_bound_follower(
        tmp_path: Path, clock: ManualClock) -> None:
    with ApiServer(APPID, SECRET) as wechat:
        async with plain_centre(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path, clock,
                                *wechat_sets("plain", wechat.url,
                                             "wechat.templates.near=TPL_NEAR")) as (centre, api):
            assert centre.customers is not None and centre.customers.wechat is not None
            a = centre.customers.appointments
            wang = follower(api)
            await wang.say(PHONE)
            await wang.say(last_code(centre))
            await wang.say(f"ZC 王小明 {ID_NUMBER}")
            who = await a.customer_by_phone(PHONE)
            assert who.id is not None
            account = centre.customers.wechat
            assert account.api is not None
            notifier = WeChatNotifier(account.api, a.pool, account.settings)
            near = Notice("near", who.id, BRANCH, "郑州金水路支行", "2026-11-25", "t-1", "A012",
                          "个人业务", ahead=3)
            assert await notifier.send(near)
            sent = wechat.sent[-1]
            assert sent["kind"] == "template" and sent["touser"] == "oFollowerWang01"
            assert sent["template_id"] == "TPL_NEAR"
            assert sent["data"]["keyword1"]["value"] == "A012"
            assert "前面还有3人" in sent["data"]["first"]["value"]
            called = Notice("called", who.id, BRANCH, "郑州金水路支行", "2026-11-25", "t-1",
                            "A012", "个人业务", window="3")
            wechat.expire_tokens()  # the next call is refused 42001: one new token, again
            assert await notifier.send(called)
            assert wechat.sent[-1]["kind"] == "custom"  # no template for "called"
            assert wechat.sent[-1]["text"]["content"] == \
                "【郑州金水路支行】请A012号到3号窗口办理个人业务。"
            assert wechat.token_calls == 2 and account.api.tokens_fetched == 2
            nobody = Notice("near", "c-not-bound", BRANCH, "x", "2026-11-25", "t-2", "A013",
                            "个人业务", ahead=1)
            assert not await notifier.send(nobody)
            assert len(wechat.sent) == 2
            assert await wang.unsubscribe() is None  # unfollowed: the binding is forgotten
            assert not await notifier.send(near)
            assert len(wechat.sent) == 2
            assert await a.pool.read(lambda st: st.execute(
                "SELECT count(*) FROM wechat_users").fetchone()[0]) == 0


async def test_the_api_client_refuses_a_wrong_secret_and_a_slow_answer_goes_later(
        tmp_path: Path, clock: ManualClock) -> None:
    """A wrong appsecret is WeChat's 40125, raised (never the secret in it). An answer the
    desk cannot give in ``reply_within_s`` is ``success`` now and a customer-service
    message when ready."""
    from central.wechat.api import WeChatApiError
    from central.wechat.settings import WeChatSettings

    with ApiServer(APPID, SECRET) as wechat:
        bad = WeChatApi(WeChatSettings(enabled=True, token=TOKEN, appid=APPID,
                                       appsecret="wrong-secret", api_base=wechat.url),
                        time.monotonic)
        with pytest.raises(WeChatApiError) as err:
            await bad.send_text("oX", "hi")
        assert err.value.errcode == 40125 and "wrong-secret" not in str(err.value)
        await bad.close()
        async with plain_centre(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path, clock,
                                *wechat_sets("plain", wechat.url,
                                             "wechat.reply_within_s=0.2")) as (centre, api):
            assert centre.customers is not None and centre.customers.wechat is not None
            desk = centre.customers.wechat.desk
            answer = desk.answer

            async def slow(m: wx.Message) -> str | None:
                await asyncio.sleep(0.5)  # a branch slow to answer, past reply_within_s
                return await answer(m)

            desk.answer = slow  # type: ignore[method-assign]
            wang = follower(api)
            assert await wang.say("帮助") is None  # "success": nothing now

            async def arrived() -> bool:
                return bool(wechat.sent)

            await wait_for(arrived, 10, "the late answer as a customer-service message")
            assert wechat.sent[0]["touser"] == "oFollowerWang01"
            assert "发送位置" in wechat.sent[0]["text"]["content"]


async def test_a_follower_refused_by_wechat_mode_sees_a_clear_status(
        tmp_path: Path, clock: ManualClock) -> None:
    async with plain_centre(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path, clock,
                            *wechat_sets()) as (_, api):
        with pytest.raises(WeChatRefused) as err:
            await follower(api, safe=True).say("1")  # encrypted, to a plain account
        assert err.value.status == 400
        assert (await api.post("/api/wechat", content=b"<xml/>")).status_code == 400


# --- junk at the endpoint -------------------------------------------------------------------------


class _Desk:
    """The endpoint's checks are the subject: the conversation behind them only echoes the
    message type (the real one is exercised above)."""

    def __init__(self, pool: object) -> None:
        self.pool = pool

    async def answer(self, m: wx.Message) -> str:
        return f"got {m.msg_type}"


@pytest.fixture(name="accounts")
def accounts_fixture(tmp_path: Path) -> Iterator[dict[str, WeChatAccount]]:
    from central.appointments import StorePool
    from central.store import open_store
    from central.wechat.settings import WeChatSettings

    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    open_store(url).close()  # migrated
    pool = StorePool(url, 1)
    made = {mode: WeChatAccount(WeChatSettings(enabled=True, token=TOKEN, appid=APPID,
                                               mode=mode, encoding_aes_key=AES_KEY),
                                _Desk(pool), None, time.time)  # type: ignore[arg-type]
            for mode in ("plain", "safe")}
    yield made
    asyncio.run(pool.close())


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.sampled_from(["plain", "safe"]), sign=st.booleans(),
       body=st.one_of(st.binary(max_size=400), st.text(max_size=300).map(str.encode),
                      st.text(max_size=100).map(lambda t: wx.message_xml(
                          {"ToUserName": "gh", "FromUserName": t, "MsgType": "text",
                           "Content": t}).encode())),
       encrypt=st.one_of(st.none(), st.text(max_size=100)),
       ts=st.one_of(st.just(""), st.text(max_size=14), st.integers(0, 2 ** 40).map(str)),
       nonce=st.text(max_size=70), encrypt_type=st.sampled_from([None, "aes", "x"]))
@example(mode="safe", sign=True, encrypt="x", ts="", nonce="n0", encrypt_type="aes",
         body=wx.message_xml({"ToUserName": "gh", "FromUserName": "0", "MsgType": "text",
                              "Content": "0"}).encode())  # a real message: an encrypted reply
def test_junk_at_the_endpoint_is_a_clear_refusal_never_a_crash(
        accounts: dict[str, WeChatAccount], mode: str, sign: bool, body: bytes,
        encrypt: str | None, ts: str, nonce: str, encrypt_type: str | None) -> None:
    account = accounts[mode]
    if sign:  # correctly signed (as if the token leaked): the body's checks must hold
        ts = str(int(time.time()))
        if encrypt is not None:  # junk inside a real envelope, properly encrypted
            key = wx.aes_key(AES_KEY)
            encrypt = wx.encrypt(key, APPID, body, b"r" * 16)
            body = wx.message_xml({"ToUserName": "gh", "Encrypt": encrypt}).encode()
    signature = wx.signature(TOKEN, ts, nonce)
    msg_signature = wx.signature(TOKEN, ts, nonce, encrypt or "")
    try:
        reply = asyncio.run(account.receive(body, signature, ts, nonce, encrypt_type,
                                            msg_signature))
    except Refused as r:
        assert r.code in STATUS
    else:
        if "<Encrypt>" in reply:  # safe mode answers a message it read in an envelope
            reply = wx.decrypt(wx.aes_key(AES_KEY), APPID,
                               wx.parse_xml(reply)["Encrypt"]).decode()
        assert "got " in reply or reply == "success"


def test_the_replay_cache_and_the_conversations_stay_bounded(tmp_path: Path) -> None:
    """Seen requests are kept twice ``max_age_s`` (older ones are refused as stale anyway);
    a conversation's state is gone after ``dialogue_ttl_s``, and expired ones are deleted
    as others are written: the tables hold what the last minutes brought, not the year's."""
    from central.store import open_store
    from central.wechat.dialogue import _save, _state
    from central.wechat.endpoint import _first_time

    st = open_store(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    try:
        for i in range(100):
            assert _first_time(st, f"d{i}", 1000.0 + i, 300.0)
        assert not _first_time(st, "d99", 1100.0, 300.0)  # a replay within the window
        assert _first_time(st, "late", 1000.0 + 650, 300.0)  # 600 s on: the first 50 go
        assert st.execute("SELECT count(*) FROM wechat_nonces").fetchone()[0] == 51
        for i in range(50):
            _save(st, f"o{i}", {"step": "branch", "branches": ["1001010001"]}, 0.0 + i, 900.0)
        assert _state(st, "o0", 899.0) == {"step": "branch", "branches": ["1001010001"]}
        assert _state(st, "o0", 901.0) == {}  # expired: as if never said
        _save(st, "new", {"step": "phone"}, 925.0, 900.0)
        # the 25 that ran out before 925 s are gone; 25 still live + the new one
        assert st.execute("SELECT count(*) FROM wechat_dialogues").fetchone()[0] == 26
    finally:
        st.close()
