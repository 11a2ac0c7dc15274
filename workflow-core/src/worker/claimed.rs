//! The runs this worker holds, as the claim loop sees them: the runs it started and that have
//! not ended (so `max_runs` is never exceeded, even before a run's task first runs), a wake-up
//! for the loop when a run ends while it was full, and a suspicion of orphans: runs the store
//! says this worker claimed but that nothing here executes (a claim whose commit succeeded but
//! whose reply was lost, a release that failed), which the loop then gives back.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::run_id::RunId;

/// See the module docs.
pub(crate) struct ClaimedRuns {
    runs: Mutex<HashSet<RunId>>,
    /// The claim loop stopped claiming because the worker was full.
    full: AtomicBool,
    /// The store may hold claims of this worker that nothing here executes.
    orphans: AtomicBool,
    /// Wakes the claim loop.
    bell: Arc<Notify>,
}

impl ClaimedRuns {
    pub fn new(bell: Arc<Notify>) -> Self {
        ClaimedRuns {
            runs: Mutex::new(HashSet::new()),
            full: AtomicBool::new(false),
            orphans: AtomicBool::new(false),
            bell,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<RunId>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `run_id` as held until the returned guard drops (when its task ends).
    pub fn hold(self: &Arc<Self>, run_id: RunId) -> HeldRun {
        self.lock().insert(run_id.clone());
        HeldRun {
            runs: self.clone(),
            run_id,
        }
    }

    /// How many runs the claim loop started that have not ended.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// True while the claim loop's task for `run_id` has not ended.
    pub fn holds(&self, run_id: &RunId) -> bool {
        self.lock().contains(run_id)
    }

    /// The claim loop found no room: wake it when a run ends.
    pub fn mark_full(&self) {
        self.full.store(true, Ordering::SeqCst);
    }

    /// A run of this worker ended: if the claim loop was full, wake it.
    pub fn freed(&self) {
        if self.full.swap(false, Ordering::SeqCst) {
            self.bell.notify_one();
        }
    }

    /// A claim or release of this worker may have had an effect nobody saw.
    pub fn suspect_orphans(&self) {
        self.orphans.store(true, Ordering::SeqCst);
        self.bell.notify_one();
    }

    /// True (once) when orphans are suspected.
    pub fn take_orphans(&self) -> bool {
        self.orphans.swap(false, Ordering::SeqCst)
    }
}

/// A run the claim loop started; see [`ClaimedRuns::hold`].
pub(crate) struct HeldRun {
    runs: Arc<ClaimedRuns>,
    run_id: RunId,
}

impl Drop for HeldRun {
    fn drop(&mut self) {
        self.runs.lock().remove(&self.run_id);
        self.runs.freed();
    }
}
