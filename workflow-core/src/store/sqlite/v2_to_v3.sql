-- Schema version 2 to 3: workflow definitions, and each run's journal length when it last
-- left a worker.
CREATE TABLE wf_definitions (
    workflow  TEXT NOT NULL,
    hash      INTEGER NOT NULL,
    version   INTEGER NOT NULL,
    canonical TEXT NOT NULL,          -- Definition::canonical: what the hash covers
    PRIMARY KEY (workflow, hash)
);
ALTER TABLE wf_runs ADD COLUMN journal_len INTEGER NOT NULL DEFAULT 0;
