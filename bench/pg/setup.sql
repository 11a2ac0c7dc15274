-- Rows for the pgbench ceiling scripts, in a database whose tables were created by the store's own
-- migration (workflow-core/src/store/postgres.sql): 100,000 runs claimed by worker 'w' under epoch
-- 1, so every fenced write of step1.sql / step10.sql finds its run and inserts (a script whose
-- fence matched no row would write nothing, fsync nothing and report a bogus rate).
-- Run again before each pgbench run (the bench does): it empties the journal.
TRUNCATE wf_journal, wf_runs RESTART IDENTITY;
INSERT INTO wf_runs (run_id, workflow, version, definition_hash, queue, status, owner, epoch,
                     input, checksum)
SELECT 'r' || g, 'bench', 1, 0, 'default', 'claimed', 'w', 1, '\x30'::bytea, 0
FROM generate_series(1, 100000) AS g;
VACUUM ANALYZE wf_runs;
