""""Your turn is near" (H6) and rating by SMS (C3) over a real broker, a real centre (SQLite
and PostgreSQL), a real box and the centre's SMS gateway.

Wed 2026-11-25 10:00 at the example branch; business A (个人业务) takes 4 minutes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from central.broker import LocalBroker
from central.notify import Notice
from central.notify_sms import SmsNotifier
from common.clock import ManualClock
from controller.box import Box
from controller.engine import commands as c
from tests.customer_support import (
    PHONE,
    bearer,
    bookable,
    customer_centre,
    http,
    linked_box,
    pushed,
    sign_in,
    texts,
)
from tests.nearturn_support import FAST, kiosk, notices, rows, watcher
from tests.sms_support import Gateway, gateway  # noqa: F401
from tests.sms_support import http as http_sms
from tests.uplink_support import (  # noqa: F401
    BRANCH,
    broker_fixture,
    pg_url_fixture,
    store_url_fixture,
    wait_for,
)

TODAY = "2026-11-25"


async def remote_ticket(api: httpx.AsyncClient, token: str) -> dict[str, Any]:
    r = await api.post("/api/public/tickets", headers=bearer(token),
                       json={"branch": BRANCH, "queue": "A"})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_remote_customer_is_told_once_when_near_and_when_called_then_rates_by_sms(
        box: Box, clock: ManualClock, broker: LocalBroker, store_url: str,
        tmp_path: Path) -> None:
    async with customer_centre(broker, store_url, clock, tmp_path, *FAST) as centre, \
            linked_box(box, broker), http(centre) as api:
        await bookable(centre)
        token = await sign_in(api, centre)
        for _ in range(4):
            await box.execute(c.IssueTicket(queue="A"))  # four walk-ins at the kiosk
        got = await remote_ticket(api, token)
        assert got["number"] == "A005" and got["ahead"] == 4
        await box.execute(c.Login(1, "t1", "1234"))
        await box.execute(c.Login(2, "t2", "1234"))
        await box.execute(c.CallNext(1))  # A001: three ahead, more than notify_ahead = 2
        followed = watcher(centre)._followed

        async def ahead(n: int) -> bool:
            f = followed.get((BRANCH, "20261125-A005"))
            return f is not None and f.ahead == n

        await wait_for(lambda: ahead(3), 10, "the watcher to see three ahead")
        assert notices(centre) == []
        await box.execute(c.CallNext(2))  # A002: two ahead

        async def near() -> list[str]:
            return notices(centre)

        assert await wait_for(near, 10, "the near message") == [
            "【排队提醒】您的排队号A005前面还有2人,请做好准备(郑州金水路支行 个人业务)。"]
        await box.execute(c.CallNext(1))  # A003: one ahead: not told again
        await box.execute(c.CallNext(2))  # A004: none ahead

        async def followed_on_the_phone() -> bool:  # a track answer after the calls …
            v = (await api.get(f"/api/public/tickets/{got['token']}")).json()
            return bool(v.get("ahead") == 0)

        await wait_for(followed_on_the_phone, 10, "the phone to see none ahead")
        await wait_for(lambda: (BRANCH, "20261125-A004") in watcher(centre)._calls, 10,
                       "the watcher to read the calls")  # … and the events, seen
        assert len(notices(centre)) == 1
        await box.execute(c.CallNext(1))  # A005 to window 1

        async def called() -> list[str]:
            return notices(centre)[1:]

        (text,) = await wait_for(called, 10, "the called message")
        assert text.startswith("【排队提醒】请A005号到1号窗口办理(郑州金水路支行 个人业务)。")
        assert "回复PJ 5(1-5分)评价" in text
        assert PHONE not in text
        assert all(to == "138****5678" for to, _ in texts(centre))

        assert centre.customers is not None
        desk = centre.customers.sms
        early = await desk.handle(PHONE, "PJ 4")
        assert "评价" in early[0] and box.engine.state.by_num("A005").rated is None  # type: ignore[union-attr]
        await box.execute(c.Finish(1))
        assert await desk.handle(PHONE, "pj a005 4") == [
            "已收到您对A005号服务的评价:满意。谢谢您对我们工作的支持,再见"]
        t = box.engine.state.by_num("A005")
        assert t is not None and t.rated == 4
        again = await desk.handle(PHONE, "PJ 1")
        assert "已评价" in again[0] and t.rated == 4  # one rating per service, as the keypad
        other = await desk.handle(PHONE, "PJ A001 1")  # someone else's ticket: not theirs
        assert other == ["今天没有A001号的叫号记录,无法评价。"]
        assert box.engine.state.by_num("A001").rated is None  # type: ignore[union-attr]

        async def settled() -> list[dict[str, Any]]:  # the SMS goes out before "sent"
            got = await rows(centre)
            return got if all(r["state"] != "sending" for r in got) else []

        got_rows = await wait_for(settled, 10, "every notice marked as sent")
        assert [(r["kind"], r["state"], r["channel"], r["number"]) for r in got_rows] == [
            ("called", "sent", "sms", "A005"), ("near", "sent", "sms", "A005")]
        metrics = {tuple(sorted(labels.items())): v for labels, v in
                   watcher(centre).metrics()[0].samples}
        assert metrics[(("channel", "sms"), ("kind", "near"), ("outcome", "sent"))] == 1


async def test_the_watcher_asks_a_busy_branch_no_more_often_than_the_phones_may(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    """Ten calls in quick succession: the watcher asks the branch where the ticket stands at
    most once per ``track_ttl_s`` (1 s here), not once per event."""
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path, *FAST,
                               "customers.track_ttl_s=1") as centre, \
            linked_box(box, broker), http(centre) as api:
        await bookable(centre)
        token = await sign_in(api, centre)
        for _ in range(12):
            await box.execute(c.IssueTicket(queue="A"))
        assert (await remote_ticket(api, token))["ahead"] == 12
        await box.execute(c.Login(1, "t1", "1234"))

        async def asked() -> int:
            return int(await watcher(centre).pool.read(lambda st: st.execute(
                "SELECT count(*) FROM replies WHERE cmd = 'track'").fetchone()[0]))

        before = await asked()  # the phone's own look at its ticket may have asked once
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(10):
            await box.execute(c.CallNext(1))  # A001 … A010: two ahead at the end
            await asyncio.sleep(0.1)  # a busy branch: a call every tenth of a second

        async def near() -> list[str]:
            return notices(centre)

        (text,) = await wait_for(near, 15, "the near message")
        assert "前面还有2人" in text
        elapsed = loop.time() - started
        since = await asked() - before
        assert 1 <= since <= elapsed / 1.0 + 1, (since, elapsed)


async def test_a_centre_restart_sends_nothing_again(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    key = (BRANCH, TODAY, "20261125-A001")
    async with linked_box(box, broker):
        async with customer_centre(broker, store_url, clock, tmp_path, *FAST) as centre, \
                http(centre) as api:
            await bookable(centre)
            token = await sign_in(api, centre)
            got = await remote_ticket(api, token)
            assert got["ahead"] == 0  # near at once: nobody ahead

            async def near() -> list[str]:
                return notices(centre)

            assert await wait_for(near, 10, "the near message") == [
                "【排队提醒】您的排队号A001即将叫号,请做好准备(郑州金水路支行 个人业务)。"]
        async with customer_centre(broker, store_url, clock, tmp_path, *FAST) as again:

            async def looked() -> bool:  # today's tickets read again, the claim found
                return (*key, "near") in watcher(again)._settled

            await wait_for(looked, 10, "the restarted watcher to find the near notice")
            assert notices(again) == [] and not watcher(again).counts
            await box.execute(c.Login(1, "t1", "1234"))
            await box.execute(c.CallNext(1))

            async def called() -> list[str]:
                return notices(again)

            (text,) = await wait_for(called, 10, "the called message, from the new process")
            assert "请A001号到1号窗口办理" in text
        async with customer_centre(broker, store_url, clock, tmp_path, *FAST) as third:

            async def found() -> bool:  # called: no "near" to consider any more
                return (*key, "called") in watcher(third)._settled

            await wait_for(found, 10, "the third process to find the called notice")
            assert notices(third) == [] and len(await rows(third)) == 2


async def test_a_customer_no_channel_reaches_gets_nothing_and_is_counted(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path, *FAST,
                               "customers.notify_sms=false") as centre, \
            linked_box(box, broker), http(centre) as api:
        await bookable(centre)
        token = await sign_in(api, centre)
        await remote_ticket(api, token)
        counts = watcher(centre).counts

        async def counted() -> bool:
            return counts["near", "unreachable", ""] == 1

        await wait_for(counted, 10, "the unreachable customer to be counted")
        assert notices(centre) == []
        (row,) = await rows(centre)
        assert row["state"] == "unreachable" and row["channel"] is None


async def test_a_booked_customer_is_told_when_the_redeemed_ticket_is_near_and_called(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path, *FAST) as centre, \
            linked_box(box, broker), http(centre) as api, \
            kiosk(box) as desk:
        await bookable(centre)
        token = await sign_in(api, centre)
        r = await api.post("/api/public/bookings", headers=bearer(token),
                           json={"branch": BRANCH, "queue": "A", "day": TODAY, "slot": 3})
        assert r.status_code == 201, r.text
        await pushed(centre, TODAY)
        walk_in = await box.execute(c.IssueTicket(queue="A"))
        r = await desk.post("/api/appointments/redeem", json={"code": r.json()["code"]})
        assert r.status_code == 201, r.text
        number = r.json()["number"]

        async def near() -> list[str]:
            return notices(centre)

        (text,) = await wait_for(near, 10, "the near message")
        assert text == (f"【排队提醒】您的排队号{number}即将叫号,请做好准备"
                        "(郑州金水路支行 个人业务)。")  # served before the earlier walk-in
        await box.execute(c.Login(3, "t3", "1234"))
        called_now = await box.execute(c.CallNext(3))
        assert called_now[-1]["number"] == number != walk_in[-1]["number"]

        async def called() -> list[str]:
            return notices(centre)[1:]

        (text,) = await wait_for(called, 10, "the called message")
        assert f"请{number}号到3号窗口办理" in text


async def test_channels_in_order_and_a_failing_gateway_tried_a_bounded_number_of_times(
        box: Box, clock: ManualClock, broker: LocalBroker, tmp_path: Path,
        gateway: Gateway) -> None:  # noqa: F811
    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with customer_centre(broker, store_url, clock, tmp_path, *FAST,
                               "customers.notify_tries=2", "customers.notify_backoff_s=0.05",
                               ) as centre, linked_box(box, broker), http(centre) as api:
        await bookable(centre)
        token = await sign_in(api, centre)
        assert centre.customers is not None
        a = centre.customers.appointments
        a.sms = http_sms(gateway.url)  # from now on, the operator's gateway over HTTP
        unbound = NotBound()
        watcher(centre).add_notifier(unbound)  # e.g. WeChat: tried first, not bound
        gateway.status = 500
        await remote_ticket(api, token)  # nobody ahead: near at once
        counts = watcher(centre).counts

        async def failed() -> bool:
            return counts["near", "failed", ""] == 1

        await wait_for(failed, 10, "the near notice to fail")
        assert len(gateway.requests) == 2 and unbound.asked == ["near"]
        gateway.status = 200
        await box.execute(c.Login(1, "t1", "1234"))
        await box.execute(c.CallNext(1))

        async def sent() -> bool:
            return counts["called", "sent", "sms"] == 1

        await wait_for(sent, 10, "the called notice")
        body = json.loads(gateway.requests[-1]["body"])
        assert body["to"] == PHONE and "请A001号到1号窗口办理" in body["text"]
        assert unbound.asked == ["near", "called"]
        states = {r["kind"]: (r["state"], r["tries"]) for r in await rows(centre)}
        assert states == {"near": ("failed", 3), "called": ("sent", 2)}  # 1 unbound + tries


class NotBound:
    """A channel this customer has no binding on (as WeChat for one who never followed the
    official account): it answers False, so the next channel is tried."""

    name = "wechat"

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def send(self, notice: Notice) -> bool:
        self.asked.append(notice.kind)
        return False


async def test_notices_are_kept_a_bounded_number_of_days(
        clock: ManualClock, store_url: str, tmp_path: Path) -> None:
    from tests.customer_support import plain_centre

    async with plain_centre(store_url, tmp_path, clock, "customers.notify_keep_days=7") as (
            centre, _):
        near = watcher(centre)

        def fill(st: Any) -> None:
            for day in ("2026-11-10", "2026-11-17", "2026-11-18", "2026-11-25"):
                for kind in ("near", "called"):
                    st.execute("INSERT INTO notices_sent (branch, day, ticket, kind, customer, "
                               "number, state, tries, at) VALUES (?, ?, ?, ?, 'c1', 'A001', "
                               "'sent', 1, 0)", (BRANCH, day, f"{day}-A001", kind))

        await near.pool.run(fill)
        assert await near.prune() == 4  # 11-10 and 11-17: more than 7 days before 11-25
        left = await near.pool.read(lambda st: st.execute(
            "SELECT DISTINCT day FROM notices_sent ORDER BY day").fetchall())
        assert [d for (d,) in left] == ["2026-11-18", "2026-11-25"]
        await near.close()


async def test_sms_text_and_an_unknown_customer(clock: ManualClock, tmp_path: Path) -> None:
    from tests.customer_support import plain_centre

    store_url = f"sqlite:///{tmp_path / 'centre.sqlite3'}"
    async with plain_centre(store_url, tmp_path, clock) as (centre, _):
        assert centre.customers is not None
        sms = SmsNotifier(centre.customers.appointments)
        notice = Notice("near", "no-such-customer", BRANCH, "郑州金水路支行", TODAY,
                        "20261125-A009", "A009", "个人业务", ahead=3)
        assert await sms.send(notice) is False  # no registration: not reachable by SMS
        assert notices(centre) == []
        await watcher(centre).close()
