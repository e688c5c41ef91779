"""The branch's screens in a real headless Chromium against a real box (a subprocess).

Each test starts ``python -m controller`` on the example branch with its clock at
Wed 2026-11-25 10:00 and drives the pages as a customer or a teller would. Screenshots
of every page at the kiosk resolutions land in docs/screenshots/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central.broker import LocalBroker
from protocols import uplink as up
from protocols.appointment import qr_payload
from sim.card_swipes import CARDS, swipe_into
from tests.appointments_support import BRANCH, ID_NUMBER, TODAY, booking, day_message
from tests.uplink_support import broker_fixture  # noqa: F401 (the fixture "broker")

from .browser import (  # noqa: F401 (browser_fixture: the fixture "browser")
    LANDSCAPE,
    PORTRAIT,
    SCREENSHOTS,
    BoxProcess,
    PrinterThread,
    browser_fixture,
    expect,
    log_in_caller,
    page_at,
    running_box,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def box(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[BoxProcess]:
    marker = request.node.get_closest_marker("box")
    overrides = marker.args if marker else ()
    with running_box(tmp_path / "data", "web.kiosk.refusal_seconds=3",
                     "web.ping_seconds=2", *overrides) as b:
        yield b


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # let the last frame paint (fonts, transitions)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


# --- kiosk -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size,tag", [(PORTRAIT, "portrait"), (LANDSCAPE, "landscape")])
def test_tapping_a_business_shows_the_number_and_how_many_are_ahead(
    browser: Any, box: BoxProcess, size: dict[str, int], tag: str
) -> None:
    for _ in range(2):
        assert box.call("POST", "/api/tickets", {"queue": "A"})[0] == 201
    page = page_at(browser, box, "/kiosk", size)
    expect()(page.locator("#start")).to_be_visible()
    shot(page, f"kiosk-start-{tag}")
    page.locator(".k-btn[data-target=A]").click()
    expect()(page.locator("#r-number")).to_have_text("A003")
    expect()(page.locator("#r-ahead")).to_have_text("您前面还有 2 位客户在等待")
    # 2 ahead × 4 min (business A's configured time: nobody served yet), no window open
    expect()(page.locator("#r-wait")).to_have_text("预计等待约8分钟")
    expect()(page.locator("#r-queue")).to_have_text("个人业务")
    shot(page, f"kiosk-ticket-{tag}")
    status, ticket = box.call("GET", "/api/tickets/A003")
    assert status == 200 and ticket["state"] == "waiting" and ticket["ahead"] == 2
    page.context.close()


def test_every_screen_works_under_its_content_security_policy(
    browser: Any, box: BoxProcess
) -> None:
    context = browser.new_context(viewport=LANDSCAPE, locale="zh-CN")
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    for path, ready in (("/kiosk", "#grid .k-btn"), ("/hall", "#clock"), ("/caller", "#login"),
                        ("/lobby", "#login"), ("/", ".index")):
        page.goto(box.url + path)
        expect()(page.locator(ready).first).to_be_visible()
        if path == "/kiosk":  # the branch's colours arrive through /theme.css
            colour = page.locator(".k-btn[data-target=T]").evaluate(
                "b => getComputedStyle(b).getPropertyValue('--btn').trim()")
            assert colour == "#a23b3b"
            expect()(page.locator("#clock")).not_to_be_empty()  # kiosk.js ran
    assert refused == []
    context.close()


def test_a_paused_business_shows_the_refusal_then_returns_to_start(
    browser: Any, box: BoxProcess
) -> None:
    lobby = box.lobby()
    assert box.call("POST", "/api/queues/B/pause", {"reason": "系统升级"}, lobby)[0] == 200
    page = page_at(browser, box, "/kiosk", PORTRAIT)
    page.locator(".k-btn[data-target=B]").click()
    text = page.locator("#m-text")
    expect()(text).to_have_text(
        "友情提示:对不起,你选择的业务因系统升级原因暂时不能办理,如有疑问请咨询大堂经理。")
    shot(page, "kiosk-refusal-portrait")
    expect()(page.locator("#start")).to_be_visible(timeout=6000)  # by itself, after 3 s
    expect()(page.locator("#message")).to_be_hidden()
    page.context.close()


def test_the_english_toggle_and_the_two_level_menu(browser: Any, box: BoxProcess) -> None:
    page = page_at(browser, box, "/kiosk", LANDSCAPE)
    page.locator("#lang").click()
    expect()(page.locator(".k-btn[data-target=A] .k-label")).to_have_text("Personal banking")
    page.locator(".k-btn[data-target=more]").click()
    expect()(page.locator("#menu-title")).to_have_text("More services")
    shot(page, "kiosk-menu-landscape-en")
    page.locator("#menu-grid .k-btn[data-target=F]").click()
    expect()(page.locator("#r-number")).to_have_text("F001")
    expect()(page.locator("#r-ahead")).to_have_text("0 customer(s) ahead of you")
    expect()(page.locator("#r-wait")).to_have_text("No wait: listen for your number")
    page.locator("#result .k-back").click()
    expect()(page.locator("#lang")).to_have_text("English")  # back to Chinese first
    page.context.close()


def test_appointment_entry_says_clearly_when_redemption_is_not_there_yet(
    browser: Any, box: BoxProcess
) -> None:
    page = page_at(browser, box, "/kiosk", PORTRAIT)
    page.locator("#appointment-entry").click()
    for digit in "123456":
        page.locator("#keypad button", has_text=digit).first.click()
    expect()(page.locator("#e-display")).to_have_text("123456")
    shot(page, "kiosk-appointment-portrait")
    page.locator("#keypad [data-key=ok]").click()
    status, _ = box.call("POST", "/api/appointments/redeem", {"code": "123456"})
    if status in (404, 405):
        expect()(page.locator("#m-text")).to_have_text(
            "预约兑号暂未开通,请选择业务取号或咨询大堂经理。")
    else:  # the appointment issue has landed: its refusal words are shown instead
        expect()(page.locator("#message")).to_be_visible()
    page.context.close()


def scan(page: Any, text: str, delay: float = 2) -> None:
    """What a QR scanner or keyboard-wedge card reader does: types fast, then Enter."""
    page.keyboard.type(text, delay=delay)
    page.keyboard.press("Enter")


def test_a_card_reader_typing_takes_a_vip_ticket_and_a_person_typing_does_not(
    browser: Any, box: BoxProcess
) -> None:
    page = page_at(browser, box, "/kiosk", PORTRAIT)
    expect()(page.locator("#start")).to_be_visible()
    qr = "https://q.example.cn/yy/1001010001/20261125/312345"
    scan(page, "6225880137001237", delay=150)  # a person at a keyboard: nothing happens
    scan(page, qr, delay=150)
    scan(page, qr)  # a scanner: this box redeems no bookings (no uplink), and says so
    expect()(page.locator("#m-text")).to_have_text("预约兑号暂未开通,请选择业务取号或咨询大堂经理。")
    page.locator("#message .k-back").click()
    scan(page, "6225880137001237")  # the reader: no booking on this box, so a ticket by card
    expect()(page.locator("#r-number")).to_have_text("V001")  # the first: slow typing took none
    page.context.close()


# Today's bookings, as the centre sends them: one for now by its QR, one on an ID card.
BOOKED = [booking("bk-qr", "312345"),  # 10:00-11:00
          booking("bk-id", "354321", queue="V", id_number=ID_NUMBER)]


@pytest.fixture
def booked_box(tmp_path: Path, broker: LocalBroker) -> Iterator[BoxProcess]:
    """A box with its uplink to a private broker, given today's bookings as the centre
    sends them (``cmd/appointments``): its appointments component runs."""
    from paho.mqtt import publish

    password = broker.add_user(BRANCH)
    message = json.dumps(day_message(BOOKED))
    with running_box(tmp_path / "data", f"uplink.broker={broker.url}",
                     f"uplink.password={password}", "web.kiosk.refusal_seconds=3") as box:
        for _ in range(100):  # sent again until the box keeps it (it may still be connecting)
            publish.single(up.topic(BRANCH, "cmd", "appointments"), message, qos=1,
                           hostname="127.0.0.1", port=broker.port,
                           auth={"username": "centre", "password": "centre-pw"})
            if box.call("GET", "/api/appointments/summary")[1].get("booked") == len(BOOKED):
                break
            time.sleep(0.2)  # polling another process
        else:
            raise TimeoutError("the box did not take the bookings")
        yield box


def test_a_scanned_qr_or_card_redeems_its_booking_and_other_cards_take_a_ticket(
    browser: Any, booked_box: BoxProcess
) -> None:
    box = booked_box
    page = page_at(browser, box, "/kiosk", PORTRAIT)
    page.locator(".k-btn[data-target=B]").focus()  # the scanner's Enter must not press it
    scan(page, qr_payload("http://127.0.0.1:8090", BRANCH, TODAY, "312345"))
    expect()(page.locator("#r-number")).to_have_text("A001")
    expect()(page.locator("#r-queue")).to_have_text("个人业务")
    scan(page, qr_payload("http://127.0.0.1:8090", BRANCH, TODAY, "312345"))  # once only
    expect()(page.locator("#m-text")).to_contain_text("已兑号")
    page.locator("#message .k-back").click()
    scan(page, "6225880137001237")  # a VIP card holding no booking: an ordinary ticket
    expect()(page.locator("#r-number")).to_have_text("V001")
    scan(page, ID_NUMBER)  # an ID card read by a keyboard-style reader: its booking
    expect()(page.locator("#r-number")).to_have_text("V002")
    summary = box.call("GET", "/api/appointments/summary")[1]
    assert summary["redeemed"] == 2, summary
    assert box.call("GET", "/api/tickets/B001")[0] == 404
    page.context.close()


def kiosk_connected(box: BoxProcess, timeout: float = 10.0) -> None:
    """Wait until a kiosk page holds its live link to the box and the box's simulated card
    reader is open (what a swipe needs to reach the screen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        devices = {d["name"]: d for d in box.call("GET", "/api/health")[1]["devices"]}
        screens = devices.get("screens", {}).get("detail", "")
        if "kiosk 1" in screens and (box.data_dir / CARDS / "sim").exists():
            return
        time.sleep(0.05)  # polling another process
    raise TimeoutError("the kiosk page did not connect")


def test_a_swipe_on_the_box_card_reader_shows_on_the_kiosk_page(
    browser: Any, box: BoxProcess
) -> None:
    page = page_at(browser, box, "/kiosk", PORTRAIT)
    kiosk_connected(box)
    swipe_into(box.data_dir, ";6225880137001237=2812101?")  # VIP 陈先生's bank card
    expect()(page.locator("#r-number")).to_have_text("V001")
    expect()(page.locator("#r-queue")).to_have_text("VIP业务")
    expect()(page.locator("#r-ahead")).to_have_text("您前面还有 0 位客户在等待")
    expect()(page.locator("#result")).not_to_contain_text("陈")
    shot(page, "kiosk-card-reader-ticket-portrait")
    page.locator("#lang").click()  # the customer reads English: the refusal comes in English
    swipe_into(box.data_dir, ";6225880137001238=2812101?")  # one digit misread
    expect()(page.locator("#m-text")).to_have_text(
        "The card number failed its check. Please swipe again.")
    expect()(page.locator("#message")).to_have_class("screen refusal")
    expect()(page.locator("#start")).to_be_visible(timeout=6000)  # by itself, after 3 s
    expect()(page.locator("#lang")).to_have_text("English")  # and back to Chinese
    swipe_into(box.data_dir, ";6225880137001238=2812101?")
    expect()(page.locator("#message")).to_be_visible()
    expect()(page.locator("#m-text")).to_have_text("卡号校验错误,请重新刷卡。", timeout=1500)
    _, tickets = box.call("GET", "/api/tickets")
    assert [t["number"] for t in tickets["tickets"]] == ["V001"]  # the misreads issued nothing
    page.context.close()


def test_a_failed_print_shows_the_number_large_with_a_reprint_button(
    browser: Any, tmp_path: Path
) -> None:
    printer = PrinterThread()  # the virtual ESC/POS printer, reached over TCP by the box
    try:
        with running_box(tmp_path / "data", *printer.overrides()) as box:
            printer.set_paper("out")
            page = page_at(browser, box, "/kiosk", PORTRAIT)
            page.locator(".k-btn[data-target=A]").click()
            expect()(page.locator("#r-number")).to_have_text("A001")
            expect()(page.locator("#r-fail")).to_contain_text("取号成功。打印机缺纸,号票未能打印。")
            expect()(page.locator("#reprint")).to_be_visible()
            shot(page, "kiosk-print-failed-portrait")
            printer.set_paper("ok")  # the lobby manager refills the paper
            page.locator("#reprint").click()
            expect()(page.locator("#r-fail")).to_have_text("已重新打印,请取走号票。")
            expect()(page.locator("#reprint")).to_be_hidden()
            _, ticket = box.call("GET", "/api/tickets/A001")
            assert ticket["print_error"] == "paper_out"  # journaled (A4)
            page.context.close()
    finally:
        printer.close()
    printed = [t for t in printer.sim.tickets if any("A001" in line for line in t.lines)]
    assert len(printed) == 1  # the reprint, on paper


def test_a_swipe_with_the_paper_out_shows_the_reason_and_the_page_reprints_it(
    browser: Any, tmp_path: Path
) -> None:
    printer = PrinterThread()
    try:
        with running_box(tmp_path / "data", *printer.overrides()) as box:
            printer.set_paper("out")
            page = page_at(browser, box, "/kiosk", PORTRAIT)
            kiosk_connected(box)
            swipe_into(box.data_dir, "410105198001012311")  # an ID card on the box's reader
            expect()(page.locator("#r-number")).to_have_text("A001")
            expect()(page.locator("#r-fail")).to_contain_text("取号成功。打印机缺纸,号票未能打印。")
            expect()(page.locator("#reprint")).to_be_visible()
            printer.set_paper("ok")
            page.locator("#reprint").click()  # with the token the push carried
            expect()(page.locator("#r-fail")).to_have_text("已重新打印,请取走号票。")
            page.context.close()
    finally:
        printer.close()
    printed = [t for t in printer.sim.tickets if any("A001" in line for line in t.lines)]
    assert len(printed) == 1  # the reprint, on paper


def test_a_signed_out_kiosk_says_so(browser: Any, box: BoxProcess) -> None:
    page = page_at(browser, box, "/kiosk", PORTRAIT)
    expect()(page.locator("#closed")).to_be_hidden()
    assert box.call("POST", "/api/kiosk/sign-out", {}, box.lobby())[0] == 200
    expect()(page.locator("#c-title")).to_have_text("暂停取号")
    page.context.close()


# --- soft caller and hall display ------------------------------------------------------------


def test_the_soft_caller_calls_and_the_hall_display_shows_it_within_a_second(
    browser: Any, box: BoxProcess
) -> None:
    hall = page_at(browser, box, "/hall", LANDSCAPE)
    caller = page_at(browser, box, "/caller", LANDSCAPE)
    log_in_caller(caller, 1, "t1", "1234")
    expect()(caller.locator("#who")).to_contain_text("王丽")
    assert box.call("POST", "/api/tickets", {"queue": "A"})[0] == 201
    expect()(caller.locator("#c-waiting")).to_have_text("1")
    expect()(hall.locator("#waiting")).to_contain_text("个人业务1")
    started = time.monotonic()
    caller.locator("#actions [data-act=call_next]").click()
    expect()(hall.locator("#now-who")).to_have_text("A001", timeout=1000)
    elapsed = time.monotonic() - started
    expect()(hall.locator("#now-where")).to_have_text("请 A001 号到 1 号窗口")
    expect()(caller.locator("#c-num")).to_have_text("A001")
    assert elapsed < 1.0
    shot(caller, "caller-standard-landscape")
    caller.keyboard.press("Alt+H")  # the mode hotkey: standard -> compact
    expect()(caller.locator("#compact")).to_be_visible()
    shot(caller, "caller-compact-landscape")
    caller.keyboard.press("F3")  # finish, by hotkey
    expect()(caller.locator("#c-num")).to_have_text("—")
    caller.keyboard.press("Alt+H")  # compact -> hidden: one bar, the hotkeys still work
    expect()(caller.locator("#hiddenbar")).to_contain_text("软呼叫器已隐藏")
    expect()(caller.locator("#compact")).to_be_hidden()
    shot(caller, "caller-hidden-landscape")
    for page in (hall, caller):
        page.context.close()


def test_the_hall_display_shows_each_call_as_the_voice_speaks_it(
    browser: Any, box: BoxProcess
) -> None:
    """Two calls a moment apart: the second waits on screen until its announcement starts
    (the first takes seconds to say), so what the hall sees is what it hears (B7, B8)."""
    audio = box.data_dir / "sim" / "audio"
    hall = page_at(browser, box, "/hall", LANDSCAPE)
    deadline = time.monotonic() + 60  # the simulated voice speaks its clip pack first
    while not box.call("GET", "/api/live")[1].get("voice"):
        assert time.monotonic() < deadline, "the voice never became ready"
        time.sleep(0.2)  # another process getting ready: polling its API
    hall.reload()
    for q in "AA":
        assert box.call("POST", "/api/tickets", {"queue": q})[0] == 201
    first, second = box.teller(1, "t1"), box.teller(2, "t2")
    assert box.call("POST", "/api/windows/1/call-next", {}, first)[0] == 200
    assert box.call("POST", "/api/windows/2/call-next", {}, second)[0] == 200
    expect()(hall.locator("#now-who")).to_have_text("A001", timeout=5000)
    assert not list(audio.glob("*-A002-w2.wav"))  # still saying A001 …
    assert "A002" not in hall.locator("#calls").inner_text()  # … so A002 is not up yet
    expect()(hall.locator("#now-who")).to_have_text("A002", timeout=20_000)
    assert list(audio.glob("*-A002-w2.wav"))  # shown once its announcement started
    expect()(hall.locator("#calls")).to_contain_text("A002")
    hall.context.close()


def _busy_branch(box: BoxProcess) -> None:
    for q in "AAAABBVTAAF":
        box.call("POST", "/api/tickets", {"queue": q})
    for window, teller in ((1, "t1"), (2, "t2"), (3, "t3")):
        token = box.teller(window, teller)
        assert box.call("POST", f"/api/windows/{window}/call-next", {}, token)[0] == 200


@pytest.mark.parametrize("size,tag", [(LANDSCAPE, "landscape"), (PORTRAIT, "portrait")])
def test_the_hall_display_shows_a_column_per_window_when_busy(
    browser: Any, box: BoxProcess, size: dict[str, int], tag: str
) -> None:
    hall = page_at(browser, box, "/hall", size)
    expect()(hall.locator("#windows")).to_be_hidden()
    _busy_branch(box)
    expect()(hall.locator("#windows")).to_be_visible()
    # three calls at once: each shows as the voice reaches it, the last some seconds later
    expect()(hall.locator("#calls tr.newest")).to_contain_text("3 号窗口", timeout=30_000)
    expect()(hall.locator(".h-win[data-window='3'] .num")).not_to_have_text("暂停服务")
    shot(hall, f"hall-{tag}")
    hall.context.close()


def test_the_hall_display_recovers_by_itself_after_the_box_restarts(
    browser: Any, box: BoxProcess
) -> None:
    hall = page_at(browser, box, "/hall", LANDSCAPE)
    hall.evaluate("window.loadedOnce = true")  # gone if the page reloaded
    expect()(hall.locator("body")).not_to_have_class("offline")
    box.stop()
    expect()(hall.locator("body")).to_have_class("hall offline", timeout=8000)
    box.start()
    token = box.teller(1, "t1")
    box.call("POST", "/api/tickets", {"queue": "A"})
    assert box.call("POST", "/api/windows/1/call-next", {}, token)[0] == 200
    expect()(hall.locator("#now-who")).to_have_text("A001", timeout=10000)
    assert hall.evaluate("window.loadedOnce") is True
    hall.context.close()


def test_the_hall_display_recovers_by_itself_after_the_network_stalls(
    browser: Any, box: BoxProcess
) -> None:
    """A link that carries nothing — no data, no close (a dead switch, a cable pulled
    half-way): the page notices by its missing pings, says offline, and comes back to
    live calls by itself, without a reload."""
    import os
    import signal

    hall = page_at(browser, box, "/hall", LANDSCAPE)
    hall.evaluate("window.loadedOnce = true")  # gone if the page reloaded
    expect()(hall.locator("body")).not_to_have_class("offline")
    os.kill(box.proc.pid, signal.SIGSTOP)  # the box answers nothing, closes nothing
    try:
        expect()(hall.locator("body")).to_have_class("hall offline", timeout=15000)
    finally:
        os.kill(box.proc.pid, signal.SIGCONT)
    token = box.teller(1, "t1")
    box.call("POST", "/api/tickets", {"queue": "A"})
    assert box.call("POST", "/api/windows/1/call-next", {}, token)[0] == 200
    expect()(hall.locator("#now-who")).to_have_text("A001", timeout=15000)
    expect()(hall.locator("body")).not_to_have_class("offline")
    assert hall.evaluate("window.loadedOnce") is True
    hall.context.close()


def test_a_keypad_call_on_the_simulated_bus_shows_on_the_hall_display(
    browser: Any, box: BoxProcess
) -> None:
    hall = page_at(browser, box, "/hall", LANDSCAPE)
    box.call("POST", "/api/tickets", {"queue": "A"})
    from sim.rs485_control import press, shown  # keys on the box's own virtual RS485 bus

    press(box.data_dir, window=1, keys=["login", "1", "1234", "call_next"])
    expect()(hall.locator("#now-who")).to_have_text("A001", timeout=1000)
    deadline = time.monotonic() + 2  # the window display too (68-frame digits)
    while shown(box.data_dir, "display", 1) != "   001" and time.monotonic() < deadline:
        time.sleep(0.02)  # polling another process
    assert shown(box.data_dir, "display", 1) == "   001"
    hall.context.close()


# --- lobby manager ------------------------------------------------------------------------------


def _lobby_login(browser: Any, box: BoxProcess, size: dict[str, int]) -> Any:
    page = page_at(browser, box, "/lobby", size)
    page.locator("#l-user").fill("lm1")
    page.locator("#l-password").fill("1234")
    page.locator("#login button[type=submit]").click()
    expect()(page.locator("#who")).to_have_text("赵经理")
    return page


@pytest.mark.box("thresholds.lobby_alert_waiting=3")
def test_the_lobby_manager_sees_the_threshold_pop_up(browser: Any, box: BoxProcess) -> None:
    page = _lobby_login(browser, box, LANDSCAPE)
    for q in "AABV":
        assert box.call("POST", "/api/tickets", {"queue": q})[0] == 201
    expect()(page.locator("#p-text")).to_have_text("请注意,目前网点排队等待人数已经超过3个。")
    expect()(page.locator("#total")).to_have_text("4")
    assert int(page.evaluate("document.body.dataset.beeps || 0")) >= 1
    shot(page, "lobby-alert-landscape")
    page.locator("#p-ok").click()
    expect()(page.locator("#popup")).to_be_hidden()
    page.context.close()


def test_the_lobby_manager_sees_a_bad_rating_and_pauses_a_business(
    browser: Any, box: BoxProcess
) -> None:
    page = _lobby_login(browser, box, LANDSCAPE)
    box.call("POST", "/api/tickets", {"card": "6225880137001237"})  # 陈先生, 5 stars
    expect()(page.locator("#vips")).to_contain_text("陈先生")
    # his account manager (the simulated CIF's answer) is named, and his arrival pops up
    expect()(page.locator("#vips td.manager")).to_have_text("王芳")
    expect()(page.locator("#p-title")).to_have_text("VIP客户到达 VIP arrival")
    expect()(page.locator("#p-text")).to_contain_text("请通知客户经理王芳")
    page.locator("#p-ok").click()
    token = box.teller(5, "t1")
    box.call("POST", "/api/windows/5/call-next", {}, token)
    box.call("POST", "/api/windows/5/finish", {"ask_rating": True}, token)
    assert box.call("POST", "/api/windows/5/rating", {"score": 1}, token)[0] == 200
    expect()(page.locator("#p-title")).to_have_text("差评提醒 Bad rating")
    expect()(page.locator("#p-text")).to_contain_text("V001")
    page.locator("#p-ok").click()
    row = page.locator("tr[data-queue=F]")
    row.locator("input").fill("网络故障")
    # the hall changes while the manager types: the table redraws, the typed reason stays
    assert box.call("POST", "/api/tickets", {"queue": "A"})[0] == 201
    expect()(page.locator("tr[data-queue=A] td.n").first).to_have_text("1")
    expect()(row.locator("input")).to_have_value("网络故障")
    row.locator("button").click()
    expect()(row).to_contain_text("暂停:网络故障")
    status, data = box.call("POST", "/api/tickets", {"queue": "F"})
    assert status == 409 and "网络故障" in data["error"]["message"]
    # some 30 devices answer: a summary and small tags, so the businesses stay in view
    expect()(page.locator("#dev-summary")).to_contain_text("正常 OK")
    assert page.locator("#devices-ok .tag").count() >= 20
    # (retried: a status push may redraw the table at that very moment)
    expect()(page.locator("tr[data-queue=F]")).to_be_in_viewport()
    shot(page, "lobby-landscape")
    page.context.close()


# --- staff pages need a login --------------------------------------------------------------------


def test_staff_pages_refuse_without_login(browser: Any, box: BoxProcess) -> None:
    for path in ("/caller", "/lobby"):
        page = page_at(browser, box, path, LANDSCAPE)
        expect()(page.locator("#login")).to_be_visible()
        shot(page, f"{path[1:]}-login-landscape")
        page.context.close()
    kiosk = page_at(browser, box, "/kiosk", PORTRAIT)
    answers = kiosk.evaluate("""async () => {
        const post = (p, b) => fetch(p, {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify(b || {})}).then(r => r.status);
        const get = (p) => fetch(p).then(r => r.status);
        return [await post('/api/windows/1/call-next'),
                await post('/api/queues/A/pause', {reason: 'x'}),
                await post('/api/kiosk/sign-out'), await get('/api/lobby/overview'),
                await get('/api/windows/1/panel')];
    }""")
    assert answers == [401, 401, 401, 401, 401]
    kiosk.context.close()
