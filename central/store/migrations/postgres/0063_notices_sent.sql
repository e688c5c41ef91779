-- "Your turn is near" (H6): the notices sent about remote and booked tickets, at most one per
-- (branch, day, ticket, kind), shared by every centre process (central/nearturn.py,
-- docs/integrations.md). A row is claimed ('sending') before the message goes, then says
-- what came of it. Rows of days older than customers.notify_keep_days are deleted.
-- Keep in step with sqlite/0063_notices_sent.sql.
CREATE TABLE notices_sent (
    branch   TEXT NOT NULL,
    day      TEXT NOT NULL,                -- YYYY-MM-DD in the centre's zone
    ticket   TEXT NOT NULL,                -- the box's ticket id
    kind     TEXT NOT NULL,                -- near / called
    customer TEXT NOT NULL,                -- customers.id
    number   TEXT NOT NULL,                -- as printed, e.g. A012 (SMS rating finds it here)
    state    TEXT NOT NULL,                -- sending / sent / unreachable / failed
    channel  TEXT,                         -- the notifier that took it (sms, wechat)
    tries    INTEGER NOT NULL DEFAULT 0,
    at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (branch, day, ticket, kind)
);
CREATE INDEX notices_sent_day ON notices_sent (day);
CREATE INDEX notices_sent_customer ON notices_sent (customer, day);
-- The watcher lists today's remote tickets and bookings every few seconds.
CREATE INDEX remote_tickets_day ON remote_tickets (day, branch);
CREATE INDEX bookings_day ON bookings (day, branch);
