-- Head-office figures (SPEC I5, docs/reports.md "Appointments and staff by 工号"),
-- PostgreSQL. Keep in step with sqlite/0069_staff_search.sql.
-- Which booking a ticket redeemed (ticket_issued's `appointment`; cleared if the ticket is
-- voided, as the box makes the booking redeemable again).
ALTER TABLE rpt_ticket ADD COLUMN appointment TEXT;
CREATE INDEX rpt_ticket_appointment ON rpt_ticket (appointment) WHERE appointment IS NOT NULL;
-- The staff search by 工号 (outcome_teller: finished, no-show; teller: called last).
CREATE INDEX rpt_ticket_outcome_teller ON rpt_ticket (outcome_teller, day);
CREATE INDEX rpt_ticket_teller ON rpt_ticket (teller, day);
-- Tickets folded before this migration: their booking from the stored events (once).
UPDATE rpt_ticket AS t SET appointment = e.body->>'appointment'
FROM events AS e
WHERE e.type = 'ticket_issued' AND e.body->>'appointment' IS NOT NULL
  AND e.branch = t.branch AND e.epoch = t.epoch AND e.body->>'ticket' = t.ticket;
UPDATE rpt_ticket AS t SET appointment = NULL
FROM events AS e
WHERE e.type = 'ticket_voided' AND t.appointment IS NOT NULL
  AND e.branch = t.branch AND e.epoch = t.epoch AND e.body->>'ticket' = t.ticket;
