-- Where each follower's WeChat conversation stands (central/wechat/dialogue.py): the
-- numbered lists last sent, the choice being made, a phone awaiting its code. Expired
-- rows (wechat.dialogue_ttl_s) are deleted as conversations are written, so the table
-- holds at most the followers who wrote within that time.
CREATE TABLE wechat_dialogues (
    openid     TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX wechat_dialogues_expires ON wechat_dialogues (expires_at);
