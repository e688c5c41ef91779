-- Customers, appointments and remote tickets (SQLite). central/appointments.py, central/remote.py;
-- docs/appointments.md. Keep in step with postgres/0020_customers.sql.
-- Phone, ID and card numbers: *_digest = keyed HMAC (exact lookup), *_sealed = AES-GCM,
-- *_masked = what pages, exports and logs show. Never a readable number in a column.
CREATE TABLE customers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    gender        TEXT NOT NULL,          -- M / F (checked against the ID number)
    phone_digest  TEXT NOT NULL UNIQUE,
    phone_sealed  TEXT NOT NULL,
    phone_masked  TEXT NOT NULL,          -- 138****5678
    id_digest     TEXT NOT NULL UNIQUE,
    id_sealed     TEXT NOT NULL,
    id_masked     TEXT NOT NULL,          -- 4101**********2311
    id_region     TEXT NOT NULL,          -- 6-digit region code (地区), for area search
    id_tail       TEXT NOT NULL,          -- the last four, as the mask shows them
    card_digest   TEXT,
    card_sealed   TEXT,
    card_masked   TEXT,
    created_at    REAL NOT NULL
);
CREATE INDEX customers_name ON customers (name);
CREATE INDEX customers_region ON customers (id_region);
CREATE INDEX customers_card ON customers (card_digest);

CREATE TABLE customer_sessions (
    token_digest TEXT PRIMARY KEY,        -- SHA-256 of the bearer token
    phone_digest TEXT NOT NULL,
    phone_sealed TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL
);

CREATE TABLE login_codes (
    phone_digest TEXT PRIMARY KEY,
    code_digest  TEXT NOT NULL,
    sent_at      REAL NOT NULL,
    expires_at   REAL NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE bookings (
    id           TEXT PRIMARY KEY,
    customer     TEXT NOT NULL REFERENCES customers (id),
    branch       TEXT NOT NULL,
    queue        TEXT NOT NULL,
    day          TEXT NOT NULL,           -- YYYY-MM-DD
    slot         INTEGER NOT NULL,        -- 1 = 08:00-09:00 ... 9 = 16:00-17:00
    code         TEXT NOT NULL,           -- 6 digits, the first the slot (A6)
    state        TEXT NOT NULL,           -- booked / cancelled
    channel      TEXT NOT NULL,           -- web / sms
    created_at   REAL NOT NULL,
    cancelled_at REAL,
    ticket       TEXT,                    -- the ticket the branch issued for it (from events)
    redeemed_at  REAL,
    UNIQUE (branch, day, code)
);
CREATE INDEX bookings_customer ON bookings (customer, day);
CREATE INDEX bookings_branch_day ON bookings (branch, day, slot);
CREATE UNIQUE INDEX bookings_one_a_day ON bookings (customer, branch, day, queue)
    WHERE state = 'booked';

CREATE TABLE slot_counts (
    branch TEXT NOT NULL,
    day    TEXT NOT NULL,
    queue  TEXT NOT NULL,
    slot   INTEGER NOT NULL,
    booked INTEGER NOT NULL,              -- never above the capacity (conditional update)
    PRIMARY KEY (branch, day, queue, slot)
);

CREATE TABLE appointment_days (           -- each branch-day's list, as pushed to the box
    branch         TEXT NOT NULL,
    day            TEXT NOT NULL,
    revision       INTEGER NOT NULL,      -- bumped by each booking and cancellation
    sent_revision  INTEGER NOT NULL DEFAULT 0,
    acked_revision INTEGER NOT NULL DEFAULT 0,  -- what the box said it keeps
    sent_at        REAL,
    refused        TEXT,                  -- the box's refusal of the last one sent
    PRIMARY KEY (branch, day)
);

CREATE TABLE branch_catalogue (           -- what each box offers (its answer to a push)
    branch     TEXT PRIMARY KEY,
    body       TEXT NOT NULL,             -- JSON: branch, hours, days, queues
    updated_at REAL NOT NULL
);

CREATE TABLE remote_tickets (             -- H3: tickets taken from a phone
    token_digest TEXT PRIMARY KEY,        -- SHA-256 of the link's token
    request      TEXT NOT NULL UNIQUE,    -- the command id sent to the branch
    customer     TEXT NOT NULL,
    branch       TEXT NOT NULL,
    queue        TEXT NOT NULL,
    day          TEXT NOT NULL,
    state        TEXT NOT NULL,           -- pending / issued / refused / no_answer
    number       TEXT,
    ticket       TEXT,
    body         TEXT,                    -- the branch's answer (JSON)
    created_at   REAL NOT NULL
);
CREATE INDEX remote_tickets_customer ON remote_tickets (customer, day);
