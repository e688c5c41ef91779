"""Helpers for the customer-channel tests: a centre with its customer channels on a manual
clock, a box with its appointments component, customers signed in over the real API.

Import the fixtures you use into the test module (as with tests/uplink_support.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from central.appointments import Appointments as Appointments_
from central.broker import LocalBroker
from central.customers import CustomerChannels
from central.service import Centre
from central.sms import LogSms
from central.web import create_app
from common.clock import ManualClock
from controller.appointments import Appointments
from controller.box import Box
from protocols.cards import id_check_char
from tests.office_support import ADMIN_SEED, login
from tests.uplink_support import BRANCH, centre_config, running, uplink_for, wait_for

PHONE = "13812345678"
ID_NUMBER = "41010519900307123"
ID_NUMBER += id_check_char(ID_NUMBER)
CUSTOMER_SETS = ("customers.push_every_s=0.1", "customers.resend_s=2",
                 "customers.track_ttl_s=0.2", "customers.status_ttl_s=0.2",
                 "customers.remote_timeout_s=5")


def an_id(seq: int, birth: str = "19900307", region: str = "410105") -> str:
    first = f"{region}{birth}{seq:03d}"
    return first + id_check_char(first)


@contextlib.asynccontextmanager
async def customer_centre(broker: LocalBroker, store_url: str, clock: ManualClock,
                          tmp_path: Path, *sets: str) -> AsyncIterator[Centre]:
    """An in-process centre (consumers, no HTTP server) whose customer channels run on
    ``clock`` and text through a :class:`LogSms` (``centre.customers.appointments.sms``)."""
    cfg = centre_config(broker, store_url, f"customers.secret_file={tmp_path / 'customers.key'}",
                        *CUSTOMER_SETS, *sets)
    centre = Centre(cfg)
    centre.customers = CustomerChannels(centre, clock=clock.now, sms=LogSms())
    async with running(centre.run()):
        for c in centre.consumers:
            await asyncio.wait_for(c.ready.wait(), 10)
        yield centre


@contextlib.asynccontextmanager
async def linked_box(box: Box, broker: LocalBroker, **link: Any
                     ) -> AsyncIterator[tuple[Any, Appointments]]:
    """The box's uplink and appointments component, registered as build_components does."""
    from controller.appointments import build_appointments

    uplink = uplink_for(broker, **link)
    (appointments,) = build_appointments(box.config, box.data_dir, [uplink])
    assert isinstance(appointments, Appointments)
    async with running(appointments.run(box)), running(uplink.run(box)):
        await asyncio.wait_for(appointments.ready.wait(), 10)
        yield uplink, appointments


@contextlib.asynccontextmanager
async def plain_centre(store_url: str, tmp_path: Path, clock: ManualClock, *sets: str
                       ) -> AsyncIterator[tuple[Centre, httpx.AsyncClient]]:
    """A centre's customer channels and HTTP API on ``store_url``, without a broker (what
    needs no branch: registration, bookings, staff search, the public status)."""
    from central.config import load_centre_config

    cfg = load_centre_config(None, [f"store.url={store_url}", "http.enabled=false",
                                    f"customers.secret_file={tmp_path / 'customers.key'}",
                                    ADMIN_SEED, *CUSTOMER_SETS, *sets])
    centre = Centre(cfg)
    centre.customers = CustomerChannels(centre, clock=clock.now, sms=LogSms())
    await centre.office.prepare()  # the first administrator, for the staff routes
    try:
        async with http(centre) as api:
            yield centre, api
    finally:
        await centre.customers.link.close()
        await centre.customers.appointments.pool.close()
        await centre.close()  # the reading connection every request's session check uses


async def put_catalogue(a: Appointments_, clock: ManualClock, branch: str = BRANCH,
                        **changes: Any) -> None:
    """Store what the example branch's box answers to a push (its catalogue)."""
    import json

    from controller.appointments import catalogue
    from tests.conftest import example_config

    body = {**catalogue(example_config(), clock.now()), **changes}
    await a.pool.run(lambda st: st.execute(
        "INSERT INTO branch_catalogue (branch, body, updated_at) VALUES (?, ?, 0) ON CONFLICT "
        "(branch) DO UPDATE SET body = excluded.body", (branch, json.dumps(body))))


def http(centre: Centre) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(centre)),
                             base_url="http://centre")


def texts(centre: Centre) -> list[tuple[str, str]]:
    assert centre.customers is not None
    sms = centre.customers.appointments.sms
    assert isinstance(sms, LogSms)
    return sms.sent


async def sign_in(api: httpx.AsyncClient, centre: Centre, phone: str = PHONE,
                  id_number: str = ID_NUMBER, name: str = "王小明") -> str:
    """Sign in by SMS code and register; returns the bearer token."""
    r = await api.post("/api/public/login/code", json={"phone": phone})
    assert r.status_code == 200, r.text
    masked, text = texts(centre)[-1]
    assert masked == phone[:3] + "****" + phone[-4:] and phone not in text
    code = text.split("验证码是")[1][:6]
    r = await api.post("/api/public/login", json={"phone": phone, "code": code})
    assert r.status_code == 200, r.text
    token = str(r.json()["token"])
    if not r.json()["registered"]:
        r = await api.post("/api/public/register", headers=bearer(token),
                           json={"name": name, "id_number": id_number})
        assert r.status_code == 201, r.text
    return token


async def staff(api: httpx.AsyncClient) -> dict[str, str]:
    """A back-office session for the staff routes (the province's first administrator)."""
    return await login(api, "admin", "admin-pw-for-tests")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def bookable(centre: Centre, branch: str = BRANCH, timeout: float = 20.0) -> None:
    """Wait until the branch's catalogue reached the centre (its answer to the first push)."""
    assert centre.customers is not None
    a = centre.customers.appointments

    async def known() -> bool:
        return await a.catalogue(branch) is not None

    await wait_for(known, timeout, f"the catalogue of {branch}")


async def pushed(centre: Centre, day: str, branch: str = BRANCH, timeout: float = 20.0) -> None:
    """Wait until the box has acknowledged the latest revision of a branch-day's list."""
    assert centre.customers is not None
    a = centre.customers.appointments

    async def acked() -> bool:
        row = await a.push_state(branch, day)
        return bool(row and row["acked_revision"] >= row["revision"])

    await wait_for(acked, timeout, f"the bookings of {branch} {day} acknowledged")


class CentreProcess:
    """``python -m central`` with its HTTP API on a free port, as a real subprocess; its
    one clock (``clock.start``) on ``clock_start`` and its SMS to a JSON-lines outbox file."""

    def __init__(self, work: Path, broker: LocalBroker, *sets: str,
                 clock_start: str = "2026-11-25T10:00:00+08:00") -> None:
        from tests.browser import free_port

        self.work, self.port = work, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.outbox = work / "sms.jsonl"
        self.args = ["--set", f"broker.url={broker.url}", "--set", "broker.username=centre",
                     "--set", "broker.password=centre-pw",
                     "--set", f"store.url=sqlite:///{work / 'centre.sqlite3'}",
                     "--set", f"http.port={self.port}",
                     "--set", f"customers.secret_file={work / 'customers.key'}",
                     "--set", f"clock.start={clock_start}",
                     "--set", f"sms.outbox_file={self.outbox}",
                     *[x for s in (*CUSTOMER_SETS, *sets) for x in ("--set", s)]]
        self.proc: Any = None

    def start(self, timeout: float = 30.0) -> CentreProcess:
        import subprocess
        import sys
        import time
        import urllib.request

        from tests.browser import ROOT

        log = (self.work / "centre.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "central", "--log-level", "INFO",
                                      *self.args], cwd=ROOT, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the centre exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/api/public/branches", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)  # another process starting: polling its port
        raise TimeoutError("the centre did not answer in time")

    def stop(self) -> None:
        from tests.browser import stop_process

        stop_process(self.proc)
        self.proc = None

    def public(self, path: str) -> tuple[int, Any]:
        """GET one of the centre's public (customer) endpoints: (status, JSON body)."""
        import json
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.url + "/api/public" + path, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def wait_public(self, path: str, ready: Callable[[int, Any], bool],
                    timeout: float = 20.0) -> Any:
        """Poll a public endpoint until ``ready(status, body)``: the centre has caught up."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            status, body = self.public(path)
            if ready(status, body):
                return body
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: still {status} {body}")
            time.sleep(0.2)  # another process catching up: polling its API

    def last_code(self) -> str:
        """The sign-in code in the last SMS the centre sent."""
        import json

        line = self.outbox.read_text(encoding="utf-8").splitlines()[-1]
        return str(json.loads(line)["text"].split("验证码是")[1][:6])


@contextlib.contextmanager
def centre_and_box(tmp_path: Path, *centre_sets: str) -> Iterator[tuple[CentreProcess, Any]]:
    """A private broker, ``python -m central`` (with ``centre_sets``) and ``python -m
    controller`` linked to it by its uplink, given once the centre has heard the box
    online: the customer pages' browser tests' world."""
    from tests.browser import BoxProcess

    broker = LocalBroker(tmp_path / "broker")
    broker.add_user("centre", "centre-pw")
    password = broker.add_user(BRANCH)
    broker.start()
    centre = CentreProcess(tmp_path, broker, *centre_sets)
    (tmp_path / "data").mkdir()
    box = BoxProcess(tmp_path / "data", f"uplink.broker={broker.url}",
                     f"uplink.password={password}", "uplink.live_interval_s=0.2")
    try:
        centre.start()
        box.start()
        # the world is ready once the centre has heard the box: a page opened before
        # shows the branch unknown (404), and that page does not look again
        centre.wait_public(f"/branches/{BRANCH}", lambda status, body: status == 200
                           and bool(body.get("online")), timeout=30.0)
        yield centre, box
    finally:
        box.stop()
        centre.stop()
        broker.kill()
