"""A simulated WeChat for the centre's official account (docs/integrations.md).

Two halves, speaking WeChat's bytes (:mod:`protocols.wechat`):

* :class:`Follower`: WeChat's message servers as one follower's phone reaches the centre:
  each message (text, location, menu click, subscribe) as WeChat's XML, signed with the
  account's token and, in safe mode, AES-encrypted with its EncodingAESKey and signed
  again (``msg_signature``); the reply's signature checked and decrypted, its addressee
  checked, its text returned.
* :class:`ApiServer`: the WeChat API on loopback (``/cgi-bin/token``,
  ``/cgi-bin/message/template/send``, ``/cgi-bin/message/custom/send``): checks the appid
  and secret, issues access tokens with an expiry, refuses an unknown or expired token
  (40001/42001) and records each message it accepts (:attr:`ApiServer.sent`, and one JSON
  line each in its ``outbox`` file when given).

``python -m sim wechat --url http://127.0.0.1:8090 --token T --appid A [--aes-key K]
say 你好 | location 34.757 113.665 | click MY_TICKETS`` chats as a follower;
``python -m sim wechat api --appid A --secret S --port P --outbox FILE`` runs the API (what
``./flash.sh sim`` runs for its centre: the messages it sends land in FILE).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from protocols import wechat as wx

__all__ = ["ApiServer", "Follower", "main"]

ACCOUNT = "gh_paidui_sim"  # the account's original id (ToUserName of what followers send)


@dataclass
class Follower:
    """One follower of the account, talking to the centre's ``/api/wechat``."""

    http: httpx.AsyncClient  # base_url: the centre
    token: str
    appid: str
    openid: str = "oSimFollower0001"
    aes_key: str | None = None  # given: safe mode (安全模式)
    path: str = "/api/wechat"
    clock: Callable[[], float] = time.time  # WeChat's clock (real time)
    last_status: int = 0
    _msg: int = field(default=0, repr=False)

    async def say(self, text: str) -> str | None:
        return await self.send({"MsgType": "text", "Content": text, "MsgId": self._next()})

    async def location(self, lat: float, lon: float, label: str = "") -> str | None:
        return await self.send({"MsgType": "location", "Location_X": f"{lat:.6f}",
                                "Location_Y": f"{lon:.6f}", "Scale": "15", "Label": label,
                                "MsgId": self._next()})

    async def click(self, key: str) -> str | None:
        return await self.send({"MsgType": "event", "Event": "CLICK", "EventKey": key})

    async def subscribe(self) -> str | None:
        return await self.send({"MsgType": "event", "Event": "subscribe"})

    async def unsubscribe(self) -> str | None:
        return await self.send({"MsgType": "event", "Event": "unsubscribe"})

    def _next(self) -> str:
        self._msg += 1
        return str(int(self.clock()) * 1000 + self._msg)

    def message(self, fields: dict[str, str]) -> str:
        return wx.message_xml({"ToUserName": ACCOUNT, "FromUserName": self.openid,
                               "CreateTime": int(self.clock()), **fields})

    def signed(self, body: str) -> tuple[dict[str, str], str]:
        """The query and body WeChat would post for the message XML ``body``."""
        timestamp, nonce = str(int(self.clock())), str(secrets.randbelow(10 ** 9))
        params = {"signature": wx.signature(self.token, timestamp, nonce),
                  "timestamp": timestamp, "nonce": nonce, "openid": self.openid}
        if self.aes_key is None:
            return params, body
        key = wx.aes_key(self.aes_key)
        enc = wx.encrypt(key, self.appid, body.encode(), os.urandom(16))
        params.update(encrypt_type="aes",
                      msg_signature=wx.signature(self.token, timestamp, nonce, enc))
        return params, wx.message_xml({"ToUserName": ACCOUNT, "Encrypt": enc})

    async def send(self, fields: dict[str, str]) -> str | None:
        """Post one message; the reply's text (None: ``success``, no reply)."""
        params, body = self.signed(self.message(fields))
        r = await self.http.post(self.path, params=params, content=body.encode(),
                                 headers={"Content-Type": "text/xml"})
        self.last_status = r.status_code
        if r.status_code != 200:
            raise WeChatRefused(r.status_code)
        return self.read_reply(r.text)

    def read_reply(self, text: str) -> str | None:
        """The text of the centre's passive reply, checked as WeChat checks it."""
        if text in ("", "success"):
            return None
        if self.aes_key is not None:
            f = wx.parse_xml(text)
            wx.check_signature(f["MsgSignature"], self.token, f["TimeStamp"], f["Nonce"],
                               f["Encrypt"])
            text = wx.decrypt(wx.aes_key(self.aes_key), self.appid, f["Encrypt"]).decode()
        reply = wx.parse_xml(text)
        if reply.get("ToUserName") != self.openid or reply.get("FromUserName") != ACCOUNT:
            raise ValueError("a reply addressed to someone else")
        if reply.get("MsgType") != "text":
            raise ValueError(f"a {reply.get('MsgType')} reply")
        return reply["Content"]


class WeChatRefused(Exception):
    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"the centre answered {status}")


# --- the API --------------------------------------------------------------------------------------


class ApiServer:
    """WeChat's API on ``127.0.0.1:<port>`` (0: any free port) for one account (``appid``,
    ``secret``); each accepted message also appended to ``outbox`` as one JSON line."""

    def __init__(self, appid: str, secret: str, expires_in: int = 7200, port: int = 0,
                 outbox: Path | None = None) -> None:
        self.appid, self.secret, self.expires_in = appid, secret, expires_in
        self.outbox = outbox
        self.tokens: dict[str, float] = {}  # token → expires at (monotonic)
        self.sent: list[dict[str, Any]] = []  # {"kind": "template"|"custom", **body}
        self.token_calls = 0
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ApiServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def expire_tokens(self) -> None:
        """Every token issued so far runs out now (WeChat's 42001 next time it is used)."""
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def answer(self, method: str, path: str, query: dict[str, str],
               body: dict[str, Any] | None) -> dict[str, Any]:
        with self.lock:
            if method == "GET" and path == "/cgi-bin/token":
                if query.get("grant_type") != "client_credential":
                    return {"errcode": 40002, "errmsg": "invalid grant_type"}
                if query.get("appid") != self.appid:
                    return {"errcode": 40013, "errmsg": "invalid appid"}
                if query.get("secret") != self.secret:
                    return {"errcode": 40125, "errmsg": "invalid appsecret"}
                token = secrets.token_urlsafe(32)
                self.tokens[token] = time.monotonic() + self.expires_in
                self.token_calls += 1
                return {"access_token": token, "expires_in": self.expires_in}
            kinds = {"/cgi-bin/message/template/send": "template",
                     "/cgi-bin/message/custom/send": "custom"}
            if method != "POST" or path not in kinds:
                return {"errcode": 404, "errmsg": "no such API"}
            expires = self.tokens.get(query.get("access_token", ""))
            if expires is None:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            if expires < time.monotonic():
                return {"errcode": 42001, "errmsg": "access_token expired"}
            if not isinstance(body, dict) or not body.get("touser"):
                return {"errcode": 40003, "errmsg": "invalid openid"}
            kind = kinds[path]
            if kind == "template" and not body.get("template_id"):
                return {"errcode": 40037, "errmsg": "invalid template_id"}
            if kind == "custom" and not (body.get("text") or {}).get("content"):
                return {"errcode": 44004, "errmsg": "empty content"}
            self.sent.append({"kind": kind, **body})
            if self.outbox is not None:
                with self.outbox.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(self.sent[-1], ensure_ascii=False) + "\n")
            return {"errcode": 0, "errmsg": "ok", "msgid": len(self.sent)}


def _handler(api: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            body = None
            if method == "POST":
                raw = self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 65536))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
            out = json.dumps(api.answer(method, url.path, query, body)).encode()
            self.send_response(200)  # WeChat answers errors as 200 with an errcode
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


# --- the command line -------------------------------------------------------------------------


def serve_api(argv: list[str]) -> int:
    """``python -m sim wechat api``: the API until SIGTERM or SIGINT (then exit 0)."""
    p = argparse.ArgumentParser(prog="python -m sim wechat api",
                                description="WeChat's API for one account, on loopback")
    p.add_argument("--appid", required=True, help="wechat.appid")
    p.add_argument("--secret", required=True, help="wechat.appsecret")
    p.add_argument("--port", type=int, default=0, help="the port (0: any free one)")
    p.add_argument("--outbox", type=Path, default=None,
                   help="append each accepted message here as a JSON line")
    args = p.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with ApiServer(args.appid, args.secret, port=args.port, outbox=args.outbox) as api:
        print(f"WeChat API for {args.appid} on {api.url}", flush=True)
        stop.wait()
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["api"]:
        return serve_api(argv[1:])
    p = argparse.ArgumentParser(prog="python -m sim wechat",
                                description="chat with the centre's official account as a "
                                            "follower (through a simulated WeChat)")
    p.add_argument("--url", default="http://127.0.0.1:8090", help="the centre")
    p.add_argument("--token", required=True, help="wechat.token")
    p.add_argument("--appid", required=True, help="wechat.appid")
    p.add_argument("--aes-key", default=None, help="wechat.encoding_aes_key (safe mode)")
    p.add_argument("--openid", default="oSimFollower0001")
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("say").add_argument("text")
    loc = sub.add_parser("location")
    loc.add_argument("lat", type=float)
    loc.add_argument("lon", type=float)
    sub.add_parser("click").add_argument("key", help="NEARBY, MY_TICKETS or RATE")
    sub.add_parser("subscribe")
    args = p.parse_args(argv)

    async def run() -> str | None:
        async with httpx.AsyncClient(base_url=args.url, timeout=10) as http:
            f = Follower(http, args.token, args.appid, args.openid, args.aes_key)
            if args.what == "say":
                return await f.say(args.text)
            if args.what == "location":
                return await f.location(args.lat, args.lon)
            if args.what == "click":
                return await f.click(args.key)
            return await f.subscribe()

    try:
        print(asyncio.run(run()) or "(no reply)")
    except WeChatRefused as exc:
        print(f"refused: HTTP {exc.status}")
        return 1
    return 0
