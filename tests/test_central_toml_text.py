"""The TOML writer: every section of the example branch reads back to the same data."""

from __future__ import annotations

import datetime as dt
import tomllib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from central.configs import SECTIONS
from central.toml_text import dumps
from controller.config import Config


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _dates_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_as_text(v) for v in value]
    return value.isoformat() if isinstance(value, dt.date) else value


def test_each_section_of_the_example_branch_round_trips(config: Config) -> None:
    data = config.model_dump(mode="json")
    for keys, _ in SECTIONS.values():
        part = {k: data[k] for k in keys}
        back = _dates_as_text(tomllib.loads(dumps(part)))
        assert back == _drop_none(part)


def test_holidays_are_written_as_toml_dates(config: Config) -> None:
    text = dumps({"calendar": config.model_dump(mode="json")["calendar"]})
    assert "holidays = [2026-01-01," in text
    assert tomllib.loads(text)["calendar"]["holidays"][0] == dt.date(2026, 1, 1)


scalars = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=20))
keys = st.text(min_size=1, max_size=10)
flat = st.dictionaries(keys, st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=4)
items = st.dictionaries(keys, st.one_of(scalars, flat), max_size=4)
documents = st.dictionaries(keys, st.one_of(scalars, flat, st.lists(items, min_size=1,
                                                                   max_size=3)), max_size=5)


@given(documents)
def test_any_document_of_tables_and_lists_of_tables_round_trips(doc: dict[str, Any]) -> None:
    assert tomllib.loads(dumps(doc)) == doc
