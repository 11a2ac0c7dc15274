//! Safe deploys: the definition hash covers what makes a journal readable (the graph, step
//! names, types) and not the tunables, so new retry/timeout/deadline values apply to runs in
//! flight, while a changed step type is refused with an error naming the step. Stores of the
//! previous schema version are migrated on open.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use temp_db::TempDb;

use workflow_core::prelude::*;
use workflow_core::store::{SqliteStore, Store};

#[path = "common/postgres_schema.rs"]
mod postgres_schema;
use postgres_schema::postgres_store;

mod v1 {
    use super::*;

    /// The first deployment: `charge` is not retried.
    #[derive(Clone, Default)]
    pub struct Pay {
        pub attempts: Arc<AtomicUsize>,
    }

    #[workflow(name = "Pay")]
    impl Pay {
        #[step]
        async fn order(&self, cents: u32) -> u32 {
            cents
        }

        #[step(after = order, timeout = "5s")]
        async fn charge(&self, cents: u32) -> Result<u32, StepError> {
            if self.attempts.fetch_add(1, SeqCst) == 0 {
                return Err(StepError::msg("card network timeout"));
            }
            Ok(cents)
        }
    }
}

mod v2 {
    use super::*;

    /// The same graph and types, new tunables: `charge` is retried, with another timeout.
    #[derive(Clone, Default)]
    pub struct Pay {
        pub attempts: Arc<AtomicUsize>,
    }

    #[workflow(name = "Pay")]
    impl Pay {
        #[step]
        async fn order(&self, cents: u32) -> u32 {
            cents
        }

        #[step(after = order, retry = 2, backoff = "1ms", timeout = "30s")]
        async fn charge(&self, cents: u32) -> Result<u32, StepError> {
            if self.attempts.fetch_add(1, SeqCst) == 0 {
                return Err(StepError::msg("card network timeout"));
            }
            Ok(cents)
        }
    }
}

mod v3 {
    use super::*;

    /// `charge` now returns a `String`: journals of earlier runs do not decode.
    #[derive(Clone, Default)]
    pub struct Pay;

    #[workflow(name = "Pay")]
    impl Pay {
        #[step]
        async fn order(&self, cents: u32) -> u32 {
            cents
        }

        #[step(after = order)]
        async fn charge(&self, cents: u32) -> String {
            format!("{cents} cents")
        }
    }
}

fn temp_db(name: &str) -> TempDb {
    TempDb::new(&format!("deploys-{name}"))
}

/// An engine that stores runs and executes none (a client).
async fn client(path: &std::path::Path) -> DurableEngine {
    DurableEngine::with_options(
        SqliteStore::open(path).await.unwrap(),
        WorkerOptions::default().claim_runs(false),
    )
}

#[tokio::test]
async fn new_tunables_apply_to_runs_in_flight() {
    assert_eq!(v1::Pay::definition().hash, v2::Pay::definition().hash);
    let path = temp_db("tunables");
    let old = client(&path).await;
    let run = old.start(&v1::Pay::default(), 250).await.unwrap();

    // The new deployment's worker takes the run: `charge` fails once, and is retried.
    let worker = Engine::sqlite(&path).await.unwrap();
    let new = v2::Pay::default();
    worker.register(&new).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), run.wait())
        .await
        .expect("the run finishes");
    assert_eq!(out.unwrap(), 250);
    assert_eq!(new.attempts.load(SeqCst), 2);
}

#[tokio::test]
async fn a_changed_step_type_is_refused_naming_the_step() {
    assert_ne!(v1::Pay::definition().hash, v3::Pay::definition().hash);
    let path = temp_db("types");
    let old = client(&path).await;
    let run = old.start(&v1::Pay::default(), 250).await.unwrap();

    let engine = Engine::sqlite(&path).await.unwrap();
    let error = engine.resume(&v3::Pay, run.id()).await.result.unwrap_err();
    match &error {
        WorkflowError::VersionMismatch { changes, .. } => {
            assert_eq!(changes, &["step `charge`: returns `u32` -> `String`"]);
        }
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("step `charge`: returns `u32` -> `String`"),
        "{text}"
    );
    // The run was left as it was, for a worker of its own definition.
    assert_eq!(run.status().await.unwrap(), RunStatus::Ready);
}

#[tokio::test]
async fn a_store_of_the_previous_schema_is_migrated_on_open() {
    let path = temp_db("migrate");
    {
        // A store as version 2 left it: no definitions table, no journal length.
        let store = SqliteStore::open(&path).await.unwrap();
        drop(store);
        let url = format!("sqlite://{}", path.display());
        let mut raw = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql(
            "DROP TABLE wf_definitions; ALTER TABLE wf_runs DROP COLUMN journal_len;
             DROP INDEX wf_runs_created_at; DROP INDEX wf_runs_finished_at;
             ALTER TABLE wf_runs DROP COLUMN created_at; ALTER TABLE wf_runs DROP COLUMN finished_at;
             ALTER TABLE wf_journal DROP COLUMN at; DROP TABLE wf_audit;
             ALTER TABLE wf_runs DROP COLUMN trace_context;
             UPDATE wf_meta SET value = 2 WHERE key = 'schema_version';",
        )
        .execute(&mut raw)
        .await
        .unwrap();
    }
    let store = SqliteStore::open(&path)
        .await
        .expect("a version 2 store opens");
    let def = v1::Pay::definition();
    let stored = workflow_core::store::StoredDefinition {
        workflow: def.name.into(),
        version: def.version,
        hash: def.hash,
        canonical: def.canonical.into(),
        signal_schemas: Default::default(),
    };
    store.put_definition(&stored).await.unwrap();
    assert_eq!(
        store.definition("Pay", def.hash).await.unwrap(),
        Some(stored)
    );
    // Runs work on the migrated store.
    let engine = DurableEngine::new(store);
    assert_eq!(engine.run(&v2::Pay::default(), 40).await.unwrap(), 40);
}

#[tokio::test]
async fn on_postgres_a_changed_step_type_is_refused_naming_the_step_and_tunables_apply() {
    let Some(url) = postgres_store("deploys").await else {
        return;
    };
    let client = DurableEngine::with_options(
        workflow_core::store::PostgresStore::connect(&url)
            .await
            .unwrap(),
        WorkerOptions::default().claim_runs(false),
    );
    let run = client.start(&v1::Pay::default(), 7).await.unwrap();
    let engine = Engine::postgres(&url).await.unwrap();
    match engine.resume(&v3::Pay, run.id()).await.result {
        Err(WorkflowError::VersionMismatch { changes, .. }) => {
            assert_eq!(changes, ["step `charge`: returns `u32` -> `String`"]);
        }
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    let new = v2::Pay::default();
    engine.register(&new).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), run.wait())
        .await
        .expect("the run finishes");
    assert_eq!(out.unwrap(), 7);
    assert_eq!(new.attempts.load(SeqCst), 2);
}
