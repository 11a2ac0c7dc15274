-- Store schema, version 3 (SQLite dialect). The PostgreSQL store has the same tables and
-- columns in its own dialect (postgres.sql). Times are milliseconds since the Unix epoch.
CREATE TABLE wf_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE wf_runs (
    run_id           TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    version          INTEGER NOT NULL,
    definition_hash  INTEGER NOT NULL,
    queue            TEXT NOT NULL,
    status           TEXT NOT NULL,      -- ready | claimed | waiting | completed | failed | cancelled
    owner            TEXT,               -- the claiming worker, while claimed
    epoch            INTEGER NOT NULL DEFAULT 0,   -- bumped at every change of ownership
    wake_at          INTEGER,            -- a parked run is claimable from then (NULL: on a signal)
    waiting_for      TEXT,
    signal_seq       INTEGER NOT NULL DEFAULT 0,   -- bumped by every signal and cancel
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    deadline_at      INTEGER,
    claims           INTEGER NOT NULL DEFAULT 0,
    journal_len      INTEGER NOT NULL DEFAULT 0,   -- journal records when it last left a worker
    input            BLOB NOT NULL,
    output           BLOB,
    error            TEXT,
    checksum         INTEGER NOT NULL,   -- over the fields fixed at creation, input included
    result_checksum  INTEGER,            -- over status, output and error once finished
    created_seq      INTEGER NOT NULL
);
CREATE UNIQUE INDEX wf_runs_created ON wf_runs (created_seq);
-- Parked runs by wake-up time (claims look for due ones among many that wait for a signal).
CREATE INDEX wf_runs_wake ON wf_runs (status, wake_at);
CREATE INDEX wf_runs_owner ON wf_runs (owner) WHERE owner IS NOT NULL;
CREATE INDEX wf_runs_status ON wf_runs (status, created_seq);
CREATE TABLE wf_journal (
    run_id   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    step     TEXT,
    item     INTEGER,
    payload  BLOB NOT NULL,
    epoch    INTEGER NOT NULL,
    checksum INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE wf_signals (
    run_id   TEXT NOT NULL,
    name     TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    payload  BLOB NOT NULL,
    consumed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name, seq)
);
CREATE TABLE wf_workers (
    worker_id     TEXT PRIMARY KEY,
    lease_expires INTEGER NOT NULL,
    started_at    INTEGER NOT NULL
);
CREATE TABLE wf_queues (
    queue        TEXT PRIMARY KEY,
    concurrency  INTEGER,
    rate_per_sec REAL,
    burst        INTEGER NOT NULL DEFAULT 1,
    tat          INTEGER NOT NULL DEFAULT 0   -- GCRA: theoretical arrival time (ms)
);
CREATE TABLE wf_definitions (
    workflow  TEXT NOT NULL,
    hash      INTEGER NOT NULL,
    version   INTEGER NOT NULL,
    canonical TEXT NOT NULL,          -- Definition::canonical: what the hash covers
    PRIMARY KEY (workflow, hash)
);
