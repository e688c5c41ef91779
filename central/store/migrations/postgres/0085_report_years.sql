-- paidui centre store, version 85 (postgres): the year summaries, kept with the month ones
-- (central/store/summary.py folds every event into rpt_year, rpt_hour_year and
-- rpt_rating_year in the same transaction as rpt_month, rpt_hour, rpt_rating_month), so a
-- year report reads one year's rows instead of twelve months' (docs/reports.md, "Year
-- summaries"; docs/performance.md, "10,000 branches"). Filled here from the months already
-- summed. Keep in step with the other folder.
CREATE TABLE rpt_year (LIKE rpt_month INCLUDING DEFAULTS);  -- the same columns
ALTER TABLE rpt_year RENAME COLUMN month TO year;
ALTER TABLE rpt_year ADD PRIMARY KEY (year, branch, queue, ctype, teller);

CREATE TABLE rpt_hour_year (LIKE rpt_hour INCLUDING DEFAULTS);  -- the same columns
ALTER TABLE rpt_hour_year RENAME COLUMN month TO year;
ALTER TABLE rpt_hour_year ADD PRIMARY KEY (year, branch, hour, queue, ctype);

CREATE TABLE rpt_rating_year (LIKE rpt_rating_month INCLUDING DEFAULTS);  -- the same columns
ALTER TABLE rpt_rating_year RENAME COLUMN month TO year;
ALTER TABLE rpt_rating_year ADD PRIMARY KEY (year, branch, teller, queue, ctype, score);

INSERT INTO rpt_year (year, branch, queue, ctype, teller, issued, called, recalled, served, no_show, not_served, transferred, wait_n, wait_sum, wait_max, wait_le2, wait_le5, wait_le10, wait_gt10, over15, over30, over60, handle_n, handle_sum, handle_min, handle_max, calls_max, rated, rating_sum, rating_bad)
SELECT substr(month, 1, 4), branch, queue, ctype, teller,
       SUM(issued), SUM(called), SUM(recalled), SUM(served), SUM(no_show), SUM(not_served),
       SUM(transferred), SUM(wait_n), SUM(wait_sum), MAX(wait_max), SUM(wait_le2), SUM(wait_le5),
       SUM(wait_le10), SUM(wait_gt10), SUM(over15), SUM(over30), SUM(over60), SUM(handle_n),
       SUM(handle_sum), MIN(handle_min), MAX(handle_max), MAX(calls_max), SUM(rated), SUM(rating_sum),
       SUM(rating_bad)
FROM rpt_month GROUP BY substr(month, 1, 4), branch, queue, ctype, teller;

INSERT INTO rpt_hour_year (year, branch, hour, queue, ctype, issued, called, recalled, served, no_show, not_served, transferred, wait_n, wait_sum, wait_max, wait_le2, wait_le5, wait_le10, wait_gt10, over15, over30, over60, handle_n, handle_sum, handle_min, handle_max, calls_max, rated, rating_sum, rating_bad)
SELECT substr(month, 1, 4), branch, hour, queue, ctype,
       SUM(issued), SUM(called), SUM(recalled), SUM(served), SUM(no_show), SUM(not_served),
       SUM(transferred), SUM(wait_n), SUM(wait_sum), MAX(wait_max), SUM(wait_le2), SUM(wait_le5),
       SUM(wait_le10), SUM(wait_gt10), SUM(over15), SUM(over30), SUM(over60), SUM(handle_n),
       SUM(handle_sum), MIN(handle_min), MAX(handle_max), MAX(calls_max), SUM(rated), SUM(rating_sum),
       SUM(rating_bad)
FROM rpt_hour GROUP BY substr(month, 1, 4), branch, hour, queue, ctype;

INSERT INTO rpt_rating_year (year, branch, teller, queue, ctype, score, n, bad)
SELECT substr(month, 1, 4), branch, teller, queue, ctype, score, SUM(n), SUM(bad)
FROM rpt_rating_month GROUP BY substr(month, 1, 4), branch, teller, queue, ctype, score;

-- the planner's statistics of the rows just written, before the first year report
ANALYZE rpt_year;
ANALYZE rpt_hour_year;
ANALYZE rpt_rating_year;
