"""Pre-filled forms (预填单, SPEC I2): their definitions, the one validator, the masks.

Pure: no I/O. The box (kiosk page, the centre's ``cmd/form``) and the centre (the phone page)
check a customer's form with the same :func:`validate`, against definitions that are
configuration (``[forms]`` in branch.toml and centre.toml, :func:`parse_settings`)::

    [forms]
    keep_days = 30                              # filled forms are blanked after this
    [[forms.business]]                          # several forms may share one business
    id = "deposit"
    queue = "A"
    title = "存款预填单"
    title_en = "Deposit slip"
    fields = [
      { name = "account", label = "账号", label_en = "Account", type = "account", required = true },
      { name = "amount", label = "金额", label_en = "Amount", type = "amount", required = true },
    ]

A filled form travels self-described (:func:`filled`): each field with its label, type, mask
rule and value, so the teller's caller, the printer and the centre need no lookup in a
configuration that may have changed since. :func:`masked` is what leaves the box's and the
centre's control: logs, the centre's store and pages, replies.

Field types and what they accept (spaces and dashes in numbers are dropped):

=========  ==========================================================  ============
type       value                                                       default mask
=========  ==========================================================  ============
text       printable text, no control characters                       none
amount     a positive amount, at most 2 decimals (``1234.5`` → ``1234.50``)  none
account    12–19 digits (a card or account number)                     card
id         an 18-character resident ID number (checksum) or 15 digits  id
phone      a mobile (11 digits from 1) or a fixed line (0 + 9–11 digits)  phone
choice     one of the field's ``choices``                              none
=========  ==========================================================  ============

Masks: ``card`` keeps the first 6 and the last 4 (``622588******1237``), ``id`` the first
4 and last 4, ``phone`` the first 3 and last 4 (``138****5678``), ``name`` the first
character, ``all`` nothing, ``none`` everything.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "FIELD_TYPES",
    "MASKS",
    "MAX_FIELDS",
    "MAX_VALUE_LEN",
    "FieldSpec",
    "FormError",
    "FormSettings",
    "FormSpec",
    "blanked",
    "filled",
    "mask_value",
    "masked",
    "masked_event",
    "parse_settings",
    "settings_of",
    "validate",
]

FIELD_TYPES = ("text", "amount", "account", "id", "phone", "choice")
MASKS = ("none", "card", "id", "phone", "name", "all")
DEFAULT_MASK = {"account": "card", "id": "id", "phone": "phone"}
DEFAULT_LEN = {"text": 60, "amount": 16, "account": 19, "id": 18, "phone": 13, "choice": 40}
MAX_FIELDS = 20  # a form of more fields is a configuration mistake, refused
MAX_VALUE_LEN = 200  # no field holds more, whatever its max_len says
MAX_CHOICES = 20
MAX_FORMS = 40  # forms of a branch (or a centre's phone page)
MAX_KEEP_DAYS = 366
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_]{1,16}$")
_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_AMOUNT = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,2})?$")  # ASCII digits only
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_FIXED = re.compile(r"^0[0-9]{9,11}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_SEPARATORS = str.maketrans("", "", " -")
_LONG_DIGITS = re.compile(r"[0-9]{11,}")
MASK_CHAR = "*"


class FormError(ValueError):
    """A form or a form definition that is not acceptable.

    Attributes:
        field: the field at fault ("" for the form as a whole).
        reason: a stable code (``required``, ``too_long``, ``not_a_number`` …).
        message, message_en: words for the customer.
    """

    def __init__(self, field_name: str, reason: str, message: str, message_en: str) -> None:
        super().__init__(f"{field_name or 'form'}: {message_en or reason}")
        self.field, self.reason = field_name, reason
        self.message, self.message_en = message, message_en


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    label: str
    label_en: str
    type: str = "text"
    required: bool = False
    max_len: int = 60
    mask: str = "none"
    choices: tuple[str, ...] = ()
    choices_en: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FormSpec:
    id: str
    queue: str
    title: str
    title_en: str
    fields: tuple[FieldSpec, ...]

    def to_json(self) -> dict[str, Any]:
        """What a kiosk or phone page needs to draw the form."""
        return {"id": self.id, "queue": self.queue, "title": self.title, "title_en": self.title_en,
                "fields": [{"name": f.name, "label": f.label, "label_en": f.label_en,
                            "type": f.type, "required": f.required, "max_len": f.max_len,
                            "choices": list(f.choices), "choices_en": list(f.choices_en)}
                           for f in self.fields]}


@dataclass(frozen=True, slots=True)
class FormSettings:
    keep_days: int = 30
    forms: dict[str, FormSpec] = field(default_factory=dict)  # by form id

    def form(self, form_id: str) -> FormSpec | None:
        return self.forms.get(form_id)

    def for_queue(self, queue: str) -> list[FormSpec]:
        """The forms a customer of business ``queue`` may fill in, in configured order."""
        return [f for f in self.forms.values() if f.queue == queue]

    def pick(self, queue: str, form_id: str | None) -> FormSpec | None:
        """The form ``form_id`` if it belongs to ``queue``; without an id, the business's
        only form (None when it has none, or several to choose from)."""
        if form_id is not None:
            spec = self.forms.get(form_id)
            return spec if spec is not None and spec.queue == queue else None
        mine = self.for_queue(queue)
        return mine[0] if len(mine) == 1 else None


# --- definitions -----------------------------------------------------------------------------


def _bad(where: str, problem: str) -> FormError:
    return FormError(where, "bad_definition", problem, problem)


def _label(value: Any, where: str, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not (0 < len(value) <= 40) or not _printable(value):
        raise _bad(where, "expected a label of 1 to 40 printable characters")
    return value


def _field_spec(raw: Any, where: str) -> FieldSpec:
    if not isinstance(raw, Mapping):
        raise _bad(where, "expected a table")
    known = {"name", "label", "label_en", "type", "required", "max_len", "mask", "choices",
             "choices_en"}
    extra = set(raw) - known
    if extra:
        raise _bad(where, f"unknown keys {sorted(extra)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(f"{where}.name", "expected a-z, digits and _ (at most 32)")
    kind = raw.get("type", "text")
    if kind not in FIELD_TYPES:
        raise _bad(f"{where}.type", f"one of {', '.join(FIELD_TYPES)}")
    mask = raw.get("mask", DEFAULT_MASK.get(kind, "none"))
    if mask not in MASKS:
        raise _bad(f"{where}.mask", f"one of {', '.join(MASKS)}")
    max_len = raw.get("max_len", DEFAULT_LEN[kind])
    if not isinstance(max_len, int) or isinstance(max_len, bool) or not (
            1 <= max_len <= MAX_VALUE_LEN):
        raise _bad(f"{where}.max_len", f"an integer 1..{MAX_VALUE_LEN}")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise _bad(f"{where}.required", "true or false")
    choices = _choices(raw.get("choices", []), f"{where}.choices")
    choices_en = _choices(raw.get("choices_en", []), f"{where}.choices_en")
    if kind == "choice" and not choices:
        raise _bad(f"{where}.choices", "a choice field needs its choices")
    if choices_en and len(choices_en) != len(choices):
        raise _bad(f"{where}.choices_en", "one English word per choice")
    return FieldSpec(name, _label(raw.get("label"), f"{where}.label"),
                     _label(raw.get("label_en"), f"{where}.label_en", required=False),
                     kind, required, max_len, mask, choices, choices_en)


def _choices(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_CHOICES:
        raise _bad(where, f"a list of at most {MAX_CHOICES} words")
    return tuple(_label(c, f"{where}.{i}") for i, c in enumerate(raw))


def _form_spec(raw: Any, where: str) -> FormSpec:
    if not isinstance(raw, Mapping):
        raise _bad(where, "expected a table")
    extra = set(raw) - {"id", "queue", "title", "title_en", "fields"}
    if extra:
        raise _bad(where, f"unknown keys {sorted(extra)}")
    form_id = raw.get("id")
    if not isinstance(form_id, str) or not _NAME.match(form_id):
        raise _bad(f"{where}.id", "expected a-z, digits and _ (at most 32)")
    queue = raw.get("queue")
    if not isinstance(queue, str) or not _QUEUE.match(queue):
        raise _bad(f"{where}.queue", "expected a business id")
    fields = raw.get("fields")
    if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
        raise _bad(f"{where}.fields", f"a list of 1 to {MAX_FIELDS} fields")
    specs = tuple(_field_spec(f, f"{where}.fields.{i}") for i, f in enumerate(fields))
    names = [f.name for f in specs]
    if len(set(names)) != len(names):
        raise _bad(f"{where}.fields", "field names repeat")
    return FormSpec(form_id, queue, _label(raw.get("title"), f"{where}.title"),
                    _label(raw.get("title_en"), f"{where}.title_en", required=False), specs)


def parse_settings(raw: Any) -> FormSettings:
    """The ``[forms]`` section of a configuration; :class:`FormError` names what is wrong."""
    if raw is None:
        return FormSettings()
    if not isinstance(raw, Mapping):
        raise _bad("forms", "expected a table")
    extra = set(raw) - {"keep_days", "business"}
    if extra:
        raise _bad("forms", f"unknown keys {sorted(extra)}")
    keep = raw.get("keep_days", 30)
    if not isinstance(keep, int) or isinstance(keep, bool) or not 1 <= keep <= MAX_KEEP_DAYS:
        raise _bad("forms.keep_days", f"an integer 1..{MAX_KEEP_DAYS}")
    business = raw.get("business", [])
    if not isinstance(business, list) or len(business) > MAX_FORMS:
        raise _bad("forms.business", f"expected a list of at most {MAX_FORMS} forms")
    forms: dict[str, FormSpec] = {}
    for i, b in enumerate(business):
        spec = _form_spec(b, f"forms.business.{i}")
        if spec.id in forms:
            raise _bad(f"forms.business.{i}.id", f"two forms are called {spec.id!r}")
        forms[spec.id] = spec
    return FormSettings(keep, forms)


def settings_of(holder: dict[str, Any], raw: Any) -> FormSettings:
    """``raw`` parsed, cached in ``holder`` (a frozen configuration's ``__dict__``) for as
    long as ``raw`` is the same object."""
    cached: tuple[Any, FormSettings] | None = holder.get("_forms")
    if cached is None or cached[0] is not raw:
        cached = holder["_forms"] = (raw, parse_settings(raw))
    return cached[1]


# --- the validator ---------------------------------------------------------------------------


def _printable(text: str) -> bool:
    return all(unicodedata.category(ch)[0] != "C" for ch in text)


def _refuse(f: FieldSpec, reason: str, zh: str, en: str) -> FormError:
    return FormError(f.name, reason, f"{f.label}:{zh}", f"{f.label_en or f.name}: {en}")


def _check_amount(f: FieldSpec, text: str) -> str:
    plain = text.replace(",", "")
    if not _AMOUNT.match(plain) or Decimal(plain) <= 0:
        raise _refuse(f, "not_an_amount", "金额须大于零,最多两位小数",
                      "a positive amount with at most 2 decimals")
    return f"{Decimal(plain):.2f}"


def _check_id(f: FieldSpec, text: str) -> str:
    value = text.translate(_SEPARATORS).upper()
    if len(value) == 15 and value.isdigit():
        return value
    if not _ID18.match(value):
        raise _refuse(f, "not_an_id", "身份证号码格式不正确", "not an ID number")
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    if "10X98765432"[total % 11] != value[17]:
        raise _refuse(f, "not_an_id", "身份证号码校验位不正确",
                      "the ID number's check digit is wrong")
    return value


def _check_value(f: FieldSpec, text: str) -> str:
    if f.type == "text":
        return text
    if f.type == "amount":
        return _check_amount(f, text)
    if f.type == "id":
        return _check_id(f, text)
    if f.type == "choice":
        if text not in f.choices:
            raise _refuse(f, "not_a_choice", "请从选项中选择", "choose one of the options")
        return text
    digits = text.translate(_SEPARATORS)
    if f.type == "account":
        if not (digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19):
            raise _refuse(f, "not_an_account", "账号应为12至19位数字",
                          "an account number is 12 to 19 digits")
        return digits
    if not (digits.isascii() and (_MOBILE.match(digits) or _FIXED.match(digits))):
        raise _refuse(f, "not_a_phone", "电话号码格式不正确", "not a phone number")
    return digits


def validate(spec: FormSpec, values: Any) -> dict[str, str]:
    """The form's values, checked and normalised, in the form's order.

    ``values`` is what came from outside (JSON): an object of field name → text. Unknown
    names, non-text values, control characters, over-long values and missing required
    fields are refused with :class:`FormError`; empty optional fields are left out.
    """
    if not isinstance(values, Mapping):
        raise FormError("", "not_an_object", "预填单内容格式不正确", "the form is not an object")
    known = {f.name for f in spec.fields}
    for name in values:
        if name not in known:
            raise FormError(str(name)[:32], "unknown_field", "预填单中没有该项",
                            "this form has no such field")
    out: dict[str, str] = {}
    for f in spec.fields:
        raw = values.get(f.name)
        if raw is not None and not isinstance(raw, str):
            raise _refuse(f, "not_text", "格式不正确", "expected text")
        text = (raw or "").strip()
        if not text:
            if f.required:
                raise _refuse(f, "required", "必填", "required")
            continue
        if len(text) > f.max_len:
            raise _refuse(f, "too_long", f"最多{f.max_len}个字符",
                          f"at most {f.max_len} characters")
        if not _printable(text):
            raise _refuse(f, "not_printable", "含有不可打印的字符",
                          "contains characters that cannot be printed")
        out[f.name] = _check_value(f, text)
    return out


def filled(spec: FormSpec, values: Mapping[str, str]) -> list[dict[str, Any]]:
    """A validated form, self-described: what ``form_filled`` carries."""
    return [{"name": f.name, "label": f.label, "label_en": f.label_en, "type": f.type,
             "mask": f.mask, "value": values[f.name]} for f in spec.fields if f.name in values]


# --- masks -----------------------------------------------------------------------------------


def _keep(value: str, head: int, tail: int) -> str:
    n = len(value)
    if n <= head + tail:
        return MASK_CHAR * n
    return value[:head] + MASK_CHAR * (n - head - tail) + value[n - tail:]


def mask_value(rule: str, value: str) -> str:
    """``value`` as it may be shown outside the teller's window (an unknown rule: all)."""
    if rule == "none":
        return value
    if rule == "card":
        return _keep(value, 6, 4)
    if rule == "id":
        return _keep(value, 4, 4)
    if rule == "phone":
        return _keep(value, 3, 4)
    if rule == "name":
        return value[:1] + MASK_CHAR * (len(value) - 1)
    return MASK_CHAR * len(value)


def _mask_field(f: Mapping[str, Any]) -> str:
    """A field's rule, but never weaker than its type's (a form that says ``none`` for an
    account number is masked as a card all the same), and in free text any run of 11 or
    more digits (a number typed where it does not belong) keeps only its ends."""
    kind, rule, value = f.get("type"), str(f.get("mask", "all")), f["value"]
    if rule == "none" and kind in DEFAULT_MASK:
        rule = DEFAULT_MASK[str(kind)]
    shown = mask_value(rule, value)
    if kind != "amount":
        shown = _LONG_DIGITS.sub(lambda m: _keep(m.group(0), 3, 4), shown)
    return shown


def masked(fields: Any) -> list[dict[str, Any]]:
    """A filled form's fields with each value masked by its own rule. Junk in, no crash:
    anything not shaped like a filled field is dropped."""
    if not isinstance(fields, list):
        return []
    return [{**f, "value": _mask_field(f)} for f in fields
            if isinstance(f, Mapping) and isinstance(f.get("value"), str)]


def masked_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` as it may be logged or stored outside the box: a ``form_filled`` event's
    values masked; any other event as it is."""
    if event.get("type") != "form_filled":
        return dict(event)
    return {**event, "fields": masked(event.get("fields"))}


def blanked(event: Mapping[str, Any]) -> dict[str, Any]:
    """A ``form_filled`` event past its retention: which ticket had a form, and when, but
    no values (labels kept, values gone)."""
    raw = event.get("fields")
    fields: list[Any] = raw if isinstance(raw, list) else []
    return {**event, "blanked": True,
            "fields": [{k: v for k, v in f.items() if k != "value"} | {"value": ""}
                       for f in fields if isinstance(f, Mapping)]}
