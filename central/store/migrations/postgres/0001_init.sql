-- paidui centre store, version 1 (PostgreSQL). See docs/store.md; keep in step with sqlite/.
CREATE TABLE events (
    branch     TEXT             NOT NULL,
    epoch      TEXT             NOT NULL,
    seq        BIGINT           NOT NULL,
    day        TEXT             NOT NULL,
    type       TEXT             NOT NULL,
    at         DOUBLE PRECISION NOT NULL,
    body       JSONB            NOT NULL,
    stored_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (branch, epoch, seq)
);
CREATE INDEX events_branch_day ON events (branch, day);

CREATE TABLE marks (
    branch     TEXT             NOT NULL,
    epoch      TEXT             NOT NULL,
    contiguous BIGINT           NOT NULL DEFAULT 0,
    max_seen   BIGINT           NOT NULL DEFAULT 0,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (branch, epoch)
);

CREATE TABLE branches (
    branch         TEXT PRIMARY KEY,
    first_seen     DOUBLE PRECISION NOT NULL,
    online         BOOLEAN,
    epoch          TEXT,
    last_seq       BIGINT,
    version        TEXT,
    config_version TEXT,
    status_at      DOUBLE PRECISION,
    live           JSONB,
    live_at        DOUBLE PRECISION,
    health         JSONB,
    health_at      DOUBLE PRECISION
);

CREATE TABLE totals (
    branch      TEXT             NOT NULL,
    day         TEXT             NOT NULL,
    epoch       TEXT             NOT NULL,
    body        JSONB            NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (branch, day)
);

CREATE TABLE replies (
    branch      TEXT             NOT NULL,
    id          TEXT             NOT NULL,
    cmd         TEXT             NOT NULL,
    ok          BOOLEAN          NOT NULL,
    body        JSONB            NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (branch, id)
);

CREATE TABLE dead_letters (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic       TEXT             NOT NULL,
    branch      TEXT,
    reason      TEXT             NOT NULL,
    detail      TEXT             NOT NULL,
    payload     TEXT             NOT NULL,
    received_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters (reason);

CREATE TABLE dead_letter_counts (
    reason TEXT PRIMARY KEY,
    count  BIGINT NOT NULL
);
