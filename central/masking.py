"""Masking of customers' numbers and names in everything the centre shows, exports or logs.

A VIP customer's card, ID and phone numbers never leave the centre whole: pages, JSON,
exports, the audit log and dead letters all go through these functions.

* card number (13–19 digits): the first 6 and the last 4 stay — ``622588******1237``
* ID number (18 characters, the last may be X; or 15 digits): the first 4 and the last 4
  stay — ``4101**********2311``
* mobile number (11 digits from 1): the first 3 and the last 4 stay — ``138****5678``
* a name: its first character stays and the rest become ``*``, except a trailing
  honorific (先生, 女士, 小姐), which says nothing about who it is — ``陈*``, ``陈先生``

:func:`mask_text` masks every run of 11 or more digits inside free text (a dead letter's
payload), by the shape above;
:func:`mask_event` and :func:`mask_config` know the fields by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "MASK",
    "is_masked",
    "mask_card",
    "mask_config",
    "mask_event",
    "mask_id_number",
    "mask_name",
    "mask_number",
    "mask_phone",
    "mask_text",
]

MASK = "*"
HONORIFICS = ("先生", "女士", "小姐", "老师", "总")
_DIGITS = re.compile(r"(?<![0-9A-Za-z])([0-9]{17}[0-9Xx]|[0-9]{11,})(?![0-9A-Za-z])")
# Event and config fields that hold a customer's number or name.
NUMBER_FIELDS = frozenset({"card", "cards", "id_number", "id_numbers", "phone", "phones",
                           "mobile", "card_number"})
NAME_FIELDS = frozenset({"vip_name", "customer_name"})


def mask_card(number: str) -> str:
    n = len(number)
    if n <= 10:
        return MASK * n
    return number[:6] + MASK * (n - 10) + number[-4:]


def mask_id_number(number: str) -> str:
    n = len(number)
    if n <= 8:
        return MASK * n
    return number[:4] + MASK * (n - 8) + number[-4:]


def mask_phone(number: str) -> str:
    n = len(number)
    if n <= 7:
        return MASK * n
    return number[:3] + MASK * (n - 7) + number[-4:]


def mask_number(number: str) -> str:
    """Mask a card, ID or phone number, telling them apart by their shape."""
    text = str(number).strip()
    if is_masked(text):
        return text
    if re.fullmatch(r"1\d{10}", text):
        return mask_phone(text)
    if len(text) in (15, 18):  # an ID number's length: its (stricter) mask either way
        return mask_id_number(text)
    return mask_card(text)


def is_masked(text: str) -> bool:
    return MASK in text


def mask_name(name: str | None) -> str | None:
    """``陈建国`` → ``陈**``; ``陈先生`` stays (a surname and an honorific)."""
    if not name:
        return name
    for title in HONORIFICS:
        if name.endswith(title) and len(name) > len(title):
            head = name[: -len(title)]
            return head[0] + MASK * (len(head) - 1) + title
    return name[0] + MASK * max(1, len(name) - 1)


def mask_text(text: str) -> str:
    """Every card, ID or mobile number found in free text, masked."""
    return _DIGITS.sub(lambda m: mask_number(m.group(1)), text)


def mask_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a journal event with its customer numbers and names masked."""
    return _mask_deep(event)


def mask_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a branch config: VIP customers' cards and ID numbers masked, names not
    (the back office needs to recognise its VIP customers by name)."""
    out = dict(config)
    vips = out.get("vip_customers")
    if isinstance(vips, list):
        out["vip_customers"] = [_mask_deep(v, names=False) if isinstance(v, Mapping) else v
                                for v in vips]
    return out


def _mask_deep(value: Any, names: bool = True) -> Any:
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if k in NUMBER_FIELDS:
                out[k] = _mask_numbers(v, _BY_FIELD.get(k, mask_number))
            elif names and k in NAME_FIELDS and isinstance(v, str):
                out[k] = mask_name(v)
            else:
                out[k] = _mask_deep(v, names)
        return out
    if isinstance(value, list):
        return [_mask_deep(v, names) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def _mask_numbers(value: Any, how: Callable[[str], str]) -> Any:
    if isinstance(value, list):
        return [_one(str(v), how) for v in value]
    if value is None or value == "":
        return value
    return _one(str(value), how)


def _one(text: str, how: Callable[[str], str]) -> str:
    return text if is_masked(text) else how(text)


_BY_FIELD: dict[str, Callable[[str], str]] = {
    "card": mask_card, "cards": mask_card, "card_number": mask_card,
    "id_number": mask_id_number, "id_numbers": mask_id_number,
    "phone": mask_phone, "phones": mask_phone, "mobile": mask_phone,
}
