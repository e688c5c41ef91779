-- paidui centre store, version 85 (sqlite): the year summaries, kept with the month ones
-- (central/store/summary.py folds every event into rpt_year, rpt_hour_year and
-- rpt_rating_year in the same transaction as rpt_month, rpt_hour, rpt_rating_month), so a
-- year report reads one year's rows instead of twelve months' (docs/reports.md, "Year
-- summaries"; docs/performance.md, "10,000 branches"). Filled here from the months already
-- summed. Keep in step with the other folder.
CREATE TABLE rpt_year (
    year TEXT NOT NULL, branch TEXT NOT NULL, queue TEXT NOT NULL, ctype TEXT NOT NULL,
    teller TEXT NOT NULL,
    issued INTEGER NOT NULL DEFAULT 0, called INTEGER NOT NULL DEFAULT 0,
    recalled INTEGER NOT NULL DEFAULT 0, served INTEGER NOT NULL DEFAULT 0,
    no_show INTEGER NOT NULL DEFAULT 0, not_served INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    wait_n INTEGER NOT NULL DEFAULT 0, wait_sum REAL NOT NULL DEFAULT 0,
    wait_max REAL NOT NULL DEFAULT 0,
    wait_le2 INTEGER NOT NULL DEFAULT 0, wait_le5 INTEGER NOT NULL DEFAULT 0,
    wait_le10 INTEGER NOT NULL DEFAULT 0, wait_gt10 INTEGER NOT NULL DEFAULT 0,
    over15 INTEGER NOT NULL DEFAULT 0, over30 INTEGER NOT NULL DEFAULT 0,
    over60 INTEGER NOT NULL DEFAULT 0,
    handle_n INTEGER NOT NULL DEFAULT 0, handle_sum REAL NOT NULL DEFAULT 0,
    handle_min REAL, handle_max REAL NOT NULL DEFAULT 0,
    calls_max INTEGER NOT NULL DEFAULT 0,
    rated INTEGER NOT NULL DEFAULT 0, rating_sum INTEGER NOT NULL DEFAULT 0,
    rating_bad INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (year, branch, queue, ctype, teller)
) WITHOUT ROWID;

CREATE TABLE rpt_hour_year (
    year TEXT NOT NULL, branch TEXT NOT NULL, hour INTEGER NOT NULL, queue TEXT NOT NULL,
    ctype TEXT NOT NULL,
    issued INTEGER NOT NULL DEFAULT 0, called INTEGER NOT NULL DEFAULT 0,
    recalled INTEGER NOT NULL DEFAULT 0, served INTEGER NOT NULL DEFAULT 0,
    no_show INTEGER NOT NULL DEFAULT 0, not_served INTEGER NOT NULL DEFAULT 0,
    transferred INTEGER NOT NULL DEFAULT 0,
    wait_n INTEGER NOT NULL DEFAULT 0, wait_sum REAL NOT NULL DEFAULT 0,
    wait_max REAL NOT NULL DEFAULT 0,
    wait_le2 INTEGER NOT NULL DEFAULT 0, wait_le5 INTEGER NOT NULL DEFAULT 0,
    wait_le10 INTEGER NOT NULL DEFAULT 0, wait_gt10 INTEGER NOT NULL DEFAULT 0,
    over15 INTEGER NOT NULL DEFAULT 0, over30 INTEGER NOT NULL DEFAULT 0,
    over60 INTEGER NOT NULL DEFAULT 0,
    handle_n INTEGER NOT NULL DEFAULT 0, handle_sum REAL NOT NULL DEFAULT 0,
    handle_min REAL, handle_max REAL NOT NULL DEFAULT 0,
    calls_max INTEGER NOT NULL DEFAULT 0,
    rated INTEGER NOT NULL DEFAULT 0, rating_sum INTEGER NOT NULL DEFAULT 0,
    rating_bad INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (year, branch, hour, queue, ctype)
) WITHOUT ROWID;

CREATE TABLE rpt_rating_year (
    year TEXT NOT NULL, branch TEXT NOT NULL, teller TEXT NOT NULL, queue TEXT NOT NULL,
    ctype TEXT NOT NULL, score INTEGER NOT NULL,
    n INTEGER NOT NULL DEFAULT 0, bad INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (year, branch, teller, queue, ctype, score)
) WITHOUT ROWID;

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
