-- paidui centre store, version 83 (postgres): forms filled for a booking before its ticket exists
-- (预填单 "before or after taking a ticket", SPEC I2; central/booking_forms.py,
-- docs/integrations.md). Keep in step with the other folder.
-- Bounded: at most one row per booking (its latest form); the whole values are held only
-- until delivered to the branch (or the booking's day is over), the masked copy is blanked
-- after forms.keep_days like the branches' forms.
CREATE TABLE IF NOT EXISTS booking_forms (
    booking       TEXT PRIMARY KEY REFERENCES bookings (id),
    branch        TEXT NOT NULL,
    day           TEXT NOT NULL,            -- the booking's day (YYYY-MM-DD)
    queue         TEXT NOT NULL,
    form          TEXT NOT NULL,            -- the form's id ([forms] of the centre)
    title         TEXT NOT NULL,
    fields_masked TEXT NOT NULL,            -- JSON: the filled fields, each value masked
    fields_sealed TEXT,                     -- the whole values (AES-GCM), until delivered
    revision      INTEGER NOT NULL,         -- bumped by every fill
    state         TEXT NOT NULL,            -- waiting / sending / delivered / refused / expired
    send_id       TEXT,                     -- the cmd/form in flight (its id)
    send_revision INTEGER NOT NULL DEFAULT 0,
    sent_at       DOUBLE PRECISION,
    expires_at    DOUBLE PRECISION,
    ticket_number TEXT,                     -- the ticket the form went to
    error         TEXT,                     -- the branch's refusal code
    filled_at     DOUBLE PRECISION NOT NULL,
    delivered_at  DOUBLE PRECISION
);
-- The deliverer's look: only rows still holding whole values.
CREATE INDEX IF NOT EXISTS booking_forms_due ON booking_forms (day) WHERE fields_sealed IS NOT NULL;
CREATE INDEX IF NOT EXISTS booking_forms_day ON booking_forms (day);
