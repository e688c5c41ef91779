-- paidui centre store, version 84 (sqlite): who a booking's or remote ticket's customer is, as the
-- centre's CIF said when it was made (SPEC I1; central/cif.py, docs/integrations.md). Keep
-- in step with the other folder. No new rows: four columns on rows that exist anyway.
ALTER TABLE bookings ADD COLUMN customer_type TEXT;             -- NULL: not known
ALTER TABLE bookings ADD COLUMN stars INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bookings ADD COLUMN customer_source TEXT;           -- cif / cache / none
ALTER TABLE bookings ADD COLUMN customer_reason TEXT;           -- why not the CIF
ALTER TABLE remote_tickets ADD COLUMN customer_type TEXT;
ALTER TABLE remote_tickets ADD COLUMN stars INTEGER NOT NULL DEFAULT 0;
ALTER TABLE remote_tickets ADD COLUMN customer_source TEXT;
ALTER TABLE remote_tickets ADD COLUMN customer_reason TEXT;
