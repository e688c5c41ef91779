"""Alert rules, thresholds and the alerts table (the outbox): pure-ish evaluation over
the store. See :mod:`central.alerts` for the rules and their kinds."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocols.appointment import mask_phone

from .. import audit
from ..boxclock import box_clock_offset
from ..reports.labels import Labels
from ..reports.scope import Period, Scope
from ..store.summary import report_timezone

if TYPE_CHECKING:
    from ..store import Store


log = logging.getLogger(__name__)

KINDS = ("waiting_over", "long_wait", "bad_rating", "device_fault", "offline", "no_data",
         "totals_mismatch", "branch_flooding")
STATE_KINDS = ("waiting_over", "long_wait", "device_fault", "offline", "branch_flooding")
FLOOD_QUIET_S = 300.0  # branch_flooding clears when the ingest has not limited it this long
_PHONE = re.compile(r"^\+?\d{5,20}$")
LEASE_S = 120.0  # a delivery taken by one centre process is left alone this long
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Thresholds(BaseModel):
    """One org node's settings; a key left out is inherited (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    waiting_over: int | None = Field(None, ge=0, description="A8: customers waiting (0 off)")
    wait_over_min: float | None = Field(None, ge=0, description="minutes not called (0 off)")
    bad_rating: bool | None = None
    device_fault: bool | None = None
    device_states: list[str] | None = None
    offline_after_s: float | None = Field(None, ge=0, description="0: no offline alerts")
    no_data: bool | None = None
    totals_mismatch: bool | None = None
    branch_flooding: bool | None = None
    clear_after_s: float | None = Field(None, ge=0, le=86400,
                                        description="condition unseen this long: cleared")
    escalate_after_min: float | None = Field(None, ge=0, description="0: only when worse")
    escalate_factor: float | None = Field(None, gt=1, description="× threshold: worse")
    sms_to: list[str] | None = Field(None, description="phone numbers (kept, shown masked)")
    sms_kinds: list[str] | None = None
    push_kinds: list[str] | None = None
    max_per_hour: int | None = Field(None, ge=1, description="per branch and kind")
    sms_per_hour: int | None = Field(None, ge=1, description="per phone")

    @field_validator("sms_to")
    @classmethod
    def _phones(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            for p in v:
                if not _PHONE.match(p):
                    raise ValueError(f"{mask_phone(p)} is not a phone number")
        return v

    @field_validator("sms_kinds", "push_kinds")
    @classmethod
    def _kinds(cls, v: list[str] | None) -> list[str] | None:
        for k in v or ():
            if k not in KINDS:
                raise ValueError(f"unknown alert kind {k!r}; known: {', '.join(KINDS)}")
        return v

    def set_keys(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


DEFAULTS: dict[str, Any] = {
    "waiting_over": 30, "wait_over_min": 30.0, "bad_rating": True, "device_fault": True,
    "device_states": ["fault", "offline"], "offline_after_s": 120.0, "no_data": True,
    "totals_mismatch": True, "branch_flooding": True, "clear_after_s": 60.0,
    "escalate_after_min": 30.0, "escalate_factor": 2.0, "sms_to": [], "sms_kinds": list(KINDS),
    "push_kinds": ["long_wait"], "max_per_hour": 20, "sms_per_hour": 10,
}


# --- thresholds ------------------------------------------------------------------------------


def load_thresholds(store: Store) -> dict[str, dict[str, Any]]:
    """Every org node's own settings: org code ('' = province) → the keys it sets."""
    rows = store.execute("SELECT org, settings FROM alert_thresholds").fetchall()
    return {org: json.loads(s) if isinstance(s, str) else s for org, s in rows}


def effective_thresholds(nodes: dict[str, dict[str, Any]], code: str) -> dict[str, Any]:
    """The settings that hold at org or branch ``code``: the most specific node wins."""
    out = dict(DEFAULTS)
    for org in sorted((o for o in nodes if code.startswith(o)), key=len):
        out.update(nodes[org])
    return out


def set_thresholds(store: Store, org: str, settings: dict[str, Any] | None, user: str | None,
                   now: float | None = None) -> None:
    """Replace org node ``org``'s own settings (None: remove the node's row)."""
    stamp = store.clock.now() if now is None else now

    def run() -> None:
        if settings is None:
            store.execute("DELETE FROM alert_thresholds WHERE org = ?", (org,))
            return
        store.execute("INSERT INTO alert_thresholds (org, settings, updated_at, updated_by) "
                      "VALUES (?, ?, ?, ?) ON CONFLICT (org) DO UPDATE SET "
                      "settings = excluded.settings, updated_at = excluded.updated_at, "
                      "updated_by = excluded.updated_by",
                      (org, _dumps(settings), stamp, user))

    store.retrying(run)


def masked(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as the API shows them: phone numbers masked."""
    out = dict(settings)
    if out.get("sms_to"):
        out["sms_to"] = [mask_phone(p) for p in out["sms_to"]]
    return out


# --- rules -----------------------------------------------------------------------------------


@dataclass
class Candidate:
    """An alert a rule wants raised (or seen again)."""

    key: str
    kind: str
    branch: str
    message: str
    message_en: str
    level: str = "warning"
    detail: dict[str, Any] = field(default_factory=dict)
    worse: bool = False  # beyond escalate_factor × the threshold: escalate now


@dataclass
class Verdict:
    """What the rules found: alerts to raise and, per state kind, the branches looked at
    (their open alerts of that kind whose key is not raised again are resolved)."""

    raised: list[Candidate] = field(default_factory=list)
    looked_at: dict[str, set[str]] = field(default_factory=dict)


def _name(labels: Labels, branch: str) -> str:
    name = labels.branch(branch)
    return name if name != branch else f"网点{branch}"


def _clock(ts: float, tz: Any) -> str:
    return dt.datetime.fromtimestamp(ts, tz).strftime("%m-%d %H:%M")


def live_rules(store: Store, branches: list[dict[str, Any]], nodes: dict[str, dict[str, Any]],
               labels: Labels, now: float, verdict: Verdict) -> None:
    """waiting_over, device_fault and offline, from the branches' latest messages."""
    tz = report_timezone(store)
    for kind in ("waiting_over", "device_fault", "offline"):
        verdict.looked_at.setdefault(kind, set())
    raised = {b for (b,) in store.execute("SELECT branch FROM alerts WHERE kind = "
                                          "'waiting_over' AND resolved_at IS NULL")}
    for row in branches:
        branch = row["branch"]
        t = effective_thresholds(nodes, branch)
        _offline(row, t, labels, now, tz, verdict)
        if row["online"] is False:
            continue  # what it said last is stale: judged again when it is back
        _waiting(row, t, labels, verdict, branch in raised)
        _devices(row, t, labels, verdict)


def _offline(row: dict[str, Any], t: dict[str, Any], labels: Labels, now: float, tz: Any,
             verdict: Verdict) -> None:
    branch = row["branch"]
    if not t["offline_after_s"]:
        return
    verdict.looked_at["offline"].add(branch)
    since = row.get("status_at")
    if row["online"] is not False or since is None or now - since < t["offline_after_s"]:
        return
    verdict.raised.append(Candidate(
        f"offline:{branch}", "offline", branch,
        f"{_name(labels, branch)}已离线(自{_clock(since, tz)}起),请检查网点网络和排队机。",
        f"Branch {branch} is offline since {_clock(since, tz)}.", "critical",
        {"since": since}))


def _waiting(row: dict[str, Any], t: dict[str, Any], labels: Labels, verdict: Verdict,
             raised: bool) -> None:
    branch, limit = row["branch"], t["waiting_over"]
    status = (row.get("live") or {}).get("status") or {}
    waiting = status.get("waiting_total")
    if not limit or not isinstance(waiting, int):
        return
    verdict.looked_at["waiting_over"].add(branch)
    if waiting > limit or (raised and waiting > limit * 4 // 5):  # cleared at 80 %
        verdict.raised.append(Candidate(
            f"waiting_over:{branch}", "waiting_over", branch,
            f"请注意,目前网点排队等待人数已经超过{limit}个。",
            f"More than {limit} customers are waiting ({waiting}).", "warning",
            {"waiting": waiting, "threshold": limit},
            worse=waiting > limit * t["escalate_factor"]))


def _devices(row: dict[str, Any], t: dict[str, Any], labels: Labels, verdict: Verdict) -> None:
    branch = row["branch"]
    health = row.get("health") or {}
    if not t["device_fault"] or not isinstance(health.get("devices"), list):
        return
    verdict.looked_at["device_fault"].add(branch)
    for d in health["devices"]:
        if not isinstance(d, dict) or d.get("state") not in t["device_states"]:
            continue
        name, detail = str(d.get("name")), str(d.get("detail") or "")
        verdict.raised.append(Candidate(
            f"device_fault:{branch}:{name}", "device_fault", branch,
            f"{_name(labels, branch)}设备故障:{name}({d.get('state')}){detail}",
            f"Device {name} at {branch}: {d.get('state')} {detail}".strip(), "warning",
            {"device": name, "state": d.get("state"), "detail": detail}))


def long_wait_rule(store: Store, branches: list[dict[str, Any]],
                   nodes: dict[str, dict[str, Any]], labels: Labels, now: float,
                   verdict: Verdict) -> None:
    """Customers still waiting, never called, for longer than ``wait_over_min``. A ticket's
    ``issued_at`` is the box's clock: the wait is judged on it (the box's "now" is the
    centre's plus the box's offset, central/boxclock.py), so a box whose clock stands
    apart from the centre's (the demo's) raises no wait it has not had."""
    online = {r["branch"]: box_clock_offset(r) for r in branches if r["online"] is not False}
    limits = {b: float(effective_thresholds(nodes, b)["wait_over_min"]) for b in online}
    verdict.looked_at["long_wait"] = {b for b, m in limits.items() if m}
    if not verdict.looked_at["long_wait"]:
        return
    shortest = min(m for m in limits.values() if m)
    ahead, behind = max(online.values()), min(online.values())
    rows = store.execute(
        "SELECT branch, ticket, number, queue_now, issued_at FROM rpt_ticket "
        "WHERE called_at IS NULL AND outcome = '' AND issued_at <= ? AND issued_at > ?",
        (now + ahead - shortest * 60, now + behind - 86400.0)).fetchall()
    for branch, ticket, number, queue, issued in rows:
        minutes = limits.get(branch)
        waited = now + online.get(branch, 0.0) - issued
        if not minutes or waited <= minutes * 60:
            continue
        factor = effective_thresholds(nodes, branch)["escalate_factor"]
        verdict.raised.append(Candidate(
            f"long_wait:{branch}:{ticket}", "long_wait", branch,
            f"请注意,{number}号客户已等待超过{minutes:g}分钟,仍未叫号。",
            f"Ticket {number} has waited over {minutes:g} min without a call.", "warning",
            {"ticket": ticket, "number": number, "queue": labels.queue(queue),
             "issued_at": issued, "minutes": minutes},
            worse=waited > minutes * 60 * factor))


def bad_rating_rule(store: Store, nodes: dict[str, dict[str, Any]], labels: Labels,
                    verdict: Verdict, limit: int = 1000) -> None:
    """Bad ratings noted at ingest; each is taken from the inbox once."""
    rows = store.execute("SELECT id, branch, body FROM alert_inbox WHERE kind = 'bad_rating' "
                         "ORDER BY id LIMIT ?", (limit,)).fetchall()
    if not rows:
        return
    for _, branch, body in rows:
        if not effective_thresholds(nodes, branch)["bad_rating"]:
            continue
        e = json.loads(body) if isinstance(body, str) else body
        teller = labels.teller(branch, str(e.get("teller") or ""))
        level = labels.level(int(e.get("score", 0)))
        verdict.raised.append(Candidate(
            f"bad_rating:{branch}:{e.get('ticket')}:{e.get('seq')}", "bad_rating", branch,
            f"差评提醒:{_name(labels, branch)} {e.get('window')}号窗口 柜员{teller} 办理的 "
            f"{e.get('number')} 号客户评价为“{level}”,请及时处理。",
            f"Bad rating ({e.get('score')}) for teller {e.get('teller')} at window "
            f"{e.get('window')}, ticket {e.get('number')}.", "warning",
            {"ticket": e.get("ticket"), "number": e.get("number"), "window": e.get("window"),
             "teller": e.get("teller"), "score": e.get("score"), "at": e.get("at")}))
    store.execute("DELETE FROM alert_inbox WHERE kind = 'bad_rating' AND id <= ?",
                  (rows[-1][0],))


def flooding_rule(store: Store, nodes: dict[str, dict[str, Any]], labels: Labels,
                  verdict: Verdict, limit: int = 1000) -> None:
    """Branches the ingest is rate-limiting (rows it puts in the inbox, at most one a minute
    per branch); an open alert stays while rows come (``last_at``) and clears after
    :data:`FLOOD_QUIET_S` without one."""
    rows = store.execute("SELECT id, branch, body FROM alert_inbox WHERE kind = "
                         "'branch_flooding' ORDER BY id LIMIT ?", (limit,)).fetchall()
    open_ = {b for (b,) in store.execute("SELECT branch FROM alerts WHERE kind = "
                                         "'branch_flooding' AND resolved_at IS NULL")}
    latest = {branch: body for _, branch, body in rows}  # the newest row of each branch
    verdict.looked_at["branch_flooding"] = open_ | set(latest)
    for branch, body in latest.items():
        if not effective_thresholds(nodes, branch)["branch_flooding"]:
            continue
        e = json.loads(body) if isinstance(body, str) else body
        what, rate, most, held = (e.get("class"), e.get("rate"), e.get("limit"),
                                  e.get("limited"))
        verdict.raised.append(Candidate(
            f"branch_flooding:{branch}", "branch_flooding", branch,
            f"{_name(labels, branch)}消息过多,已限流:{what} 类消息每秒 {rate} 条,上限 {most} "
            f"条,已限流 {held} 条。请检查网点排队机。",
            f"Branch {branch} sends too many messages and is rate-limited: {what} at "
            f"{rate}/s, limit {most}/s ({held} held back).", "warning",
            {"class": what, "rate": rate, "limit": most, "limited": held}))
    if rows:
        store.execute("DELETE FROM alert_inbox WHERE kind = 'branch_flooding' AND id <= ?",
                      (rows[-1][0],))


def daily_rules(store: Store, nodes: dict[str, dict[str, Any]], labels: Labels, day: str,
                now: float, verdict: Verdict) -> None:
    """Yesterday's branches with no data, no totals or disagreeing totals (F5)."""
    from ..reports.quality import data_quality

    for r in data_quality(store, Period("day", day), Scope(), now):
        branch, status = r["branch"], r["status"]
        t = effective_thresholds(nodes, branch)
        name = _name(labels, branch)
        if status == "no_data" and t["no_data"]:
            verdict.raised.append(Candidate(
                f"no_data:{branch}:{day}", "no_data", branch,
                f"{name}({branch}){day} 没有上传数据,请调查原因。",
                f"Branch {branch} sent no data for {day}.", "warning", {"day": day}))
        elif status in ("no_totals", "mismatch") and t["totals_mismatch"]:
            what = "未上传数据总量" if status == "no_totals" else "数据总量对账不一致"
            verdict.raised.append(Candidate(
                f"totals_mismatch:{branch}:{day}", "totals_mismatch", branch,
                f"{name}({branch}){day} {what},请核对。",
                f"Branch {branch}, {day}: {status}.", "warning",
                {"day": day, "status": status, "problems": r["problems"][:500]}))


# --- raising ---------------------------------------------------------------------------------


def raise_alerts(store: Store, verdict: Verdict, nodes: dict[str, dict[str, Any]],
                 labels: Labels, sms_template: str, now: float) -> list[int]:
    """Store what the rules found (inside the caller's transaction); returns new ids."""
    new = []
    for c in verdict.raised:
        t = effective_thresholds(nodes, c.branch)
        alert_id = _insert(store, c, now)
        if alert_id is None:
            seen = store.execute("UPDATE alerts SET last_at = ?, repeats = repeats + 1 "
                                 "WHERE key = ? AND resolved_at IS NULL "
                                 "RETURNING id, raised_at, escalated_at", (now, c.key)
                                 ).fetchone()
            higher = _escalation(c, t, seen, now)
            if seen is not None and higher is not None:
                store.execute("UPDATE alerts SET level = 'critical', escalated_at = ?, "
                              "message = ?, message_en = ? WHERE id = ?",
                              (now, higher.message, higher.message_en, seen[0]))
                _plan_delivery(store, int(seen[0]), higher, t, labels, sms_template, now)
            continue
        new.append(alert_id)
        _plan_delivery(store, alert_id, c, t, labels, sms_template, now)
    _resolve(store, verdict, nodes, now)
    return new


def _escalation(c: Candidate, t: dict[str, Any], seen: Any, now: float) -> Candidate | None:
    """``c`` as its escalation, when its open alert (id, raised_at, escalated_at) is not
    escalated yet and has lasted ``escalate_after_min`` or got worse; else None."""
    if seen is None or seen[2] is not None or c.kind not in STATE_KINDS:
        return None
    minutes = float(t["escalate_after_min"])
    if c.worse:
        zh, en = "情况加重", "worse"
    elif minutes and now - float(seen[1]) >= minutes * 60:
        zh, en = f"已持续超过{minutes:g}分钟", f"on for over {minutes:g} min"
    else:
        return None
    return Candidate(c.key, c.kind, c.branch, f"预警升级({zh}):{c.message}",
                     f"Escalated ({en}): {c.message_en}", "critical", c.detail)


def _insert(store: Store, c: Candidate, now: float) -> int | None:
    row = store.execute(
        "INSERT INTO alerts (key, kind, branch, level, message, message_en, detail, "
        "raised_at, last_at, push, sms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'none', 'none') "
        "ON CONFLICT (key) WHERE resolved_at IS NULL DO NOTHING RETURNING id",
        (c.key, c.kind, c.branch, c.level, c.message, c.message_en, _dumps(c.detail), now,
         now)).fetchone()
    return int(row[0]) if row else None


def _plan_delivery(store: Store, alert_id: int, c: Candidate, t: dict[str, Any],
                   labels: Labels, template: str, now: float) -> None:
    recent = store.execute(
        "SELECT count(*) FROM alerts WHERE branch = ? AND kind = ? AND raised_at > ? "
        "AND id <> ? AND push <> 'limited' AND sms <> 'limited'",
        (c.branch, c.kind, now - 3600.0, alert_id)).fetchone()[0]
    if int(recent) >= int(t["max_per_hour"]):
        store.execute("UPDATE alerts SET push = 'limited', sms = 'limited' WHERE id = ?",
                      (alert_id,))
        log.info("alert %s at %s rate-limited (%d this hour)", c.kind, c.branch, recent)
        return
    if c.kind in t["push_kinds"]:
        store.execute("UPDATE alerts SET push = 'pending', push_next = ? WHERE id = ?",
                      (now, alert_id))
    phones = t["sms_to"] if c.kind in t["sms_kinds"] else []
    if not phones:
        return
    text = (template.replace("{branch_name}", labels.branch(c.branch))
            .replace("{branch}", c.branch).replace("{message}", c.message))
    for phone in phones:
        sent = store.execute("SELECT count(*) FROM alert_sms WHERE phone = ? AND "
                             "created_at > ? AND state <> 'limited'",
                             (phone, now - 3600.0)).fetchone()[0]
        state = "limited" if int(sent) >= int(t["sms_per_hour"]) else "pending"
        store.execute("INSERT INTO alert_sms (alert_id, phone, text, state, next_at, "
                      "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                      (alert_id, phone, text, state, now, now))
    store.execute("UPDATE alerts SET sms = 'queued' WHERE id = ?", (alert_id,))


def _resolve(store: Store, verdict: Verdict, nodes: dict[str, dict[str, Any]], now: float
             ) -> None:
    """Resolve the open alerts of the branches looked at whose condition has not been seen
    for their hold; a clear goes to the lobby screen that was sent the alert."""
    on = {c.key for c in verdict.raised}
    for kind, branches in verdict.looked_at.items():
        if not branches:
            continue
        rows = store.execute("SELECT id, key, branch, last_at, push FROM alerts WHERE kind = ?"
                             " AND resolved_at IS NULL", (kind,)).fetchall()
        over = [(now, "pending" if push == "sent" else "none", now, i)
                for i, key, b, last, push in rows if b in branches and key not in on
                and now - float(last) >= _hold(kind, nodes, b)]
        store.execute_many("UPDATE alerts SET resolved_at = ?, clear_push = ?, clear_next = ? "
                           "WHERE id = ?", over)


def _hold(kind: str, nodes: dict[str, dict[str, Any]], branch: str) -> float:
    held = float(effective_thresholds(nodes, branch)["clear_after_s"])
    return max(held, FLOOD_QUIET_S) if kind == "branch_flooding" else held


# --- reading and acknowledging ---------------------------------------------------------------

_COLUMNS = ("id", "key", "kind", "branch", "level", "message", "message_en", "detail",
            "raised_at", "last_at", "repeats", "resolved_at", "acked_by", "acked_at", "push",
            "push_attempts", "push_id", "sms")


def list_alerts(store: Store, scope: Scope, *, state: str = "all", kinds: Iterable[str] = (),
                after: int = 0, limit: int = 200) -> list[dict[str, Any]]:
    """Alerts in ``scope``, newest first (``after``: only ids above it, oldest first).

    ``state``: ``unacked``, ``open`` (not resolved), ``all``.
    """
    where, args = scope.where(queue=False, ctype=False)
    sql, params = f"id > ?{where}", [after, *args]
    if state == "unacked":
        sql += " AND acked_at IS NULL"
    elif state == "open":
        sql += " AND resolved_at IS NULL"
    kinds = list(kinds)
    if kinds:
        sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
        params += kinds
    return _select(store, sql, params, "ASC" if after else "DESC", limit)


def _select(store: Store, where: str, params: list[Any], order: str, limit: int
            ) -> list[dict[str, Any]]:
    cur = store.execute(f"SELECT {', '.join(_COLUMNS)} FROM alerts WHERE {where} "
                        f"ORDER BY id {order} LIMIT ?", [*params, limit])
    rows = [dict(zip(_COLUMNS, r, strict=True)) for r in cur.fetchall()]
    sms = _sms_of(store, [r["id"] for r in rows])
    for r in rows:
        r["detail"] = json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]
        r["sms_messages"] = sms.get(r["id"], [])
    return rows


def _sms_of(store: Store, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        rows = store.execute(
            "SELECT alert_id, phone, state, attempts, sent_at, error FROM alert_sms "
            f"WHERE alert_id IN ({', '.join('?' * len(part))}) ORDER BY id", part).fetchall()
        for alert_id, phone, state, attempts, sent_at, error in rows:
            out.setdefault(int(alert_id), []).append({
                "phone": mask_phone(phone), "state": state, "attempts": attempts,
                "sent_at": sent_at, "error": error})
    return out


def get_alert(store: Store, alert_id: int) -> dict[str, Any] | None:
    found = _select(store, "id = ?", [alert_id], "ASC", 1)
    return found[0] if found else None


def ack_alert(store: Store, alert_id: int, user: str, now: float | None = None
              ) -> dict[str, Any] | None:
    """Mark an alert acknowledged by ``user`` (the first acknowledgement stays)."""
    stamp = store.clock.now() if now is None else now
    store.retrying(lambda: store.execute(
        "UPDATE alerts SET acked_by = ?, acked_at = ? WHERE id = ? AND acked_at IS NULL",
        (user, stamp, alert_id)))
    return get_alert(store, alert_id)


# --- changes, written to the audit log -----------------------------------------------------


def change_thresholds(store: Store, org: str, settings: dict[str, Any] | None,
                      user: str | None, address: str = "") -> None:
    """:func:`set_thresholds`, written to the audit log with the node's settings before
    and after (phones masked): ``alert.thresholds.save`` or ``alert.thresholds.delete``."""
    before = load_thresholds(store).get(org, {})
    set_thresholds(store, org, settings, user)
    detail: dict[str, Any] = {"before": masked(before)}
    if settings is not None:
        detail["after"] = masked(settings)
    action = "alert.thresholds.save" if settings is not None else "alert.thresholds.delete"
    audit.record(store, user or "api", action, org, org or "province", detail,
                 address=address)


def acknowledge(store: Store, alert_id: int, user: str, address: str = ""
                ) -> dict[str, Any] | None:
    """:func:`ack_alert`; when this call is the one that acknowledged the alert, an
    ``alert.ack`` row in the audit log (a later, ignored acknowledgement writes none)."""
    stamp = store.clock.now()
    done = ack_alert(store, alert_id, user, stamp)
    if done is not None and done["acked_at"] == stamp and done["acked_by"] == user:
        audit.record(store, user, "alert.ack", done["branch"], str(alert_id),
                     {"kind": done["kind"], "key": done["key"], "message": done["message"]},
                     address=address, now=stamp)
    return done


