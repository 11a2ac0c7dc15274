//! [`Engine`]: runs workflows.

use std::sync::Arc;

use futures::future::BoxFuture;

use tracing::Instrument;

use crate::context::{RunInfo, RunLimits};
use crate::durable::DurableEngine;
use crate::error::WorkflowError;
use crate::event_feed::EngineEvent;
use crate::handle::RunHandle;
use crate::history::RunHistory;
use crate::memory::MemoryRuns;
use crate::options::RunOptions;
use crate::run_id::RunId;
use crate::scheduler::{drive, Recorder};
#[cfg(feature = "sqlite")]
use crate::store::{SqliteStore, StoreError};
use crate::workflow::{SignalFree, Workflow};

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
/// let greeting = engine.run(&Greeter, "ada".to_string()).await.unwrap();
/// assert_eq!(greeting, "hello, ada");
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Engine {
    /// Runs started with a handle.
    runs: Arc<MemoryRuns>,
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

    /// Runs `workflow` on `input` to its end and returns its output. A workflow with signal
    /// steps is a compile error naming the step: nothing could signal this run; start it with
    /// [`Engine::start`] instead.
    pub fn run<'a, W>(
        &'a self,
        workflow: &'a W,
        input: W::Input,
    ) -> BoxFuture<'a, Result<W::Output, WorkflowError>>
    where
        W: SignalFree + Sync,
        W::Input: 'a,
    {
        Box::pin(self.run_any(workflow, input))
    }

    /// [`Engine::run`] of any workflow: one with signal steps fails at its first wait (a
    /// child run's signal steps, for one).
    pub(crate) async fn run_any<W>(
        &self,
        workflow: &W,
        input: W::Input,
    ) -> Result<W::Output, WorkflowError>
    where
        W: Workflow + Sync,
    {
        let run = new_run::<W>(RunOptions::none());
        let span = run_span(&run);
        // Options of its own only for a run whose events go to the watched feed: the run's
        // future keeps a pointer either way, never the options.
        let tapped = self
            .runs
            .feed
            .tapped(W::definition(), || run.run_id().clone());
        let options = tapped.map(|events| {
            Box::new(RunOptions {
                events: Some(events),
                ..RunOptions::default()
            })
        });
        let options = options.as_deref().unwrap_or(RunOptions::none());
        drive(workflow, input, run, options, None)
            .instrument(span)
            .await
    }

    /// Runs with [`RunOptions`] (deadline, cancellation, id) and returns the result and the
    /// run's history.
    pub async fn run_with<W>(
        &self,
        workflow: &W,
        input: W::Input,
        options: RunOptions,
    ) -> Finished<W::Output>
    where
        W: SignalFree + Sync,
    {
        self.run_with_any(workflow, input, options).await
    }

    /// [`Engine::run_with`] of any workflow (see [`Engine::run_any`]).
    pub(crate) async fn run_with_any<W>(
        &self,
        workflow: &W,
        input: W::Input,
        mut options: RunOptions,
    ) -> Finished<W::Output>
    where
        W: Workflow + Sync,
    {
        let run = new_run::<W>(&options);
        let span = run_span(&run);
        self.runs
            .feed
            .tap(&mut options, W::definition(), run.run_id());
        let mut recorder = Recorder::new(W::definition());
        let result = drive(workflow, input, run, &options, Some(&mut recorder))
            .instrument(span)
            .await;
        Finished {
            result,
            history: recorder.into_history(),
        }
    }

    /// Runs `workflow` on every input, at most `concurrency` at once, as a stream of results in
    /// the order the runs finish, with totals ([`crate::BulkRun::totals`]); [`crate::BulkRun::cancel`] stops
    /// it as a whole.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use workflow_core::prelude::*;
    ///
    /// struct Double;
    /// #[workflow]
    /// impl Double {
    ///     #[step]
    ///     async fn double(&self, x: u32) -> u32 { x * 2 }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let engine = Engine::in_memory();
    /// let mut bulk = engine.run_many(&Double, 0..1_000u32, 100);
    /// let mut sum = 0;
    /// while let Some(item) = bulk.next().await {
    ///     sum += item.result.unwrap();
    /// }
    /// assert_eq!(sum, 999 * 1_000);
    /// assert_eq!(bulk.totals().succeeded, 1_000);
    /// # }
    /// ```
    pub fn run_many<'a, W, I>(
        &'a self,
        workflow: &'a W,
        inputs: I,
        concurrency: usize,
    ) -> crate::BulkRun<'a, W::Output>
    where
        W: SignalFree + Sync,
        W::Output: 'a,
        I: IntoIterator<Item = W::Input>,
        I::IntoIter: Send + 'a,
        W::Input: 'a,
    {
        crate::BulkRun::new(inputs, concurrency, move |input, cancel| async move {
            let options = RunOptions::new().cancel_token(cancel);
            self.run_with(workflow, input, options).await.result
        })
    }

    /// Starts a run in a task of its own and returns its handle: wait for it, cancel it, or
    /// send it signals ([`RunHandle::signal`]), which in-memory runs take too.
    pub async fn start<W>(
        &self,
        workflow: &W,
        input: W::Input,
    ) -> Result<RunHandle<W>, WorkflowError>
    where
        W: Workflow + Clone + Send + Sync + 'static,
        W::Input: 'static,
        W::Output: 'static,
    {
        self.start_with(workflow, input, RunOptions::default())
            .await
    }

    /// Starts the run `run_id` (see [`Engine::start`]); an id this engine still holds is
    /// refused with [`WorkflowError::InputConflict`].
    pub async fn start_with_id<W>(
        &self,
        workflow: &W,
        run_id: impl Into<RunId>,
        input: W::Input,
    ) -> Result<RunHandle<W>, WorkflowError>
    where
        W: Workflow + Clone + Send + Sync + 'static,
        W::Input: 'static,
        W::Output: 'static,
    {
        let options = RunOptions::default().run_id(run_id);
        self.start_with(workflow, input, options).await
    }

    /// Starts a run with [`RunOptions`] (deadline, cancellation, id); see [`Engine::start`].
    pub async fn start_with<W>(
        &self,
        workflow: &W,
        input: W::Input,
        options: RunOptions,
    ) -> Result<RunHandle<W>, WorkflowError>
    where
        W: Workflow + Clone + Send + Sync + 'static,
        W::Input: 'static,
        W::Output: 'static,
    {
        self.runs.start(workflow, input, options)
    }

    /// The events of every run of this engine from now on (runs started with `start`, and
    /// runs of `run`/`run_with` while someone watches), steps named by their names. A run's
    /// own typed stream is [`RunHandle::events`].
    pub fn events(&self) -> futures::stream::BoxStream<'static, EngineEvent> {
        self.runs.feed.subscribe()
    }

    /// A handle on a run this engine started, while a handle or its task holds it (in memory
    /// nothing outlives them); otherwise its operations fail with
    /// [`crate::store::StoreError::UnknownRun`].
    pub fn handle<W>(&self, run_id: impl Into<RunId>) -> RunHandle<W>
    where
        W: Workflow + 'static,
        W::Output: 'static,
    {
        self.runs.handle(run_id.into())
    }
}

fn new_run<W: Workflow>(options: &RunOptions) -> Arc<RunInfo> {
    Arc::new(RunInfo {
        workflow: W::definition().name,
        id: options.run_id.clone().map(Into::into).unwrap_or_default(),
        engine: None,
        limits: RunLimits::of(options),
        children: Default::default(),
        trace: Default::default(),
    })
}

/// The run's span; none without a subscriber (with tracing's `log` feature on, which sqlx
/// turns on, even a disabled span costs more than a short run).
fn run_span(run: &RunInfo) -> tracing::Span {
    if !tracing::dispatcher::has_been_set() {
        return tracing::Span::none();
    }
    tracing::info_span!("workflow_run", workflow = run.workflow, run_id = %run.run_id())
}
