-- Software releases at the centre (SPEC F4). Owned by central/releases.py.
-- One text for SQLite and PostgreSQL: {ID}, {BIGINT_REF} and {JSON} are replaced per
-- dialect by ReleaseStore.migrate (see DIALECTS there). Idempotent (IF NOT EXISTS): safe
-- on every start and on top of the centre's own store. To fold it into the centre's
-- numbered migrations later, write out each dialect's text as 000N_releases.sql.
CREATE TABLE IF NOT EXISTS releases (
    version            TEXT PRIMARY KEY,
    sort_key           TEXT             NOT NULL,  -- zero-padded, orders versions as text
    created_at         TEXT             NOT NULL,  -- from the manifest (UTC, ISO 8601)
    uploaded_at        DOUBLE PRECISION NOT NULL,
    min_config_version INTEGER          NOT NULL,
    size               BIGINT           NOT NULL,
    key_id             TEXT             NOT NULL,
    notes              TEXT             NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS release_files (
    version TEXT   NOT NULL REFERENCES releases (version),
    name    TEXT   NOT NULL,
    sha256  TEXT   NOT NULL,
    size    BIGINT NOT NULL,
    PRIMARY KEY (version, name)
);

CREATE TABLE IF NOT EXISTS rollouts (
    id         {ID},
    version    TEXT             NOT NULL REFERENCES releases (version),
    target     TEXT             NOT NULL,  -- "branch:1001010001,…", "org:100101" or "all"
    rollback   BOOLEAN          NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT             NOT NULL DEFAULT ''
);

-- One row per branch of a rollout: where that branch stands with it.
CREATE TABLE IF NOT EXISTS rollout_branches (
    rollout_id {BIGINT_REF}      NOT NULL REFERENCES rollouts (id),
    branch     TEXT             NOT NULL,
    cmd_id     TEXT             NOT NULL,
    status     TEXT             NOT NULL,  -- offered downloading installed healthy rolled_back failed
    reason     TEXT,
    detail     TEXT             NOT NULL DEFAULT '',
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (rollout_id, branch)
);
CREATE INDEX IF NOT EXISTS rollout_branches_branch ON rollout_branches (branch, rollout_id);
CREATE INDEX IF NOT EXISTS rollout_branches_cmd ON rollout_branches (cmd_id, branch);

-- What each branch runs, as its reports (and, once wired, its birth messages) say.
CREATE TABLE IF NOT EXISTS release_branches (
    branch          TEXT PRIMARY KEY,
    running_version TEXT,
    seen_at         DOUBLE PRECISION NOT NULL
);

-- Every report a box sent, once each.
CREATE TABLE IF NOT EXISTS update_reports (
    branch      TEXT             NOT NULL,
    cmd_id      TEXT             NOT NULL,
    status      TEXT             NOT NULL,
    version     TEXT             NOT NULL,
    reason      TEXT,
    body        {JSON}           NOT NULL,
    at          DOUBLE PRECISION NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (branch, cmd_id, status)
);
