//! What the SQL stores share: the write requests, the group-commit writer task that runs them
//! in batches (one transaction and one fsync per batch), and the [`Store`](super::Store)
//! implementation that sends writes to the writer and reads to the dialect.

use std::future::Future;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::{
    Claim, ClaimRequest, ClaimedRun, JournalRecord, NewRun, Park, Parked, QueueConfig, RunEnd,
    RunFilter, RunPage, RunRecord, RunStatus, StoreError, StoredDefinition, WorkerId,
    WorkerRegistration,
};
use crate::run_id::RunId;

/// A write request. The writer runs queued requests in one transaction.
pub(crate) enum Op {
    CreateRun(NewRun),
    Reopen(RunId, crate::journal::JournalEvent),
    Purge(SystemTime, u32),
    Audit(super::AuditRecord),
    SendSignal(RunId, String, Vec<u8>),
    RequestCancel(RunId),
    SetQueue(QueueConfig),
    PutDefinition(StoredDefinition),
    RegisterWorker(WorkerRegistration),
    Heartbeat(WorkerId, Duration),
    DeregisterWorker(WorkerId),
    Reap,
    Claim(WorkerId, ClaimRequest),
    ClaimRun(WorkerId, RunId),
    Append(Claim, Vec<JournalRecord>),
    ConsumeSignal(Claim, u64, String, String),
    SetWaiting(Claim, Option<String>),
    Park(Claim, Park),
    Release(Claim),
    Finish(Claim, RunEnd),
}

/// The answer to a write request.
pub(crate) enum Reply {
    Run(Box<RunRecord>),
    Done,
    Payload(Option<Vec<u8>>),
    Status(RunStatus),
    RunIds(Vec<RunId>),
    Count(u64),
    Claimed(Vec<ClaimedRun>),
    Parked(Parked),
}

/// One request's outcome inside a batch: a logical refusal is `Ok(Err(..))` (nothing was
/// written), a database error is `Err(..)`.
pub(crate) type Applied = Result<Result<Reply, StoreError>, sqlx::Error>;

/// A queued request and where its answer goes.
pub(crate) struct Job {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Reply, StoreError>>,
}

/// Runs a batch of jobs on the dialect's write connection; one result per job, in order.
pub(crate) type RunBatch<C> =
    for<'a> fn(&'a mut C, &'a [Job]) -> BoxFuture<'a, Vec<Result<Reply, StoreError>>>;

/// The handle to a store's writer task. Requests are queued when they are made, so requests
/// made in order commit in that order. The queue is unbounded: a run has at most 256 appends
/// in flight (see `scheduler::commits`) and every other request is awaited by its caller.
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer task over `conn`: it takes the first queued request and every other
    /// one already queued (up to `max_batch`) and runs them as one batch.
    pub fn spawn<C: Send + 'static>(mut conn: C, max_batch: usize, run: RunBatch<C>) -> Self {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            while queue.recv_many(&mut batch, max_batch).await > 0 {
                let results = run(&mut conn, &batch).await;
                for (job, result) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
        });
        Writer { jobs }
    }

    /// Sends a request and waits until its batch is committed.
    pub async fn write(&self, op: Op) -> Result<Reply, StoreError> {
        self.queue(op).await
    }

    /// Queues a request now; the returned future resolves when its batch is committed.
    pub fn queue(&self, op: Op) -> impl Future<Output = Result<Reply, StoreError>> + 'static {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Database("the store's writer task has stopped".into());
        let sent = self.jobs.send(Job { op, reply });
        async move {
            sent.map_err(|_| closed())?;
            answer.await.map_err(|_| closed())?
        }
    }
}

/// The reads of a SQL dialect; the writes all go through its [`Writer`].
pub(crate) trait Reads: Send + Sync + 'static {
    fn load_run<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>>;
    fn list<'a>(&'a self, filter: &'a RunFilter) -> BoxFuture<'a, Result<RunPage, StoreError>>;
    fn journal<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>>;
    fn has_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn journal_times<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<super::CommitTimes, StoreError>>;
    fn list_audit(&self, limit: u32) -> BoxFuture<'_, Result<Vec<super::AuditRecord>, StoreError>>;
    fn list_workers(&self) -> BoxFuture<'_, Result<Vec<WorkerId>, StoreError>>;
    fn definition<'a>(
        &'a self,
        workflow: &'a str,
        hash: u64,
    ) -> BoxFuture<'a, Result<Option<StoredDefinition>, StoreError>>;
    fn list_definitions(&self) -> BoxFuture<'_, Result<Vec<StoredDefinition>, StoreError>>;
    fn list_queues(&self) -> BoxFuture<'_, Result<Vec<QueueConfig>, StoreError>>;
    fn queue_depths(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, StoreError>>;
    /// True when some run may be claimable now (so an idle worker's poll takes no write lock).
    fn any_claimable(&self) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// See [`Store::wake_hints`](super::Store::wake_hints); none by default.
    fn wake_hints(&self) -> BoxFuture<'_, Option<futures::stream::BoxStream<'static, ()>>> {
        Box::pin(async { None })
    }
}

pub(crate) fn unexpected(what: &str) -> StoreError {
    StoreError::Database(format!("internal error: unexpected reply to {what}"))
}

/// Milliseconds since the Unix epoch, as stored.
pub(crate) fn to_ms(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

/// A stored time.
pub(crate) fn from_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// Implements [`Store`](super::Store) for a struct with a `reads: impl Reads` and a
/// `writer: Writer` field.
macro_rules! sql_store {
    ($store:ty) => {
        impl $crate::store::Store for $store {
            fn create_run<'a>(
                &'a self,
                run: &'a $crate::store::NewRun,
            ) -> futures::future::BoxFuture<'a, Result<$crate::store::RunRecord, StoreError>> {
                Box::pin(async move {
                    match self.writer.write(Op::CreateRun(run.clone())).await? {
                        Reply::Run(record) => Ok(*record),
                        _ => Err(unexpected("create_run")),
                    }
                })
            }
            fn record_audit<'a>(
                &'a self,
                record: &'a $crate::store::AuditRecord,
            ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
                let op = Op::Audit(record.clone());
                Box::pin(async move { self.writer.write(op).await.map(drop) })
            }
            fn list_audit(
                &self,
                limit: u32,
            ) -> futures::future::BoxFuture<'_, Result<Vec<$crate::store::AuditRecord>, StoreError>> {
                $crate::store::writer::Reads::list_audit(&self.reads, limit)
            }
            fn purge<'a>(
                &'a self,
                finished_before: std::time::SystemTime,
                limit: u32,
            ) -> futures::future::BoxFuture<'a, Result<u64, StoreError>> {
                Box::pin(async move {
                    match self.writer.write(Op::Purge(finished_before, limit)).await? {
                        Reply::Count(count) => Ok(count),
                        _ => Err(unexpected("purge")),
                    }
                })
            }
            fn journal_times<'a>(
                &'a self,
                run_id: &'a RunId,
            ) -> futures::future::BoxFuture<'a, Result<$crate::store::CommitTimes, StoreError>>
            {
                $crate::store::writer::Reads::journal_times(&self.reads, run_id)
            }
            fn reopen<'a>(
                &'a self,
                run_id: &'a RunId,
                rewound: &'a $crate::journal::JournalEvent,
            ) -> futures::future::BoxFuture<'a, Result<$crate::store::RunStatus, StoreError>> {
                Box::pin(async move {
                    match self.writer.write(Op::Reopen(run_id.clone(), rewound.clone())).await? {
                        Reply::Status(status) => Ok(status),
                        _ => Err(unexpected("reopen")),
                    }
                })
            }
            fn load_run<'a>(
                &'a self,
                run_id: &'a RunId,
            ) -> futures::future::BoxFuture<'a, Result<Option<$crate::store::RunRecord>, StoreError>>
            {
                $crate::store::writer::Reads::load_run(&self.reads, run_id)
            }
            fn list<'a>(
                &'a self,
                filter: &'a $crate::store::RunFilter,
            ) -> futures::future::BoxFuture<'a, Result<$crate::store::RunPage, StoreError>> {
                $crate::store::writer::Reads::list(&self.reads, filter)
            }
            fn journal<'a>(
                &'a self,
                run_id: &'a RunId,
            ) -> futures::future::BoxFuture<'a, Result<Vec<$crate::store::JournalRecord>, StoreError>>
            {
                $crate::store::writer::Reads::journal(&self.reads, run_id)
            }
            fn send_signal<'a>(
                &'a self,
                run_id: &'a RunId,
                name: &'a str,
                payload: Vec<u8>,
            ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
                let op = Op::SendSignal(run_id.clone(), name.to_owned(), payload);
                Box::pin(async move { self.writer.write(op).await.map(drop) })
            }
            fn has_signal<'a>(
                &'a self,
                run_id: &'a RunId,
                name: &'a str,
            ) -> futures::future::BoxFuture<'a, Result<bool, StoreError>> {
                $crate::store::writer::Reads::has_signal(&self.reads, run_id, name)
            }
            fn request_cancel<'a>(
                &'a self,
                run_id: &'a RunId,
            ) -> futures::future::BoxFuture<'a, Result<$crate::store::RunStatus, StoreError>> {
                Box::pin(async move {
                    match self.writer.write(Op::RequestCancel(run_id.clone())).await? {
                        Reply::Status(status) => Ok(status),
                        _ => Err(unexpected("request_cancel")),
                    }
                })
            }
            fn set_queue<'a>(
                &'a self,
                config: &'a $crate::store::QueueConfig,
            ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
                Box::pin(async move { self.writer.write(Op::SetQueue(config.clone())).await.map(drop) })
            }
            fn put_definition<'a>(
                &'a self,
                definition: &'a $crate::store::StoredDefinition,
            ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
                let op = Op::PutDefinition(definition.clone());
                Box::pin(async move { self.writer.write(op).await.map(drop) })
            }
            fn definition<'a>(
                &'a self,
                workflow: &'a str,
                hash: u64,
            ) -> futures::future::BoxFuture<'a, Result<Option<$crate::store::StoredDefinition>, StoreError>> {
                $crate::store::writer::Reads::definition(&self.reads, workflow, hash)
            }
            fn list_queues(
                &self,
            ) -> futures::future::BoxFuture<'_, Result<Vec<$crate::store::QueueConfig>, StoreError>> {
                $crate::store::writer::Reads::list_queues(&self.reads)
            }
            fn queue_depths(
                &self,
            ) -> futures::future::BoxFuture<'_, Result<Vec<(String, u64)>, StoreError>> {
                $crate::store::writer::Reads::queue_depths(&self.reads)
            }
            fn list_definitions(
                &self,
            ) -> futures::future::BoxFuture<'_, Result<Vec<$crate::store::StoredDefinition>, StoreError>> {
                $crate::store::writer::Reads::list_definitions(&self.reads)
            }
            fn register_worker<'a>(
                &'a self,
                registration: &'a $crate::store::WorkerRegistration,
            ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
                let op = Op::RegisterWorker(registration.clone());
                Box::pin(async move { self.writer.write(op).await.map(drop) })
            }
            fn heartbeat<'a>(
                &'a self,
                worker: &'a $crate::store::WorkerId,
                lease: std::time::Duration,
            ) -> futures::future::BoxFuture<'a, Result<Vec<RunId>, StoreError>> {
                Box::pin(async move {
                    match self.writer.write(Op::Heartbeat(worker.clone(), lease)).await? {
                        Reply::RunIds(ids) => Ok(ids),
                        _ => Err(unexpected("heartbeat")),
                    }
                })
            }
            fn list_workers(
                &self,
            ) -> futures::future::BoxFuture<'_, Result<Vec<$crate::store::WorkerId>, StoreError>> {
                $crate::store::writer::Reads::list_workers(&self.reads)
            }
            fn deregister_worker<'a>(
                &'a self,
                worker: &'a $crate::store::WorkerId,
            ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
                let op = Op::DeregisterWorker(worker.clone());
                Box::pin(async move { self.writer.write(op).await.map(drop) })
            }
            fn reap_expired(&self) -> futures::future::BoxFuture<'_, Result<u64, StoreError>> {
                Box::pin(async move {
                    match self.writer.write(Op::Reap).await? {
                        Reply::Count(n) => Ok(n),
                        _ => Err(unexpected("reap_expired")),
                    }
                })
            }
            fn wake_hints(
                &self,
            ) -> futures::future::BoxFuture<'_, Option<futures::stream::BoxStream<'static, ()>>>
            {
                $crate::store::writer::Reads::wake_hints(&self.reads)
            }
            fn claim<'a>(
                &'a self,
                worker: &'a $crate::store::WorkerId,
                request: &'a $crate::store::ClaimRequest,
            ) -> futures::future::BoxFuture<'a, Result<Vec<$crate::store::ClaimedRun>, StoreError>>
            {
                Box::pin(async move {
                    if !$crate::store::writer::Reads::any_claimable(&self.reads).await? {
                        return Ok(Vec::new());
                    }
                    match self.writer.write(Op::Claim(worker.clone(), request.clone())).await? {
                        Reply::Claimed(runs) => Ok(runs),
                        _ => Err(unexpected("claim")),
                    }
                })
            }
            fn claim_run<'a>(
                &'a self,
                worker: &'a $crate::store::WorkerId,
                run_id: &'a RunId,
            ) -> futures::future::BoxFuture<'a, Result<Option<$crate::store::ClaimedRun>, StoreError>>
            {
                Box::pin(async move {
                    match self.writer.write(Op::ClaimRun(worker.clone(), run_id.clone())).await? {
                        Reply::Claimed(runs) => Ok(runs.into_iter().next()),
                        _ => Err(unexpected("claim_run")),
                    }
                })
            }
            fn append(
                &self,
                claim: &$crate::store::Claim,
                records: Vec<$crate::store::JournalRecord>,
            ) -> futures::future::BoxFuture<'static, Result<(), StoreError>> {
                let committed = self.writer.queue(Op::Append(claim.clone(), records));
                Box::pin(async move { committed.await.map(drop) })
            }
            fn consume_signal<'a>(
                &'a self,
                claim: &'a $crate::store::Claim,
                seq: u64,
                step: &'a str,
                name: &'a str,
            ) -> futures::future::BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
                let op = Op::ConsumeSignal(claim.clone(), seq, step.to_owned(), name.to_owned());
                Box::pin(async move {
                    match self.writer.write(op).await? {
                        Reply::Payload(payload) => Ok(payload),
                        _ => Err(unexpected("consume_signal")),
                    }
                })
            }
            fn set_waiting<'a>(
                &'a self,
                claim: &'a $crate::store::Claim,
                waiting_for: Option<String>,
            ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
                let op = Op::SetWaiting(claim.clone(), waiting_for);
                Box::pin(async move { self.writer.write(op).await.map(drop) })
            }
            fn park<'a>(
                &'a self,
                claim: &'a $crate::store::Claim,
                park: &'a $crate::store::Park,
            ) -> futures::future::BoxFuture<'a, Result<$crate::store::Parked, StoreError>> {
                Box::pin(async move {
                    match self.writer.write(Op::Park(claim.clone(), park.clone())).await? {
                        Reply::Parked(parked) => Ok(parked),
                        _ => Err(unexpected("park")),
                    }
                })
            }
            fn release<'a>(
                &'a self,
                claim: &'a $crate::store::Claim,
            ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
                Box::pin(async move { self.writer.write(Op::Release(claim.clone())).await.map(drop) })
            }
            fn finish<'a>(
                &'a self,
                claim: &'a $crate::store::Claim,
                end: &'a $crate::store::RunEnd,
            ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
                let op = Op::Finish(claim.clone(), end.clone());
                Box::pin(async move { self.writer.write(op).await.map(drop) })
            }
        }
    };
}
pub(crate) use sql_store;
