"""``python -m sim tour [--out DIR] [--quick] [--only NAME …] [--work DIR]``

The screenshot tour (docs/screens.md "The tour"): starts the demo's processes (those of
``python -m sim demo --centre``: a broker, the centre, two simulated fleets, the box and
its simulated customers, all on loopback ports of their own), opens every page of the box
and of the centre in the distribution's headless Chromium, and saves one PNG a page, role,
language and orientation into ``--out`` (default ``docs/screenshots/``, the pictures the
docs and the README show). It fails (exit code 1, each problem on a line) when a page
throws or logs an error on the browser console (a failed request, a 404, an uncaught
exception), or when a page cannot be opened.

``--quick`` takes the reduced set the test suite runs (tests/test_screenshot_tour.py);
the committed pictures are the full set. The tour only opens pages, waits for them to load,
logs in where a role needs it, taps the one button a screen needs (a kiosk business, the
language toggle) and takes the picture: what a page shows is its own business.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim import demo

__all__ = ["CHROMIUM", "Shot", "Tour", "main", "run_tour"]

PROG = "python -m sim tour"
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("PAIDUI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
ZONE = "Asia/Shanghai"
PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}
DESKTOP = {"width": 1600, "height": 1000}
LAPTOP = {"width": 1366, "height": 768}  # a branch PC (the soft caller, the lobby manager)
PHONE = {"width": 390, "height": 844}
# The demo's own simulated teller (python -m sim branch --tellers 1: t1, at window 1) keeps
# customers moving and the hall calling; the other tellers sit at soft callers, the tour's.
SIM_TELLERS = "1"
TELLERS = (("t2", 2), ("t3", 3))  # examples/branch.toml; password 1234 (demo only)
UNANSWERED = "status of 401 (Unauthorized)"  # a page's "have I a session?" before its login
LOBBY = ("lm1", "1234")
BOX_CODE = "1001010001"
SETTLE_MS = 800  # after load: the page's first data, fonts and charts painted


@dataclass
class Shot:
    """One page as the tour saw it: the file written and what went wrong there."""

    name: str
    url: str
    errors: list[str] = field(default_factory=list)


@dataclass
class Tour:
    """The browser, the two sites' addresses and what the tour has seen so far."""

    browser: Any
    box: str
    centre: str
    out: Path
    only: list[str] = field(default_factory=list)
    sms: Path | None = None  # the centre's SMS outbox: the customer's sign-in code
    shots: list[Shot] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # of the page being visited

    def wanted(self, name: str) -> bool:
        return not self.only or any(fnmatch.fnmatch(name, p) for p in self.only)

    def wants_any(self, *names: str) -> bool:
        """Whether a page worth opening: one of its pictures (or their English) is wanted."""
        return any(self.wanted(n) or self.wanted(n + "-en") for n in names)

    @contextlib.contextmanager
    def page(self, base: str, path: str, size: dict[str, int]) -> Iterator[Any]:
        """A fresh browser context (its own cookies and storage) showing ``base + path``,
        in Chinese and the branch's zone; console errors and uncaught exceptions are kept."""
        context = self.browser.new_context(viewport=size, locale="zh-CN", timezone_id=ZONE)
        page = context.new_page()
        page.tour = self
        self.errors = []
        page.on("console", lambda m: self.errors.append(
            f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        try:
            try:
                self.goto(page, base + path)
            except Exception as err:  # not even opened: the steps below fail and say so
                self.errors.append(_said(err))
            yield page
        except Exception as err:  # the page (or a step on it) failed: say where, go on
            self.errors.append(_said(err))
            self.shots.append(Shot("(failed)", page.url, list(self.errors)))
        finally:
            context.close()

    def goto(self, page: Any, url: str) -> None:
        response = page.goto(url, wait_until="load")
        if response is not None and response.status >= 400:
            self.errors.append(f"HTTP {response.status} for {url}")
        self.settle(page)

    def settle(self, page: Any) -> None:
        page.evaluate("document.fonts.ready.then(() => true)")
        page.wait_for_timeout(SETTLE_MS)  # the page's first data (SSE, fetch) drawn

    def shot(self, page: Any, name: str, full_page: bool = False) -> None:
        """Save ``name``.png (if wanted) with the errors seen on the page since it opened."""
        if not self.wanted(name):
            return
        self.settle(page)
        if name.endswith("-login-landscape") or name == "centre-login":
            _before_login(page)
        self.out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(self.out / f"{name}.png"), full_page=full_page)
        self.shots.append(Shot(name, page.url, list(self.errors)))

    def english(self, page: Any, name: str) -> None:
        """The page's English, when it offers a language toggle (``#lang``)."""
        toggle = page.locator("#lang")
        if toggle.count() and toggle.first.is_visible():
            toggle.first.click()
            self.shot(page, name + "-en")
            toggle.first.click()

    def problems(self) -> list[str]:
        return [f"{s.name} ({s.url}): {e}" for s in self.shots for e in s.errors]


Scene = Callable[[Tour], None]


def _said(err: Exception) -> str:
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"


def _orient(size: dict[str, int]) -> str:
    return "portrait" if size["height"] > size["width"] else "landscape"


def kiosk(t: Tour) -> None:
    for size in (PORTRAIT, LANDSCAPE):
        o = _orient(size)
        if not t.wants_any(f"kiosk-start-{o}", f"kiosk-ticket-{o}"):
            continue
        with t.page(t.box, "/kiosk?id=kiosk1", size) as p:
            t.shot(p, f"kiosk-start-{o}")
            t.english(p, f"kiosk-start-{o}")
            p.locator(".k-btn.k-queue").first.click()  # a ticket for the first business
            p.locator("#result").wait_for(state="visible", timeout=10_000)
            t.shot(p, f"kiosk-ticket-{o}")


def hall(t: Tour) -> None:
    for size in (LANDSCAPE, PORTRAIT):
        if not t.wants_any(f"hall-{_orient(size)}"):
            continue
        with t.page(t.box, "/hall", size) as p:
            t.shot(p, f"hall-{_orient(size)}")
            t.english(p, f"hall-{_orient(size)}")


def _form_login(page: Any, fields: dict[str, str], select: dict[str, str] | None = None
                ) -> None:
    for selector, value in (select or {}).items():
        page.locator(selector).select_option(value)
    for selector, value in fields.items():
        page.locator(selector).fill(value)
    _before_login(page)
    page.locator("#login button[type=submit]").click()
    page.locator("#login").wait_for(state="hidden", timeout=10_000)


def _take_ticket(box: str, queue: str) -> None:
    """A walk-in customer's ticket, as the kiosk takes it (``POST /api/tickets``)."""
    req = urllib.request.Request(box + "/api/tickets", method="POST",
                                 data=json.dumps({"queue": queue}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10):
            pass
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"the kiosk refused a ticket for {queue}: {e.code} "
                           f"{e.read().decode(errors='replace')}") from None


def _tap(button: Any) -> None:
    """Tap a button that may not be there or may be disabled (nobody waiting): a nicer
    picture, not a part of the page the tour checks."""
    with contextlib.suppress(Exception):
        button.first.click(timeout=3000)


def _before_login(page: Any) -> None:
    """A login page asks the box whether it has a session; the 401 it gets is its answer,
    not an error (any 401 after the login is one)."""
    tour: Tour = page.tour
    tour.errors[:] = [e for e in tour.errors if UNANSWERED not in e]


def caller(t: Tour, tellers: tuple[tuple[str, int], ...] = TELLERS) -> None:
    if t.wants_any("caller-login-landscape"):
        with t.page(t.box, "/caller", LAPTOP) as p:
            t.shot(p, "caller-login-landscape")
    for teller, window in tellers:
        if not t.wants_any(f"caller-{teller}-landscape"):
            continue
        _take_ticket(t.box, "A")  # someone for the teller to call (the sim's teller is fast)
        with t.page(t.box, "/caller", LAPTOP) as p:
            _form_login(p, {"#l-teller": teller, "#l-password": "1234"},
                        {"#l-window": str(window)})
            _tap(p.locator("[data-act=call_next]:visible"))  # a customer at the window
            t.shot(p, f"caller-{teller}-landscape")
            t.english(p, f"caller-{teller}-landscape")


def lobby(t: Tour) -> None:
    if not t.wants_any("lobby-login-landscape", "lobby-landscape"):
        return
    with t.page(t.box, "/lobby", LAPTOP) as p:
        t.shot(p, "lobby-login-landscape")
        _form_login(p, {"#l-user": LOBBY[0], "#l-password": LOBBY[1]})
        t.shot(p, "lobby-landscape")
        t.english(p, "lobby-landscape")


def _centre_login(t: Tour, p: Any, shot: bool = False) -> None:
    p.wait_for_url("**/login**")
    _before_login(p)
    p.fill("#user", demo.ADMIN[0])
    p.fill("#password", demo.ADMIN[1])
    if shot:
        t.shot(p, "centre-login")
    p.click("button[type=submit]")
    p.wait_for_url("**/live**")
    t.settle(p)


CENTRE_PAGES = (  # name, path: the head office's pages, as the province's administrator
    ("centre-live-province", "/live"),
    ("centre-live-city", "/live?org=100101"),
    ("centre-live-branch", f"/live?org={BOX_CODE}"),
    ("centre-alerts", "/alerts"),
    ("centre-report", "/reports"),
    ("centre-appointments", "/office/appointments"),
    ("centre-staffing", f"/office/staffing?branch={BOX_CODE}"),
    ("centre-config", f"/office/config?branch={BOX_CODE}"),
    ("centre-versions", "/office/versions"),
    ("centre-orgs", "/office/orgs"),
    ("centre-users", "/office/users"),
    ("centre-audit", "/office/audit"),
)


def centre(t: Tour, pages: tuple[tuple[str, str], ...] = CENTRE_PAGES) -> None:
    with t.page(t.centre, "/live", DESKTOP) as p:
        _centre_login(t, p, shot=True)
        for name, path in pages:
            if not t.wants_any(name):
                continue
            t.goto(p, t.centre + path)
            if name == "centre-report":  # today's figures by branch and business
                with contextlib.suppress(Exception):
                    p.select_option("#report", "branch-business", timeout=3000)
                _tap(p.locator("#filters button[type=submit]"))
            t.shot(p, name, full_page=True)
            t.english(p, name)


def phone(t: Tour) -> None:
    if not t.wants_any("customer-branches-phone", "customer-branch-phone",
                       "customer-login-phone"):
        return
    with t.page(t.centre, "/m", PHONE) as p:
        t.shot(p, "customer-branches-phone", full_page=True)
        t.english(p, "customer-branches-phone")
        t.goto(p, t.centre + f"/m/b/{BOX_CODE}")
        t.shot(p, "customer-branch-phone", full_page=True)
        t.english(p, "customer-branch-phone")
        t.goto(p, t.centre + f"/m/login?next=/m/b/{BOX_CODE}")
        t.shot(p, "customer-login-phone", full_page=True)


CUSTOMER = ("13812345678", "张三", "410105199003070077")  # the demo's customer (a valid ID)
SIGNED_IN = ("customer-register-phone", "customer-ticket-phone", "customer-slots-phone",
             "customer-appointment-phone", "customer-me-phone", "customer-rating-phone")


def _sms_code(outbox: Path, phone: str) -> str:
    """The last sign-in code the centre 'texted' ``phone``: its SMS outbox (a JSON line a
    message, as ``python -m sim demo`` configures it; no SMS is sent)."""
    lines = outbox.read_text(encoding="utf-8").splitlines() if outbox.exists() else []
    for line in reversed(lines):
        sms = json.loads(line)
        to = str(sms.get("to", ""))  # masked: 138****5678
        if to[:3] == phone[:3] and to[-4:] == phone[-4:] and "验证码是" in sms["text"]:
            return str(sms["text"].split("验证码是")[1][:6])
    raise RuntimeError(f"no sign-in code for {phone} in {outbox}")


def _sign_in(t: Tour, p: Any) -> None:
    """On ``/m/login``: the SMS code from the outbox, then the registration form (pictured)."""
    assert t.sms is not None
    phone_number, name, id_number = CUSTOMER
    p.locator("#phone").fill(phone_number)
    p.locator("#send-code").click()
    p.locator(".msg.ok").wait_for(timeout=10_000)
    p.locator("#code").fill(_sms_code(t.sms, phone_number))
    p.locator("#sign-in").click()
    p.locator("#register").wait_for(timeout=10_000)  # a new customer: who books
    p.locator("#name").fill(name)
    p.locator("#id-number").fill(id_number)
    t.shot(p, "customer-register-phone", full_page=True)
    p.locator("#register").click()


def _served(t: Tour, code: str) -> None:
    """The booking's code redeemed at the box's kiosk and its ticket served at the tour's
    window 3 (t3, signed in by the caller scene), so that the phone may rate it. Best
    effort: the simulated teller may call it first (then it is still being served, and the
    rating picture is left out, saying so; not a page's failure)."""
    teller, window = TELLERS[-1]

    def call(path: str, body: dict[str, Any], token: str = "") -> dict[str, Any]:
        req = urllib.request.Request(
            t.box + path, method="POST", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(req, timeout=10) as r:
            return dict(json.loads(r.read() or b"{}"))

    for _ in range(80):  # the day's bookings reach the box within a push
        with urllib.request.urlopen(t.box + "/api/appointments/summary", timeout=10) as r:
            if json.loads(r.read()).get("booked", 0) >= 1:
                break
        time.sleep(0.25)  # polling the box's API
    ticket = call("/api/appointments/redeem", {"code": code, "kiosk": "kiosk1"})
    token = str(call(f"/api/windows/{window}/login", {"teller": teller, "password": "1234"})
                ["token"])
    with contextlib.suppress(Exception):
        call(f"/api/windows/{window}/finish", {}, token)  # the caller scene's customer
    for _ in range(3):  # booked tickets come first; a walk-in called meanwhile is served
        now = call(f"/api/windows/{window}/call-next", {}, token)
        call(f"/api/windows/{window}/finish", {}, token)
        if (now.get("current") or {}).get("number") == ticket.get("number"):
            return
    print(f"{PROG}: {ticket.get('number')} was not called at window {window}: "
          "customer-rating-phone left out", file=sys.stderr)


def signed_in(t: Tour) -> None:
    """The customer's pages once signed in (by the SMS code in the demo's outbox):
    registration, a remote ticket, a booking, my bookings and, once served, the rating."""
    if t.sms is None or not t.wants_any(*SIGNED_IN):
        return
    with t.page(t.centre, f"/m/login?next=/m/b/{BOX_CODE}", PHONE) as p:
        _sign_in(t, p)
        take = p.locator("tr[data-queue=A] button.take")
        take.wait_for(timeout=20_000)
        take.click()  # a ticket taken from the phone: the box issues it over the uplink
        p.locator("#number").wait_for(timeout=15_000)
        t.shot(p, "customer-ticket-phone", full_page=True)
        t.goto(p, t.centre + f"/m/book/{BOX_CODE}")
        p.locator("#queue").select_option("A")
        p.locator("#slots .slot:not([disabled])").first.click(timeout=15_000)
        t.shot(p, "customer-slots-phone", full_page=True)
        p.locator("#book").click()
        p.locator("#code").wait_for(timeout=10_000)
        t.shot(p, "customer-appointment-phone", full_page=True)
        booking, code = p.url, p.locator("#code").inner_text()
        t.goto(p, t.centre + "/m/me")
        p.locator(".booking").first.wait_for(timeout=10_000)
        t.shot(p, "customer-me-phone", full_page=True)
        if not t.wants_any("customer-rating-phone"):
            return
        _served(t, code)
        for _ in range(40):  # the finished ticket reaches the centre within a live push
            t.goto(p, booking)
            if p.locator("#rate").count():
                t.shot(p, "customer-rating-phone", full_page=True)
                break
        else:
            print(f"{PROG}: the booking's rating never showed: customer-rating-phone left out",
                  file=sys.stderr)


SCENES: tuple[Scene, ...] = (kiosk, caller, hall, lobby, centre, phone, signed_in)
QUICK = ("kiosk-start-portrait*", "caller-t2-*", "hall-landscape", "lobby-landscape",
         "centre-live-province", "centre-report", "customer-branches-phone",
         "customer-me-phone")  # the suite's: the last one signs in, takes a ticket, books


def run_tour(browser: Any, box: str, centre_url: str, out: Path, quick: bool = False,
             only: list[str] | None = None, sms: Path | None = None) -> Tour:
    tour = Tour(browser, box, centre_url, out, [*(only or []), *(QUICK if quick else ())],
                sms)
    for scene in SCENES:
        scene(tour)
    return tour


def shoot(box: str, centre_url: str, out: Path, quick: bool = False,
          only: list[str] | None = None, sms: Path | None = None) -> Tour:
    """The tour in the distribution's Chromium, through Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return run_tour(browser, box, centre_url, out, quick, only, sms)
        finally:
            browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_args(work: Path) -> tuple[argparse.Namespace, str, str]:
    """The demo's arguments on free loopback ports under ``work``; the box's and the centre's
    addresses."""
    box, centre_port, broker = _free_port(), _free_port(), _free_port()
    args = demo.parse_args([
        "--data-dir", str(work / "box"), "--http", f"127.0.0.1:{box}",
        "--centre", str(work / "centre"), "--centre-http", f"127.0.0.1:{centre_port}",
        "--broker-port", str(broker), "--fleet", "3", "--tellers", SIM_TELLERS])
    return args, f"http://127.0.0.1:{box}", f"http://127.0.0.1:{centre_port}"


async def _with_demo(args: argparse.Namespace, then: Callable[[], Tour],
                     ready_timeout: float) -> Tour | None:
    """Start the demo's services in order, run ``then`` in a thread, stop them all."""
    running: list[tuple[demo.Service, asyncio.subprocess.Process]] = []
    never = asyncio.Event()
    try:
        for s in demo.services(args):
            proc = await asyncio.create_subprocess_exec(
                *s.command(), start_new_session=True, stdout=asyncio.subprocess.DEVNULL,
                preexec_fn=demo._die_with_parent)
            running.append((s, proc))
            if not await demo._until_ready(s, proc, never, ready_timeout):
                return None
        await _until_live(args)
        return await asyncio.to_thread(then)
    finally:
        for s, proc in reversed(running):
            await demo._stop(s, proc)


async def _until_live(args: argparse.Namespace, timeout: float = 30.0) -> None:
    """Until the centre has heard from the box (its live board lists the box's branch with
    figures): the centre's pages then show the demo's branch, not an empty one."""
    import httpx

    host, _, port = args.centre_http.rpartition(":")
    url = f"http://{host}:{port}/api/public/branches/{BOX_CODE}"
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    await asyncio.sleep(3)  # a few live pushes and customers more
                    return
            await asyncio.sleep(0.5)  # the box's first live snapshot is on its way


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[2])
    p.add_argument("--out", type=Path, default=SCREENSHOTS,
                   help="where the PNGs go (default docs/screenshots/)")
    p.add_argument("--quick", action="store_true",
                   help="the reduced set the test suite runs (the full set is the default)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="only these pictures (file names without .png; globs; repeatable)")
    p.add_argument("--work", type=Path, default=None,
                   help="the demo's files (default: a temporary directory, removed after)")
    p.add_argument("--box", default=None, metavar="URL",
                   help="tour a demo already running (python -m sim demo --centre …): its box")
    p.add_argument("--centre", default=None, metavar="URL", help="… and its centre")
    p.add_argument("--sms", type=Path, default=None, metavar="FILE",
                   help="… and its SMS outbox (the customer's sign-in code; without it the "
                        "signed-in customer pages are left out)")
    p.add_argument("--ready-timeout", type=float, default=90.0,
                   help="seconds a demo process may take to become ready")
    return p.parse_args(argv)


def report(tour: Tour | None, started: float) -> int:
    if tour is None:
        print(f"{PROG}: the demo did not start", file=sys.stderr)
        return 1
    problems = tour.problems()
    names = [s.name for s in tour.shots if s.name != "(failed)"]
    print(f"{PROG}: {len(names)} pictures in {time.monotonic() - started:.0f} s")
    for line in problems:
        print(f"{PROG}: {line}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    if a.box or a.centre:
        if not (a.box and a.centre):
            print(f"{PROG}: --box and --centre go together", file=sys.stderr)
            return 2
        return report(shoot(a.box, a.centre, a.out, a.quick, a.only, a.sms), started)
    work = a.work or Path(tempfile.mkdtemp(prefix="paidui-tour-"))
    try:
        args, box, centre_url = demo_args(work)
        demo.seed_media(args.data_dir)
        tour = asyncio.run(_with_demo(
            args, lambda: shoot(box, centre_url, a.out, a.quick, a.only,
                                demo.sms_outbox(args)), a.ready_timeout))
        return report(tour, started)
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
