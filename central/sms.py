"""Sending SMS through the operator's gateway (SPEC A8, C2, H2, H4): one interface, two adapters.

The centre has one gateway, configured in ``[sms]`` (:class:`central.config.SmsSettings`),
used by the alert desk (:mod:`central.alerts`), the sign-in codes of the customer pages
(:mod:`central.appointments`) and the replies to SMS commands (:mod:`central.sms_commands`).

* :class:`LogSms` writes each message to the log, the number masked, keeps it in
  :attr:`LogSms.sent` and, if ``outbox_file`` is set, appends it as a JSON line
  ``{"to": "138****5678", "text": …}`` to that file — for a centre with no gateway yet,
  for trying the alert rules and the customer pages out, and for tests.
* :class:`HttpSms` calls a gateway over HTTP: a configurable URL, method, body template,
  content type, headers, bearer token and timeout. ``{phone}`` and ``{text}`` in the URL
  and the body are filled in, escaped for where they stand (URL-encoded in a URL or a form
  body, JSON-escaped in a JSON body). A 2xx answer (that contains ``success_contains``, if
  set) is a success; anything else raises :class:`SmsError` (the number never in it), and
  the alert desk tries again later.

Phone numbers are personal data: :func:`protocols.appointment.mask_phone` is what logs and
the API show.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from protocols.appointment import mask_phone

from .errors import CentreError

if TYPE_CHECKING:
    from .config import SmsSettings

__all__ = ["HttpSms", "LogSms", "SmsError", "SmsGateway", "make_gateway"]

log = logging.getLogger(__name__)


class SmsError(CentreError, OSError):
    """The gateway did not take the message (``detail`` says why; no phone number in it)."""


class SmsGateway(Protocol):
    """What the centre sends through."""

    name: str

    async def send(self, phone: str, text: str) -> None:
        """Send ``text`` to ``phone``; raise :class:`SmsError` if the gateway refuses."""


class LogSms:
    """Writes each message to the log instead of sending it (and to ``outbox``, if given)."""

    name = "log"

    def __init__(self, outbox: str | Path | None = None) -> None:
        self.outbox = Path(outbox) if outbox else None
        self.sent: list[tuple[str, str]] = []  # (masked phone, text), for a look at the log

    async def send(self, phone: str, text: str) -> None:
        masked = mask_phone(phone)
        self.sent.append((masked, text))
        log.info("SMS (log gateway) to %s: %s", masked, text)
        if self.outbox is not None:
            line = json.dumps({"to": masked, "text": text}, ensure_ascii=False) + "\n"
            await asyncio.to_thread(_append, self.outbox, line)


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(line)


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
        if s.token:
            headers["Authorization"] = f"Bearer {s.token}"
        data = None
        if s.method == "POST":
            escape = _json_escape if "json" in s.content_type else urllib.parse.quote_plus
            data = _fill(s.body, phone, text, escape).encode("utf-8")
            headers.setdefault("Content-Type", s.content_type)
        return urllib.request.Request(url, data=data, headers=headers, method=s.method)

    async def send(self, phone: str, text: str) -> None:
        req = self.request(phone, text)
        await asyncio.to_thread(self._post, req)
        log.info("SMS to %s sent via %s", mask_phone(phone), self.url.split("?")[0])

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
    return LogSms(settings.outbox_file)
