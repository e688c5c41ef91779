-- paidui centre store, version 54 (postgres): media pushes send only what changed
-- (central/media.py, docs/backoffice.md) and alerts hold, escalate and clear
-- (central/alerts.py, docs/alerts.md). Keep in step with the other folder.

-- What each branch's box answered it holds from the centre's pushes: a push sends only
-- the files whose name or SHA-256 differs, and deletes the names no longer wanted.
-- Bounded per branch by the box's folder (40 files).
CREATE TABLE media_held (
    branch   TEXT NOT NULL,
    name     TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    acked_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (branch, name)
);

-- cmd/media commands sent and not yet folded into media_held (their answers: replies).
-- Bounded: a row is gone once its answer is folded in, or after an hour unanswered.
CREATE TABLE media_sent (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    branch  TEXT NOT NULL,
    id      TEXT NOT NULL,              -- the command id
    files   TEXT NOT NULL,              -- JSON {name: sha256} the command carries
    deleted TEXT NOT NULL,              -- JSON [name] it deletes
    sent_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX media_sent_branch ON media_sent (branch, seq);

-- An alert's level raised once (the condition lasted or worsened), and its clear pushed once
-- to the lobby screen that heard it (none, pending, sent, failed).
ALTER TABLE alerts ADD COLUMN escalated_at DOUBLE PRECISION;
ALTER TABLE alerts ADD COLUMN clear_push TEXT NOT NULL DEFAULT 'none';
ALTER TABLE alerts ADD COLUMN clear_next DOUBLE PRECISION;
ALTER TABLE alerts ADD COLUMN clear_attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX alerts_clear_pending ON alerts (clear_next) WHERE clear_push = 'pending';
