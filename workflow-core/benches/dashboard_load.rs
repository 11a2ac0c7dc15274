//! The dashboard's runs page on a store of a million runs: it must answer from an index
//! (`created_seq`, and `status, created_seq` with a status filter), not a scan. Prints the
//! query plans SQLite chooses and the page times (median of 20 requests) for the first page,
//! a page a million runs deep, and a filtered page. Reported in BENCHMARKS.md; no threshold.
//!
//! `cargo bench -p workflow-core --features dashboard --bench dashboard_load`
//! (`DASHBOARD_LOAD_RUNS=N` for another size).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use sqlx::Connection;
use tower::ServiceExt;
use workflow_core::dashboard::{router, DashboardOptions};
use workflow_core::store::SqliteStore;

#[tokio::main]
async fn main() {
    let runs: i64 = std::env::var("DASHBOARD_LOAD_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let path = std::env::temp_dir().join(format!("dashboard-load-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    drop(SqliteStore::open(&path).await.unwrap());
    let url = format!("sqlite://{}", path.display());
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let started = Instant::now();
    // Rows as the store writes them, in one transaction (the list reads no payload).
    sqlx::raw_sql(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {runs})
         INSERT INTO wf_runs (run_id, workflow, version, definition_hash, queue, status, input,
           checksum, created_seq, created_at)
         SELECT 'run-' || i, 'Expense', 1, 42, 'default',
           CASE i % 10 WHEN 0 THEN 'waiting' WHEN 1 THEN 'failed' ELSE 'completed' END,
           X'31', 0, i, 1764000000000 + i FROM n"
    ))
    .execute(&mut raw)
    .await
    .unwrap();
    println!(
        "inserted {runs} runs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (what, sql) in [
        ("first page", "SELECT run_id FROM wf_runs WHERE created_seq > 0 ORDER BY created_seq LIMIT 50"),
        ("status filter", "SELECT run_id FROM wf_runs WHERE created_seq > 0 AND status = 'waiting' ORDER BY created_seq LIMIT 50"),
    ] {
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all(&mut raw)
            .await
            .unwrap();
        let plan: Vec<String> = plan.into_iter().map(|row| row.3).collect();
        println!("plan, {what}: {}", plan.join("; "));
    }
    raw.close().await.unwrap();

    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let app = router(store, DashboardOptions::default());
    println!("| page | median ms |");
    println!("|------|-----------|");
    let deep = runs - 60;
    for (what, uri) in [
        ("first page", "/".to_owned()),
        ("a million runs deep", format!("/?after={deep}")),
        ("status = waiting", "/?status=waiting".to_owned()),
        ("waiting, deep", format!("/?status=waiting&after={deep}")),
    ] {
        let mut times: Vec<Duration> = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            let response = app
                .clone()
                .oneshot(Request::get(uri.as_str()).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert!(
                response.status().is_success(),
                "{what}: {}",
                response.status()
            );
            let _ = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "| {what} | {:.2} |",
            times[times.len() / 2].as_secs_f64() * 1000.0
        );
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
