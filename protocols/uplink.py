"""The uplink protocol, v1: MQTT topic tree, message schemas, encode/decode, day totals.

Pure: no I/O, no asyncio. The box encodes with it, the centre decodes (and dead-letters
whatever :func:`decode` rejects), the simulator does both.

Topic tree (ARCHITECTURE, "Topic tree")::

    qms/v1/{branch}/status        box → centre   retained   birth (online) / Last Will
    qms/v1/{branch}/events        box → centre              batches of journal events
    qms/v1/{branch}/live          box → centre   retained   waiting, windows (≤ 2/s)
    qms/v1/{branch}/totals        box → centre              a day's totals and seq range
    qms/v1/{branch}/health        box → centre   retained   devices, link counters, outbox
    qms/v1/{branch}/ack           centre → box              acked_through per epoch
    qms/v1/{branch}/cmd/{name}    centre → box              pause, resume, replay, alert, ...
    qms/v1/{branch}/reply         box → centre              a command's result, by id
    qms/v1/agg/{org}              centre → any   retained   aggregates per org node
    qms/v1/centre/online          centre → boxes retained   a centre consumer is (re)subscribed

Every payload is one JSON object, UTF-8, with ``"v": 1`` (:data:`SCHEMA_VERSION`).
An events batch is ``{"v", "branch", "epoch", "events": [{"seq", "type", "at", "day",
...}]}`` with strictly increasing ``seq``. A row is settled only by the centre's ``ack``
(cumulative ``acked_through`` for one ``epoch``), sent after the centre's commit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BOX_KINDS",
    "CENTRE_TOPIC",
    "COMMANDS",
    "LOCAL_KEYS",
    "LOCAL_SECTIONS",
    "MAX_BATCH_EVENTS",
    "MAX_PAYLOAD",
    "NOT_RUN",
    "ROOT",
    "SCHEMA_VERSION",
    "ProtocolError",
    "Topic",
    "ack",
    "agg_topic",
    "birth",
    "centre_online",
    "command",
    "day_totals",
    "decode",
    "encode",
    "events_batch",
    "parse_broker_url",
    "parse_topic",
    "reply",
    "topic",
    "validate",
    "will",
]

SCHEMA_VERSION = 1
ROOT = "qms/v1"
MAX_PAYLOAD = 4 * 1024 * 1024  # bytes; a batch of MAX_BATCH_EVENTS fits easily
MAX_BATCH_EVENTS = 5000
# A centre consumer announces each (re)subscription here, retained. Events a box sent while
# no consumer was subscribed reached nobody (the centre's subscriptions are not persistent);
# a box that sees a new announcement sends what has no ack again at once, instead of after
# its ack timeout (docs/uplink.md "When the centre comes back").
CENTRE_TOPIC = f"{ROOT}/centre/online"

BOX_KINDS = ("status", "events", "live", "totals", "health", "reply")  # box → centre
CENTRE_KINDS = ("ack", "cmd")  # centre → box
COMMANDS = ("pause", "resume", "replay", "config", "update", "totals", "alert", "media",
            "appointments", "ticket", "rate", "track",  # these four: docs/appointments.md
            "form")  # a form filled on the phone: docs/integrations.md (I2)
# Reply error codes meaning the box did not run the command, so nothing changed there and the
# centre may send it again (docs/uplink.md "Commands wait in a bounded line"): its line was
# full, its journal failed, or a newer command of the kind took its place in line. A
# superseded id is answered the same if sent again: what replaces it goes under a new id.
NOT_RUN = frozenset({"busy", "journal_unavailable", "superseded"})
# Sections of a box's configuration that describe its hardware and links: a ``config``
# command leaves them as the box has them locally, whatever the centre pushes (the centre
# does not know the box's broker password, nor its CIF's shared secret).
LOCAL_SECTIONS = ("hardware", "clock", "http", "journal", "printer", "rs485", "audio", "gpio",
                  "card_reader", "hall_display", "uplink", "update", "kiosks",
                  "cif")
# Keys of pushed sections that are this box's own: a path on its disk.
LOCAL_KEYS = {"web": ("media_dir",)}

_BRANCH = re.compile(r"^\d{4,16}$")
_ORG = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
_EPOCH = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID = re.compile(r"^[0-9A-Za-z_.:-]{1,64}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_]{1,16}$")


class ProtocolError(ValueError):
    """A message that is not v1 uplink protocol. ``reason`` is a stable code.

    Reasons: ``not_utf8``, ``malformed_json``, ``not_object``, ``wrong_version``,
    ``unknown_topic``, ``wrong_branch`` (payload branch differs from the topic's),
    ``too_large``, ``invalid`` (a field is missing or wrong; ``detail`` names it).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


# --- topics --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic: ``branch`` (or org for ``agg``), ``kind``, and a command ``name``."""

    branch: str
    kind: str
    name: str | None = None


def topic(branch: str, kind: str, name: str | None = None) -> str:
    """The topic of ``kind`` for ``branch``; ``cmd`` needs the command ``name``."""
    if kind == "cmd":
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}")
        return f"{ROOT}/{branch}/cmd/{name}"
    if kind not in BOX_KINDS and kind != "ack":
        raise ValueError(f"unknown topic kind {kind!r}")
    return f"{ROOT}/{branch}/{kind}"


def agg_topic(org: str) -> str:
    return f"{ROOT}/agg/{org}"


def parse_topic(name: str) -> Topic:
    """Split a topic into branch, kind and command name; :class:`ProtocolError` if not ours."""
    parts = name.split("/")
    if parts[:2] != ROOT.split("/") or len(parts) not in (4, 5):
        raise ProtocolError("unknown_topic", name)
    branch, kind = parts[2], parts[3]
    if branch == "agg" and len(parts) == 4 and _ORG.match(kind):
        return Topic(kind, "agg")
    if name == CENTRE_TOPIC:
        return Topic("", "centre")
    if not _BRANCH.match(branch):
        raise ProtocolError("unknown_topic", f"{name}: not a branch code")
    if len(parts) == 5:
        if kind != "cmd" or parts[4] not in COMMANDS:
            raise ProtocolError("unknown_topic", name)
        return Topic(branch, "cmd", parts[4])
    if kind not in BOX_KINDS and kind != "ack":
        raise ProtocolError("unknown_topic", name)
    return Topic(branch, kind)


# --- encoding ------------------------------------------------------------------------------

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def encode(message: Mapping[str, Any]) -> bytes:
    """One compact UTF-8 JSON object; ``v`` is set to :data:`SCHEMA_VERSION` if absent."""
    if "v" not in message:
        message = {"v": SCHEMA_VERSION, **message}
    return _dumps(message).encode()


def decode(topic_name: str, payload: bytes) -> tuple[Topic, dict[str, Any]]:
    """Parse and validate one message received on ``topic_name``.

    Returns the parsed topic and the message. Raises :class:`ProtocolError` with a stable
    ``reason`` for anything else: the centre dead-letters those, the box logs them.
    """
    where = parse_topic(topic_name)
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("not_utf8", str(exc)) from None
    try:
        msg = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise ProtocolError("malformed_json", str(exc)[:200]) from None
    if "\\u0000" in text:  # NUL in a string: no SQL text column takes it
        raise ProtocolError("invalid", "a string holds a NUL character (\\u0000)")
    validate(where, msg)
    return where, msg


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def validate(where: Topic, msg: Any) -> None:
    """Check ``msg`` against the schema of ``where.kind``; :class:`ProtocolError` if wrong."""
    if not isinstance(msg, dict):
        raise ProtocolError("not_object", type(msg).__name__)
    version = msg.get("v")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ProtocolError("wrong_version", f"v={version!r}, expected {SCHEMA_VERSION}")
    if where.kind == "cmd":
        _check(msg, _COMMAND_FIELDS[where.name or ""], "")
        return
    _check(msg, _FIELDS[where.kind], "")
    if "branch" in msg and where.kind != "agg" and msg["branch"] != where.branch:
        raise ProtocolError("wrong_branch", f"payload {msg['branch']!r} on topic of "
                                            f"{where.branch!r}")
    if where.kind == "events":
        _check_events(msg["events"])


# --- schemas -------------------------------------------------------------------------------
# A schema is {field: (check, required)}; a check returns an error text or "".

Check = Callable[[Any], str]
Schema = dict[str, tuple[Check, bool]]


def _check(msg: dict[str, Any], schema: Schema, prefix: str) -> None:
    for key, (check, required) in schema.items():
        if key not in msg or msg[key] is None:
            if required:
                raise ProtocolError("invalid", f"{prefix}{key}: missing")
            continue
        problem = check(msg[key])
        if problem:
            raise ProtocolError("invalid", f"{prefix}{key}: {problem}")


def _text(pattern: re.Pattern[str] | None = None, max_len: int = 200) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            return "expected a string"
        if len(value) > max_len:
            return f"longer than {max_len}"
        if pattern is not None and not pattern.match(value):
            return f"{value[:40]!r} is not well formed"
        return ""
    return check


def _int(low: int = 0, high: int = 2**63 - 1) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, int) or isinstance(value, bool):
            return "expected an integer"
        if not low <= value <= high:
            return f"{value} out of range {low}..{high}"
        return ""
    return check


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "expected a number"
    return "" if value == value and abs(value) < 1e12 else "out of range"


def _bool(value: Any) -> str:
    return "" if isinstance(value, bool) else "expected true or false"


def _obj(value: Any) -> str:
    return "" if isinstance(value, dict) else "expected an object"


def _list(value: Any) -> str:
    return "" if isinstance(value, list) else "expected a list"


def _form_values(value: Any) -> str:
    if not isinstance(value, dict) or len(value) > 20:
        return "expected an object of at most 20 fields"
    for k, v in value.items():
        if not isinstance(k, str) or len(k) > 32 or not isinstance(v, str) or len(v) > 200:
            return "expected field names (≤ 32) and text values (≤ 200)"
    return ""


def _customer(value: Any) -> str:
    """A remote ticket's customer as the centre's CIF said: ``{"type", "stars", "source"}``."""
    if not isinstance(value, dict) or len(value) > 4:
        return "expected an object"
    ctype, stars, source = value.get("type"), value.get("stars", 0), value.get("source", "")
    if not isinstance(ctype, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", ctype):
        return "customer.type: a customer type id"
    if type(stars) is not int or not 0 <= stars <= 7:
        return "customer.stars: an integer 0-7"
    if not isinstance(source, str) or len(source) > 16:
        return "customer.source: text"
    return ""


_SEQ = _int(1)
_EVENT: Schema = {
    "seq": (_SEQ, True),
    "type": (_text(re.compile(r"^[a-z_]{1,40}$")), True),
    "at": (_number, True),
    "day": (_text(_DAY), True),
}
_BRANCH_FIELD = (_text(_BRANCH), True)
_EPOCH_FIELD = (_text(_EPOCH), True)

_FIELDS: dict[str, Schema] = {
    "events": {"branch": _BRANCH_FIELD, "epoch": _EPOCH_FIELD, "events": (_list, True)},
    "status": {
        "branch": _BRANCH_FIELD, "online": (_bool, True), "epoch": (_text(_EPOCH), False),
        "last_seq": (_int(), False), "version": (_text(), False),
        "config_version": (_text(), False), "at": (_number, False),
    },
    "live": {"branch": _BRANCH_FIELD, "at": (_number, True), "status": (_obj, True)},
    "health": {
        "branch": _BRANCH_FIELD, "at": (_number, True), "devices": (_list, True),
        "link": (_obj, True), "outbox": (_obj, False), "epoch": (_text(_EPOCH), False),
        "last_seq": (_int(), False),
    },
    "totals": {
        "branch": _BRANCH_FIELD, "epoch": _EPOCH_FIELD, "day": (_text(_DAY), True),
        "first_seq": (_int(), False), "last_seq": (_int(), False),
        "events": (_int(), True), "queues": (_obj, True),
    },
    "reply": {
        "id": (_text(_ID), True), "cmd": (_text(), True), "ok": (_bool, True),
        "result": (_obj, False), "error": (_obj, False), "at": (_number, False),
    },
    "ack": {"epoch": _EPOCH_FIELD, "acked_through": (_int(), True)},
    "agg": {"org": (_text(_ORG), False), "at": (_number, False)},
    "centre": {"instance": (_text(_ID), True), "at": (_number, True)},
}

_CMD_ID = {"id": (_text(_ID), True)}
_COMMAND_FIELDS: dict[str, Schema] = {
    "pause": {**_CMD_ID, "queue": (_text(_QUEUE), True), "reason": (_text(None, 60), True)},
    "resume": {**_CMD_ID, "queue": (_text(_QUEUE), True)},
    "replay": {**_CMD_ID, "from": (_SEQ, True), "through": (_SEQ, True),
               "epoch": (_text(_EPOCH), False)},
    "config": {**_CMD_ID, "config": (_obj, True)},
    "update": {**_CMD_ID, "version": (_text(), True), "manifest_url": (_text(None, 2000), True),
               "rollback": (_bool, False)},
    "totals": {**_CMD_ID, "day": (_text(_DAY), True)},
    # Customer channels (H2, H3, C3; controller/appointments/book.py checks each booking).
    "appointments": {**_CMD_ID, "day": (_text(_DAY), True), "revision": (_int(), True),
                     "key": (_text(re.compile(r"^[0-9a-f]{64}$")), True),
                     "bookings": (_list, True), "early_s": (_number, False),
                     "late_s": (_number, False)},
    # customer: who the customer is, as the centre's CIF said (docs/integrations.md, I1)
    "ticket": {**_CMD_ID, "queue": (_text(_QUEUE), True), "expires_at": (_number, True),
               "customer": (_customer, False)},
    "rate": {**_CMD_ID, "number": (_text(re.compile(r"^[A-Z]{0,3}\d{1,6}$")), True),
             "score": (_int(1, 9), True), "expires_at": (_number, True)},
    "track": {**_CMD_ID, "numbers": (_list, False)},
    # a pre-filled form for a remote ticket (I2): field name → text, checked again by the
    # box against its own form of the business (protocols/forms.py)
    "form": {**_CMD_ID, "number": (_text(re.compile(r"^[A-Z]{0,3}\d{1,6}$")), True),
             "form": (_text(re.compile(r"^[a-z][a-z0-9_]{0,31}$")), False),
             "fields": (_form_values, True), "expires_at": (_number, True)},
    # an alert for the lobby manager's screen (central/alerts.py, docs/alerts.md)
    "alert": {**_CMD_ID, "kind": (_text(re.compile(r"^[a-z_]{1,40}$")), True),
              "message": (_text(None, 200), True), "message_en": (_text(None, 200), False),
              "level": (_text(re.compile(r"^(info|warning|critical|clear)$")), False),
              "alert_id": (_int(), False), "at": (_number, False)},
    # kiosk media files: [{"name", "sha256", "data" (base64)}], and names to delete
    "media": {**_CMD_ID, "files": (_list, True), "delete": (_list, False)},
}


def _check_events(events: list[Any]) -> None:
    if not events:
        raise ProtocolError("invalid", "events: empty batch")
    if len(events) > MAX_BATCH_EVENTS:
        raise ProtocolError("too_large", f"{len(events)} events > {MAX_BATCH_EVENTS}")
    last = 0
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            raise ProtocolError("invalid", f"events.{i}: expected an object")
        _check(e, _EVENT, f"events.{i}.")
        if e["seq"] <= last:
            raise ProtocolError("invalid", f"events.{i}.seq: {e['seq']} not above {last}")
        last = e["seq"]


# --- message builders ----------------------------------------------------------------------


def events_batch(branch: str, epoch: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"v": SCHEMA_VERSION, "branch": branch, "epoch": epoch, "events": events}


def birth(branch: str, epoch: str, last_seq: int, version: str, config_version: str,
          at: float) -> dict[str, Any]:
    """The retained ``status`` a box publishes on every connect."""
    return {"v": SCHEMA_VERSION, "branch": branch, "online": True, "epoch": epoch,
            "last_seq": last_seq, "version": version, "config_version": config_version,
            "at": at}


def will(branch: str, epoch: str) -> dict[str, Any]:
    """The retained ``status`` the broker publishes when the box vanishes."""
    return {"v": SCHEMA_VERSION, "branch": branch, "online": False, "epoch": epoch}


def centre_online(instance: str, at: float) -> dict[str, Any]:
    """The retained announcement of a centre consumer's subscription (:data:`CENTRE_TOPIC`);
    ``instance`` differs on every connection."""
    return {"v": SCHEMA_VERSION, "instance": instance, "at": at}


def ack(epoch: str, acked_through: int) -> dict[str, Any]:
    return {"v": SCHEMA_VERSION, "epoch": epoch, "acked_through": acked_through}


def command(cmd_id: str, **args: Any) -> dict[str, Any]:
    return {"v": SCHEMA_VERSION, "id": cmd_id, **args}


def reply(cmd_id: str, name: str, *, result: dict[str, Any] | None = None,
          error: dict[str, Any] | None = None, at: float | None = None) -> dict[str, Any]:
    """A command's answer: ``ok`` with a ``result``, or not with an ``error``
    (``{"code", "message", "message_en"}``)."""
    msg: dict[str, Any] = {"v": SCHEMA_VERSION, "id": cmd_id, "cmd": name,
                           "ok": error is None}
    if error is None:
        msg["result"] = result or {}
    else:
        msg["error"] = error
    if at is not None:
        msg["at"] = at
    return msg


# --- day totals (F3) -----------------------------------------------------------------------

OUTCOMES = {"ticket_finished": "served", "ticket_no_show": "no_show"}


def day_totals(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A day's totals from its events, in seq order: what both sides compare (F3).

    Per queue: ``issued`` (by the queue a ticket was issued in), ``transferred`` (moves
    out of the queue), and the final outcome of each ticket by the queue it ended in:
    ``served``, ``no_show``, ``not_served`` (closed at the day's end). Plus the seq range
    and the number of events. Box and centre run this same function.
    """
    queues: dict[str, dict[str, int]] = {}
    final: dict[str, tuple[str, str]] = {}  # ticket -> (queue, outcome)
    first = last = None
    count = 0

    def row(q: str) -> dict[str, int]:
        return queues.setdefault(q, {"issued": 0, "served": 0, "no_show": 0,
                                     "transferred": 0, "not_served": 0})

    for e in events:
        count += 1
        seq = e.get("seq")
        if isinstance(seq, int):
            first = seq if first is None else min(first, seq)
            last = seq if last is None else max(last, seq)
        etype, ticket = e.get("type"), e.get("ticket")
        if etype == "ticket_issued":
            row(e["queue"])["issued"] += 1
        elif etype == "ticket_transferred":
            row(e["from_queue"])["transferred"] += 1
        elif etype in OUTCOMES and ticket:
            final[ticket] = (e["queue"], OUTCOMES[etype])
        elif etype == "ticket_closed" and ticket and e.get("state") == "not_served":
            final[ticket] = (e["queue"], "not_served")
        elif etype == "ticket_called" and ticket:
            final.pop(ticket, None)  # called back after a no-show: not final any more
    for queue, outcome in final.values():
        row(queue)[outcome] += 1
    return {"first_seq": first, "last_seq": last, "events": count,
            "queues": dict(sorted(queues.items()))}


# --- broker address ------------------------------------------------------------------------

_URL = re.compile(r"^(mqtts?|ws|wss)://([^:/\s]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?/?$")
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 9001, "wss": 9001}


def parse_broker_url(url: str) -> tuple[str, str, int]:
    """``mqtt://HOST:PORT`` (or ``mqtts://`` for TLS) → (scheme, host, port).

    Raises :class:`ValueError` with the reason for anything else.
    """
    m = _URL.match(url.strip())
    if not m:
        raise ValueError(f"{url!r} is not a broker address like mqtt://127.0.0.1:1883")
    scheme, host, port = m.group(1), m.group(2).strip("[]"), m.group(3)
    number = int(port) if port else _DEFAULT_PORTS[scheme]
    if not 0 < number < 65536:
        raise ValueError(f"{url!r}: port {number} out of range")
    return scheme, host, number
