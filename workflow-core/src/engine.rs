//! [`Engine`]: runs workflows.

use std::sync::Arc;

use tracing::Instrument;

use crate::context::RunInfo;
use crate::durable::DurableEngine;
use crate::error::WorkflowError;
use crate::history::RunHistory;
use crate::options::RunOptions;
use crate::run_id::RunId;
use crate::scheduler::{drive, Recorder};
#[cfg(feature = "sqlite")]
use crate::store::{SqliteStore, StoreError};
use crate::workflow::Workflow;

/// Runs workflows. Cheap to clone; one engine serves any number of concurrent runs.
///
/// ```
/// use workflow_core::prelude::*;
///
/// struct Greeter;
///
/// #[workflow]
/// impl Greeter {
///     #[step]
///     async fn greet(&self, name: String) -> String {
///         format!("hello, {name}")
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let engine = Engine::in_memory();
/// let greeting = engine.run(Greeter, "ada".to_string()).await.unwrap();
/// assert_eq!(greeting, "hello, ada");
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Engine {
    _shared: Arc<()>,
}

/// The result of a run together with its history.
#[derive(Debug)]
pub struct Finished<O> {
    /// The run's output or error.
    pub result: Result<O, WorkflowError>,
    /// Which steps ran, in which order, and which were skipped.
    pub history: RunHistory,
}

impl Engine {
    /// An engine that keeps runs in memory only: nothing survives the process.
    pub fn in_memory() -> Self {
        Engine::default()
    }

    /// A durable engine on the SQLite file at `path` (created if missing): WAL, full
    /// durability, group commit. Runs survive a crash; see [`DurableEngine`].
    #[cfg(feature = "sqlite")]
    pub async fn sqlite(path: impl AsRef<std::path::Path>) -> Result<DurableEngine, StoreError> {
        Ok(DurableEngine::new(SqliteStore::open(path).await?))
    }

    /// A durable engine on the PostgreSQL database at `url`
    /// (`postgres://user:password@host:port/database`; the store's tables are created in the
    /// connection's current schema if missing). Any number of engines, in any number of
    /// processes and machines, may share one database; see [`crate::store::PostgresStore`].
    #[cfg(feature = "postgres")]
    pub async fn postgres(url: &str) -> Result<DurableEngine, crate::store::StoreError> {
        Ok(DurableEngine::new(
            crate::store::PostgresStore::connect(url).await?,
        ))
    }

    /// Runs `workflow` on `input` to its end and returns its output.
    pub async fn run<W>(&self, workflow: W, input: W::Input) -> Result<W::Output, WorkflowError>
    where
        W: Workflow + Sync,
    {
        let run = new_run::<W>();
        let span = run_span(&run);
        drive(&workflow, input, run, RunOptions::default(), None)
            .instrument(span)
            .await
    }

    /// Like [`Engine::run`], and also returns the run's [`RunHistory`].
    pub async fn run_with_history<W>(&self, workflow: W, input: W::Input) -> Finished<W::Output>
    where
        W: Workflow + Sync,
    {
        self.run_with(workflow, input, RunOptions::default()).await
    }

    /// Runs with [`RunOptions`] (deadline, cancellation) and returns the result and history.
    pub async fn run_with<W>(
        &self,
        workflow: W,
        input: W::Input,
        options: RunOptions,
    ) -> Finished<W::Output>
    where
        W: Workflow + Sync,
    {
        let run = new_run::<W>();
        let span = run_span(&run);
        let mut recorder = Recorder::new(W::definition());
        let result = drive(&workflow, input, run, options, Some(&mut recorder))
            .instrument(span)
            .await;
        Finished {
            result,
            history: recorder.into_history(),
        }
    }
}

fn new_run<W: Workflow>() -> Arc<RunInfo> {
    Arc::new(RunInfo {
        workflow: W::definition().name,
        run_id: RunId::generate(),
        engine: None,
    })
}

fn run_span(run: &RunInfo) -> tracing::Span {
    tracing::info_span!("workflow_run", workflow = run.workflow, run_id = %run.run_id)
}
