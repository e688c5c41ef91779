-- paidui centre store, version 86 (sqlite): the tickets pruned branch by branch, as the events
-- are (central/store/retention.py; docs/store.md, "Retention"). Keep in step with the other
-- folder.
CREATE INDEX rpt_ticket_branch_day ON rpt_ticket (branch, day);
