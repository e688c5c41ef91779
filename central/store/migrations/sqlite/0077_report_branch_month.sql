-- paidui centre store, version 77 (sqlite): a city's (or a branch's) year of month summaries
-- is read by branch range, not by walking every branch's months (docs/performance.md,
-- "10,000 branches"). Keep in step with the other folder.
CREATE INDEX rpt_month_branch ON rpt_month (branch, month);
CREATE INDEX rpt_hour_branch ON rpt_hour (branch, month);
CREATE INDEX rpt_rating_month_branch ON rpt_rating_month (branch, month);
