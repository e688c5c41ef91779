-- Back office (docs/centre-security.md, docs/backoffice.md): organisation tree, users,
-- sessions, login throttling, audit log, branch configuration versions and pushes.
-- Numbered 0040 so that other features' migrations (0002...) never share its number.
-- Keep in step with sqlite/0040_backoffice.sql.
CREATE TABLE orgs (
    code       TEXT PRIMARY KEY,        -- 1001 -> 100101 -> 1001010001 (a prefix tree)
    parent     TEXT,                    -- NULL for a root, else always a prefix of code
    name       TEXT NOT NULL,
    name_en    TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL,           -- head | city | branch
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX orgs_parent ON orgs (parent);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,     -- the login name
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,        -- admin | manager | auditor | viewer
    scope         TEXT NOT NULL,        -- an org code: the user sees that node's subtree
    password_hash TEXT NOT NULL,        -- scrypt$n$r$p$salt$hash
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    DOUBLE PRECISION NOT NULL,
    created_by    TEXT,
    updated_at    DOUBLE PRECISION NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,        -- sha256 of the bearer/cookie token (never the token)
    user_id    TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    last_seen  DOUBLE PRECISION NOT NULL,
    address    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_failures (
    key TEXT NOT NULL,                  -- 'user:<id>' or 'addr:<ip>'
    at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);

CREATE TABLE audit (
    id      BIGSERIAL PRIMARY KEY,
    at      DOUBLE PRECISION NOT NULL,
    user_id TEXT NOT NULL,
    org     TEXT NOT NULL DEFAULT '',   -- the org code acted on ('' = centre-wide)
    action  TEXT NOT NULL,              -- login, user.create, config.push, queue.pause, ...
    target  TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT '{}', -- JSON, VIP numbers masked
    address TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_org ON audit (org, at);

CREATE TABLE branch_configs (
    branch     TEXT NOT NULL,
    version    INTEGER NOT NULL,        -- 1, 2, 3 ... per branch
    body       TEXT NOT NULL,           -- the business configuration (JSON), no local sections
    section    TEXT NOT NULL,           -- what this version changed (import, queues, ...)
    comment    TEXT NOT NULL DEFAULT '',
    author     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (branch, version)
);

CREATE TABLE config_pushes (
    id      TEXT PRIMARY KEY,           -- the cmd/config command id (its answer: replies)
    branch  TEXT NOT NULL,
    version INTEGER NOT NULL,
    sent_at DOUBLE PRECISION NOT NULL,
    sent_by TEXT NOT NULL
);
CREATE INDEX config_pushes_branch ON config_pushes (branch, sent_at);

CREATE TABLE media_files (
    org         TEXT NOT NULL,          -- the node it is for: its whole subtree gets it
    name        TEXT NOT NULL,          -- a plain file name (the kiosk's media folder)
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    data        BYTEA NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (org, name)
);
