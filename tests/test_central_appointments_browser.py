"""预约管理 (H2) in a real headless Chromium against a real centre (``python -m central`` on
the demo organisation, its customer channels on Wed 2026-11-25 10:00, SMS to an outbox).

Customers book through the public API at two sub-branches of 郑州 (1001010001 金水路 and
1001010002 花园路); the manager of 金水路 searches the bookings on the back office's page:
only 金水路's are there, by day and by state, counted per state, numbers masked; the CSV
link downloads the same rows. A screenshot lands in docs/screenshots/centre-appointments.png.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central.broker import LocalBroker
from central.store import open_store

from .centre_browser_support import browser, expect, logged_in, save
from .customer_support import an_id
from .office_support import B1, B2, CentreProcess
from .uplink_support import broker_fixture

__all__ = ["broker_fixture", "browser"]

pytestmark = [pytest.mark.browser, pytest.mark.network]
MANAGER, MANAGER_PW = "jinshui", "jinshui-2026"
BOOKINGS = [  # name, phone, branch, business, day, slot
    ("张伟", "13800000001", B1, "A", "2026-11-25", 4),
    ("李娜", "13800000002", B1, "B", "2026-11-25", 6),
    ("王芳", "13800000003", B1, "A", "2026-11-26", 3),
    ("赵强", "13800000004", B2, "A", "2026-11-25", 4),
]


@pytest.fixture
def centre(tmp_path: Path, broker: LocalBroker) -> Iterator[CentreProcess]:
    c = CentreProcess(tmp_path / "centre", broker, f"sms.outbox_file={tmp_path / 'sms.jsonl'}",
                      "clock.start=2026-11-25T10:00:00+08:00").start()
    try:
        yield c
    finally:
        c.stop()


def offer_bookings(centre: CentreProcess) -> None:
    """What both boxes would answer to the centre's first push: their catalogues (the
    example branch's businesses and hours), stored as the push's answer stores them."""
    from controller.appointments import catalogue
    from tests.conftest import WEDNESDAY_10AM, example_config

    store = open_store(f"sqlite:///{centre.data_dir / 'centre.sqlite3'}")
    try:
        for code, name in ((B1, "郑州金水路支行"), (B2, "郑州花园路支行")):
            body = catalogue(example_config(), WEDNESDAY_10AM.timestamp())
            body["branch"]["name"] = name
            store.execute("INSERT INTO branch_catalogue (branch, body, updated_at) "
                          "VALUES (?, ?, 0)", (code, json.dumps(body)))
    finally:
        store.close()


def book(centre: CentreProcess, outbox: Path, seq: int, name: str, phone: str, branch: str,
         queue: str, day: str, slot: int) -> dict[str, Any]:
    """Sign in by SMS code, register and book, as the customer pages do."""
    status, _ = centre.call("POST", "/api/public/login/code", {"phone": phone})
    assert status == 200
    code = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    status, session = centre.call("POST", "/api/public/login", {
        "phone": phone, "code": code.split("验证码是")[1][:6]})
    assert status == 200, session
    token = session["token"]
    status, answer = centre.call("POST", "/api/public/register",
                                 {"name": name, "id_number": an_id(seq)}, token)
    assert status == 201, answer
    status, booking = centre.call("POST", "/api/public/bookings", {
        "branch": branch, "queue": queue, "day": day, "slot": slot}, token)
    assert status == 201, booking
    return {**booking, "token": token}


def test_a_sub_branch_manager_searches_its_bookings_and_downloads_them(
        browser: Any, centre: CentreProcess, tmp_path: Path) -> None:
    offer_bookings(centre)
    made = [book(centre, tmp_path / "sms.jsonl", i + 1, *b) for i, b in enumerate(BOOKINGS)]
    status, _ = centre.call("POST", f"/api/public/bookings/{made[1]['id']}/cancel", {},
                            made[1]["token"])  # 李娜 cancels
    assert status == 200
    admin = centre.token()
    status, _ = centre.call("POST", "/api/users", {
        "id": MANAGER, "name": "金水路支行经理", "role": "manager", "scope": B1,
        "password": MANAGER_PW}, admin)
    assert status == 201

    page = logged_in(browser, centre, MANAGER, MANAGER_PW)
    page.click("header nav >> text=预约管理")
    page.wait_for_url("**/office/appointments")
    exp = expect()
    rows = page.locator("#rows tbody tr")
    exp(rows).to_have_count(2)  # today (11-25) at 金水路: not 花园路's 赵强, not tomorrow's
    exp(page.locator("#rows")).to_contain_text("张伟")
    exp(page.locator("#rows")).to_contain_text("138****0001")
    exp(page.locator("#rows")).not_to_contain_text("赵强")
    assert "13800000001" not in page.content()
    exp(page.locator("#counts")).to_have_text(
        "共 Total 2已预约 Booked 1已取号 Redeemed 0已过期 Missed 0已取消 Cancelled 1")
    assert [o.get_attribute("value") for o in page.locator("#org option").all()] == [B1]

    page.fill("#day-to", "2026-11-26")  # two days, only what is still booked
    page.select_option("#state", "booked")
    page.click("#filters button[type=submit]")
    exp(rows).to_have_count(2)
    assert [r.get_attribute("data-state") for r in rows.all()] == ["booked", "booked"]
    exp(page.locator("#rows")).to_contain_text("王芳")
    exp(page.locator("#rows")).not_to_contain_text("李娜")
    exp(page.locator('#counts [data-state="total"]')).to_have_text("共 Total 2")
    exp(page.locator('#counts [data-state="booked"]')).to_have_text("已预约 Booked 2")
    exp(page.locator('#counts [data-state="cancelled"]')).to_have_text("已取消 Cancelled 0")
    save(page, "centre-appointments")
    shown = [[c.inner_text() for c in r.locator("td").all()] for r in rows.all()]

    with page.expect_download() as download:
        page.click("#csv")
    path = tmp_path / "appointments.csv"
    download.value.save_as(path)
    lines = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert [(x["day"], x["name"], x["phone"], x["branch"], x["state"]) for x in lines] == [
        ("2026-11-25", "张伟", "138****0001", B1, "booked"),
        ("2026-11-26", "王芳", "138****0003", B1, "booked")]
    assert [[x["day"], x["slot_label"], x["name"], x["phone"], x["id_number"]]
            for x in lines] == [[r[0], r[1], r[4], r[5], r[6]] for r in shown]

    page.select_option("#queue", "B")  # 李娜's business, but hers is cancelled
    page.click("#filters button[type=submit]")
    exp(page.locator("#note")).to_contain_text("没有符合条件的预约")
    exp(rows).to_have_count(0)

    status, refused = centre.call("GET", f"/api/staff/appointments?branch={B2}",
                                  token=centre.token(MANAGER, MANAGER_PW))
    assert status == 403, refused  # 花园路's bookings are not the manager's to see
    response = page.goto(centre.url + "/office/appointments?org=100101")
    assert response is not None and response.status == 403


def test_a_customer_confirms_before_a_booking_is_cancelled(
        browser: Any, centre: CentreProcess, tmp_path: Path) -> None:
    """取消预约 cannot be undone (the code stops working): the page asks first (issue 17)."""
    offer_bookings(centre)
    made = book(centre, tmp_path / "sms.jsonl", 1, *BOOKINGS[0])
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    page.goto(centre.url + "/m")
    page.evaluate("t => localStorage.setItem('paidui_customer_token', t)", made["token"])
    page.goto(centre.url + f"/m/me/{made['id']}")
    exp = expect()
    page.click("#cancel")
    exp(page.locator("#cancel-confirm")).to_contain_text("确定取消这个预约吗")
    page.click("#cancel-no")  # changed their mind: still booked
    exp(page.locator("#cancel-confirm")).to_have_count(0)
    status, booking = centre.call("GET", f"/api/public/bookings/{made['id']}", None,
                                  made["token"])
    assert status == 200 and booking["state"] == "booked"
    page.click("#cancel")
    page.click("#cancel-yes")
    exp(page.locator("#cancel")).to_have_count(0)  # redrawn as cancelled: nothing to cancel
    status, booking = centre.call("GET", f"/api/public/bookings/{made['id']}", None,
                                  made["token"])
    assert status == 200 and booking["state"] == "cancelled"
    context.close()


def test_a_booked_customer_fills_the_form_on_the_booking_page_before_the_number(
        browser: Any, centre: CentreProcess, tmp_path: Path) -> None:
    """预填单 "before taking a ticket" (I2): the booking's page offers it while booked; the
    centre keeps it masked until the booking is redeemed (central/booking_forms.py)."""
    offer_bookings(centre)
    made = book(centre, tmp_path / "sms.jsonl", 1, *BOOKINGS[0])
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    page.goto(centre.url + "/m")
    page.evaluate("t => localStorage.setItem('paidui_customer_token', t)", made["token"])
    page.goto(centre.url + f"/m/me/{made['id']}")
    exp = expect()
    page.get_by_text("填写预填单").click()
    page.get_by_role("button", name="转账预填单").click()
    exp(page.locator("#form h2")).to_have_text("转账预填单")
    page.locator("#form [name=account]").fill("6225880123451237")
    page.locator("#form [name=payee]").fill("李四")
    page.locator("#form [name=payee_account]").fill("6217000012345678")
    page.locator("#form [name=amount]").fill("800")
    page.locator("#form button[type=submit]").click()
    exp(page.locator(".msg.ok")).to_contain_text("取号后将自动发送至网点")
    exp(page.locator("#form")).to_contain_text("付款账号:622588******1237")  # masked back
    page.goto(centre.url + f"/m/me/{made['id']}")
    exp(page.locator("#form-state")).to_contain_text("转账预填单:已保存,取号后发送至网点")
    exp(page.get_by_text("修改预填单")).to_be_visible()
    context.close()
