"""``GET/POST /api/wechat``: the URL the official account's 服务器配置 points at.

Who may use it: WeChat's servers, which hold the account's ``wechat.token``; the route is
outside back-office sessions and proves the caller by WeChat's own signature instead.

* ``GET ?signature&timestamp&nonce&echostr``: URL verification; ``echostr`` back when the
  signature is the token's, else 403.
* ``POST ?signature&timestamp&nonce[&encrypt_type=aes&msg_signature]`` with the XML
  message: checked in this order, each failure a counted, logged 4xx with an empty body
  (nothing of the request echoed): the query's shape (400), the signature (plain mode:
  ``signature``; safe mode: ``msg_signature`` over ``Encrypt`` too; 403), the timestamp
  within ``wechat.max_age_s`` of now (403), the request not seen before (the store's
  ``wechat_nonces``, 403), then the body: its size, XML, decryption and message (400/413).
  A safe-mode account refuses plain messages and the other way round (400).
* The answer is a passive reply (encrypted and signed in safe mode) within
  ``wechat.reply_within_s``; an answer that takes longer (a branch slow to issue a ticket)
  is ``success`` at once and goes as a customer-service message when ready (with
  ``wechat.appsecret``; without it, it is logged as lost).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import PlainTextResponse, Response

from protocols import wechat as wx

from ..auth import outside_sessions

if TYPE_CHECKING:
    from ..appointments import Appointments
    from ..code_limits import CodeLimits
    from ..public import PublicStatus
    from ..remote import RemoteTickets
    from ..store import Store
    from .api import WeChatApi
    from .dialogue import WeChatDesk
    from .settings import WeChatSettings

__all__ = ["WeChatAccount", "make_account", "mount_wechat", "router"]

log = logging.getLogger(__name__)

STATUS = {"bad_query": 400, "bad_signature": 403, "stale": 403, "replayed": 403,
          "wrong_mode": 400, "bad_xml": 400, "bad_message": 400, "too_large": 413,
          "bad_encrypt": 400, "bad_appid": 403, "bad_key": 400}
HEX40 = re.compile(r"^[0-9a-fA-F]{40}$")
ECHO = re.compile(r"^[A-Za-z0-9+/=_-]{1,256}$")  # WeChat's echostr: digits (base64 at most)


class Refused(Exception):
    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(code)


class WeChatAccount:
    """The official account at the centre: checks, decrypts, answers through the desk."""

    def __init__(self, settings: WeChatSettings, desk: WeChatDesk, api: WeChatApi | None,
                 wall: Callable[[], float]) -> None:
        self.settings, self.desk, self.api, self.wall = settings, desk, api, wall
        self.key = wx.aes_key(settings.encoding_aes_key) if settings.encoding_aes_key else None
        self.refused: Counter[str] = Counter()  # by code (docs: the rejections)
        self.answered = 0
        self.late = 0  # answers sent afterwards as customer-service messages
        self._late: set[asyncio.Task[None]] = set()

    # --- checks ----------------------------------------------------------------------------

    def refuse(self, code: str, request: Request) -> Response:
        self.refused[code] += 1
        host = request.client.host if request.client else "?"
        log.warning("WeChat request refused: %s (from %s)", code, host)
        return PlainTextResponse("", STATUS.get(code, 400))

    def _query(self, timestamp: str, nonce: str, signature: str) -> None:
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12
                and 1 <= len(nonce) <= 64 and nonce.isascii() and nonce.isprintable()
                and HEX40.fullmatch(signature)):
            raise Refused("bad_query")

    def _signed(self, signature: str, timestamp: str, nonce: str, *more: str) -> None:
        try:
            wx.check_signature(signature, self.settings.token, timestamp, nonce, *more)
        except wx.WeChatError:
            raise Refused("bad_signature") from None

    async def _fresh(self, timestamp: str, nonce: str, signature: str) -> None:
        now = self.wall()
        if abs(now - int(timestamp)) > self.settings.max_age_s:
            raise Refused("stale")
        digest = hashlib.sha256(f"{timestamp}|{nonce}|{signature.lower()}".encode()).hexdigest()
        if not await self.desk.pool.run(_first_time, digest, now, self.settings.max_age_s):
            raise Refused("replayed")

    # --- the two requests ---------------------------------------------------------------------

    def verify(self, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        self._query(timestamp, nonce, signature)
        if not ECHO.fullmatch(echostr):
            raise Refused("bad_query")
        self._signed(signature, timestamp, nonce)
        if abs(self.wall() - int(timestamp)) > self.settings.max_age_s:
            raise Refused("stale")
        return echostr

    async def receive(self, body: bytes, signature: str, timestamp: str, nonce: str,
                      encrypt_type: str | None, msg_signature: str | None) -> str:
        self._query(timestamp, nonce, signature)
        safe = self.settings.mode == "safe"
        if safe != (encrypt_type == "aes"):
            raise Refused("wrong_mode")
        try:
            if safe:
                if msg_signature is None or not HEX40.fullmatch(msg_signature):
                    raise Refused("bad_query")
                _, encrypted = wx.encrypted_envelope(body)
                self._signed(msg_signature, timestamp, nonce, encrypted)
                self._signed(signature, timestamp, nonce)
                await self._fresh(timestamp, nonce, msg_signature)
                assert self.key is not None
                plain = wx.decrypt(self.key, self.settings.appid, encrypted)
            else:
                self._signed(signature, timestamp, nonce)
                await self._fresh(timestamp, nonce, signature)
                plain = body
            message = wx.parse_message(plain)
        except wx.WeChatError as exc:
            raise Refused(exc.code) from None
        text = await self._answer_in_time(message)
        self.answered += 1
        if text is None:
            return "success"
        reply = wx.text_reply(message.from_user, message.to_user, int(self.wall()), text)
        if not safe:
            return reply
        assert self.key is not None
        return wx.encrypted_reply(self.settings.token, self.key, self.settings.appid, reply,
                                  str(int(self.wall())), str(secrets.randbelow(10 ** 10)),
                                  os.urandom(16))

    async def _answer_in_time(self, message: wx.Message) -> str | None:
        task = asyncio.create_task(self.desk.answer(message))
        done, _ = await asyncio.wait({task}, timeout=self.settings.reply_within_s)
        if task in done:
            return _result(task)
        follow = asyncio.create_task(self._later(task, message.from_user))
        self._late.add(follow)
        follow.add_done_callback(self._late.discard)
        return None

    async def _later(self, task: asyncio.Task[str | None], openid: str) -> None:
        await asyncio.wait({task})
        text = _result(task)
        if text is None:
            return
        if self.api is None:
            log.warning("a late WeChat answer is lost: no wechat.appsecret for the API")
            return
        try:
            await self.api.send_text(openid, text)
            self.late += 1
        except Exception:
            log.exception("a late WeChat answer could not be sent")

    async def close(self) -> None:
        for t in list(self._late):
            t.cancel()
        if self.api is not None:
            await self.api.close()


def _result(task: asyncio.Task[str | None]) -> str | None:
    try:
        return task.result()
    except Exception:
        log.exception("the WeChat answer failed")
        return "系统繁忙,请稍后再试。"


def _first_time(st: Store, digest: str, now: float, max_age: float) -> bool:
    """Record a request; False when it was seen (within ``max_age``: older ones are stale)."""
    st.execute("DELETE FROM wechat_nonces WHERE at < ?", (now - 2 * max_age,))
    cur = st.execute("INSERT INTO wechat_nonces (digest, at) VALUES (?, ?) "
                     "ON CONFLICT (digest) DO NOTHING", (digest, now))
    return bool(cur.rowcount == 1)


# --- the route ----------------------------------------------------------------------------------


router = APIRouter(tags=["wechat"], include_in_schema=False)
"""WeChat's servers: signed by the account's token (no session)."""

Param = Annotated[str, Query()]  # checked by the account: a bad one is counted, not a 422


def _account(request: Request) -> WeChatAccount:
    account: WeChatAccount = request.app.state.wechat
    return account


Account = Annotated[WeChatAccount, Depends(_account)]


@router.get("/api/wechat", response_class=PlainTextResponse)
async def verify(request: Request, account: Account, signature: Param = "",
                 timestamp: Param = "", nonce: Param = "",
                 echostr: Param = "") -> Response:
    try:
        return PlainTextResponse(account.verify(signature, timestamp, nonce, echostr))
    except Refused as r:
        return account.refuse(r.code, request)


@router.post("/api/wechat")
async def receive(request: Request, account: Account, signature: Param = "",
                  timestamp: Param = "", nonce: Param = "",
                  encrypt_type: Annotated[str | None, Query()] = None,
                  msg_signature: Annotated[str | None, Query()] = None) -> Response:
    body = await request.body()
    if len(body) > wx.MAX_BODY:
        return account.refuse("too_large", request)
    try:
        reply = await account.receive(body, signature, timestamp, nonce, encrypt_type,
                                      msg_signature)
    except Refused as r:
        return account.refuse(r.code, request)
    return Response(reply, media_type="application/xml" if reply != "success"
                    else "text/plain")


def make_account(settings: WeChatSettings, appointments: Appointments, remote: RemoteTickets,
                 status: PublicStatus, code_limits: CodeLimits,
                 wall: Callable[[], float] | None = None) -> WeChatAccount:
    """The account with its desk and (given ``wechat.appsecret``) its API client.
    ``wall`` is real time (WeChat's timestamps): the system clock unless a test says."""
    import time

    from common.clock import SystemClock

    from .api import WeChatApi
    from .dialogue import WeChatDesk

    wall = wall or SystemClock().now
    desk = WeChatDesk(appointments, remote, status, code_limits, settings, wall)
    api = WeChatApi(settings, time.monotonic) if settings.appsecret else None
    return WeChatAccount(settings, desk, api, wall)


def mount_wechat(app: FastAPI, account: WeChatAccount) -> None:
    """Add ``/api/wechat`` (outside sessions: WeChat's signature is the proof)."""
    app.state.wechat = account
    app.include_router(router, dependencies=[Depends(outside_sessions("wechat"))])
