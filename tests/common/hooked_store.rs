//! An SQLite store with hooks into some of its writes, for tests of what a run does when the
//! store answers late or loses a reply. Every other method goes straight to the store.

use std::time::Duration;

use futures::future::BoxFuture;
use workflow_core::prelude::*;
use workflow_core::store::{
    Claim, ClaimRequest, ClaimedRun, JournalRecord, NewRun, Park, Parked, QueueConfig, RunEnd,
    RunFilter, RunPage, RunRecord, SqliteStore, Store, StoreError, WorkerId, WorkerRegistration,
};

/// What a test changes in the store's answers.
pub trait Hooks: Send + Sync + 'static {
    /// After a claim that claimed runs committed: an error replaces its answer.
    fn after_claim(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// After a release committed: an error replaces its answer.
    fn after_release(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// When an append is queued: a future the append's answer waits for after its commit.
    fn hold_append(&self, records: &[JournalRecord]) -> Option<BoxFuture<'static, ()>> {
        let _ = records;
        None
    }
}

/// `inner` with `hooks` applied.
pub struct Hooked<H> {
    pub inner: SqliteStore,
    pub hooks: H,
}

impl<H: Hooks> Store for Hooked<H> {
    fn create_run<'a>(&'a self, run: &'a NewRun) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        self.inner.create_run(run)
    }
    fn record_audit<'a>(
        &'a self,
        record: &'a workflow_core::store::AuditRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.record_audit(record)
    }
    fn list_audit(
        &self,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<workflow_core::store::AuditRecord>, StoreError>> {
        self.inner.list_audit(limit)
    }
    fn purge<'a>(
        &'a self,
        finished_before: std::time::SystemTime,
        limit: u32,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.inner.purge(finished_before, limit)
    }
    fn journal_times<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<workflow_core::store::CommitTimes, StoreError>> {
        self.inner.journal_times(run_id)
    }
    fn reopen<'a>(
        &'a self,
        run_id: &'a RunId,
        rewound: &'a workflow_core::JournalEvent,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        self.inner.reopen(run_id, rewound)
    }
    fn load_run<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        self.inner.load_run(run_id)
    }
    fn list<'a>(&'a self, filter: &'a RunFilter) -> BoxFuture<'a, Result<RunPage, StoreError>> {
        self.inner.list(filter)
    }
    fn journal<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        self.inner.journal(run_id)
    }
    fn send_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.send_signal(run_id, name, payload)
    }
    fn has_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.has_signal(run_id, name)
    }
    fn request_cancel<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        self.inner.request_cancel(run_id)
    }
    fn set_queue<'a>(&'a self, config: &'a QueueConfig) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.set_queue(config)
    }
    fn register_worker<'a>(
        &'a self,
        registration: &'a WorkerRegistration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.register_worker(registration)
    }
    fn heartbeat<'a>(
        &'a self,
        worker: &'a WorkerId,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<RunId>, StoreError>> {
        self.inner.heartbeat(worker, lease)
    }
    fn deregister_worker<'a>(
        &'a self,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.deregister_worker(worker)
    }
    fn list_workers(&self) -> BoxFuture<'_, Result<Vec<WorkerId>, StoreError>> {
        self.inner.list_workers()
    }
    fn reap_expired(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.reap_expired()
    }
    fn claim<'a>(
        &'a self,
        worker: &'a WorkerId,
        request: &'a ClaimRequest,
    ) -> BoxFuture<'a, Result<Vec<ClaimedRun>, StoreError>> {
        Box::pin(async move {
            let claimed = self.inner.claim(worker, request).await?;
            if !claimed.is_empty() {
                self.hooks.after_claim()?;
            }
            Ok(claimed)
        })
    }
    fn claim_run<'a>(
        &'a self,
        worker: &'a WorkerId,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<ClaimedRun>, StoreError>> {
        self.inner.claim_run(worker, run_id)
    }
    fn append(
        &self,
        claim: &Claim,
        records: Vec<JournalRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let hold = self.hooks.hold_append(&records);
        let committed = self.inner.append(claim, records);
        Box::pin(async move {
            committed.await?;
            if let Some(hold) = hold {
                hold.await;
            }
            Ok(())
        })
    }
    fn consume_signal<'a>(
        &'a self,
        claim: &'a Claim,
        seq: u64,
        step: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        self.inner.consume_signal(claim, seq, step, name)
    }
    fn set_waiting<'a>(
        &'a self,
        claim: &'a Claim,
        waiting_for: Option<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.set_waiting(claim, waiting_for)
    }
    fn park<'a>(
        &'a self,
        claim: &'a Claim,
        park: &'a Park,
    ) -> BoxFuture<'a, Result<Parked, StoreError>> {
        self.inner.park(claim, park)
    }
    fn release<'a>(&'a self, claim: &'a Claim) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner.release(claim).await?;
            self.hooks.after_release()
        })
    }
    fn finish<'a>(
        &'a self,
        claim: &'a Claim,
        end: &'a RunEnd,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.finish(claim, end)
    }
}
