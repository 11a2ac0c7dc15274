-- Group commit of 10 step records of 10 runs in one transaction, the way the PostgreSQL store's
-- writer commits a batch (writes.rs `try_batch`): BEGIN, the step1.sql statement once per record
-- (one round trip each), COMMIT. One fsync for 10 records. Rate in records/s = tps x 10.
-- pgbench -n -M prepared -T 10 -c C -j min(C,2) -D runs=100000 -f step10.sql
\set base random(1, :runs - 9)
\set seq random(1, 9000000000000000000)
BEGIN;
WITH fence AS (SELECT run_id FROM wf_runs
               WHERE run_id = 'r' || ((:base)::BIGINT + 0) AND epoch = 1 AND owner = 'w' AND status = 'claimed' FOR SHARE),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, 1, r.checksum
  FROM fence, UNNEST(ARRAY[(:seq)::BIGINT + 0], ARRAY['step']::TEXT[], ARRAY['s1']::TEXT[],
                     ARRAY[NULL]::BIGINT[], ARRAY['\x36']::BYTEA[], ARRAY[12345]::BIGINT[])
    AS r(seq, kind, step, item, payload, checksum)
  RETURNING 1)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
WITH fence AS (SELECT run_id FROM wf_runs
               WHERE run_id = 'r' || ((:base)::BIGINT + 1) AND epoch = 1 AND owner = 'w' AND status = 'claimed' FOR SHARE),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, 1, r.checksum
  FROM fence, UNNEST(ARRAY[(:seq)::BIGINT + 1], ARRAY['step']::TEXT[], ARRAY['s1']::TEXT[],
                     ARRAY[NULL]::BIGINT[], ARRAY['\x36']::BYTEA[], ARRAY[12345]::BIGINT[])
    AS r(seq, kind, step, item, payload, checksum)
  RETURNING 1)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
WITH fence AS (SELECT run_id FROM wf_runs
               WHERE run_id = 'r' || ((:base)::BIGINT + 2) AND epoch = 1 AND owner = 'w' AND status = 'claimed' FOR SHARE),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, 1, r.checksum
  FROM fence, UNNEST(ARRAY[(:seq)::BIGINT + 2], ARRAY['step']::TEXT[], ARRAY['s1']::TEXT[],
                     ARRAY[NULL]::BIGINT[], ARRAY['\x36']::BYTEA[], ARRAY[12345]::BIGINT[])
    AS r(seq, kind, step, item, payload, checksum)
  RETURNING 1)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
WITH fence AS (SELECT run_id FROM wf_runs
               WHERE run_id = 'r' || ((:base)::BIGINT + 3) AND epoch = 1 AND owner = 'w' AND status = 'claimed' FOR SHARE),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, 1, r.checksum
  FROM fence, UNNEST(ARRAY[(:seq)::BIGINT + 3], ARRAY['step']::TEXT[], ARRAY['s1']::TEXT[],
                     ARRAY[NULL]::BIGINT[], ARRAY['\x36']::BYTEA[], ARRAY[12345]::BIGINT[])
    AS r(seq, kind, step, item, payload, checksum)
  RETURNING 1)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
WITH fence AS (SELECT run_id FROM wf_runs
               WHERE run_id = 'r' || ((:base)::BIGINT + 4) AND epoch = 1 AND owner = 'w' AND status = 'claimed' FOR SHARE),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, 1, r.checksum
  FROM fence, UNNEST(ARRAY[(:seq)::BIGINT + 4], ARRAY['step']::TEXT[], ARRAY['s1']::TEXT[],
                     ARRAY[NULL]::BIGINT[], ARRAY['\x36']::BYTEA[], ARRAY[12345]::BIGINT[])
    AS r(seq, kind, step, item, payload, checksum)
  RETURNING 1)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
WITH fence AS (SELECT run_id FROM wf_runs
               WHERE run_id = 'r' || ((:base)::BIGINT + 5) AND epoch = 1 AND owner = 'w' AND status = 'claimed' FOR SHARE),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, 1, r.checksum
  FROM fence, UNNEST(ARRAY[(:seq)::BIGINT + 5], ARRAY['step']::TEXT[], ARRAY['s1']::TEXT[],
                     ARRAY[NULL]::BIGINT[], ARRAY['\x36']::BYTEA[], ARRAY[12345]::BIGINT[])
    AS r(seq, kind, step, item, payload, checksum)
  RETURNING 1)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
WITH fence AS (SELECT run_id FROM wf_runs
               WHERE run_id = 'r' || ((:base)::BIGINT + 6) AND epoch = 1 AND owner = 'w' AND status = 'claimed' FOR SHARE),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, 1, r.checksum
  FROM fence, UNNEST(ARRAY[(:seq)::BIGINT + 6], ARRAY['step']::TEXT[], ARRAY['s1']::TEXT[],
                     ARRAY[NULL]::BIGINT[], ARRAY['\x36']::BYTEA[], ARRAY[12345]::BIGINT[])
    AS r(seq, kind, step, item, payload, checksum)
  RETURNING 1)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
WITH fence AS (SELECT run_id FROM wf_runs
               WHERE run_id = 'r' || ((:base)::BIGINT + 7) AND epoch = 1 AND owner = 'w' AND status = 'claimed' FOR SHARE),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, 1, r.checksum
  FROM fence, UNNEST(ARRAY[(:seq)::BIGINT + 7], ARRAY['step']::TEXT[], ARRAY['s1']::TEXT[],
                     ARRAY[NULL]::BIGINT[], ARRAY['\x36']::BYTEA[], ARRAY[12345]::BIGINT[])
    AS r(seq, kind, step, item, payload, checksum)
  RETURNING 1)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
WITH fence AS (SELECT run_id FROM wf_runs
               WHERE run_id = 'r' || ((:base)::BIGINT + 8) AND epoch = 1 AND owner = 'w' AND status = 'claimed' FOR SHARE),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, 1, r.checksum
  FROM fence, UNNEST(ARRAY[(:seq)::BIGINT + 8], ARRAY['step']::TEXT[], ARRAY['s1']::TEXT[],
                     ARRAY[NULL]::BIGINT[], ARRAY['\x36']::BYTEA[], ARRAY[12345]::BIGINT[])
    AS r(seq, kind, step, item, payload, checksum)
  RETURNING 1)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
WITH fence AS (SELECT run_id FROM wf_runs
               WHERE run_id = 'r' || ((:base)::BIGINT + 9) AND epoch = 1 AND owner = 'w' AND status = 'claimed' FOR SHARE),
ins AS (
  INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
  SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, 1, r.checksum
  FROM fence, UNNEST(ARRAY[(:seq)::BIGINT + 9], ARRAY['step']::TEXT[], ARRAY['s1']::TEXT[],
                     ARRAY[NULL]::BIGINT[], ARRAY['\x36']::BYTEA[], ARRAY[12345]::BIGINT[])
    AS r(seq, kind, step, item, payload, checksum)
  RETURNING 1)
SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT COUNT(*) FROM ins) AS inserted;
COMMIT;
