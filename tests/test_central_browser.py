"""The centre's pages in a real headless Chromium against a real centre and a real box.

Each test starts this test's own Mosquitto, ``python -m central`` on the demo organisation
(examples/centre.toml) and ``python -m controller`` on the example branch (1001010001,
its clock at Wed 2026-11-25 10:00) reporting to it, then works the pages as a provincial
administrator or a sub-branch manager would. Screenshots of the main pages land in
docs/screenshots/centre-*.png.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.centre_browser_support import box, browser, centre, expect, logged_in, save

from .browser import BoxProcess
from .office_support import B1, CentreProcess
from .uplink_support import broker_fixture

__all__ = ["box", "broker_fixture", "browser", "centre"]

pytestmark = [pytest.mark.browser, pytest.mark.network]
# A real photo: the centre refuses SVG and any file whose bytes do not match its name.
BANNER = (Path(__file__).resolve().parents[1] / "examples/media/01-mobile-banking.jpg").read_bytes()


def kpi(page: Any, key: str) -> Any:
    return page.locator(f'[data-kpi="{key}"] .v')


def test_log_in_drill_down_and_watch_a_figure_change_live(
        browser: Any, centre: CentreProcess, box: BoxProcess) -> None:
    page = logged_in(browser, centre, shot="centre-login")
    exp = expect()
    exp(page.locator("#title")).to_contain_text("河南省分行")
    exp(page.locator("#link")).to_contain_text("实时")
    box.call("POST", "/api/tickets", {"queue": "A"})
    exp(kpi(page, "issued")).to_have_text("1", timeout=20_000)
    exp(kpi(page, "online")).to_have_text("1/7", timeout=20_000)  # six never connected
    save(page, "centre-live-province")

    page.click('#children tr[data-org="100101"]')  # drill down, no reload
    page.wait_for_url("**/live?org=100101")
    exp(page.locator("#title")).to_contain_text("郑州分行")
    page.click(f'#children tr[data-org="{B1}"]')
    page.wait_for_url(f"**/live?org={B1}")
    exp(page.locator("#title")).to_contain_text("郑州金水路支行")
    exp(kpi(page, "issued")).to_have_text("1")
    marker = page.evaluate("() => (window.__same_page = 1)")  # survives only without reload

    box.call("POST", "/api/tickets", {"queue": "A"})
    box.call("POST", "/api/tickets", {"card": "6225880137001237"})  # 陈先生, a VIP
    exp(kpi(page, "issued")).to_have_text("3", timeout=20_000)
    exp(kpi(page, "waiting")).to_have_text("3")
    exp(page.locator("#vips")).to_contain_text("陈先生")
    exp(page.locator("#vips")).not_to_contain_text("6225880137001237")
    teller = box.teller(5, "t2")
    box.call("POST", "/api/windows/5/call-next", {}, token=teller)
    exp(page.locator('#windows tr[data-window="5"]')).to_contain_text("V001", timeout=20_000)
    exp(kpi(page, "serving")).to_have_text("1")
    assert page.evaluate("() => window.__same_page") == marker
    save(page, "centre-live-branch")

    page.go_back()  # history works like pages
    exp(page.locator("#title")).to_contain_text("郑州分行")
    save(page, "centre-live-city")


def test_the_page_says_when_its_figures_are_old_and_catches_up(
        browser: Any, centre: CentreProcess, box: BoxProcess) -> None:
    page = logged_in(browser, centre)
    page.goto(centre.url + f"/live?org={B1}")
    exp = expect()
    exp(page.locator("#link")).to_contain_text("实时")
    centre.stop()  # the centre restarts: the page keeps its figures and says how old
    exp(page.locator("#link")).to_contain_text("连接中断", timeout=20_000)
    exp(page.locator("#link")).to_have_class("link down")
    box.call("POST", "/api/tickets", {"queue": "B"})  # while nobody watches
    centre.start()
    exp(page.locator("#link")).to_contain_text("实时", timeout=30_000)
    exp(kpi(page, "issued")).to_have_text("1", timeout=20_000)


def test_pause_a_business_and_the_kiosk_refuses_with_the_reason(
        browser: Any, centre: CentreProcess, box: BoxProcess) -> None:
    page = logged_in(browser, centre)
    page.goto(centre.url + f"/live?org={B1}")
    exp = expect()
    exp(page.locator('#queues button[data-pause="F"]')).to_be_visible(timeout=20_000)
    page.click('#queues button[data-pause="F"]')
    page.fill("#pause-reason", "系统升级")
    save(page, "centre-pause-dialog")
    page.click("#pause-ok")
    exp(page.locator("#toast")).to_contain_text("网点已确认", timeout=20_000)
    exp(page.locator('#queues tr[data-queue="F"]')).to_contain_text("暂停:系统升级",
                                                                    timeout=20_000)
    status, answer = box.call("POST", "/api/tickets", {"queue": "F"})
    assert status == 409, answer
    assert answer["error"]["message"] == (
        "友情提示:对不起,你选择的业务因系统升级原因暂时不能办理,如有疑问请咨询大堂经理。")

    page.click('#queues button[data-resume="F"]')
    exp(page.locator('#queues tr[data-queue="F"]')).to_contain_text("正常", timeout=20_000)
    status, answer = box.call("POST", "/api/tickets", {"queue": "F"})
    assert status == 201, answer
    page.goto(centre.url + "/office/audit")
    exp(page.locator("#rows")).to_contain_text("queue.resume")
    exp(page.locator("#rows")).to_contain_text("系统升级")
    save(page, "centre-audit")


def test_edit_a_section_push_it_and_see_the_branch_run_it(
        browser: Any, centre: CentreProcess, box: BoxProcess) -> None:
    page = logged_in(browser, centre)
    page.goto(centre.url + f"/office/config?branch={B1}")
    exp = expect()
    exp(page.locator("#head")).to_contain_text("v1")
    page.click('#tabs button[data-section="windows"]')
    text = page.input_value("#text")
    page.fill("#text", text.replace("queues = { B = 9 }", "queues = { B = 9, X = 1 }"))
    page.click("#save")
    exp(page.locator("#error")).to_contain_text("windows.3.queues")  # the box's own words
    page.fill("#text", text.replace("queues = { B = 9 }", "queues = { B = 9, A = 2 }"))
    page.fill("#comment", "4号窗口兼办个人业务")
    page.click("#save")
    exp(page.locator("#head")).to_contain_text("v2")
    page.click('#versions button[data-push="2"]')
    exp(page.locator('#pushes tr[data-state="applied"]')).to_contain_text("v2", timeout=20_000)
    page.select_option("#media-org", "1001")  # the province's banner, for every branch
    page.set_input_files("#media-file", files=[{"name": "banner.jpg", "mimeType":
                                                "image/jpeg", "buffer": BANNER}])
    page.click("#media-upload")
    exp(page.locator('#media tr[data-media="banner.jpg"]')).to_contain_text("1001")
    page.click("#media-push")
    exp(page.locator("#toast")).to_contain_text("网点已确认 1 个文件", timeout=20_000)
    assert (box.data_dir.parent / "media" / "banner.jpg").read_bytes() == BANNER
    save(page, "centre-config")
    status, cfg = box.call("GET", "/api/config")
    assert status == 200
    window4 = next(w for w in cfg["windows"] if w["number"] == 4)
    assert window4["queues"] == {"B": 9, "A": 2}

    page.goto(centre.url + "/office/versions")
    row = page.locator(f'#rows tr[data-branch="{B1}"]')
    exp(row).to_contain_text("v2", timeout=20_000)
    exp(row).to_contain_text("最新 up to date", timeout=20_000)
    save(page, "centre-versions")


def test_the_tree_opens_a_node_by_loading_its_children_and_a_picker_finds_by_search(
        browser: Any, centre: CentreProcess) -> None:
    """Issue 19: no page loads the whole tree; the dashboard asks for a node's children
    when it is opened, a picker for what the search box holds."""
    page = logged_in(browser, centre)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url.split("//", 1)[1].split("/", 1)[1]))
    exp = expect()
    exp(page.locator('#tree a[data-org="100102"]')).to_be_visible()  # the province is open
    exp(page.locator('#tree a[data-org="1001020003"]')).to_have_count(0)
    with page.expect_response(lambda r: "api/orgs/children?parent=100102" in r.url):
        page.click('#tree button[data-toggle="100102"]')
    exp(page.locator('#tree a[data-org="1001020003"]')).to_contain_text("洛阳涧西支行")
    page.click('#tree button[data-toggle="100102"]')  # closed again: nothing asked
    exp(page.locator('#tree a[data-org="1001020003"]')).to_have_count(0)

    page.goto(centre.url + "/reports")
    exp(page.locator('#org option[value="100102"]')).to_have_count(1)
    exp(page.locator('#org option[value="1001020003"]')).to_have_count(0)
    page.fill("label:has(#org) .org-search", "涧西")
    exp(page.locator('#org option[value="1001020003"]')).to_have_count(1)
    page.select_option("#org", "1001020003")
    exp(page.locator('#branch option[value="1001020003"]')).to_have_count(1)
    assert "api/orgs/children?parent=100102" in " ".join(asked)
    assert not [u for u in asked if u.split("?")[0] == "api/orgs"]  # never the whole tree


def test_a_sub_branch_manager_sees_only_its_branch(
        browser: Any, centre: CentreProcess, box: BoxProcess) -> None:
    token = centre.token()
    status, _ = centre.call("POST", "/api/users", {
        "id": "jinshui", "name": "金水路支行经理", "role": "manager", "scope": B1,
        "password": "jinshui-2026"}, token)
    assert status == 201
    admin = logged_in(browser, centre)
    admin.goto(centre.url + "/office/users")
    expect()(admin.locator('#rows tr[data-user="jinshui"]')).to_be_visible()
    save(admin, "centre-users")
    admin.goto(centre.url + "/office/orgs")
    expect()(admin.locator('#rows tr[data-org="1001020003"]')).to_be_visible()
    save(admin, "centre-orgs")

    page = logged_in(browser, centre, "jinshui", "jinshui-2026")
    exp = expect()
    exp(page.locator("#title")).to_contain_text("郑州金水路支行")
    exp(page.locator("#tree a")).to_have_count(1)
    nav = page.locator("header nav").inner_text()
    assert "用户" not in nav and "机构" not in nav and "网点配置" in nav
    response = page.goto(centre.url + "/live?org=1001010002")
    assert response is not None and response.status == 403
    exp(page.locator("main")).to_contain_text("无权访问该机构的数据")
    status, _ = box.call("GET", "/api/status")
    assert status == 200


def test_the_report_and_alert_pages_work_with_or_without_their_service(
        browser: Any, centre: CentreProcess) -> None:
    """With the reports and alerts service (central/reports, central/alerts.py) the pages
    list its reports and alerts; on a centre without it (its routes answer 404, as they did
    before it was mounted) they say so and draw nothing. Never a script error."""
    status, catalogue = centre.call("GET", "/api/reports", token=centre.token())
    assert status == 200
    ids = [r["id"] for r in catalogue["reports"]]
    page = logged_in(browser, centre)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    exp = expect()

    page.goto(centre.url + "/reports")  # the service answers
    exp(page.locator("#note")).to_have_text("")
    exp(page.locator("#report option")).to_have_count(len(ids))
    assert page.locator("#report option").evaluate_all(
        "os => os.map((o) => o.value)") == ids
    page.goto(centre.url + "/alerts")
    exp(page.locator("#alerts thead")).to_be_visible()
    exp(page.locator("#note")).to_have_text("")
    exp(page.locator("#thresholds-page")).to_be_visible()

    def absent(route: Any) -> None:
        route.fulfill(status=404, content_type="application/json",
                      body='{"detail": "Not Found"}')

    page.route("**/api/reports**", absent)  # a centre without the service
    page.route("**/api/alerts**", absent)
    page.goto(centre.url + "/reports")
    exp(page.locator("#note")).to_contain_text("报表服务尚未启用")
    page.wait_for_load_state("networkidle")
    exp(page.locator("#report option")).to_have_count(0)
    page.goto(centre.url + "/alerts")
    page.wait_for_load_state("networkidle")
    exp(page.locator("#note")).to_contain_text("预警服务尚未启用")
    exp(page.locator("#alerts thead")).to_have_count(0)
    assert errors == []


def test_a_report_shown_and_exported_to_excel_has_the_same_numbers(
        browser: Any, centre: CentreProcess, box: BoxProcess, tmp_path: Path) -> None:
    """The report page over the reports service (central/reports): the businesses of a
    branch on the page, and the Excel download holds them in its cells — the report's
    sheet, its header row, each business's row and the total row."""
    import openpyxl

    from central.reports.export import HEADER_ROWS

    token = centre.token()
    for queue in "AAB":
        box.call("POST", "/api/tickets", {"queue": queue})
    teller = box.teller(1, "t1")
    for _ in range(2):
        box.call("POST", "/api/windows/1/call-next", {}, token=teller)
    query = f"?period=day&date=2026-11-25&org={B1}"
    deadline = time.monotonic() + 30
    while True:  # the centre's summaries follow the events it stores
        status, report = centre.call("GET", "/api/reports/branch-business" + query,
                                     token=token)
        total = report.get("total") or {}
        if (status == 200 and total.get("issued") == 3 and total.get("calls") == 2) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.5)  # polling another process's API
    assert status == 200 and total["issued"] == 3 and total["calls"] == 2, report

    page = logged_in(browser, centre)
    page.goto(centre.url + f"/reports?org={B1}")
    exp = expect()
    exp(page.locator('#report option[value="branch-business"]')).to_have_count(1)
    page.select_option("#report", "branch-business")
    page.fill("#date", "2026-11-25")
    page.click("#filters button[type=submit]")
    exp(page.locator("#report-table tr.total")).to_be_visible()
    save(page, "centre-report")
    with page.expect_download() as download:
        page.click("#xlsx")
    path = tmp_path / "report.xlsx"
    download.value.save_as(path)

    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["branch-business"]
    ws = book["branch-business"]
    assert ws["A1"].value == report["title"] == "网点各类业务等待与办理时间统计"
    top = HEADER_ROWS + 2
    keys = [c["key"] for c in report["columns"]]
    assert [c.value for c in ws[top]] == [c["header"] for c in report["columns"]]
    assert ws.cell(top, keys.index("issued") + 1).value == "客户总数(人) Customers (people)"
    cells = [[c.value for c in row] for row in ws.iter_rows(
        min_row=top + 1, max_row=top + len(report["rows"]) + 1)]
    issued, calls = keys.index("issued"), keys.index("calls")
    by_queue = {row[keys.index("queue")]: row for row in cells[:-1]}
    assert set(by_queue) == {"A", "B"}
    assert by_queue["A"][keys.index("branch")] == B1
    for row in report["rows"]:  # each business's row: every cell as the JSON
        assert by_queue[row["queue"]] == [row.get(k) for k in keys], (row, by_queue)
    assert (by_queue["A"][issued], by_queue["B"][issued]) == (2, 1)  # A, A, B
    assert (by_queue["A"][calls], by_queue["B"][calls]) == (2, 0)  # window 1 called the As
    last = cells[-1]
    assert last[0] == report["total"]["label"] == "合计 Total"
    assert (last[issued], last[calls]) == (3, 2)
    for key, value in report["total"].items():  # the rest of the total row: as the JSON
        if key in keys and isinstance(value, int | float):
            assert abs(last[keys.index(key)] - value) < 0.01, (key, last, report["total"])
