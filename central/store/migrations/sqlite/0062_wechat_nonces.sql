-- WeChat requests already answered (central/wechat/endpoint.py): the digest of each signed
-- request's (timestamp, nonce, signature), refused when seen again. Requests older than
-- wechat.max_age_s are refused by their timestamp, so rows older than that are deleted as
-- requests come: at most max_age_s × the request rate rows, shared by the centre processes.
CREATE TABLE wechat_nonces (
    digest TEXT PRIMARY KEY,
    at     REAL NOT NULL
);
CREATE INDEX wechat_nonces_at ON wechat_nonces (at);
