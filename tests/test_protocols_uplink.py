"""The uplink protocol: topics, schemas, encode/decode, day totals (pure)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import uplink as p

BRANCH = "1001010001"


def batch(*seqs: int, branch: str = BRANCH) -> dict[str, Any]:
    events = [{"seq": s, "type": "ticket_issued", "at": 1764036000.5, "day": "2026-11-25",
               "queue": "A", "number": f"A{s:03d}"} for s in seqs]
    return p.events_batch(branch, "ab12cd34", events)


def reason(topic: str, payload: bytes) -> str:
    with pytest.raises(p.ProtocolError) as info:
        p.decode(topic, payload)
    return info.value.reason


# --- topics --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", (*p.BOX_KINDS, "ack"))
def test_every_topic_round_trips(kind: str) -> None:
    name = p.topic(BRANCH, kind)
    assert name == f"qms/v1/{BRANCH}/{kind}"
    assert p.parse_topic(name) == p.Topic(BRANCH, kind)


@pytest.mark.parametrize("cmd", p.COMMANDS)
def test_command_topics_name_the_command(cmd: str) -> None:
    assert p.parse_topic(p.topic(BRANCH, "cmd", cmd)) == p.Topic(BRANCH, "cmd", cmd)


def test_aggregate_topic() -> None:
    assert p.agg_topic("1001") == "qms/v1/agg/1001"
    assert p.parse_topic("qms/v1/agg/1001") == p.Topic("1001", "agg")


def test_the_centres_announcement() -> None:
    where, msg = p.decode(p.CENTRE_TOPIC, p.encode(p.centre_online("centre-a-0-1", 1.5)))
    assert where == p.Topic("", "centre") and msg["instance"] == "centre-a-0-1"
    assert reason(p.CENTRE_TOPIC, p.encode({"at": 1.5})) == "invalid"
    assert reason("qms/v1/centre/status", b"{}") == "unknown_topic"


@pytest.mark.parametrize("bad", [
    "qms/v2/1001010001/events", "qms/v1/abc/events", "qms/v1/1001010001/nonsense",
    "qms/v1/1001010001/cmd/format_disk", "qms/v1/1001010001/events/extra", "qms/v1",
    "", "qms/v1/1001010001/cmd",
])
def test_foreign_topics_are_refused(bad: str) -> None:
    assert reason(bad, b"{}") == "unknown_topic"


def test_building_an_unknown_topic_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        p.topic(BRANCH, "cmd", "format_disk")
    with pytest.raises(ValueError):
        p.topic(BRANCH, "weather")


# --- decode: the good ----------------------------------------------------------------------


def test_an_events_batch_round_trips_with_chinese_text() -> None:
    msg = batch(1, 2, 3)
    msg["events"][0]["queue_name"] = "个人业务"
    payload = p.encode(msg)
    assert "个人业务".encode() in payload  # UTF-8, not \\u escapes
    where, back = p.decode(p.topic(BRANCH, "events"), payload)
    assert where.kind == "events" and back == msg


def test_builders_produce_valid_messages() -> None:
    cases = [
        ("status", p.birth(BRANCH, "e1", 42, "0.1.0", "abc123", 1.0)),
        ("status", p.will(BRANCH, "e1")),
        ("ack", p.ack("e1", 42)),
        ("reply", p.reply("c1", "pause", result={"queue": "A"})),
        ("reply", p.reply("c1", "pause", error={"code": "unknown_queue", "message": "x"})),
        ("live", {"v": 1, "branch": BRANCH, "at": 1.0, "status": {"queues": []}}),
        ("health", {"v": 1, "branch": BRANCH, "at": 1.0, "devices": [], "link": {}}),
        ("totals", {"v": 1, "branch": BRANCH, "epoch": "e1", "day": "2026-11-25",
                    "first_seq": 1, "last_seq": 9, "events": 9, "queues": {}}),
    ]
    for kind, msg in cases:
        assert p.decode(p.topic(BRANCH, kind), p.encode(msg))[1] == msg


@pytest.mark.parametrize(("name", "args"), [
    ("pause", {"queue": "A", "reason": "系统维护"}),
    ("resume", {"queue": "A"}),
    ("replay", {"from": 5, "through": 9}),
    ("config", {"config": {"branch": {}}}),
    ("update", {"version": "0.2.0", "manifest_url": "http://centre/r/0.2.0/manifest.json"}),
    ("totals", {"day": "2026-11-24"}),
])
def test_commands_validate(name: str, args: dict[str, Any]) -> None:
    msg = p.command("cmd-1", **args)
    assert p.decode(p.topic(BRANCH, "cmd", name), p.encode(msg))[1] == msg


# --- decode: the bad -----------------------------------------------------------------------


def test_malformed_json_not_utf8_not_an_object() -> None:
    t = p.topic(BRANCH, "events")
    assert reason(t, b'{"v": 1, "branch": ') == "malformed_json"
    assert reason(t, b"\xff\xfe{}") == "not_utf8"
    assert reason(t, b"[1, 2]") == "not_object"
    assert reason(t, b"NaN") == "malformed_json"  # Python's json would take it; JSON does not
    assert reason(t, b'{"v": 1, "at": 1e999}') == "malformed_json"


def test_nul_characters_are_refused() -> None:
    msg = batch(1)
    msg["events"][0]["number"] = "A\x00"
    assert reason(p.topic(BRANCH, "events"), json.dumps(msg).encode()) == "invalid"


def test_broker_urls() -> None:
    assert p.parse_broker_url("mqtt://127.0.0.1:1884") == ("mqtt", "127.0.0.1", 1884)
    assert p.parse_broker_url("mqtts://centre.example") == ("mqtts", "centre.example", 8883)
    for bad in ("tcp://x:1", "mqtt://", "mqtt://host:0", "host:1883", "mqtt://a b:1"):
        with pytest.raises(ValueError):
            p.parse_broker_url(bad)


def test_wrong_schema_version() -> None:
    msg = batch(1)
    for v in (2, 0, "1", True, None):
        msg["v"] = v
        assert reason(p.topic(BRANCH, "events"), json.dumps(msg).encode()) == "wrong_version"


def test_a_branch_cannot_speak_for_another() -> None:
    payload = p.encode(batch(1, branch="1001010002"))
    assert reason(p.topic(BRANCH, "events"), payload) == "wrong_branch"


@pytest.mark.parametrize(("mutate", "detail"), [
    (lambda m: m["events"][0].pop("seq"), "events.0.seq: missing"),
    (lambda m: m["events"][0].update(seq=0), "events.0.seq"),
    (lambda m: m["events"][0].update(seq="1"), "events.0.seq: expected an integer"),
    (lambda m: m["events"][1].update(seq=1), "events.1.seq: 1 not above 1"),
    (lambda m: m["events"][0].update(day="25/11/2026"), "events.0.day"),
    (lambda m: m["events"][0].update(at="noon"), "events.0.at: expected a number"),
    (lambda m: m.update(events=[]), "events: empty batch"),
    (lambda m: m.update(events={}), "events: expected a list"),
    (lambda m: m.update(epoch=""), "epoch"),
    (lambda m: m.pop("epoch"), "epoch: missing"),
])
def test_invalid_batches_name_the_field(mutate: Any, detail: str) -> None:
    msg = batch(1, 2)
    mutate(msg)
    with pytest.raises(p.ProtocolError) as info:
        p.decode(p.topic(BRANCH, "events"), json.dumps(msg).encode())
    assert info.value.reason == "invalid"
    assert detail in info.value.detail


def test_oversized_payloads_and_batches() -> None:
    t = p.topic(BRANCH, "events")
    assert reason(t, b" " * (p.MAX_PAYLOAD + 1)) == "too_large"
    big = batch(*range(1, p.MAX_BATCH_EVENTS + 2))
    assert reason(t, p.encode(big)) == "too_large"


def test_a_command_without_an_id_is_refused() -> None:
    payload = p.encode({"v": 1, "queue": "A", "reason": "x"})
    assert reason(p.topic(BRANCH, "cmd", "pause"), payload) == "invalid"


@given(st.binary(max_size=300))
def test_decode_never_crashes_on_bytes(data: bytes) -> None:
    with contextlib.suppress(p.ProtocolError):
        p.decode(p.topic(BRANCH, "events"), data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_json, st.sampled_from((*p.BOX_KINDS, "ack")))
def test_decode_never_crashes_on_any_json(value: Any, kind: str) -> None:
    with contextlib.suppress(p.ProtocolError):
        p.decode(p.topic(BRANCH, kind), json.dumps(value).encode())


@given(st.lists(st.integers(1, 10**12), min_size=1, max_size=50, unique=True))
def test_any_increasing_batch_round_trips(seqs: list[int]) -> None:
    msg = batch(*sorted(seqs))
    assert p.decode(p.topic(BRANCH, "events"), p.encode(msg))[1] == msg


# --- day totals ----------------------------------------------------------------------------


def _e(seq: int, etype: str, **fields: Any) -> dict[str, Any]:
    return {"seq": seq, "type": etype, "at": 0.0, "day": "2026-11-25", **fields}


def test_day_totals_count_final_outcomes_per_queue() -> None:
    events = [
        _e(10, "day_opened"),
        _e(11, "ticket_issued", ticket="t1", queue="A"),
        _e(12, "ticket_issued", ticket="t2", queue="A"),
        _e(13, "ticket_issued", ticket="t3", queue="B"),
        _e(14, "ticket_issued", ticket="t4", queue="A"),
        _e(15, "ticket_called", ticket="t1", queue="A"),
        _e(16, "ticket_finished", ticket="t1", queue="A"),
        _e(17, "ticket_called", ticket="t2", queue="A"),
        _e(18, "ticket_no_show", ticket="t2", queue="A"),
        _e(19, "ticket_called", ticket="t2", queue="A"),  # came back
        _e(20, "ticket_transferred", ticket="t2", from_queue="A", to_queue="B"),
        _e(21, "ticket_called", ticket="t2", queue="B"),
        _e(22, "ticket_finished", ticket="t2", queue="B"),
        _e(23, "ticket_called", ticket="t4", queue="A"),
        _e(24, "ticket_no_show", ticket="t4", queue="A"),
        _e(25, "ticket_closed", ticket="t3", queue="B", state="not_served"),
        _e(26, "day_closed"),
    ]
    totals = p.day_totals(events)
    assert totals == {
        "first_seq": 10, "last_seq": 26, "events": 17,
        "queues": {
            "A": {"issued": 3, "served": 1, "no_show": 1, "transferred": 1, "not_served": 0},
            "B": {"issued": 1, "served": 1, "no_show": 0, "transferred": 0, "not_served": 1},
        },
    }


def test_day_totals_of_an_empty_day() -> None:
    assert p.day_totals([]) == {"first_seq": None, "last_seq": None, "events": 0,
                                "queues": {}}
