-- Head-office figures (SPEC I5, docs/reports.md "Appointments and staff by 工号"), SQLite.
-- Keep in step with postgres/0069_staff_search.sql.
-- Which booking a ticket redeemed (ticket_issued's `appointment`; cleared if the ticket is
-- voided, as the box makes the booking redeemable again): the appointment statistics count
-- a booking redeemed from here, whether or not anyone looked at it since.
ALTER TABLE rpt_ticket ADD COLUMN appointment TEXT;
CREATE INDEX rpt_ticket_appointment ON rpt_ticket (appointment) WHERE appointment IS NOT NULL;
-- The staff search by 工号: a teller's finished and no-show tickets (outcome_teller), and
-- the tickets they called last that the day closed unserved (teller), over a period.
CREATE INDEX rpt_ticket_outcome_teller ON rpt_ticket (outcome_teller, day);
CREATE INDEX rpt_ticket_teller ON rpt_ticket (teller, day);
-- Tickets folded before this migration: their booking from the stored events (once).
UPDATE rpt_ticket SET appointment = x.appointment
FROM (SELECT branch, epoch, json_extract(body, '$.ticket') AS ticket,
             json_extract(body, '$.appointment') AS appointment
      FROM events WHERE type = 'ticket_issued'
      AND json_extract(body, '$.appointment') IS NOT NULL) AS x
WHERE rpt_ticket.branch = x.branch AND rpt_ticket.epoch = x.epoch
  AND rpt_ticket.ticket = x.ticket;
UPDATE rpt_ticket SET appointment = NULL
FROM (SELECT branch, epoch, json_extract(body, '$.ticket') AS ticket
      FROM events WHERE type = 'ticket_voided') AS v
WHERE rpt_ticket.appointment IS NOT NULL AND rpt_ticket.branch = v.branch
  AND rpt_ticket.epoch = v.epoch AND rpt_ticket.ticket = v.ticket;
