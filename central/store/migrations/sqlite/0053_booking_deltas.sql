-- Appointment pushes send changes (docs/appointments.md "The push"): each booking remembers
-- the day's revision of its last change, so a delta since revision R is the bookings
-- changed after R; each branch-day remembers what was last sent (a full list: base 0, or a
-- delta since base) and whether the box said it takes deltas (0 until it says so: the first
-- list after this migration is a full one).
ALTER TABLE bookings ADD COLUMN list_revision INTEGER NOT NULL DEFAULT 0;
CREATE INDEX bookings_list_revision ON bookings (branch, day, list_revision);
ALTER TABLE appointment_days ADD COLUMN sent_base INTEGER NOT NULL DEFAULT 0;
ALTER TABLE appointment_days ADD COLUMN deltas INTEGER NOT NULL DEFAULT 0;
-- booking changes per customer per hour are counted from bookings.created_at/cancelled_at
CREATE INDEX bookings_customer_created ON bookings (customer, created_at);
