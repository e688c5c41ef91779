-- paidui centre store, version 66 (sqlite): pre-filled forms (预填单, SPEC I2; central/forms.py,
-- docs/integrations.md). Keep in step with the other folder.

-- The forms still holding values (type form_filled; their values are masked at ingest):
-- the daily retention finds those past forms.keep_days by this index and blanks them
-- (type form_blanked), so the index holds at most keep_days of forms.
CREATE INDEX events_forms ON events (day) WHERE type = 'form_filled';
