-- paidui centre store, version 87 (sqlite): the indexes the pruning job finds old rows by
-- (central/store/retention.py; docs/store.md, "Retention"), for the tables whose key does
-- not start with their day or time. Keep in step with the other folder.
CREATE INDEX replies_received ON replies (received_at);
CREATE INDEX dead_letters_received ON dead_letters (received_at);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX alerts_resolved ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX alert_sms_created ON alert_sms (created_at);
CREATE INDEX slot_counts_day ON slot_counts (day);
CREATE INDEX appointment_days_day ON appointment_days (day);
