-- Store schema, version 3 (PostgreSQL dialect): the tables and columns of schema.sql. Times are
-- milliseconds since the Unix epoch, as in SQLite, so both stores compute the same checksums;
-- every "now" the store compares with (leases, wake-ups, claims, GCRA) is the database's clock.
-- The tables go in the connection's current schema (the first of its search_path).
CREATE TABLE wf_meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE wf_runs (
    run_id           TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    version          BIGINT NOT NULL,
    definition_hash  BIGINT NOT NULL,
    queue            TEXT NOT NULL,
    status           TEXT NOT NULL,      -- ready | claimed | waiting | completed | failed | cancelled
    owner            TEXT,               -- the claiming worker, while claimed
    epoch            BIGINT NOT NULL DEFAULT 0,   -- bumped at every change of ownership
    wake_at          BIGINT,             -- a parked run is claimable from then (NULL: on a signal)
    waiting_for      TEXT,
    signal_seq       BIGINT NOT NULL DEFAULT 0,   -- bumped by every signal and cancel
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    deadline_at      BIGINT,
    claims           BIGINT NOT NULL DEFAULT 0,
    journal_len      BIGINT NOT NULL DEFAULT 0,   -- journal records when it last left a worker
    input            BYTEA NOT NULL,
    output           BYTEA,
    error            TEXT,
    checksum         BIGINT NOT NULL,    -- over the fields fixed at creation, input included
    result_checksum  BIGINT,             -- over status, output and error once finished
    created_seq      BIGINT GENERATED ALWAYS AS IDENTITY
) WITH (fillfactor = 80);
CREATE UNIQUE INDEX wf_runs_created ON wf_runs (created_seq);
CREATE INDEX wf_runs_claimable ON wf_runs (status, wake_at, created_seq) WHERE status IN ('ready', 'waiting');
CREATE INDEX wf_runs_owner ON wf_runs (owner) WHERE owner IS NOT NULL;
CREATE INDEX wf_runs_status ON wf_runs (status, created_seq);
CREATE INDEX wf_runs_queue_claimed ON wf_runs (queue) WHERE status = 'claimed';
CREATE TABLE wf_journal (
    run_id   TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    step     TEXT,
    item     BIGINT,
    payload  BYTEA NOT NULL,
    epoch    BIGINT NOT NULL,
    checksum BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE wf_signals (
    run_id   TEXT NOT NULL,
    name     TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    payload  BYTEA NOT NULL,
    consumed BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (run_id, name, seq)
);
CREATE TABLE wf_workers (
    worker_id     TEXT PRIMARY KEY,
    lease_expires BIGINT NOT NULL,
    started_at    BIGINT NOT NULL
);
CREATE TABLE wf_queues (
    queue        TEXT PRIMARY KEY,
    concurrency  BIGINT,
    rate_per_sec DOUBLE PRECISION,
    burst        BIGINT NOT NULL DEFAULT 1,
    tat          BIGINT NOT NULL DEFAULT 0   -- GCRA: theoretical arrival time (ms)
);
CREATE TABLE wf_definitions (
    workflow  TEXT NOT NULL,
    hash      BIGINT NOT NULL,
    version   BIGINT NOT NULL,
    canonical TEXT NOT NULL,          -- Definition::canonical: what the hash covers
    PRIMARY KEY (workflow, hash)
);
