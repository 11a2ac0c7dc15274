//! Many workers on one store: run any number of worker processes and a client that starts
//! runs; kill a worker with `kill -9` and watch the others take its runs over and finish them.
//!
//! ```sh
//! # three workers on PostgreSQL (or on one SQLite file: --store sqlite:runs.db)
//! cargo run --example distributed -- worker --store postgres://postgres@127.0.0.1:55432/workflow_test &
//! cargo run --example distributed -- worker --store postgres://postgres@127.0.0.1:55432/workflow_test &
//! cargo run --example distributed -- worker --store postgres://postgres@127.0.0.1:55432/workflow_test &
//! # start 1,000 runs and follow them to the end
//! cargo run --example distributed -- client --store postgres://postgres@127.0.0.1:55432/workflow_test --runs 1000
//! # meanwhile, in another shell: kill -9 one worker; the client's counts keep going
//! ```
//!
//! Each worker prints `[pid N] run/step` for every step it executes. The client prints, every
//! second, how many runs are ready, claimed (and by how many workers), and completed.

mod workflow;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use workflow::{Fulfil, Order};
use workflow_core::prelude::*;
use workflow_core::store::{RunFilter, SqliteStore, Store};

/// `--name value` from the command line.
fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Opens the store named by `--store`: `sqlite:PATH` (the default, `sqlite:distributed.db`)
/// or a `postgres://` URL.
async fn open_store(url: &str) -> Result<Box<dyn Store>, Box<dyn std::error::Error>> {
    if let Some(path) = url.strip_prefix("sqlite:") {
        return Ok(Box::new(SqliteStore::open(path).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(
            workflow_core::store::PostgresStore::connect(url).await?,
        ));
    }
    Err(format!("--store takes sqlite:PATH or a postgres:// URL, not `{url}`").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let store_url = arg(&args, "--store").unwrap_or_else(|| "sqlite:distributed.db".into());
    let step_ms = arg(&args, "--step-ms").map_or(Ok(20), |s| s.parse())?;
    let workflow = Fulfil { step_ms };
    match args.get(1).map(String::as_str) {
        Some("worker") => {
            let store = open_store(&store_url).await?;
            let engine = DurableEngine::from_arc(store.into(), WorkerOptions::default());
            engine.register(&workflow).await?;
            println!("worker {} on {store_url}", engine.worker_id());
            // Runs until killed (kill -9 is fine: its runs are taken over after its lease).
            std::future::pending::<()>().await;
            Ok(())
        }
        Some("client") => {
            let runs: u64 = arg(&args, "--runs").map_or(Ok(1000), |s| s.parse())?;
            let store = open_store(&store_url).await?;
            let options = WorkerOptions::default().claim_runs(false);
            let engine = DurableEngine::from_arc(store.into(), options);
            let batch = format!("{:x}", std::process::id());
            let started = Instant::now();
            for n in 0..runs {
                let id = RunId::from(format!("order-{batch}-{n}"));
                let order = Order { id: n, lines: 3 };
                engine
                    .start_with(&workflow, order, RunOptions::new().run_id(id))
                    .await?;
            }
            println!("started {runs} runs in {:?}", started.elapsed());
            follow(&engine, &format!("order-{batch}-"), runs).await
        }
        _ => Err(
            "usage: distributed (worker | client [--runs N]) [--store URL] [--step-ms MS]".into(),
        ),
    }
}

/// Prints the runs' progress every second until all of them completed.
async fn follow(
    engine: &DurableEngine,
    prefix: &str,
    runs: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    loop {
        let (mut completed, mut claimed, mut ready, mut owners) = (0, 0, 0, HashSet::new());
        let mut filter = RunFilter::default();
        loop {
            let page = engine.list(&filter).await?;
            for run in page
                .runs
                .iter()
                .filter(|r| r.run_id.as_str().starts_with(prefix))
            {
                match run.status {
                    RunStatus::Completed => completed += 1,
                    RunStatus::Claimed => {
                        claimed += 1;
                        owners.extend(run.owner.clone());
                    }
                    _ => ready += 1,
                }
            }
            match page.next {
                Some(next) => filter.after = Some(next),
                None => break,
            }
        }
        println!(
            "{:>5.1}s  completed {completed}/{runs}  claimed {claimed} by {} worker(s)  waiting {ready}",
            started.elapsed().as_secs_f64(),
            owners.len()
        );
        if completed == runs {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
