"""The box's forms carry the API's limits (issue 17, "Inputs carry limits … matching the
API's"): each input's ``maxlength`` is its request field's ``max_length``, and a ticket
number's ``pattern`` accepts exactly what the API's pattern accepts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from controller.box import Box
from controller.web import create_app
from controller.web.auth import LobbyLogin
from controller.web.windows import CallBackRequest, LoginRequest

INPUT = re.compile(r"<input\b[^>]*>")
# (page, the input's name, the request model, its field)
LIMITS = [("/caller", "teller", LoginRequest, "teller"),
          ("/caller", "password", LoginRequest, "password"),
          ("/lobby", "user", LobbyLogin, "user"),
          ("/lobby", "password", LobbyLogin, "password")]


def attribute(tag: str, name: str) -> str | None:
    m = re.search(rf'\b{name}="([^"]*)"', tag)
    return m.group(1) if m else None


def max_length(model: type[BaseModel], field: str) -> int:
    return next(m.max_length for m in model.model_fields[field].metadata
                if hasattr(m, "max_length"))


@pytest.fixture
async def pages(box: Box) -> AsyncIterator[dict[str, list[str]]]:
    app = create_app(box)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://box") as http:
        yield {p: INPUT.findall((await http.get(p)).text) for p in ("/caller", "/lobby")}
    app.state.screens["hub"].close()


async def test_each_login_input_is_as_long_as_the_api_takes(pages: dict[str, list[str]]) -> None:
    for page, name, model, field in LIMITS:
        [tag] = [t for t in pages[page] if attribute(t, "name") == name]
        assert attribute(tag, "maxlength") == str(max_length(model, field)), (page, name)


async def test_every_ticket_number_input_has_the_apis_pattern(
        pages: dict[str, list[str]]) -> None:
    numbers = [t for t in pages["/caller"] if attribute(t, "name") == "number"]
    assert len(numbers) == 2  # transfer, and call back / insert-front
    assert {attribute(t, "pattern") for t in numbers} == {"[A-Za-z]{0,3}[0-9]{1,6}"}
    assert {attribute(t, "maxlength") for t in numbers} == {"9"}  # 3 letters, 6 digits


def api_takes(number: str) -> bool:
    try:
        CallBackRequest(number=number)
    except ValidationError:
        return False
    return True


@given(st.text(alphabet="AZaz09٣ \n-", max_size=11))
def test_the_pages_number_pattern_accepts_what_the_api_accepts(text: str) -> None:
    """The page's pattern (anchored whole, as a browser does) and the API's request model
    agree on every string: no number the page lets through is refused for its form (an
    Arabic-Indic ٣ was a digit to the API's \\d, not to the page)."""
    page = re.fullmatch("[A-Za-z]{0,3}[0-9]{1,6}", text) is not None
    assert page == api_takes(text)
