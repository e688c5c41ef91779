-- WeChat followers bound to a customer's phone (central/wechat/): one row per openid of
-- the centre's official account, written when the follower proves the phone with an SMS
-- code. The phone is a keyed digest (the customers' lookup) and sealed (texting them);
-- a new binding of the same openid replaces the old one. Bounded by the followers.
CREATE TABLE wechat_users (
    openid       TEXT PRIMARY KEY,
    phone_digest TEXT NOT NULL,
    phone_sealed TEXT NOT NULL,
    bound_at     DOUBLE PRECISION NOT NULL
);
CREATE INDEX wechat_users_phone ON wechat_users (phone_digest);
