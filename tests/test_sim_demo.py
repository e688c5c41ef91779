"""``python -m sim demo``: a box with simulated customers flowing, started and stopped as
one, leaving no process behind."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controller.config import Calendar
from controller.journal import Journal, Record
from sim.demo import BEIJING, demo_start
from tests.browser import ROOT, free_port


def _launch(tmp_path: Path, port: int, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sim", "demo", "--data-dir", str(tmp_path / "data"),
             "--http", f"127.0.0.1:{port}", "--speed", "60",
             "--set", "clock.start=2026-11-25T10:00:00+08:00", *extra],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


@contextlib.contextmanager
def _demo(tmp_path: Path, port: int, *extra: str
          ) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The demo running; killed at the end if the test did not stop it."""
    proc, log = _launch(tmp_path, port, *extra)
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _tickets(port: int) -> list[dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tickets", timeout=2) as r:
            return list(json.loads(r.read())["tickets"])
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return []


def _pids(log: Path) -> dict[str, int]:
    found = re.findall(r"demo: ([\w-]+) started \(pid (\d+)\)", log.read_text())
    return {name: int(pid) for name, pid in found}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


FRIDAY = dt.date(2026, 11, 27)


def _journal(data_dir: Path, at: dt.datetime) -> None:
    j = Journal(data_dir / "journal.sqlite3")
    try:
        j.write([Record(1, {"type": "day_opened", "day": f"{at:%Y-%m-%d}",
                            "at": at.timestamp()})])
    finally:
        j.close()


def test_the_demo_clock_starts_at_ten_today(tmp_path: Path) -> None:
    ten = dt.datetime(2026, 11, 27, 10, tzinfo=BEIJING)
    assert demo_start(tmp_path, Calendar(), FRIDAY) == ten
    _journal(tmp_path, dt.datetime(2026, 11, 26, 16, tzinfo=BEIJING))  # yesterday's demo
    assert demo_start(tmp_path, Calendar(), FRIDAY) == ten


def test_after_an_earlier_demo_today_the_clock_starts_on_the_next_working_day(
        tmp_path: Path) -> None:
    """The engine never goes back in time: starting at 10:00 again would freeze the box's
    time at the journal's last event until the clock caught up."""
    _journal(tmp_path, dt.datetime(2026, 11, 27, 10, 42, tzinfo=BEIJING))
    monday = dt.datetime(2026, 11, 30, 10, tzinfo=BEIJING)
    assert demo_start(tmp_path, Calendar(), FRIDAY) == monday
    tuesday = dt.datetime(2026, 12, 1, 10, tzinfo=BEIJING)
    assert demo_start(tmp_path, Calendar(holidays=[monday.date()]), FRIDAY) == tuesday


def _clock_of(argv: list[str]) -> dt.datetime:
    """The clock start a process is handed: ``--clock-start X`` or ``--set …start=X``."""
    if "--clock-start" in argv:
        return dt.datetime.fromisoformat(argv[argv.index("--clock-start") + 1])
    return dt.datetime.fromisoformat(argv[-1].split("=", 1)[1])


def test_every_process_of_the_demo_is_handed_the_same_clock(tmp_path: Path) -> None:
    """Box, centre and fleets: one simulated clock, read off when each is started."""
    from sim.demo import demo_clock, parse_args, services

    args = parse_args(["--data-dir", str(tmp_path / "box"), "--centre", str(tmp_path / "c"),
                       "--broker-port", str(free_port()),
                       "--set", "clock.start=2026-11-25T10:00:00+08:00"])
    ten = dt.datetime(2026, 11, 25, 10, tzinfo=BEIJING)
    assert demo_clock(args, real=100.0).now(real=130.0) == ten + dt.timedelta(seconds=30)
    before = time.time()
    listed = services(args)
    clocked = {s.name: s.late for s in listed if s.late is not None}
    assert set(clocked) == {"centre", "cif", "fleet-1001010002", "fleet-1001020001", "box"}
    handed = {name: late() for name, late in clocked.items()}  # as each is started
    elapsed = time.time() - before
    keys = {name: argv[-1].split("=")[0] for name, argv in handed.items() if argv[0] == "--set"}
    assert keys == {"centre": "clock.start", "box": "clock.start"}
    for name, argv in handed.items():  # each where the one clock stood when it was handed
        assert 0 <= (_clock_of(argv) - ten).total_seconds() <= elapsed, name
    fleet = next(s for s in listed if s.name.startswith("fleet-")).argv
    assert fleet[fleet.index("--orgs") + 1].endswith("examples/centre.toml")


def test_the_demo_says_who_is_where_and_what_to_try_first(tmp_path: Path) -> None:
    """The printed text: the simulated tellers at their windows, the teller and window left
    for you with the password, the lobby manager's login, the SMS outbox, the first steps."""
    from sim.demo import banner, parse_args, services

    args = parse_args(["--data-dir", str(tmp_path / "box"), "--centre", str(tmp_path / "c"),
                       "--centre-http", "127.0.0.1:8090", "--broker-port", "1999"])
    text = banner(args)
    sims = re.search(r"simulated tellers \(keypads, 密码 password 1234\): (.+)", text)
    assert sims is not None, text
    assert sims.group(1) == "3号窗口 t1 王丽 · 6号窗口(综合/均衡) t2 李强"  # the simulator's choice
    assert "留给你 yours: t3 张敏 at 1号窗口, 密码 password 1234" in text
    assert "http://127.0.0.1:8080/lobby    lm1 赵经理, 密码 password 1234" in text
    assert f"短信发件箱 SMS outbox          {(tmp_path / 'c' / 'sms.jsonl').resolve()}" in text
    steps = text[text.index("先试试 Try first:"):]
    for want in ("1. 取号 Take a ticket: http://127.0.0.1:8080/kiosk, press 挂失改密",
                 "2. 叫号 Call it: http://127.0.0.1:8080/caller, log in as t3 at 1号窗口",
                 "3. 看综合屏 See it on the hall display: http://127.0.0.1:8080/hall",
                 "4. 看中心 See it in the centre: http://127.0.0.1:8090/",
                 "5. 手机取号/预约 Take a ticket or book from the phone: "
                 "http://127.0.0.1:8090/m"):
        assert want in steps, text
    # the simulator is started with the tellers the text names, the centre with that outbox
    argv = {s.name: s.argv for s in services(args)}
    assert argv["customers"][argv["customers"].index("--tellers") + 1] == "2"
    assert f"sms.outbox_file={(tmp_path / 'c' / 'sms.jsonl').resolve()}" in argv["centre"]
    # every teller simulated: nobody left, and the text says how to leave one
    everyone = banner(parse_args(["--data-dir", str(tmp_path / "box"), "--tellers", "3"]))
    assert "留给你" not in everyone and "--tellers" in everyone
    assert "SMS outbox" not in everyone  # no centre, no outbox


def test_the_demo_branch_has_two_kiosks_each_with_its_printer_and_reader(tmp_path: Path
                                                                        ) -> None:
    from controller.compose import build_components
    from controller.config import load_config
    from sim.demo import banner, parse_args, services

    args = parse_args(["--data-dir", str(tmp_path / "box")])
    box = next(s.argv for s in services(args) if s.name == "box")
    overrides = [box[i + 1] for i, a in enumerate(box) if a == "--set"]
    config = load_config(args.config, overrides)
    assert [(k.id, k.name) for k in config.kiosks] == [("kiosk1", "1号取号机"),
                                                       ("kiosk2", "2号取号机")]
    components = {c.name: c for c in build_components(config, tmp_path)}
    assert {"printer.kiosk1", "printer.kiosk2", "card_reader.kiosk1", "card_reader.kiosk2",
            "card_reader.id", "card_reader.ic"} <= set(components)
    assert getattr(components["card_reader.id"], "kiosk", None) == "kiosk2"  # the 二代证 twin
    assert getattr(components["card_reader.ic"], "kiosk", None) == "kiosk2"  # an IC slot
    text = banner(args)
    assert "2号取号机 kiosk 2: http://127.0.0.1:8080/kiosk?id=kiosk2" in text
    cards = (tmp_path / "box").resolve() / "sim" / "cards"
    assert f"二代证 ID card reader at 2号取号机 kiosk 2  echo 410105198001012311 > {cards / 'id'}" \
        in text
    assert f"> {cards / 'kiosk1'}" in text  # the CIF's card, on the first kiosk's reader
    assert f"echo 6225880137001237 > {cards / 'ic'}" in text  # a bank IC card inserted
    one = parse_args(["--data-dir", str(tmp_path / "box"), "--kiosks", "1"])
    assert not any(a.startswith("kiosks=") for s in services(one) for a in s.argv)
    box = next(s.argv for s in services(one) if s.name == "box")
    config = load_config(one.config, [box[i + 1] for i, a in enumerate(box) if a == "--set"])
    names = {c.name for c in build_components(config, tmp_path / "one")}
    assert {"card_reader.sim", "card_reader.id", "card_reader.ic"} <= names
    assert "二代证 ID card reader at the kiosk" in banner(one)


def test_the_demo_centre_sends_wechat_messages_through_the_simulated_api(tmp_path: Path
                                                                        ) -> None:
    """The centre's WeChat API is the demo's ``python -m sim wechat api``, started before
    it with the account's appid and secret, recording into ``wechat.jsonl``; the banner says
    how to chat as a follower with the account's token and appid."""
    from central.config import load_centre_config
    from sim.demo import banner, parse_args, services

    args = parse_args(["--data-dir", str(tmp_path / "box"), "--centre", str(tmp_path / "c"),
                       "--wechat-api-port", "18091"])
    listed = services(args)
    argv = {s.name: s.argv for s in listed}
    names = [s.name for s in listed]
    assert names.index("wechat") < names.index("centre")
    api = argv["wechat"]
    assert api[api.index("--port") + 1] == "18091"
    outbox = (tmp_path / "c" / "wechat.jsonl").resolve()
    assert api[api.index("--outbox") + 1] == str(outbox)
    centre = argv["centre"]
    wechat = load_centre_config(centre[centre.index("--config") + 1],
                                [centre[i + 1] for i, a in enumerate(centre) if a == "--set"]
                                ).wechat
    assert wechat.enabled and wechat.api_base == "http://127.0.0.1:18091"
    assert (api[api.index("--appid") + 1], api[api.index("--secret") + 1]) == (
        wechat.appid, wechat.appsecret)
    text = banner(args)
    assert (f"python -m sim wechat --url http://127.0.0.1:8090 --token {wechat.token} "
            f"--appid {wechat.appid} location 34.7736 113.6849") in text
    assert f"微信消息 WeChat messages       {outbox}" in text


def test_the_demo_centre_asks_a_simulated_cif_who_books(tmp_path: Path) -> None:
    """The centre's ``[cif]`` is the demo's ``python -m sim.cif``, started before it on a
    port of its own with the simulated CIF's key (docs/integrations.md, "The centre")."""
    from central.config import load_centre_config
    from sim.cif import SIM_KEY
    from sim.demo import parse_args, services

    args = parse_args(["--data-dir", str(tmp_path / "box"), "--centre", str(tmp_path / "c")])
    listed = services(args)
    names = [s.name for s in listed]
    assert names.index("cif") < names.index("centre")
    argv = {s.name: s.argv for s in listed}
    port = argv["cif"][argv["cif"].index("--port") + 1]
    centre = argv["centre"]
    cif = load_centre_config(centre[centre.index("--config") + 1],
                             [centre[i + 1] for i, a in enumerate(centre) if a == "--set"]
                             ).cif
    assert cif.enabled and cif.url == f"http://127.0.0.1:{port}"
    assert (cif.key_id, cif.secret.encode()) == SIM_KEY


def test_the_simulated_wechat_api_runs_as_a_process_and_records_what_it_accepts(
        tmp_path: Path) -> None:
    import httpx

    port, outbox = free_port(), tmp_path / "wechat.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "wechat", "api", "--appid", "wxA",
                             "--secret", "S", "--port", str(port), "--outbox", str(outbox)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline().decode()  # listening
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            wrong = c.get("/cgi-bin/token", params={"grant_type": "client_credential",
                                                     "appid": "wxA", "secret": "x"}).json()
            assert wrong["errcode"] == 40125
            token = c.get("/cgi-bin/token", params={"grant_type": "client_credential",
                                                     "appid": "wxA", "secret": "S"}
                          ).json()["access_token"]
            body = {"touser": "oF1", "msgtype": "text", "text": {"content": "请A012号到3号窗口"}}
            assert c.post("/cgi-bin/message/custom/send", params={"access_token": "nope"},
                          json=body).json()["errcode"] == 40001
            assert c.post("/cgi-bin/message/custom/send", params={"access_token": token},
                          json=body).json()["errcode"] == 0
        (line,) = outbox.read_text(encoding="utf-8").splitlines()
        assert json.loads(line) == {"kind": "custom", **body}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_demo_runs_a_branch_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    port = free_port()
    with _demo(tmp_path, port) as (proc, log):
        deadline = time.monotonic() + 90
        while not any(t["state"] in ("called", "finished") for t in _tickets(port)):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)  # polling other processes' APIs
        pids = _pids(log)
        assert set(pids) == {"box", "customers"}
        assert all(_alive(p) for p in pids.values())
        proc.send_signal(sig)
        assert proc.wait(60) == 0, log.read_text()
    text = log.read_text()
    assert not [name for name, pid in pids.items() if _alive(pid)], text
    assert "demo: customers stopped" in text and "demo: box stopped" in text
    assert text.index("demo: customers stopped") < text.index("demo: box stopped")
    assert f"demo: box stopped (pid {pids['box']}, code 0)" in text
    assert "tellers 0/2" in text  # the simulated tellers (t3 is left free) logged out
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


@pytest.mark.slow
def test_a_box_that_cannot_start_stops_the_demo(tmp_path: Path) -> None:
    port = free_port()
    proc, log = _launch(tmp_path, port, "--set", "rs485.baudrate=7")
    assert proc.wait(60) == 1
    text = log.read_text()
    assert "box exited with code 2 before it was ready" in text, text
    assert "customers started" not in text
    assert not [pid for pid in _pids(log).values() if _alive(pid)]


@pytest.mark.slow
def test_with_the_centre_the_demo_runs_broker_centre_and_fleet_and_stops_them_all(
        tmp_path: Path) -> None:
    """What ``./flash.sh sim`` runs: the example box and six simulated branches report over
    a password-protected broker to the centre, whose public page lists all seven online."""
    port, centre, broker = free_port(), free_port(), free_port()
    with _demo(tmp_path, port, "--centre", str(tmp_path / "centre"), "--centre-http",
               f"127.0.0.1:{centre}", "--broker-port", str(broker)) as (proc, log):
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            online = {b["branch"] for b in _centre_branches(centre) if b["online"]}
            if len(online) == 7 and any(t["state"] != "waiting" for t in _tickets(port)):
                break
            time.sleep(0.5)  # polling other processes' APIs
        assert "1001010001" in online  # the example box, with the customers flowing
        pids = _pids(log)
        assert set(pids) == {"broker", "wechat", "cif", "centre", "fleet-1001010002",
                             "fleet-1001020001", "box", "customers"}
        text = log.read_text()
        assert f"http://127.0.0.1:{centre}/" in text and "paidui-demo-2026" in text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0, log.read_text()
    text = log.read_text()
    assert not [name for name, pid in pids.items() if _alive(pid)], text
    for name, pid in pids.items():  # each one stopped cleanly, the box before the centre
        assert f"demo: {name} stopped (pid {pid}, code 0)" in text, text
    assert text.index("demo: box stopped") < text.index("demo: centre stopped")
    assert "Traceback" not in text and "never retrieved" not in text, text
    assert "refused the bookings" not in text  # the simulated branches keep appointment books


def _centre_branches(port: int) -> list[dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/public/branches",
                                    timeout=2) as r:
            return list(json.loads(r.read())["branches"])
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return []


@pytest.mark.slow
def test_in_the_demos_first_minute_a_customer_takes_a_remote_ticket_and_redeems_a_booking(
        tmp_path: Path) -> None:
    """As a customer would: sign in on the centre's customer API with the code from the SMS
    outbox, take a ticket remotely and book the slot under way; the box issues the remote
    ticket (not "请求已过期") and redeems the booking's code at its kiosk — all within a
    minute of the demo being ready, because box, centre and fleet run on one clock."""
    import httpx

    from tests.customer_support import an_id

    port, centre, broker = free_port(), free_port(), free_port()
    box_url, centre_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{centre}"
    outbox = tmp_path / "centre" / "sms.jsonl"
    with _demo(tmp_path, port, "--centre", str(tmp_path / "centre"), "--centre-http",
               f"127.0.0.1:{centre}", "--broker-port", str(broker), "--fleet", "1") as (proc,
                                                                                       log):
        deadline = time.monotonic() + 120
        while "demo: running" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)  # polling the launcher's output
        minute = time.monotonic() + 60
        with httpx.Client(base_url=centre_url, timeout=10) as c, \
                httpx.Client(base_url=box_url, timeout=10) as box:
            assert c.post("/api/public/login/code", json={"phone": "13812345678"}).status_code \
                == 200
            text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
            login = c.post("/api/public/login", json={"phone": "13812345678",
                                                      "code": text.split("验证码是")[1][:6]})
            assert login.status_code == 200, login.text
            c.headers["Authorization"] = f"Bearer {login.json()['token']}"
            r = c.post("/api/public/register", json={"name": "张三", "id_number": an_id(7)})
            assert r.status_code == 201, r.text

            def until(what: str, ok: Callable[[], httpx.Response | None]) -> httpx.Response:
                while True:
                    answer = ok()
                    if answer is not None:
                        return answer
                    assert time.monotonic() < minute, f"{what} not within the first minute"
                    time.sleep(0.5)  # the box and the centre catching up with each other

            def bookable() -> httpx.Response | None:
                r = c.get("/api/public/branches/1001010001/bookable")
                return r if r.status_code == 200 else None

            offer = until("the box's catalogue at the centre", bookable).json()
            queue = next(q for q in offer["queues"] if q["id"] == "A")
            slot = next(s for s in queue["slots"] if s["open"])
            assert slot["label"].startswith("10:00"), offer  # the slot under way, box time
            def remote_ticket() -> httpx.Response | None:
                r = c.post("/api/public/tickets", json={"branch": "1001010001", "queue": "A"})
                offline = r.status_code == 409 and "offline" in r.text  # uplink still coming
                return None if offline else r

            r = until("a remote ticket", remote_ticket)
            assert r.status_code == 201, r.text  # the box took it: the request was on time
            number = r.json()["number"]
            assert number in {t["number"] for t in _tickets(port)}
            r = c.post("/api/public/bookings", json={"branch": "1001010001", "queue": "A",
                                                     "day": offer["day"],
                                                     "slot": slot["slot"]})
            assert r.status_code == 201, r.text
            code = r.json()["code"]

            def received() -> httpx.Response | None:
                r = box.get("/api/appointments/summary")
                return r if r.json().get("booked", 0) >= 1 else None

            assert until("the booking at the box", received).json()["day"] == offer["day"]
            r = box.post("/api/appointments/redeem", json={"code": code})
            assert r.status_code == 201, r.text
            assert time.monotonic() < minute
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0, log.read_text()
    assert "请求已过期" not in log.read_text()


@pytest.mark.slow
def test_in_the_demo_a_follower_books_on_wechat_and_the_id_card_redeems_it(
        tmp_path: Path) -> None:
    """The banner's WeChat command and ID card pipe, as a person trying the demo uses them:
    the follower books the slot under way, the 二代证 laid on kiosk 2's reader redeems it,
    and the centre's WeChat notice about that ticket lands in ``wechat.jsonl``."""
    import shlex

    from sim.demo import card_pipe, parse_args, wechat_command, wechat_outbox

    port, centre, broker = free_port(), free_port(), free_port()
    flags = ["--data-dir", str(tmp_path / "data"), "--http", f"127.0.0.1:{port}",
             "--centre", str(tmp_path / "centre"), "--centre-http", f"127.0.0.1:{centre}",
             "--broker-port", str(broker), "--fleet", "1"]
    args = parse_args(flags)
    chat = shlex.split(wechat_command(args, f"http://127.0.0.1:{centre}"))
    assert chat[:4] == ["python", "-m", "sim", "wechat"]
    outbox = tmp_path / "centre" / "sms.jsonl"

    def say(*what: str) -> str:
        out = subprocess.run([sys.executable, *chat[1:], *what], cwd=ROOT, timeout=30,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    with _demo(tmp_path, port, *flags[4:]) as (proc, log):
        deadline = time.monotonic() + 120
        while "demo: running" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)  # polling the launcher's output
        while "1. 郑州金水路支行" not in say("location", "34.7736", "113.6849"):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)  # the box's live picture on its way to the centre
        assert "个人业务" in say("say", "1")
        slot = next(x for x in say("say", "1").splitlines() if "预约 今天 10:00-11:00" in x)
        assert "手机号码" in say("say", slot.split(".")[0])
        assert "139****5678" in say("say", "13912345678")
        text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
        assert "ZC" in say("say", text.split("验证码是")[1][:6])
        assert "预约成功" in say("say", "ZC 陈明 410105198001012311")

        def redeemed() -> int:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/api/appointments/summary", timeout=2) as r:
                    return int(json.loads(r.read()).get("redeemed", 0))
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return 0

        pipe = card_pipe(args, "id")
        while not redeemed():
            assert time.monotonic() < deadline, log.read_text()
            with pipe.open("w") as f:  # the card laid on the reader (again: the booking
                f.write("410105198001012311\n")  # may still be on its way to the box)
            time.sleep(1)  # the reader polls every 300 ms; then take it off and look
            with pipe.open("w") as f:
                f.write("remove\n")
        wechat = wechat_outbox(args)
        while not wechat.exists() or not wechat.read_text(encoding="utf-8").strip():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)  # the tellers moving the queue, the centre watching
        sent = [json.loads(x) for x in wechat.read_text(encoding="utf-8").splitlines()]
        assert sent[0]["touser"] == "oSimFollower0001"
        assert "郑州金水路支行" in sent[0]["text"]["content"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0, log.read_text()
    assert "Traceback" not in log.read_text()
