-- Schema version 2 to 3: workflow definitions, and each run's journal length when it last
-- left a worker.
CREATE TABLE wf_definitions (
    workflow  TEXT NOT NULL,
    hash      BIGINT NOT NULL,
    version   BIGINT NOT NULL,
    canonical TEXT NOT NULL,          -- Definition::canonical: what the hash covers
    PRIMARY KEY (workflow, hash)
);
ALTER TABLE wf_runs ADD COLUMN journal_len BIGINT NOT NULL DEFAULT 0;
