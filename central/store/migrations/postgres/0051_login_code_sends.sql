-- Sign-in codes texted, for their limits (central/code_limits.py): one row per key a code
-- counts against ('phone:<digest>', 'net:<address or IPv6 /64>', 'centre'); rows older
-- than a day are deleted as codes are sent. Shared by every centre process.
CREATE TABLE login_code_sends (
    key TEXT NOT NULL,
    at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX login_code_sends_key ON login_code_sends (key, at);
CREATE INDEX login_code_sends_at ON login_code_sends (at);
