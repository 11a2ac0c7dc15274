-- Journal schema, version 1. Shared by the SQL stores; types are the portable subset
-- (BLOB becomes BYTEA on PostgreSQL).
CREATE TABLE IF NOT EXISTS wf_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS wf_runs (
    run_id          TEXT PRIMARY KEY,
    workflow        TEXT NOT NULL,
    version         INTEGER NOT NULL,
    definition_hash INTEGER NOT NULL,
    status          TEXT NOT NULL,
    input           BLOB NOT NULL,
    output          BLOB,
    error           TEXT,
    waiting_for     TEXT,
    created_seq     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS wf_runs_status ON wf_runs (status, created_seq);
-- `created_seq` of a new run is MAX + 1: without this index each start scans every run.
CREATE INDEX IF NOT EXISTS wf_runs_created ON wf_runs (created_seq);
CREATE TABLE IF NOT EXISTS wf_journal (
    run_id   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    step     INTEGER NOT NULL,
    item     INTEGER,
    payload  BLOB NOT NULL,
    checksum INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS wf_signals (
    run_id   TEXT NOT NULL,
    name     TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    payload  BLOB NOT NULL,
    consumed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name, seq)
);
