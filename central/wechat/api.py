"""The WeChat API as the centre calls it: the access token, template and customer-service
messages (``wechat.api_base``: WeChat's ``https://api.weixin.qq.com`` or the simulator).

* ``GET /cgi-bin/token?grant_type=client_credential&appid&secret`` → ``access_token``,
  ``expires_in`` (7200 s): kept until :data:`REFRESH_MARGIN_S` before it runs out, fetched
  once however many messages wait for it, and fetched again at once when WeChat answers a
  call with an expired or invalid token (40001, 40014, 42001).
* ``POST /cgi-bin/message/template/send?access_token`` ``{"touser", "template_id", "url",
  "data": {key: {"value"}}}`` (模板消息: a notice outside the 48 hours after the follower's
  last message).
* ``POST /cgi-bin/message/custom/send?access_token`` ``{"touser", "msgtype": "text",
  "text": {"content"}}`` (客服消息: within 48 hours of the follower's last message).

Any answer with a non-zero ``errcode``, or no answer, raises :class:`WeChatApiError` (the
openid and the secret never in it): the caller decides whether to try again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx

from ..errors import CentreError
from .settings import WeChatSettings

__all__ = ["REFRESH_MARGIN_S", "WeChatApi", "WeChatApiError"]

log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 300.0  # a token is renewed this long before WeChat says it expires
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid credential, invalid token, token expired


class WeChatApiError(CentreError, OSError):
    """WeChat did not take the call: ``errcode`` (0 when there was no answer at all)."""

    def __init__(self, what: str, errcode: int, errmsg: str) -> None:
        self.errcode, self.errmsg = errcode, errmsg
        super().__init__(f"WeChat {what}: {errcode} {errmsg}")


class WeChatApi:
    """One official account's API calls; ``clock`` is monotonic seconds (token expiry)."""

    def __init__(self, settings: WeChatSettings, clock: Callable[[], float],
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not settings.appsecret:
            raise ValueError("wechat.appsecret is needed for the WeChat API")
        self.settings = settings
        self.clock = clock
        self._http = httpx.AsyncClient(base_url=settings.api_base.rstrip("/"),
                                       timeout=settings.api_timeout_s, transport=transport)
        self._token: tuple[str, float] | None = None  # (token, renew after)
        self._lock = asyncio.Lock()
        self.tokens_fetched = 0

    async def close(self) -> None:
        await self._http.aclose()

    async def access_token(self, *, renew: bool = False) -> str:
        """A valid access token (fetched when there is none, it is due, or ``renew``)."""
        held = self._token
        if held is not None and not renew and self.clock() < held[1]:
            return held[0]
        async with self._lock:
            if self._token is not None and self._token is not held and not renew:
                return self._token[0]  # fetched while this call waited
            s = self.settings
            body = await self._call("GET", "/cgi-bin/token", "token", params={
                "grant_type": "client_credential", "appid": s.appid, "secret": s.appsecret})
            token, expires = body.get("access_token"), body.get("expires_in", 7200)
            if not isinstance(token, str) or not token or not isinstance(expires, int):
                raise WeChatApiError("token", 0, "no access_token in the answer")
            self._token = (token, self.clock() + max(60.0, expires - REFRESH_MARGIN_S))
            self.tokens_fetched += 1
            return token

    async def send_template(self, openid: str, template_id: str, data: dict[str, str],
                            url: str | None = None) -> dict[str, Any]:
        """A template message; ``data`` maps the template's keys to their values."""
        payload: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                   "data": {k: {"value": v} for k, v in data.items()}}
        if url:
            payload["url"] = url
        return await self._with_token("/cgi-bin/message/template/send", "template", payload)

    async def send_text(self, openid: str, text: str) -> dict[str, Any]:
        """A customer-service text message."""
        return await self._with_token("/cgi-bin/message/custom/send", "custom", {
            "touser": openid, "msgtype": "text", "text": {"content": text}})

    async def _with_token(self, path: str, what: str, payload: dict[str, Any]
                          ) -> dict[str, Any]:
        token = await self.access_token()
        try:
            return await self._call("POST", path, what, params={"access_token": token},
                                    json=payload)
        except WeChatApiError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.info("WeChat %s: the access token was refused (%d); fetching a new one",
                     what, exc.errcode)
            token = await self.access_token(renew=True)
            return await self._call("POST", path, what, params={"access_token": token},
                                    json=payload)

    async def _call(self, method: str, path: str, what: str, **kw: Any) -> dict[str, Any]:
        try:
            r = await self._http.request(method, path, **kw)
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WeChatApiError(what, 0, type(exc).__name__) from None
        if not isinstance(body, dict):
            raise WeChatApiError(what, 0, f"HTTP {r.status_code}, not a JSON object")
        code = body.get("errcode", 0)
        if code:
            raise WeChatApiError(what, int(code) if isinstance(code, int) else -1,
                                 str(body.get("errmsg", ""))[:200])
        if r.status_code != 200:
            raise WeChatApiError(what, 0, f"HTTP {r.status_code}")
        return body
