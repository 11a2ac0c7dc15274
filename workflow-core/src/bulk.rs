//! Bulk runs: many runs of one workflow from an iterator, at most N at once, as a stream of
//! per-run results, with totals (succeeded, failed, throughput, p50/p99 duration), cancellable
//! as a whole. `Engine::run_many` and `DurableEngine::run_many`; on a durable store the runs'
//! writes share group commits.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::stream::{BoxStream, Stream, StreamExt};

use crate::error::WorkflowError;
use crate::options::CancellationToken;

/// The result of one run of a bulk.
#[derive(Debug)]
pub struct BulkItem<O> {
    /// The input's position in the iterator.
    pub index: usize,
    /// The run's output or error.
    pub result: Result<O, WorkflowError>,
    /// From the run's start to its end.
    pub duration: Duration,
}

/// What a bulk did so far (all of it, once its stream ended).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkTotals {
    /// Runs that completed.
    pub succeeded: usize,
    /// Runs that failed or were cancelled.
    pub failed: usize,
    /// Since the bulk started.
    pub elapsed: Duration,
    /// Finished runs per second.
    pub per_second: f64,
    /// Median run duration (nearest rank), if any run finished.
    pub p50: Option<Duration>,
    /// 99th percentile run duration (nearest rank).
    pub p99: Option<Duration>,
}

/// A bulk of runs in progress: a stream of [`BulkItem`]s in the order the runs finish.
pub struct BulkRun<'a, O> {
    items: BoxStream<'a, BulkItem<O>>,
    cancel: CancellationToken,
    started: Instant,
    durations: Vec<Duration>,
    succeeded: usize,
    failed: usize,
}

impl<'a, O: Send + 'a> BulkRun<'a, O> {
    /// Starts runs of `inputs`, at most `concurrency` at once; `run(input, cancel)` runs one.
    pub(crate) fn new<I, F, Fut>(inputs: I, concurrency: usize, run: F) -> Self
    where
        I: IntoIterator,
        I::IntoIter: Send + 'a,
        I::Item: Send + 'a,
        F: Fn(I::Item, CancellationToken) -> Fut + Send + 'a,
        Fut: Future<Output = Result<O, WorkflowError>> + Send + 'a,
    {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let items = futures::stream::iter(inputs.into_iter().enumerate())
            .take_while(move |_| std::future::ready(!stop.is_cancelled()))
            .map({
                let cancel = cancel.clone();
                move |(index, input)| {
                    let started = Instant::now();
                    let run = run(input, cancel.child_token());
                    async move {
                        let result = run.await;
                        BulkItem {
                            index,
                            result,
                            duration: started.elapsed(),
                        }
                    }
                }
            })
            .buffer_unordered(concurrency.max(1))
            .boxed();
        BulkRun {
            items,
            cancel,
            started: Instant::now(),
            durations: Vec::new(),
            succeeded: 0,
            failed: 0,
        }
    }
}

impl<O> BulkRun<'_, O> {
    /// Cancels the bulk: no run starts any more, and the runs in flight are cancelled (their
    /// completed saga steps compensated); their results still arrive, as errors.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// The totals so far.
    pub fn totals(&self) -> BulkTotals {
        let mut sorted = self.durations.clone();
        sorted.sort();
        let rank = |q: f64| {
            (!sorted.is_empty()).then(|| {
                let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
                sorted[i - 1]
            })
        };
        let elapsed = self.started.elapsed();
        let finished = self.succeeded + self.failed;
        BulkTotals {
            succeeded: self.succeeded,
            failed: self.failed,
            elapsed,
            per_second: finished as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
            p50: rank(0.50),
            p99: rank(0.99),
        }
    }

    /// Waits for every run and returns the totals (the results themselves are dropped).
    pub async fn finish(mut self) -> BulkTotals {
        while self.next().await.is_some() {}
        self.totals()
    }
}

impl<O> Stream for BulkRun<'_, O> {
    type Item = BulkItem<O>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.items.poll_next_unpin(cx);
        if let Poll::Ready(Some(item)) = &polled {
            let duration = item.duration;
            let ok = item.result.is_ok();
            let this = &mut *self;
            this.durations.push(duration);
            if ok {
                this.succeeded += 1;
            } else {
                this.failed += 1;
            }
        }
        polled
    }
}
