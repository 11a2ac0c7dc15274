-- What-if, not the store's current shape: the same 10 records of 10 runs as step10.sql, fenced
-- and inserted by ONE statement (the SCALEOUT §7.4 group-commit form: FOR SHARE on the runs,
-- insert joined on them; one round trip and one fsync for the 10). Records/s = tps x 10.
-- pgbench -n -M prepared -T 10 -c C -j min(C,2) -D runs=100000 -f step10set.sql
\set base random(1, :runs - 9)
\set seq random(1, 9000000000000000000)
WITH req AS (
  SELECT 'r' || ((:base)::BIGINT + g) AS run_id, (:seq)::BIGINT + g AS seq
  FROM generate_series(0, 9) AS g),
fence AS (
  SELECT w.run_id FROM wf_runs w JOIN req USING (run_id)
  WHERE w.epoch = 1 AND w.owner = 'w' AND w.status = 'claimed' FOR SHARE OF w),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT req.run_id, req.seq, 'step', 's1', NULL, '\x36'::BYTEA, 1, 12345
  FROM req JOIN fence USING (run_id)
  RETURNING run_id)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
