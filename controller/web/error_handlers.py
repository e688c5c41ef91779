"""How the box's API answers what goes wrong: ``{"error": {"code", "message", "message_en"}}``
with a 4xx (or a 503 while the journal cannot record); bad input never 500s.

:data:`ERROR_HANDLERS` is what ``create_app`` installs; the staff rules add the answer to a
:class:`~controller.web.auth.Denied` themselves (:func:`controller.web.auth.guard`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import JournalError, Refused

__all__ = ["ERROR_HANDLERS", "error"]

log = logging.getLogger(__name__)

_BAD = re.compile(r"\s+")


def error(status: int, code: str, message: str, message_en: str) -> JSONResponse:
    """The API's error answer."""
    return JSONResponse(
        {"error": {"code": code, "message": message, "message_en": message_en}}, status
    )


async def refused(request: Request, exc: Exception) -> JSONResponse:
    """The engine's refusal, with its own status and words."""
    assert isinstance(exc, Refused)
    return JSONResponse({"error": exc.to_json()}, exc.status)


async def journal_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("journal error on %s %s: %s", request.method, request.url.path, exc)
    return error(503, "journal_unavailable", "系统暂时无法记录,请稍后再试。",
                 "The box cannot record right now; please try again shortly.")


async def invalid(request: Request, exc: Exception) -> JSONResponse:
    """The first thing wrong with a request: 400 for JSON that is not JSON, else 422."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    if first.get("type") == "json_invalid":
        return error(400, "malformed_json", "请求格式错误(JSON)。",
                     f"Malformed JSON: {first.get('msg')}")
    msg = _BAD.sub(" ", str(first.get("msg", ""))).removeprefix("Value error, ")
    return error(422, "invalid_request", f"请求参数错误:{where} {msg}",
                 f"Invalid request: {where}: {msg}".replace(": :", ":"))


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error(exc.status_code, code, str(exc.detail), str(exc.detail))


ERROR_HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[JSONResponse]]] = {
    Refused: refused,
    JournalError: journal_unavailable,
    RequestValidationError: invalid,
    StarletteHTTPException: http_error,
}
