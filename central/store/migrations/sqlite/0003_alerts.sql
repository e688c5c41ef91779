-- paidui centre store, version 3 (SQLite): alerts (central/alerts.py, docs/alerts.md).
-- Keep in step with postgres/.

-- Happenings the ingest noticed for the alert rules (bad ratings), taken by the alert desk.
CREATE TABLE alert_inbox (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    branch TEXT NOT NULL,
    kind   TEXT NOT NULL,
    at     REAL NOT NULL,
    body   TEXT NOT NULL             -- the event (JSON)
);

-- Thresholds per organisation node: a branch takes each key from the longest org code
-- that is a prefix of its own and sets that key ('' = the whole province).
CREATE TABLE alert_thresholds (
    org        TEXT PRIMARY KEY,
    settings   TEXT NOT NULL,        -- JSON: only the keys this node sets
    updated_at REAL NOT NULL,
    updated_by TEXT
);

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key           TEXT    NOT NULL,  -- what makes two alerts the same one (de-duplication)
    kind          TEXT    NOT NULL,  -- waiting_over, long_wait, bad_rating, device_fault, ...
    branch        TEXT    NOT NULL,
    level         TEXT    NOT NULL,  -- warning, critical
    message       TEXT    NOT NULL,  -- Chinese, as shown and sent
    message_en    TEXT    NOT NULL,
    detail        TEXT    NOT NULL,  -- JSON
    raised_at     REAL    NOT NULL,
    last_at       REAL    NOT NULL,  -- the latest time the condition was seen again
    repeats       INTEGER NOT NULL DEFAULT 0,
    resolved_at   REAL,              -- the condition is over (NULL: still on)
    acked_by      TEXT,
    acked_at      REAL,
    push          TEXT    NOT NULL,  -- to the branch's lobby screen: none, pending, sent, failed, limited
    push_attempts INTEGER NOT NULL DEFAULT 0,
    push_next     REAL,
    push_id       TEXT,              -- the command id sent on qms/v1/{branch}/cmd/alert
    sms           TEXT    NOT NULL   -- none, queued, limited
);
CREATE UNIQUE INDEX alerts_open_key ON alerts (key) WHERE resolved_at IS NULL;
CREATE INDEX alerts_branch ON alerts (branch, id);
CREATE INDEX alerts_kind_time ON alerts (branch, kind, raised_at);
CREATE INDEX alerts_push_pending ON alerts (push_next) WHERE push = 'pending';

-- One row per SMS to one phone (full number kept to send and retry; shown masked only).
CREATE TABLE alert_sms (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id   INTEGER NOT NULL,
    phone      TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    state      TEXT    NOT NULL,     -- pending, sent, failed, limited
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    REAL    NOT NULL,
    created_at REAL    NOT NULL,
    sent_at    REAL,
    error      TEXT
);
CREATE INDEX alert_sms_pending ON alert_sms (next_at) WHERE state = 'pending';
CREATE INDEX alert_sms_phone ON alert_sms (phone, created_at);
CREATE INDEX alert_sms_alert ON alert_sms (alert_id);
