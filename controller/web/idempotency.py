"""Repeats and idempotency: one press is one customer (docs/api.md, "Repeats and idempotency").

A client may send ``Idempotency-Key: <16–64 of A–Z a–z 0–9 _ ->`` with a state-changing
request. The key is bound to who sent it (the *asker*): the teller's window and session for
a window command, the kiosk id and client address for a ticket. The same key again from
the same asker gets the first answer instead of acting again::

    request ─▶ auth gate ─▶ handler decorated with @once(asker)
                              │  key absent: act as before
                              │  key malformed: 400 bad_idempotency_key (nothing done)
                              │  (asker, key) seen, same request: the first answer
                              │  (asker, key) seen, other request: 422 idempotency_key_reused
                              │  (asker, key) in flight: wait for it, then its answer
                              └  new: act; the engine records (asker, key) on its event

Two layers, because each covers what the other cannot:

* :class:`Repeats`, in memory: the exact first answer (status, body, refusal), coalescing
  of a double submit still in flight, detection of a key reused for another request.
  Bounded: :data:`SIZE` answers, each for :data:`KEEP_S` seconds, oldest dropped first.
* the engine (``Box.execute(cmd, request)``): the asker's latest key, journaled with the
  event it caused, so a retry after a box restart is still not acted on again; a retried
  ticket gets the ticket its key issued (:func:`controller.kiosk.issue_and_print`).

Askers and keys are hashed before they reach the engine and the journal: neither a session
nonce, a client address nor a key is ever written down. This runs inside the handler,
after the auth gate, so an answer is never given to someone the gate would turn away.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import enum
import functools
import hashlib
import inspect
import re
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

from common.clock import Clock

from ..engine import Request as Asked
from ..errors import Refused
from .error_handlers import error

__all__ = ["HEADER", "KEEP_S", "SIZE", "Repeats", "asked", "kiosk_asker", "once",
           "parse_key", "teller_asker"]

HEADER = "Idempotency-Key"
SIZE = 1024  # answers kept, per box
KEEP_S = 600.0  # how long an answer is kept (a retry comes within seconds)
_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")

Asker = Callable[[Request, dict[str, Any]], str]

# (hashed asker, hashed key) of the request being handled, for Box.execute (see asked())
_ASKED: ContextVar[Asked | None] = ContextVar("paidui_asked", default=None)


class BadKey(ValueError):
    """An ``Idempotency-Key`` that is not one (too short, too long, other characters, sent
    twice): refused before anything is done."""


class KeyReused(ValueError):
    """The same asker sent the same key with a different request."""


def parse_key(request: Request) -> str | None:
    """The request's idempotency key, parsed once: None when absent, else exactly 16–64
    ASCII letters, digits, ``_`` or ``-``. Raises :class:`BadKey`."""
    values = request.headers.getlist(HEADER)
    if not values:
        return None
    if len(values) > 1 or not _KEY.fullmatch(values[0]):
        raise BadKey(values[0][:80] if len(values) == 1 else "sent twice")
    return values[0]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def asked() -> Asked | None:
    """``(asker, key)`` of the request being handled (hashed), or None without a key: what
    a handler passes to ``Box.execute`` so the engine records it."""
    return _ASKED.get()


# --- askers ----------------------------------------------------------------------------------


def teller_asker(request: Request, kwargs: dict[str, Any]) -> str:
    """A window command's asker: the window and the teller's session (the gate has already
    checked that the session is this window's). A box without the screens' gate (a trusted
    local API) has no sessions: the window alone."""
    screens = getattr(request.app.state, "screens", None)
    if screens is not None:
        s, _ = screens["auth"].session_of(request, ("teller",))
        if s is not None:
            return f"window:{s.window}:session:{s.nonce}"
    return f"window:{kwargs.get('n')}:local"


def kiosk_asker(request: Request, kwargs: dict[str, Any]) -> str:
    """A ticket's asker: the kiosk id it names and the address it calls from."""
    req = kwargs.get("req")
    kiosk = getattr(req, "kiosk", "")
    address = request.client.host if request.client else ""
    return f"kiosk:{kiosk}:{address}"


# --- the answers -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Answer:
    request: str  # digest of what was asked: a reused key with another request is refused
    at: float
    answer: asyncio.Future[Any]


class Repeats:
    """The first answers to recent keyed requests, by (asker, key); bounded.

    Args:
        clock: the box's clock (how long an answer is kept is measured on it).
        size: at most this many answers; the oldest goes first.
        keep_s: an answer is kept this long after it was asked.
    """

    def __init__(self, clock: Clock, size: int = SIZE, keep_s: float = KEEP_S) -> None:
        self.clock, self.size, self.keep_s = clock, size, keep_s
        self.answers: OrderedDict[tuple[str, str], _Answer] = OrderedDict()

    def __len__(self) -> int:
        return len(self.answers)

    async def once(self, asker: str, key: str, request: str,
                   act: Callable[[], Awaitable[Any]]) -> tuple[Any, bool]:
        """``(answer, repeated)``: the first answer of ``(asker, key)``, acting only the
        first time. A refusal is an answer (raised again to a repeat); any other error is
        not kept, so a retry acts again. Raises :class:`KeyReused`."""
        now = self.clock.now()
        self._forget(now)
        slot = (asker, key)
        seen = self.answers.get(slot)
        if seen is not None:
            if seen.request != request:
                raise KeyReused(key)
            return await asyncio.shield(seen.answer), True
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.answers[slot] = _Answer(request, now, answer)
        while len(self.answers) > self.size:
            self.answers.popitem(last=False)
        try:
            result = await act()
        except Refused as exc:
            answer.set_exception(exc)
            answer.exception()  # retrieved: nobody may be waiting
            raise
        except BaseException as exc:
            if self.answers.get(slot) is not None and self.answers[slot].answer is answer:
                del self.answers[slot]
            if not isinstance(exc, asyncio.CancelledError):
                answer.set_exception(exc)
                answer.exception()
            else:
                answer.cancel()
            raise
        answer.set_result(result)
        return result, False

    def _forget(self, now: float) -> None:
        while self.answers:
            oldest = next(iter(self.answers.values()))
            if now - oldest.at < self.keep_s:
                break
            self.answers.popitem(last=False)


def _repeats(request: Request) -> Repeats:
    state = request.app.state
    repeats = getattr(state, "repeats", None)
    if repeats is None:
        repeats = state.repeats = Repeats(state.box.clock)
    return repeats


# What FastAPI parses a request's path, query and body into (services are none of these).
_ASKED_WITH = (BaseModel, str, int, float, bool, type(None), dt.date, dt.time, dt.timedelta,
               decimal.Decimal, uuid.UUID, enum.Enum, list, tuple, dict, set, frozenset)


def _fingerprint(request: Request, kwargs: dict[str, Any]) -> str:
    """What was asked: the route and the request's data (path, query, body), not the
    services the handler is given (the box, the hub: those are no part of the request)."""
    route = request.scope.get("route")
    parts = [request.method, getattr(route, "path", request.url.path)]
    for name in sorted(kwargs):
        value = kwargs[name]
        if not isinstance(value, _ASKED_WITH):
            continue
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        parts.append(f"{name}={value!r}")
    return _digest("\n".join(parts))


def once(asker: Asker) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Decorate a route handler (under ``@app.post``): a repeat of a keyed request gets the
    first answer (header ``Idempotent-Replayed: true``) instead of acting again.

    The handler keeps its own parameters; ``request`` and ``response`` are added to what
    FastAPI gives it if it does not take them already.
    """

    def decorate(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        sig = inspect.signature(handler, eval_str=True)
        mine = [n for n in ("request", "response") if n not in sig.parameters]
        extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY,
                                   annotation=Request if n == "request" else Response)
                 for n in mine]

        @functools.wraps(handler)
        async def wrapper(**kwargs: Any) -> Any:
            request: Request = kwargs["request"]
            response: Response = kwargs["response"]
            passed = {k: v for k, v in kwargs.items() if k not in mine}
            try:
                key = parse_key(request)
            except BadKey:
                return error(400, "bad_idempotency_key",
                              "请求标识(Idempotency-Key)无效:须为16至64位字母、数字、_ 或 -。",
                              "Bad Idempotency-Key: 16 to 64 letters, digits, _ or -, once.")
            if key is None:
                return await handler(**passed)
            who = _digest(asker(request, passed))
            token = _ASKED.set((who, _digest(key)))
            try:
                result, repeated = await _repeats(request).once(
                    who, key, _fingerprint(request, {k: v for k, v in passed.items()
                                                     if k not in ("request", "response")}),
                    lambda: handler(**passed))
            except KeyReused:
                return error(422, "idempotency_key_reused",
                              "该请求标识已用于另一个请求,请换一个。",
                              "This Idempotency-Key was used for another request.")
            finally:
                _ASKED.reset(token)
            if repeated:
                response.headers["Idempotent-Replayed"] = "true"
            return result

        params = [p for p in sig.parameters.values() if p.kind != p.VAR_KEYWORD]
        wrapper.__signature__ = sig.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
        del wrapper.__wrapped__  # FastAPI must read the signature above, not the handler's
        return wrapper

    return decorate
