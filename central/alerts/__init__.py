"""Alerts at the centre (SPEC A8, C2, D1, D2, F5): rules, thresholds, delivery, ack.

Three modules: :mod:`~central.alerts.rules` (the rules, thresholds and the alerts table),
:mod:`~central.alerts.desk` (the :class:`AlertDesk` that evaluates and delivers) and
:mod:`~central.alerts.api` (the HTTP routes, :func:`alerts_router`).

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
``branch_flooding`` the ingest is rate-limiting the branch's messages (its rows in
                   ``alert_inbox``, at most one a minute); on until none came for
                   :data:`FLOOD_QUIET_S`
=================  ===============================================================

Thresholds per organisation node (table ``alert_thresholds``): a branch takes each
setting from the longest org code that is a prefix of its code *and* sets that key, else
from the province row (org ``''``), else from :data:`DEFAULTS` — the most specific wins,
key by key.

An alert's ``key`` says what makes two alerts the same one: while an alert with that key
is not resolved, the condition seen again only counts a repeat (de-duplication). State
rules resolve their alert once the condition has not been seen for ``clear_after_s``
(hysteresis in time: a condition flapping every few seconds stays one alert, and clears
once); a later occurrence is a new alert. A resolved alert that was pushed to the lobby
screen has its clear pushed once. An open state alert is **escalated** once — level
``critical``, delivered again — when it has lasted ``escalate_after_min`` or its rule
finds it worse (waiting count or wait beyond ``escalate_factor`` × the threshold).

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

from .api import alerts_router
from .desk import AlertDesk
from .rules import (
    DEFAULTS,
    FLOOD_QUIET_S,
    KINDS,
    Candidate,
    Thresholds,
    ack_alert,
    acknowledge,
    change_thresholds,
    effective_thresholds,
    list_alerts,
    load_thresholds,
    masked,
    raise_alerts,
    set_thresholds,
)

__all__ = [
    "DEFAULTS",
    "FLOOD_QUIET_S",
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
    "load_thresholds",
    "masked",
    "raise_alerts",
    "set_thresholds",
]
