"""Sending SMS through the operator's gateway (SPEC A8, C2): an interface, two adapters.

* :class:`LogSms` writes each message to the log, the number masked — for a centre with
  no gateway yet, and for trying the alert rules out.
* :class:`HttpSms` calls a gateway over HTTP: a configurable URL, method, body template,
  content type, headers and timeout (``[alerts.sms]`` in the centre config). ``{phone}``
  and ``{text}`` in the URL and the body are filled in, escaped for where they stand
  (URL-encoded in a URL or a form body, JSON-escaped in a JSON body). A 2xx answer (that
  contains ``success_contains``, if set) is a success; anything else raises
  :class:`SmsError` and the alert desk tries again later.

Phone numbers are personal data: :func:`mask_phone` is what logs and the API show.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .errors import CentreError

if TYPE_CHECKING:
    from .config import SmsSettings

__all__ = ["HttpSms", "LogSms", "SmsError", "SmsGateway", "make_gateway", "mask_phone"]

log = logging.getLogger(__name__)


class SmsError(CentreError, OSError):
    """The gateway did not take the message (``detail`` says why; no phone number in it)."""


class SmsGateway(Protocol):
    """What the alert desk sends through."""

    name: str

    async def send(self, phone: str, text: str) -> None:
        """Send ``text`` to ``phone``; raise :class:`SmsError` if the gateway refuses."""


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``; short numbers → ``****``."""
    digits = phone.strip()
    if len(digits) < 8:
        return "****"
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


class LogSms:
    """Writes each message to the log instead of sending it."""

    name = "log"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (masked phone, text), for a look at the log

    async def send(self, phone: str, text: str) -> None:
        masked = mask_phone(phone)
        self.sent.append((masked, text))
        log.info("SMS (log gateway) to %s: %s", masked, text)


class HttpSms:
    """Sends through an HTTP gateway (see the module docstring)."""

    name = "http"

    def __init__(self, settings: SmsSettings) -> None:
        if not settings.url:
            raise ValueError("the http SMS gateway needs a url")
        self.settings = settings
        self.url = settings.url

    def request(self, phone: str, text: str) -> urllib.request.Request:
        """The HTTP request for one message (what :meth:`send` sends)."""
        s = self.settings
        url = _fill(self.url, phone, text, urllib.parse.quote)
        headers = dict(s.headers)
        data = None
        if s.method == "POST":
            escape = _json_escape if "json" in s.content_type else urllib.parse.quote_plus
            data = _fill(s.body, phone, text, escape).encode("utf-8")
            headers.setdefault("Content-Type", s.content_type)
        return urllib.request.Request(url, data=data, headers=headers, method=s.method)

    async def send(self, phone: str, text: str) -> None:
        req = self.request(phone, text)
        await asyncio.to_thread(self._post, req)

    def _post(self, req: urllib.request.Request) -> None:
        s = self.settings
        try:
            with urllib.request.urlopen(req, timeout=s.timeout_s) as answer:
                status, body = answer.status, answer.read(64 * 1024)
        except urllib.error.HTTPError as exc:
            raise SmsError(f"gateway answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SmsError(f"gateway unreachable: {reason}") from None
        if not 200 <= status < 300:
            raise SmsError(f"gateway answered HTTP {status}")
        if s.success_contains and s.success_contains not in body.decode("utf-8", "replace"):
            raise SmsError(f"gateway answer lacks {s.success_contains!r}")


def _json_escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _fill(template: str, phone: str, text: str, escape: Callable[[str], str]) -> str:
    return template.replace("{phone}", escape(phone)).replace("{text}", escape(text))


def make_gateway(settings: SmsSettings) -> SmsGateway:
    """The adapter ``settings.adapter`` names."""
    if settings.adapter == "http":
        return HttpSms(settings)
    return LogSms()
