-- One fenced step commit, exactly the statement the PostgreSQL store runs for a step's journal
-- record (writes.rs `append`: the fence FOR SHARE and the insert in one CTE, one round trip),
-- committed on its own: what each step costs without group commit.
-- pgbench -n -M prepared -T 10 -c C -j min(C,2) -D runs=100000 -f step1.sql
\set r random(1, :runs)
\set seq random(1, 9000000000000000000)
WITH fence AS (SELECT run_id FROM wf_runs
               WHERE run_id = 'r' || :r AND epoch = 1 AND owner = 'w' AND status = 'claimed' FOR SHARE),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, 1, r.checksum
  FROM fence, UNNEST(ARRAY[(:seq)::BIGINT], ARRAY['step']::TEXT[], ARRAY['s1']::TEXT[],
                     ARRAY[NULL]::BIGINT[], ARRAY['\x36']::BYTEA[], ARRAY[12345]::BIGINT[])
    AS r(seq, kind, step, item, payload, checksum)
  RETURNING 1)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
