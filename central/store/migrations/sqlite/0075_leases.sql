-- paidui centre store, version 75 (sqlite): leases. Keep in step with the other folder.
-- Bounded: one row per leased job (alerts, appointments, aggregates), one per shared secret.
-- Work done once across centre instances (central/leases.py): one row per job, naming the
-- process that holds it and when its hold runs out; fence grows with every new holder.
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL,
    fence INTEGER NOT NULL,
    taken_at REAL NOT NULL
);

-- The fingerprint of each secret every centre instance must share (central/privacy.py
-- check_shared): an instance started with another customers.secret_file is refused.
CREATE TABLE IF NOT EXISTS centre_secrets (
    name TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL
);
