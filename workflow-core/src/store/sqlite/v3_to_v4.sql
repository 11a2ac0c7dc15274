-- Schema version 3 to 4: when each run was created and finished (for time filters and
-- purges), when each journal record was committed (for timelines), and the JSON Schemas of
-- each definition's signal payloads (a JSON object by signal name). Times are milliseconds
-- since the Unix epoch; NULL in rows written before version 4.
ALTER TABLE wf_runs ADD COLUMN created_at INTEGER;
ALTER TABLE wf_runs ADD COLUMN finished_at INTEGER;
-- The OpenTelemetry trace context (W3C traceparent) every drive of the run continues.
ALTER TABLE wf_runs ADD COLUMN trace_context TEXT;
ALTER TABLE wf_journal ADD COLUMN at INTEGER;
CREATE INDEX wf_runs_created_at ON wf_runs (created_at);
CREATE INDEX wf_runs_finished_at ON wf_runs (finished_at) WHERE finished_at IS NOT NULL;
ALTER TABLE wf_definitions ADD COLUMN signal_schemas TEXT;
-- Who did what to which run, when (the dashboard's actions).
CREATE TABLE wf_audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    who    TEXT NOT NULL,
    action TEXT NOT NULL,
    run_id TEXT,
    detail TEXT NOT NULL
);
