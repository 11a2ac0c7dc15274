//! [`WorkerOptions`]: lease, heartbeat and concurrency of a durable engine's worker.

use std::time::Duration;

/// Settings of the worker inside a [`crate::DurableEngine`].
///
/// ```
/// use std::time::Duration;
/// use workflow_core::WorkerOptions;
///
/// let options = WorkerOptions::default().lease(Duration::from_secs(5)).max_runs(100);
/// assert_eq!(options.heartbeat_interval(), Duration::from_millis(500));
/// ```
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub(crate) lease: Duration,
    pub(crate) max_runs: usize,
    pub(crate) claim: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            lease: Duration::from_secs(10),
            max_runs: 1000,
            claim: true,
        }
    }
}

impl WorkerOptions {
    /// How long the worker's claims last without a heartbeat (default 10 s). Another worker
    /// takes its runs over within this time (plus one poll) after it dies.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(200));
        self
    }

    /// At most this many runs claimed by the claim loop at once (default 1,000).
    pub fn max_runs(mut self, max_runs: usize) -> Self {
        self.max_runs = max_runs.max(1);
        self
    }

    /// `false`: a client only. It starts, signals and cancels runs, and executes the ones it
    /// is asked to (`run`, `execute`), but claims nothing in the background.
    pub fn claim_runs(mut self, claim: bool) -> Self {
        self.claim = claim;
        self
    }

    /// The lease.
    pub fn lease_length(&self) -> Duration {
        self.lease
    }

    /// How often the worker heartbeats: a quarter of the lease, at most every 500 ms (so a
    /// cancel sent by another process reaches a run within a second).
    pub fn heartbeat_interval(&self) -> Duration {
        (self.lease / 4).min(Duration::from_millis(500))
    }

    /// With no heartbeat for this long the worker fences itself: the lease minus two
    /// heartbeats.
    pub fn fence_after(&self) -> Duration {
        self.lease.saturating_sub(self.heartbeat_interval() * 2)
    }
}
