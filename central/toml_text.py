"""A small TOML writer for branch configurations (the standard library only reads TOML).

Writes what :mod:`tomllib` reads back to the same data: tables as ``[a.b]``, lists of
tables as ``[[a.b]]``, flat tables inside a list item as inline tables
(``queues = { A = 5, T = 9 }``), ``None`` left out (TOML has no null: the key's default
applies), and ``YYYY-MM-DD`` strings in ``holidays``/``workdays`` as TOML dates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATE_KEYS = frozenset({"holidays", "workdays"})


def dumps(data: Mapping[str, Any]) -> str:
    """``data`` as a TOML document."""
    lines: list[str] = []
    _table(data, [], lines, in_item=False)
    return "\n".join(lines).strip() + "\n"


def _table(data: Mapping[str, Any], path: list[str], lines: list[str], in_item: bool) -> None:
    subtables: list[tuple[str, Mapping[str, Any]]] = []
    arrays: list[tuple[str, list[Mapping[str, Any]]]] = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and not (in_item and _flat(value)):
            subtables.append((key, value))
        elif _tables(value):
            arrays.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value, key)}")
    for key, value in subtables:
        lines += ["", f"[{_dotted([*path, key])}]"]
        _table(value, [*path, key], lines, in_item=False)
    for key, items in arrays:
        for item in items:
            lines += ["", f"[[{_dotted([*path, key])}]]"]
            _table(item, [*path, key], lines, in_item=True)


def _tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping)
                                                         for v in value)


def _flat(value: Mapping[str, Any]) -> bool:
    return not any(isinstance(v, Mapping) or _tables(v) for v in value.values())


def _dotted(path: list[str]) -> str:
    return ".".join(_key(p) for p in path)


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, and DEL must be escaped too."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any, key: str = "") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        if key in DATE_KEYS and _DATE.fullmatch(value):
            return value
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v, key) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(k)} = {_value(v, k)}" for k, v in value.items()
                          if v is not None)
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"{key}: cannot write {type(value).__name__} as TOML")
