-- Failed staff logins as a growing back-off per key (docs/centre-security.md), replacing
-- the per-failure rows of login_failures: one row per client address (IPv6 by its /64) or
-- per existing account, forgotten web.login_window_s after its wait ends, and at most
-- web.login_max_rows rows in all (the oldest go first).
DROP TABLE login_failures;
CREATE TABLE login_backoff (
    key        TEXT PRIMARY KEY,          -- 'addr:<ip or /64>' or 'user:<id>'
    failures   INTEGER NOT NULL,          -- since the key was last forgotten
    wait_until DOUBLE PRECISION NOT NULL, -- no password is checked for this key before this
    expires    DOUBLE PRECISION NOT NULL  -- the row may be deleted after this
);
CREATE INDEX login_backoff_expires ON login_backoff (expires);
