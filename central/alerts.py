"""Alerts at the centre (SPEC A8, C2, D1, D2, F5): rules, thresholds, delivery, ack.

Rules (each with its own ``kind``):

=================  ===============================================================
``waiting_over``   more than ``waiting_over`` customers waiting at a branch (A8, from
                   its live snapshot); on until the count is back at or below 80 % of
                   it (hysteresis: a count hovering at the threshold is one alert)
``long_wait``      a customer waiting longer than ``wait_over_min`` minutes and not yet
                   called (from the ticket summaries); on until called or closed
``bad_rating``     a rating the branch marks bad (差评, C2; noted at ingest)
``device_fault``   a device in one of ``device_states`` in the branch's health (D1)
``offline``        the branch's Last Will said offline ``offline_after_s`` ago
``no_data``        a known branch sent nothing for yesterday (F5, after ``daily_check_at``)
``totals_mismatch`` yesterday's totals missing or disagreeing with the events (F3/F5)
=================  ===============================================================

Thresholds per organisation node (table ``alert_thresholds``): a branch takes each
setting from the longest org code that is a prefix of its code *and* sets that key, else
from the province row (org ``''``), else from :data:`DEFAULTS` — the most specific wins,
key by key.

An alert's ``key`` says what makes two alerts the same one: while an alert with that key
is not resolved, the condition seen again only counts a repeat (de-duplication). State
rules resolve their alert when the condition is over; a later occurrence is a new alert.

Delivery, from the ``alerts`` table (the outbox), by :class:`AlertDesk`:

* every alert is listed by ``GET /api/alerts`` for the dashboard (which plays a sound for
  new unacknowledged ones) until a user acknowledges it;
* kinds in ``push_kinds`` are pushed to the branch's lobby-manager screen as
  ``qms/v1/{branch}/cmd/alert`` (the box turns it into a pop-up, docs/alerts.md);
* kinds in ``sms_kinds`` are sent by SMS to ``sms_to`` through the gateway
  (:mod:`central.sms`).

Rate limits: at most ``max_per_hour`` alerts of one kind at one branch are delivered in an
hour (later ones are stored with ``push``/``sms`` = ``limited``), and at most
``sms_per_hour`` SMS go to one phone in an hour. Phone numbers are masked in the log and in
every API answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import aiomqtt
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controller.uplink.link import still_cancelling
from protocols.appointment import mask_phone

from . import audit
from .reports.api import allowed_prefixes
from .reports.labels import Labels, labels_from_store
from .reports.scope import OutOfScope, Period, Scope, ScopeError, resolve_scope
from .reports.summary import report_timezone
from .sms import LogSms, SmsError, SmsGateway

if TYPE_CHECKING:
    from .config import AlertSettings
    from .service import Centre
    from .store import Store

__all__ = [
    "DEFAULTS",
    "KINDS",
    "AlertDesk",
    "Candidate",
    "Thresholds",
    "ack_alert",
    "acknowledge",
    "alerts_router",
    "change_thresholds",
    "effective_thresholds",
    "list_alerts",
    "raise_alerts",
    "set_thresholds",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

KINDS = ("waiting_over", "long_wait", "bad_rating", "device_fault", "offline", "no_data",
         "totals_mismatch")
STATE_KINDS = ("waiting_over", "long_wait", "device_fault", "offline")
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
    "totals_mismatch": True, "sms_to": [], "sms_kinds": list(KINDS),
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
    stamp = time.time() if now is None else now

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
            {"waiting": waiting, "threshold": limit}))


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
    """Customers still waiting, never called, for longer than ``wait_over_min``."""
    online = {r["branch"] for r in branches if r["online"] is not False}
    limits = {b: float(effective_thresholds(nodes, b)["wait_over_min"]) for b in online}
    verdict.looked_at["long_wait"] = {b for b, m in limits.items() if m}
    if not verdict.looked_at["long_wait"]:
        return
    shortest = min(m for m in limits.values() if m)
    rows = store.execute(
        "SELECT branch, ticket, number, queue_now, issued_at FROM rpt_ticket "
        "WHERE called_at IS NULL AND outcome = '' AND issued_at <= ? AND issued_at > ?",
        (now - shortest * 60, now - 86400.0)).fetchall()
    for branch, ticket, number, queue, issued in rows:
        minutes = limits.get(branch)
        if not minutes or now - issued <= minutes * 60:
            continue
        verdict.raised.append(Candidate(
            f"long_wait:{branch}:{ticket}", "long_wait", branch,
            f"请注意,{number}号客户已等待超过{minutes:g}分钟,仍未叫号。",
            f"Ticket {number} has waited over {minutes:g} min without a call.", "warning",
            {"ticket": ticket, "number": number, "queue": labels.queue(queue),
             "issued_at": issued, "minutes": minutes}))


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


def daily_rules(store: Store, nodes: dict[str, dict[str, Any]], labels: Labels, day: str,
                now: float, verdict: Verdict) -> None:
    """Yesterday's branches with no data, no totals or disagreeing totals (F5)."""
    from .reports.quality import data_quality

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
        alert_id = _insert(store, c, now)
        if alert_id is None:
            store.execute("UPDATE alerts SET last_at = ?, repeats = repeats + 1 "
                          "WHERE key = ? AND resolved_at IS NULL", (now, c.key))
            continue
        new.append(alert_id)
        _plan_delivery(store, alert_id, c, effective_thresholds(nodes, c.branch), labels,
                       sms_template, now)
    _resolve(store, verdict, now)
    return new


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


def _resolve(store: Store, verdict: Verdict, now: float) -> None:
    on = {c.key for c in verdict.raised}
    for kind, branches in verdict.looked_at.items():
        if not branches:
            continue
        rows = store.execute("SELECT id, key, branch FROM alerts WHERE kind = ? AND "
                             "resolved_at IS NULL", (kind,)).fetchall()
        over = [(now, i) for i, key, b in rows if b in branches and key not in on]
        store._many("UPDATE alerts SET resolved_at = ? WHERE id = ?", over)


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
    stamp = time.time() if now is None else now
    store.retrying(lambda: store.execute(
        "UPDATE alerts SET acked_by = ?, acked_at = ? WHERE id = ? AND acked_at IS NULL",
        (user, stamp, alert_id)))
    return get_alert(store, alert_id)


# --- the desk: evaluating and delivering -----------------------------------------------------

Publish = Callable[[str, dict[str, Any]], Awaitable[str]]


class AlertDesk:
    """Evaluates the rules and delivers new alerts, every ``interval_s`` (a centre task).

    ``publish(branch, args)`` sends ``cmd/alert`` to a branch and returns the command id
    (the centre's :meth:`~central.service.Centre.send_command`); ``gateway`` sends SMS
    (the centre's one gateway, :func:`central.sms.make_gateway`; without one, to the log).
    """

    def __init__(self, settings: AlertSettings, store_url: str, *, publish: Publish,
                 gateway: SmsGateway | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store_url = store_url
        self.publish = publish
        self.gateway = gateway or LogSms()
        self.clock = clock
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="centre-alerts")
        self._store: Store | None = None
        self._daily_done: str | None = None
        self.stats = {"raised": 0, "pushed": 0, "sms_sent": 0, "sms_failed": 0}

    async def run(self) -> None:
        """Evaluate and deliver until cancelled; a failed round is logged, never fatal."""
        try:
            while True:
                still_cancelling()  # a delivery's publish may have swallowed the stop
                try:
                    await self.round()
                except Exception as exc:  # the store or the broker went away: next round
                    log.error("alert round failed: %r", exc, exc_info=exc)
                    await self._reopen()
                await asyncio.sleep(self.settings.interval_s)  # a period, not a wait
        finally:
            await self.close()

    async def round(self) -> list[int]:
        """One evaluation and one delivery pass; returns the ids of new alerts."""
        new = await self._db(self.evaluate, self.clock())
        await self.deliver()
        return new

    async def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                await self._db(store.close)
        await asyncio.to_thread(self._executor.shutdown, True)

    async def _reopen(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                await self._db(store.close)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def store(self) -> Store:
        if self._store is None:
            from .store import open_store

            self._store = open_store(self.store_url)
        return self._store

    # --- evaluating (on the desk's store thread) ---------------------------------------

    def evaluate(self, now: float) -> list[int]:
        """Run every rule and store what they found, in one transaction."""
        store = self.store()
        labels = labels_from_store(store)
        day = self._daily_day(store, now)

        def run() -> list[int]:
            nodes = load_thresholds(store)
            verdict = Verdict()
            branches = store.branches()
            live_rules(store, branches, nodes, labels, now, verdict)
            long_wait_rule(store, branches, nodes, labels, now, verdict)
            bad_rating_rule(store, nodes, labels, verdict)
            if day is not None:
                daily_rules(store, nodes, labels, day, now, verdict)
            return raise_alerts(store, verdict, nodes, labels, self.settings.sms.template,
                                now)

        new: list[int] = store.retrying(run)
        if day is not None:
            self._daily_done = f"{day}@{int(now // 300)}"
        self.stats["raised"] += len(new)
        return new

    def _daily_day(self, store: Store, now: float) -> str | None:
        """Yesterday, once local time is past ``daily_check_at`` (at most every 5 min)."""
        local = dt.datetime.fromtimestamp(now, report_timezone(store))
        if local.strftime("%H:%M") < self.settings.daily_check_at:
            return None
        day = (local.date() - dt.timedelta(days=1)).isoformat()
        if self._daily_done == f"{day}@{int(now // 300)}":
            return None
        return day

    # --- delivering ------------------------------------------------------------------------

    async def deliver(self) -> None:
        """Push pending alerts to their branches and send pending SMS."""
        now = self.clock()
        store = self.store()
        pushes = await self._db(lambda: store.execute(
            "SELECT id, branch, kind, level, message, message_en, raised_at, push_attempts "
            "FROM alerts WHERE push = 'pending' AND push_next <= ? ORDER BY id LIMIT 100",
            (now,)).fetchall())
        for row in pushes:
            if await self._db(self._claim, "alerts", "push", "push_next", row[0], now):
                await self._push(row, now)
        messages = await self._db(lambda: store.execute(
            "SELECT id, phone, text, attempts FROM alert_sms WHERE state = 'pending' "
            "AND next_at <= ? ORDER BY id LIMIT 100", (now,)).fetchall())
        for row in messages:
            if await self._db(self._claim, "alert_sms", "state", "next_at", row[0], now):
                await self._sms(row, now)

    def _claim(self, table: str, state: str, next_at: str, row_id: int, now: float) -> bool:
        """Take a delivery for LEASE_S (another centre process then leaves it alone; if
        this one dies mid-way, the lease runs out and it is tried again)."""
        cur = self.store().execute(
            f"UPDATE {table} SET {next_at} = ? WHERE id = ? AND {state} = 'pending' "
            f"AND {next_at} <= ?", (now + LEASE_S, row_id, now))
        return int(cur.rowcount) == 1

    async def _push(self, row: tuple[Any, ...], now: float) -> None:
        alert_id, branch, kind, level, message, message_en, raised_at, attempts = row
        args = {"id": f"alert-{alert_id}-{uuid.uuid4().hex[:8]}", "alert_id": int(alert_id),
                "kind": kind, "level": level, "message": message[:200],
                "message_en": message_en[:200], "at": float(raised_at)}
        try:
            cmd_id = await self.publish(branch, args)
        except (ConnectionError, aiomqtt.MqttError) as exc:  # no broker link: not a try
            log.info("alert %s not pushed yet: %s", alert_id, exc)
            await self._db(lambda: self.store().execute(
                "UPDATE alerts SET push_next = ? WHERE id = ?", (now, alert_id)))
            return
        except (OSError, ValueError) as exc:
            await self._db(self._retry, "alerts", "push", alert_id, attempts, now, str(exc))
            return
        await self._db(lambda: self.store().execute(
            "UPDATE alerts SET push = 'sent', push_id = ?, push_attempts = push_attempts + 1 "
            "WHERE id = ?", (cmd_id, alert_id)))
        self.stats["pushed"] += 1

    async def _sms(self, row: tuple[Any, ...], now: float) -> None:
        sms_id, phone, text, attempts = row
        try:
            await self.gateway.send(phone, text)
        except (SmsError, OSError, ValueError) as exc:
            log.warning("SMS to %s failed: %s", mask_phone(phone), exc)
            self.stats["sms_failed"] += 1
            await self._db(self._retry, "alert_sms", "state", sms_id, attempts, now, str(exc))
            return
        await self._db(lambda: self.store().execute(
            "UPDATE alert_sms SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
            "error = NULL WHERE id = ?", (self.clock(), sms_id)))
        self.stats["sms_sent"] += 1

    def _retry(self, table: str, column: str, row_id: int, attempts: int, now: float,
               error: str) -> None:
        """Try again later (30 s, doubling, at most 30 min), or give up after the limit."""
        tries = int(attempts) + 1
        give_up = tries >= self.settings.max_attempts
        delay = min(30.0 * 2 ** (tries - 1), 1800.0)
        if table == "alerts":
            self.store().execute(
                "UPDATE alerts SET push = ?, push_attempts = ?, push_next = ? WHERE id = ?",
                ("failed" if give_up else "pending", tries, now + delay, row_id))
        else:
            self.store().execute(
                "UPDATE alert_sms SET state = ?, attempts = ?, next_at = ?, error = ? "
                "WHERE id = ?", ("failed" if give_up else "pending", tries, now + delay,
                                 error[:300], row_id))
        log.warning("alert delivery %s %d failed (%s); %s", table, row_id, error,
                    "giving up" if give_up else f"again in {delay:.0f} s")


# --- HTTP ------------------------------------------------------------------------------------


def acting_user() -> str | None:
    """Who is acknowledging; None: the request body names them. The back office overrides
    this with its logged-in user (then the body's ``user`` is ignored)."""
    return None


Allowed = Annotated[list[str] | None, Depends(allowed_prefixes)]
User = Annotated[str | None, Depends(acting_user)]
OrgPath = Annotated[str, Path(description="org code, or 'province' for every branch")]


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str | None = Field(None, min_length=1, max_length=64)


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
    stamp = time.time()
    done = ack_alert(store, alert_id, user, stamp)
    if done is not None and done["acked_at"] == stamp and done["acked_by"] == user:
        audit.record(store, user, "alert.ack", done["branch"], str(alert_id),
                     {"kind": done["kind"], "key": done["key"], "message": done["message"]},
                     address=address, now=stamp)
    return done


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _org_key(org: str) -> str:
    if org == "province":
        return ""
    if not re.fullmatch(r"\d{1,16}", org):
        raise ValueError(f"{org[:40]!r} is not an org code (digits) or 'province'")
    return org


def alerts_router(centre: Centre) -> APIRouter:
    """``/api/alerts``: list, one, acknowledge; ``/api/alerts/thresholds``: per org node."""
    router = APIRouter(tags=["alerts"])

    def scope_of(org: list[str] | None, branch: list[str] | None,
                 allowed: list[str] | None) -> Scope:
        try:
            return resolve_scope(org, branch, allowed=allowed)
        except OutOfScope as exc:
            raise HTTPException(403, str(exc)) from None
        except ScopeError as exc:
            raise HTTPException(422, str(exc)) from None

    def node(org: str, allowed: list[str] | None) -> str:
        try:
            code = _org_key(org)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        if allowed is not None and not any(code.startswith(a) for a in allowed if a):
            raise HTTPException(403, f"org {org} is outside your scope")
        return code

    @router.get("/api/alerts")
    async def alerts(
        allowed: Allowed,
        org: Annotated[list[str] | None, Query()] = None,
        branch: Annotated[list[str] | None, Query()] = None,
        kind: Annotated[list[str] | None, Query()] = None,
        state: Annotated[str, Query(pattern="^(all|open|unacked)$")] = "all",
        after: Annotated[int, Query(ge=0, description="only ids above this, oldest first "
                                                      "(poll with the last id seen)")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        """Alerts in the caller's scope, newest first; phone numbers masked."""
        scope = scope_of(org, branch, allowed)
        rows = await centre.read(lambda s: list_alerts(s, scope, state=state, kinds=kind or (),
                                                       after=after, limit=limit))
        last = max([after, *(r["id"] for r in rows)])
        return {"alerts": rows, "last_id": last}

    @router.get("/api/alerts/thresholds")
    async def thresholds(allowed: Allowed) -> dict[str, Any]:
        """Every org node's own settings (phones masked) and the built-in defaults."""
        nodes = await centre.read(load_thresholds)
        visible = {o: masked(v) for o, v in sorted(nodes.items())
                   if allowed is None or any(o.startswith(a) for a in allowed if a)}
        return {"defaults": DEFAULTS, "nodes": visible}

    @router.get("/api/alerts/thresholds/{org}")
    async def thresholds_at(org: OrgPath, allowed: Allowed) -> dict[str, Any]:
        """The settings in force at an org node or branch, and the node's own."""
        code = node(org, allowed)
        nodes = await centre.read(load_thresholds)
        return {"org": code or "province", "own": masked(nodes.get(code, {})),
                "effective": masked(effective_thresholds(nodes, code))}

    @router.put("/api/alerts/thresholds/{org}")
    async def put_thresholds(org: OrgPath, allowed: Allowed, user: User, request: Request,
                             body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Set an org node's own settings (the keys given; the rest is inherited)."""
        code = node(org, allowed)
        try:
            settings = Thresholds.model_validate(body).set_keys()
        except ValidationError as exc:
            raise HTTPException(422, [{"loc": list(e["loc"]), "msg": e["msg"]}
                                      for e in exc.errors()]) from None
        await centre.read(lambda s: change_thresholds(s, code, settings, user,
                                                      _address(request)))
        return await thresholds_at(org, allowed)

    @router.delete("/api/alerts/thresholds/{org}")
    async def delete_thresholds(org: OrgPath, allowed: Allowed, user: User, request: Request
                                ) -> dict[str, Any]:
        """Remove an org node's own settings: it inherits everything again."""
        code = node(org, allowed)
        await centre.read(lambda s: change_thresholds(s, code, None, user, _address(request)))
        return await thresholds_at(org, allowed)

    @router.get("/api/alerts/{alert_id}")
    async def one(alert_id: Annotated[int, Path(ge=1)], allowed: Allowed) -> dict[str, Any]:
        found = await centre.read(lambda s: get_alert(s, alert_id))
        if found is None or not scope_of(None, None, allowed).covers(found["branch"]):
            raise HTTPException(404, f"no alert {alert_id}")
        return found

    @router.post("/api/alerts/{alert_id}/ack")
    async def ack(alert_id: Annotated[int, Path(ge=1)], allowed: Allowed, user: User,
                  request: Request, body: Annotated[AckRequest | None, Body()] = None
                  ) -> dict[str, Any]:
        """Acknowledge an alert (确认) with the user's name; the first one stays."""
        name = user or (body.user if body else None)
        if not name:
            raise HTTPException(422, "say who acknowledges: {\"user\": \"name\"}")
        found = await centre.read(lambda s: get_alert(s, alert_id))
        if found is None or not scope_of(None, None, allowed).covers(found["branch"]):
            raise HTTPException(404, f"no alert {alert_id}")
        done = await centre.read(lambda s: acknowledge(s, alert_id, name, _address(request)))
        assert done is not None
        return done

    return router
