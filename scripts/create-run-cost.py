#!/usr/bin/env python3
"""Cost of the SQLite store's `create_run` INSERT as the runs table grows.

The INSERT computes `created_seq` as `(SELECT COALESCE(MAX(created_seq), 0) + 1 FROM wf_runs)`.
The only index holding `created_seq` is `wf_runs_status (status, created_seq)`, so that MAX
reads the whole index. This script builds the store's schema (read from
workflow-core/src/store/schema.sql) in a scratch file with N runs already in it. It then
times 200 such INSERTs at each N, with the schema as it is and with an extra index on
`created_seq` alone. It prints the query plan and microseconds per INSERT.

usage: scripts/create-run-cost.py [N ...]     (default: 1000 10000 40000 100000)
Uses Python's sqlite3 module, so the SQLite version is Python's, not the one sqlx bundles.
"""
import os
import sqlite3
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = open(os.path.join(REPO, "workflow-core/src/store/schema.sql")).read()
INSERT = (
    "INSERT INTO wf_runs (run_id, workflow, version, definition_hash, status, input, created_seq) "
    "VALUES (?, 'Gate', 1, 1, 'running', x'31', "
    "(SELECT COALESCE(MAX(created_seq), 0) + 1 FROM wf_runs)) ON CONFLICT (run_id) DO NOTHING"
)
INSERTS = 200


def measure(n, extra_index):
    fd, path = tempfile.mkstemp(suffix=".db")
    os.close(fd)
    try:
        conn = sqlite3.connect(path)
        conn.executescript(SCHEMA)
        if extra_index:
            conn.execute("CREATE INDEX wf_runs_created ON wf_runs (created_seq)")
        conn.executemany(
            "INSERT INTO wf_runs (run_id, workflow, version, definition_hash, status, input, created_seq) "
            "VALUES (?, 'Gate', 1, 1, 'waiting', x'31', ?)",
            ((f"r{i:08}", i) for i in range(n)),
        )
        conn.commit()
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT COALESCE(MAX(created_seq), 0) + 1 FROM wf_runs"
        ).fetchall()
        start = time.perf_counter()
        for i in range(INSERTS):
            conn.execute(INSERT, (f"x{i}",))
        conn.commit()
        micros = (time.perf_counter() - start) / INSERTS * 1e6
        conn.close()
        return micros, plan[0][-1]
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(path + suffix)
            except FileNotFoundError:
                pass


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10000, 40000, 100000]
    print(f"SQLite {sqlite3.sqlite_version}; {INSERTS} INSERTs per size, one commit")
    print("| runs in the table | schema as is, µs/INSERT | + index on created_seq, µs/INSERT |")
    print("|---|---|---|")
    plans = {}
    for n in sizes:
        as_is, plans[False] = measure(n, False)
        indexed, plans[True] = measure(n, True)
        print(f"| {n:,} | {as_is:.0f} | {indexed:.0f} |")
    print(f"plan as is: {plans[False]}")
    print(f"plan with the index: {plans[True]}")


if __name__ == "__main__":
    main()
