-- When each org node was added to the tree: a branch added to the tree is expected to send
-- data from the next day on, even if its box never connects (the no-data list, F5).
-- Nodes added before this column existed take their last change as the best known guess.
ALTER TABLE orgs ADD COLUMN added_at DOUBLE PRECISION NOT NULL DEFAULT 0;
UPDATE orgs SET added_at = updated_at;
