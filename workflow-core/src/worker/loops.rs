//! The worker's identity and its two background loops: heartbeat (with takeover sweep, queue
//! depth and self-fencing) and claim.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::real_clock::real_sleep;
use crate::definition::jitter_fraction;
use crate::durable::{DurableEngine, WeakEngine};
use crate::otel::QueueDepth;
use crate::store::{
    Claim, ClaimRequest, RunFilter, RunStatus, StoreError, WorkerId, WorkerRegistration,
};

/// Shortest and longest pause of the claim loop between two empty claims.
const MIN_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(1);
/// Most runs claimed in one round trip.
const CLAIM_BATCH: usize = 64;

/// Who this worker is in the store right now. A worker that lost its lease never uses its
/// old id again.
pub(crate) struct Identity {
    state: Mutex<IdentityState>,
}

struct IdentityState {
    worker: WorkerId,
    registered: bool,
    /// The last successful heartbeat (or registration), by the monotonic clock.
    last_ok: Instant,
}

impl Identity {
    pub fn new() -> Self {
        Identity {
            state: Mutex::new(IdentityState {
                worker: WorkerId::generate(),
                registered: false,
                last_ok: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IdentityState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current id, if it is registered.
    pub fn registered(&self) -> Option<WorkerId> {
        let state = self.lock();
        state.registered.then(|| state.worker.clone())
    }

    /// The current id, registered or not.
    pub fn current(&self) -> WorkerId {
        self.lock().worker.clone()
    }

    fn mark_ok(&self, worker: &WorkerId) {
        let mut state = self.lock();
        if &state.worker == worker {
            state.registered = true;
            state.last_ok = Instant::now();
        }
    }

    /// Drops the id for good and takes a new, unregistered one. True if `worker` was current.
    pub fn replace(&self, worker: &WorkerId) -> bool {
        let mut state = self.lock();
        if &state.worker != worker {
            return false;
        }
        state.worker = WorkerId::generate();
        state.registered = false;
        true
    }

    fn since_ok(&self) -> Duration {
        self.lock().last_ok.elapsed()
    }
}

/// Registers the current id in the store (a no-op when it is registered).
pub(crate) async fn register(engine: &DurableEngine) -> Result<WorkerId, StoreError> {
    let identity = engine.identity();
    if let Some(worker) = identity.registered() {
        return Ok(worker);
    }
    let worker = identity.current();
    let registration = WorkerRegistration {
        worker: worker.clone(),
        lease: engine.worker_options().lease,
    };
    engine.store().register_worker(&registration).await?;
    identity.mark_ok(&worker);
    Ok(worker)
}

/// Starts the heartbeat and claim loops of `engine`.
pub(crate) fn spawn_loops(engine: &DurableEngine) {
    tokio::spawn(heartbeat_loop(engine.downgrade()));
    if engine.worker_options().claim {
        tokio::spawn(claim_loop(engine.downgrade()));
    }
}

async fn heartbeat_loop(weak: WeakEngine) {
    let mut depth = QueueDepth::default();
    loop {
        let interval = match weak.upgrade() {
            Some(engine) => engine.worker_options().heartbeat_interval(),
            None => return,
        };
        real_sleep(interval).await;
        let Some(engine) = weak.upgrade() else { return };
        if engine.is_shutting_down() {
            return; // the worker left the store
        }
        heartbeat_once(&engine, &mut depth).await;
    }
}

/// One heartbeat: extend the lease, react to cancels, fence on trouble, sweep expired leases,
/// report the queues' depth.
async fn heartbeat_once(engine: &DurableEngine, depth: &mut QueueDepth) {
    let options = engine.worker_options().clone();
    let identity = engine.identity();
    match identity.registered() {
        None => {
            if let Err(error) = register(engine).await {
                tracing::warn!(%error, "worker cannot register; retrying");
            }
        }
        Some(worker) => {
            // However long the store takes to answer, the worker fences itself in time.
            let left = options.fence_after().saturating_sub(identity.since_ok());
            let beat = tokio::select! {
                result = engine.store().heartbeat(&worker, options.lease) => Some(result),
                () = real_sleep(left) => None,
            };
            match beat {
                Some(Ok(cancelled)) => {
                    identity.mark_ok(&worker);
                    for run_id in cancelled {
                        engine.cancel_local(&run_id);
                    }
                }
                Some(Err(StoreError::WorkerLost(_))) => {
                    tracing::warn!(%worker, "worker lost its lease; its runs were taken over");
                    engine.lose_identity(&worker);
                }
                Some(Err(error)) if identity.since_ok() < options.fence_after() => {
                    tracing::warn!(%worker, %error, "heartbeat failed");
                }
                Some(Err(_)) | None => {
                    tracing::error!(%worker, "no heartbeat within the lease: fencing this worker");
                    engine.lose_identity(&worker);
                    return;
                }
            }
        }
    }
    sweep(engine).await;
    depth.report(engine.store()).await;
}

/// The takeover sweep: workers of this machine whose process is gone are removed at once
/// (their runs become ready), the others when their lease expires.
pub(crate) async fn sweep(engine: &DurableEngine) {
    if let Ok(workers) = engine.store().list_workers().await {
        let me = std::process::id();
        for worker in workers {
            let dead = worker
                .local_pid()
                .is_some_and(|pid| pid != me && !process_exists(pid));
            if dead {
                tracing::info!(%worker, "worker process is gone; taking its runs over");
                crate::otel::count_takeovers_from(engine.store(), &worker).await;
                let _ = engine.store().deregister_worker(&worker).await;
            }
        }
    }
    match engine.store().reap_expired().await {
        Ok(taken) => crate::otel::count_takeovers(taken),
        Err(error) => tracing::debug!(%error, "takeover sweep failed"),
    }
}

/// True when a live (not zombie) process with this id exists in this pid namespace.
fn process_exists(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state follows the last parenthesis.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X'))
}

async fn claim_loop(weak: WeakEngine) {
    let mut poll = MIN_POLL;
    let mut hints = match weak.upgrade() {
        Some(engine) => engine.store().wake_hints().await,
        None => return,
    };
    loop {
        let Some(engine) = weak.upgrade() else { return };
        if engine.is_shutting_down() {
            return;
        }
        // Listen before claiming, so a start or signal during the claim is not missed.
        let bell = engine.claim_bell();
        let listen = bell.notified();
        tokio::pin!(listen);
        listen.as_mut().enable();
        let full = match claim_once(&engine).await {
            Ok((claimed, full)) => {
                if claimed > 0 {
                    poll = MIN_POLL;
                }
                full
            }
            Err(error) => {
                // The claim may have committed with its reply lost.
                tracing::warn!(%error, "claim failed");
                engine.claimed().suspect_orphans();
                false
            }
        };
        if engine.claimed().take_orphans() {
            release_orphans(&engine).await;
        }
        drop(engine);
        if full {
            continue;
        }
        let pause = poll.mul_f64(0.9 + 0.2 * jitter_fraction());
        tokio::select! {
            () = listen => poll = MIN_POLL,
            () = next_hint(&mut hints) => poll = MIN_POLL,
            () = real_sleep(pause) => poll = (poll * 2).min(MAX_POLL),
        }
    }
}

/// The store's next wake-up hint, with every hint already queued behind it (one claim answers
/// them all: a burst of 100,000 starts must not become 100,000 claims); never, without hints
/// (or once they ended).
async fn next_hint(hints: &mut Option<futures::stream::BoxStream<'static, ()>>) {
    use futures::{FutureExt, StreamExt};
    let Some(stream) = hints else {
        return std::future::pending().await;
    };
    if stream.next().await.is_none() {
        *hints = None;
        return std::future::pending().await;
    }
    while let Some(next) = stream.next().now_or_never() {
        if next.is_none() {
            *hints = None;
            return;
        }
    }
}

/// Claims what this worker has room for and starts each run; returns how many runs were
/// claimed and whether the batch was full.
async fn claim_once(engine: &DurableEngine) -> Result<(usize, bool), StoreError> {
    let Some(worker) = engine.identity().registered() else {
        return Ok((0, false));
    };
    let definitions = engine.registry().definitions();
    let held = engine.active_count().max(engine.claimed().count());
    let room = engine.worker_options().max_runs.saturating_sub(held);
    if room == 0 {
        engine.claimed().mark_full();
    }
    if definitions.is_empty() || room == 0 {
        return Ok((0, false));
    }
    let limit = room.min(CLAIM_BATCH);
    let request = ClaimRequest {
        definitions,
        limit: limit as u32,
    };
    let claimed = engine.store().claim(&worker, &request).await?;
    let count = claimed.len();
    for run in claimed {
        let summary = &run.run.summary;
        match engine
            .registry()
            .runner(&summary.workflow, summary.definition_hash)
        {
            Some(runner) => {
                let held = engine.claimed().hold(run.claim.run_id.clone());
                let drive = runner(engine.clone(), run);
                tokio::spawn(async move {
                    drive.await;
                    drop(held);
                });
            }
            None => engine.release(&run.claim).await,
        }
    }
    Ok((count, count == limit))
}

/// Gives back the runs the store says this worker claimed and that nothing here executes
/// (see [`super::ClaimedRuns`]). On a store failure it tries again at the next round.
async fn release_orphans(engine: &DurableEngine) {
    let Some(worker) = engine.identity().registered() else {
        return; // a new identity holds nothing; the old one's runs are taken over
    };
    let mut filter = RunFilter {
        status: Some(RunStatus::Claimed),
        owner: Some(worker.clone()),
        ..RunFilter::default()
    };
    loop {
        let page = match engine.store().list(&filter).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "cannot list this worker's claims");
                engine.claimed().suspect_orphans();
                return;
            }
        };
        for run in page.runs {
            if engine.is_active(&run.run_id) || engine.claimed().holds(&run.run_id) {
                continue;
            }
            tracing::info!(run_id = %run.run_id, "giving back a claim nothing here executes");
            let claim = Claim {
                run_id: run.run_id,
                worker: worker.clone(),
                epoch: run.epoch,
            };
            engine.release(&claim).await;
        }
        match page.next {
            Some(next) => filter.after = Some(next),
            None => return,
        }
    }
}
