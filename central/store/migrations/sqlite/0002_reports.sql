-- paidui centre store, version 2 (SQLite): report summaries, maintained at ingest by
-- central/reports/summary.py. See docs/reports.md; keep in step with postgres/.
CREATE TABLE report_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- The province's time zone: 15-minute slots and hours are local clock times in it.
-- Set it before the first ingest; changing it later does not move stored slots.
INSERT INTO report_settings (name, value) VALUES ('timezone', 'Asia/Shanghai');

-- How far each branch journal's events are folded into the summaries (exactly once).
CREATE TABLE rpt_cursor (
    branch  TEXT    NOT NULL,
    epoch   TEXT    NOT NULL,
    through INTEGER NOT NULL,
    PRIMARY KEY (branch, epoch)
) WITHOUT ROWID;

-- One row per ticket: what the summaries need to remember between events.
CREATE TABLE rpt_ticket (
    branch         TEXT    NOT NULL,
    epoch          TEXT    NOT NULL,
    ticket         TEXT    NOT NULL,
    day            TEXT    NOT NULL,
    number         TEXT    NOT NULL,
    queue          TEXT    NOT NULL,             -- the business it was issued for
    queue_now      TEXT    NOT NULL,             -- after transfers
    ctype          TEXT    NOT NULL,             -- customer type
    issued_at      REAL    NOT NULL,
    called_at      REAL,                         -- first call
    wait_s         REAL,                         -- first call - issue
    calls          INTEGER NOT NULL DEFAULT 0,   -- calls and recalls
    teller         TEXT,                         -- the last teller who called it
    win            INTEGER,                      -- the last window
    outcome        TEXT    NOT NULL DEFAULT '',  -- '', served, no_show, not_served
    outcome_at     REAL,
    outcome_queue  TEXT,
    outcome_teller TEXT,
    handle_s       REAL,
    score          INTEGER,
    bad            INTEGER,
    rated_at       REAL,
    long_wait      REAL,                 -- the E5 wait when over 15 min (else NULL)
    PRIMARY KEY (branch, epoch, ticket)
) WITHOUT ROWID;
CREATE INDEX rpt_ticket_long ON rpt_ticket (branch, day, issued_at) WHERE long_wait IS NOT NULL;
CREATE INDEX rpt_ticket_rated ON rpt_ticket (branch, day, rated_at) WHERE score IS NOT NULL;
CREATE INDEX rpt_ticket_open ON rpt_ticket (issued_at) WHERE called_at IS NULL AND outcome = '';

-- The measures (same columns in every summary table; docs/reports.md says what each means).
-- rpt_slot: branch x business x customer type x 15-minute slot of a day.
CREATE TABLE rpt_slot (
    day TEXT NOT NULL, branch TEXT NOT NULL, minute INTEGER NOT NULL,
    queue TEXT NOT NULL, ctype TEXT NOT NULL,
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
    PRIMARY KEY (day, branch, minute, queue, ctype)
) WITHOUT ROWID;

-- rpt_day / rpt_month: branch x business x customer type x teller ('' = no teller).
CREATE TABLE rpt_day (
    day TEXT NOT NULL, branch TEXT NOT NULL, queue TEXT NOT NULL, ctype TEXT NOT NULL,
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
    PRIMARY KEY (day, branch, queue, ctype, teller)
) WITHOUT ROWID;

CREATE TABLE rpt_month (
    month TEXT NOT NULL, branch TEXT NOT NULL, queue TEXT NOT NULL, ctype TEXT NOT NULL,
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
    PRIMARY KEY (month, branch, queue, ctype, teller)
) WITHOUT ROWID;

-- rpt_hour: branch x business x customer type x local hour, per month.
CREATE TABLE rpt_hour (
    month TEXT NOT NULL, branch TEXT NOT NULL, hour INTEGER NOT NULL, queue TEXT NOT NULL,
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
    PRIMARY KEY (month, branch, hour, queue, ctype)
) WITHOUT ROWID;

-- Ratings by level (C4): branch x teller x business x customer type x score.
CREATE TABLE rpt_rating_day (
    day TEXT NOT NULL, branch TEXT NOT NULL, teller TEXT NOT NULL, queue TEXT NOT NULL,
    ctype TEXT NOT NULL, score INTEGER NOT NULL,
    n INTEGER NOT NULL DEFAULT 0, bad INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, branch, teller, queue, ctype, score)
) WITHOUT ROWID;
CREATE TABLE rpt_rating_month (
    month TEXT NOT NULL, branch TEXT NOT NULL, teller TEXT NOT NULL, queue TEXT NOT NULL,
    ctype TEXT NOT NULL, score INTEGER NOT NULL,
    n INTEGER NOT NULL DEFAULT 0, bad INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, branch, teller, queue, ctype, score)
) WITHOUT ROWID;

-- Events per branch-day and journal epoch (the data-quality report, F5).
CREATE TABLE rpt_branch_day (
    day TEXT NOT NULL, branch TEXT NOT NULL, epoch TEXT NOT NULL,
    events INTEGER NOT NULL DEFAULT 0, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    PRIMARY KEY (day, branch, epoch)
) WITHOUT ROWID;

-- The day's totals per business as the reconciliation counts them (protocols.uplink.
-- day_totals), per journal epoch: issued (by the business issued for), transferred (out
-- of), and each ticket's final outcome by the business it ended in.
CREATE TABLE rpt_recon (
    day TEXT NOT NULL, branch TEXT NOT NULL, epoch TEXT NOT NULL, queue TEXT NOT NULL,
    issued INTEGER NOT NULL DEFAULT 0, served INTEGER NOT NULL DEFAULT 0,
    no_show INTEGER NOT NULL DEFAULT 0, transferred INTEGER NOT NULL DEFAULT 0,
    not_served INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, branch, epoch, queue)
) WITHOUT ROWID;

-- Each branch-day's totals compared with the above (F3/F5), judged at ingest when the
-- totals arrive and again whenever that day's events change.
CREATE TABLE rpt_quality (
    day TEXT NOT NULL, branch TEXT NOT NULL, epoch TEXT NOT NULL,
    status TEXT NOT NULL,                 -- ok, mismatch
    problems TEXT NOT NULL,               -- the differences, as the reconciliation words them
    PRIMARY KEY (day, branch)
) WITHOUT ROWID;
