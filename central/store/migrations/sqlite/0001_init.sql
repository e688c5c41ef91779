-- paidui centre store, version 1 (SQLite). See docs/store.md; keep in step with postgres/.
CREATE TABLE events (
    branch     TEXT    NOT NULL,  -- branch code, e.g. 1001010001
    epoch      TEXT    NOT NULL,  -- the box journal's epoch
    seq        INTEGER NOT NULL,  -- the box journal's sequence number
    day        TEXT    NOT NULL,  -- business day, YYYY-MM-DD
    type       TEXT    NOT NULL,  -- ticket_issued, ticket_called, ...
    at         REAL    NOT NULL,  -- when it happened at the branch (epoch seconds)
    body       TEXT    NOT NULL,  -- the whole event as JSON, as the box sent it
    stored_at  REAL    NOT NULL,  -- when the centre committed it (epoch seconds)
    PRIMARY KEY (branch, epoch, seq)
) WITHOUT ROWID;
CREATE INDEX events_branch_day ON events (branch, day);

CREATE TABLE marks (
    branch     TEXT    NOT NULL,
    epoch      TEXT    NOT NULL,
    contiguous INTEGER NOT NULL DEFAULT 0,  -- every seq up to here is stored (acked_through)
    max_seen   INTEGER NOT NULL DEFAULT 0,  -- the highest seq stored
    updated_at REAL    NOT NULL,
    PRIMARY KEY (branch, epoch)
) WITHOUT ROWID;

CREATE TABLE branches (
    branch         TEXT PRIMARY KEY,
    first_seen     REAL NOT NULL,
    online         INTEGER,          -- 1 birth, 0 Last Will, NULL never heard
    epoch          TEXT,
    last_seq       INTEGER,
    version        TEXT,             -- box software version
    config_version TEXT,
    status_at      REAL,             -- when the centre got the status
    live           TEXT,             -- latest live snapshot (JSON)
    live_at        REAL,
    health         TEXT,             -- latest health report (JSON)
    health_at      REAL
);

CREATE TABLE totals (
    branch      TEXT NOT NULL,
    day         TEXT NOT NULL,
    epoch       TEXT NOT NULL,
    body        TEXT NOT NULL,       -- the box's totals message (JSON)
    received_at REAL NOT NULL,
    PRIMARY KEY (branch, day)
);

CREATE TABLE replies (
    branch      TEXT    NOT NULL,
    id          TEXT    NOT NULL,    -- the command id
    cmd         TEXT    NOT NULL,
    ok          INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    received_at REAL    NOT NULL,
    PRIMARY KEY (branch, id)
);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topic       TEXT NOT NULL,
    branch      TEXT,
    reason      TEXT NOT NULL,       -- malformed_json, wrong_version, wrong_branch, ...
    detail      TEXT NOT NULL,
    payload     TEXT NOT NULL,       -- the first 64 KiB, undecodable bytes escaped
    received_at REAL NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters (reason);

CREATE TABLE dead_letter_counts (
    reason TEXT PRIMARY KEY,
    count  INTEGER NOT NULL
);
