"""``/api/windows/{n}/…``: what a teller does at a window, as the keypad does it.

Each route reads its window as :data:`~controller.web.auth.TellerWindow` (the login as
:data:`~controller.web.auth.LoginWindow`): parsed strictly once, the teller's session
checked for exactly that number, which is the one the handler acts on. An app with a
window route that reads its window any other way refuses to start
(:func:`~controller.web.auth.guard_window_routes`). A keyed repeat of a command gets the
first answer (:func:`~controller.web.idempotency.once`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, Field, model_validator

from ..box import Box
from ..engine import Event
from ..engine import commands as c
from ..views import ticket_view
from .auth import LoginWindow, TellerWindow, end_session, grant_session, login_attempt
from .deps import BoxDep, run
from .idempotency import once, teller_asker

__all__ = ["CallBackRequest", "FinishRequest", "LoginRequest", "RatingRequest",
           "TransferRequest", "router", "window_result"]

_NUMBER = r"^[A-Za-z]{0,3}[0-9]{1,6}$"  # ASCII digits: \d would take any script's


class LoginRequest(BaseModel):
    teller: str = Field(max_length=32)
    password: str = Field(max_length=128)


class FinishRequest(BaseModel):
    ask_rating: bool = False


class TransferRequest(BaseModel):
    to_window: int | None = Field(None, ge=1, le=999)
    to_queue: str | None = Field(None, max_length=16)
    number: str | None = Field(None, pattern=_NUMBER)

    @model_validator(mode="after")
    def _one_of(self) -> TransferRequest:
        if (self.to_window is None) == (self.to_queue is None):
            raise ValueError("give exactly one of 'to_window' or 'to_queue'")
        return self


class CallBackRequest(BaseModel):
    number: str | None = Field(None, pattern=_NUMBER)


class RatingRequest(BaseModel):
    score: int = Field(ge=1, le=9)


def window_result(box: Box, events: list[Event], window: int) -> dict[str, Any]:
    """A window command's answer: the window's state after it and the events it caused."""
    state = box.engine.state
    ws = state.window(window)
    cur = state.tickets.get(ws.current) if ws.current else None
    return {
        "window": window,
        "state": "closed" if ws.teller is None else ("paused" if ws.paused else "open"),
        "teller": ws.teller,
        "current": ticket_view(cur, box.config) if cur else None,
        "events": [e["type"] for e in events],
    }


async def act(box: Box, cmd: c.Command, window: int) -> dict[str, Any]:
    """Run a window command and answer with the window after it."""
    return window_result(box, await run(box, cmd), window)


router = APIRouter(tags=["windows"])


@router.post("/api/windows/{n}/login")
async def login(n: LoginWindow, req: LoginRequest, request: Request, response: Response,
                box: BoxDep) -> dict[str, Any]:
    """Log a teller in at window n; the answer carries its session (docs/api.md)."""
    async with login_attempt(request, "teller", req.teller):
        result = await act(box, c.Login(n, req.teller, req.password), n)
    return result | grant_session(request, response, "teller", result["teller"], n)


@router.post("/api/windows/{n}/logout")
@once(teller_asker)
async def logout(n: TellerWindow, request: Request, response: Response, box: BoxDep
                 ) -> dict[str, Any]:
    result = await act(box, c.Logout(n), n)
    end_session(request, response, "teller")
    return result


@router.post("/api/windows/{n}/call-next")
@once(teller_asker)
async def call_next(n: TellerWindow, box: BoxDep) -> dict[str, Any]:
    return await act(box, c.CallNext(n), n)


@router.post("/api/windows/{n}/recall")
@once(teller_asker)
async def recall(n: TellerWindow, box: BoxDep) -> dict[str, Any]:
    return await act(box, c.Recall(n), n)


@router.post("/api/windows/{n}/no-show")
@once(teller_asker)
async def no_show(n: TellerWindow, box: BoxDep) -> dict[str, Any]:
    return await act(box, c.NoShow(n), n)


@router.post("/api/windows/{n}/finish")
@once(teller_asker)
async def finish(n: TellerWindow, box: BoxDep,
                 req: Annotated[FinishRequest | None, Body()] = None) -> dict[str, Any]:
    ask = req.ask_rating if req else False
    return await act(box, c.Finish(n, ask_rating=ask), n)


@router.post("/api/windows/{n}/pause")
@once(teller_asker)
async def pause(n: TellerWindow, box: BoxDep) -> dict[str, Any]:
    return await act(box, c.PauseWindow(n), n)


@router.post("/api/windows/{n}/resume")
@once(teller_asker)
async def resume(n: TellerWindow, box: BoxDep) -> dict[str, Any]:
    return await act(box, c.ResumeWindow(n), n)


@router.post("/api/windows/{n}/transfer")
@once(teller_asker)
async def transfer(n: TellerWindow, req: TransferRequest, box: BoxDep) -> dict[str, Any]:
    """Move the current (or a numbered) ticket to another window or business (B4)."""
    number = req.number.upper() if req.number else None
    cmd = c.Transfer(n, to_window=req.to_window, to_queue=req.to_queue, number=number)
    return await act(box, cmd, n)


@router.post("/api/windows/{n}/hold")
@once(teller_asker)
async def hold(n: TellerWindow, box: BoxDep) -> dict[str, Any]:
    return await act(box, c.Hold(n), n)


@router.post("/api/windows/{n}/call-back")
@once(teller_asker)
async def call_back(n: TellerWindow, box: BoxDep,
                    req: Annotated[CallBackRequest | None, Body()] = None) -> dict[str, Any]:
    number = req.number.upper() if req and req.number else None
    return await act(box, c.CallBack(n, number), n)


@router.post("/api/windows/{n}/rating")
async def rating(n: TellerWindow, req: RatingRequest, box: BoxDep) -> dict[str, Any]:
    """The customer's rating of the service just finished at this window (C1)."""
    events = await run(box, c.Rate(n, req.score))
    e = events[-1]
    level = box.config.rating_level(req.score)
    return {
        "window": n, "number": e["number"], "score": req.score, "bad": e["bad"],
        "level": level.name if level else "", "level_en": level.name_en if level else "",
        "message": "谢谢您对我们工作的支持,再见", "message_en": "Thank you. Goodbye.",
    }
