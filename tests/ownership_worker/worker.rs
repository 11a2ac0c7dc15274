//! A worker process for `tests/ownership.rs`: registers the shared workflows on a store and
//! executes whatever it claims until a stop file appears, then prints its fencing counts and
//! leaves the store gracefully.
//!
//! `ownership-worker STORE LOG LEASE_MS HOLD_MS`
//! - STORE: an SQLite file path, or a `postgres://` URL;
//! - LOG: the side-effect log (the stop file is `LOG.stop`);
//! - LEASE_MS: the worker's lease; HOLD_MS: how long `Hold::hold` and `Trip::travel` take,
//!   and each step of `Soak`.
//!
//! Prints `ready <worker id>` once registered, and `fencing <rejected writes> <self-fenced
//! runs>` when stopped.

#[path = "workflows.rs"]
mod workflows;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::sync::Arc;
use workflow_core::prelude::*;

use workflow_core::store::{PostgresStore, SqliteStore, Store, StoreError};
use workflow_core::WorkerOptions;
use workflows::{Hold, HoldV2, Soak, Trip};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, store, log, lease_ms, hold_ms] = args.as_slice() else {
        eprintln!("usage: ownership-worker STORE LOG LEASE_MS HOLD_MS");
        return ExitCode::FAILURE;
    };
    let (Ok(lease_ms), Ok(hold_ms)) = (lease_ms.parse::<u64>(), hold_ms.parse::<u64>()) else {
        eprintln!("LEASE_MS and HOLD_MS are numbers");
        return ExitCode::FAILURE;
    };
    let opened: Result<Arc<dyn Store>, StoreError> = if store.starts_with("postgres") {
        PostgresStore::connect(store)
            .await
            .map(|s| Arc::new(s) as _)
    } else {
        SqliteStore::open(store).await.map(|s| Arc::new(s) as _)
    };
    let store = match opened {
        Ok(store) => store,
        Err(error) => {
            eprintln!("cannot open the store: {error}");
            return ExitCode::FAILURE;
        }
    };
    let options = WorkerOptions::default().lease(Duration::from_millis(lease_ms));
    let engine = DurableEngine::from_arc(store, options);
    let log = PathBuf::from(log);
    let registered = async {
        // `OWNERSHIP_DEPLOY=v2`: this worker runs the next version of `Hold` (a rolling deploy).
        if std::env::var("OWNERSHIP_DEPLOY").as_deref() == Ok("v2") {
            engine
                .register(&HoldV2 {
                    log: log.clone(),
                    hold_ms,
                })
                .await?;
        } else {
            engine
                .register(&Hold {
                    log: log.clone(),
                    hold_ms,
                })
                .await?;
        }
        engine
            .register(&Trip {
                log: log.clone(),
                travel_ms: hold_ms,
            })
            .await?;
        engine
            .register(&Soak {
                log: log.clone(),
                step_ms: hold_ms,
            })
            .await
    };
    if let Err(error) = registered.await {
        eprintln!("cannot register: {error}");
        return ExitCode::FAILURE;
    }
    println!("ready {}", engine.worker_id());
    let stop = PathBuf::from(format!("{}.stop", log.display()));
    while !stop.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fencing = engine.fencing();
    println!(
        "fencing {} {}",
        fencing.rejected_writes, fencing.self_fenced_runs
    );
    let _ = engine.shutdown(Duration::from_secs(5)).await;
    ExitCode::SUCCESS
}
