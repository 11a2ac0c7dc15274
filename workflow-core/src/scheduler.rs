//! The eager scheduler: drives one run of a workflow to its end.
//!
//! Every step starts the moment its inputs are ready. All in-flight work of a run (step
//! attempts, `for_each` items, backoff pauses) sits in one `FuturesUnordered` polled by the
//! run's task, so independent steps run concurrently without a task spawn per step. Step
//! outputs move through the generated per-run state; the scheduler only sees indices.

use std::sync::Arc;
use std::time::Instant;

use std::future::pending;
use std::pin::Pin;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Sleep;

use crate::context::RunInfo;
use crate::definition::{Definition, Join, StepIndex};
use crate::error::{StepError, WorkflowError};
use crate::history::{RunHistory, StepOutcome, StepRecord};
use crate::options::{CancellationToken, RunOptions};
use crate::report::{CompensationRecord, FailureReport};
use crate::task::{Outcome, Tag, Task};
use crate::workflow::{StartInfo, Workflow};

/// Why the event loop stopped before the graph ran out of work.
enum Stop {
    StepFailed {
        step: StepIndex,
        item: Option<usize>,
        attempts: u32,
        error: StepError,
    },
    LoopLimit {
        step: StepIndex,
        max_iterations: u32,
    },
    Cancelled,
    Deadline(Duration),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Waiting,
    Ready,
    Running,
    Done,
    Failed,
}

/// Per-run bookkeeping of one step.
#[derive(Clone, Copy)]
struct StepState {
    status: Status,
    /// Upstream edges delivered in the current iteration.
    delivered: u16,
    /// Bumped when a loop iteration resets the step.
    generation: u32,
    /// Times the step was launched (a loop head's iteration count).
    launches: u32,
    attempts: u32,
    completions: u32,
    items_total: usize,
    items_next: usize,
    items_done: usize,
}

impl StepState {
    const NEW: StepState = StepState {
        status: Status::Waiting,
        delivered: 0,
        generation: 0,
        launches: 0,
        attempts: 0,
        completions: 0,
        items_total: 0,
        items_next: 0,
        items_done: 0,
    };
}

/// Timings and the path, collected only when a history was asked for.
pub(crate) struct Recorder {
    started: Instant,
    history: RunHistory,
}

impl Recorder {
    pub fn new(def: &Definition) -> Self {
        Recorder {
            started: Instant::now(),
            history: RunHistory {
                steps: def
                    .steps
                    .iter()
                    .map(|s| StepRecord {
                        step: s.name,
                        outcome: StepOutcome::Skipped,
                        attempts: 0,
                        completions: 0,
                        started_at: None,
                        finished_at: None,
                    })
                    .collect(),
                path: Vec::new(),
            },
        }
    }

    pub fn into_history(self) -> RunHistory {
        self.history
    }
}

/// Runs `workflow` on `input` to its end. When the run stops early (a step failed for good,
/// a loop ran past its bound, cancellation, deadline), in-flight steps are dropped and the
/// completed saga steps are compensated in reverse completion order.
pub(crate) async fn drive<W: Workflow + Sync>(
    workflow: &W,
    input: W::Input,
    run: Arc<RunInfo>,
    options: &RunOptions,
    recorder: Option<&mut Recorder>,
) -> Result<W::Output, WorkflowError> {
    let def = W::definition();
    let mut driver = Driver {
        workflow,
        def,
        state: W::__new_state(input),
        steps: vec![StepState::NEW; def.steps.len()],
        ready: Vec::new(),
        in_flight: FuturesUnordered::new(),
        sagas: Vec::new(),
        run,
        recorder,
    };
    let result = match driver.event_loop(options).await {
        Ok(()) => driver.output(),
        Err(stop) => {
            let cancelled = driver.cancel_in_flight();
            let compensations = driver.compensate().await;
            let report = FailureReport {
                cancelled,
                compensations,
            };
            Err(driver.error(stop, report))
        }
    };
    driver.record_outcomes();
    result
}

struct Driver<'a, 'r, W: Workflow> {
    workflow: &'a W,
    def: &'static Definition,
    state: W::__State,
    steps: Vec<StepState>,
    ready: Vec<StepIndex>,
    in_flight: FuturesUnordered<Task<'a, W::__Out>>,
    /// Completed saga steps, in completion order: (step, its completion number).
    sagas: Vec<(StepIndex, usize)>,
    run: Arc<RunInfo>,
    recorder: Option<&'r mut Recorder>,
}

impl<'a, W: Workflow + Sync> Driver<'a, '_, W> {
    async fn event_loop(&mut self, options: &RunOptions) -> Result<(), Stop> {
        let mut deadline = options
            .deadline
            .map(|d| (Box::pin(tokio::time::sleep(d)), d));
        for step in self.def.start_steps() {
            self.mark_ready(step);
        }
        loop {
            // When exactly one attempt is runnable and nothing else is in flight, await it
            // directly: a chain of steps never pays for the `FuturesUnordered` node.
            let mut solo = None;
            while let Some(step) = self.ready.pop() {
                if let Some(task) = self.launch(step)? {
                    if solo.is_none() && self.ready.is_empty() && self.in_flight.is_empty() {
                        solo = Some(task);
                    } else {
                        self.in_flight.push(task);
                    }
                }
            }
            let event = if deadline.is_none() && options.cancel.is_none() {
                self.next_event(solo).await
            } else {
                tokio::select! {
                    biased;
                    () = cancelled(options.cancel.as_ref()) => return Err(Stop::Cancelled),
                    after = expired(&mut deadline) => return Err(Stop::Deadline(after)),
                    event = self.next_event(solo) => event,
                }
            };
            let Some((tag, outcome)) = event else {
                return Ok(());
            };
            self.handle(tag, outcome)?;
        }
    }

    async fn next_event(
        &mut self,
        solo: Option<Task<'a, W::__Out>>,
    ) -> Option<(Tag, Outcome<W::__Out>)> {
        match solo {
            Some(task) => Some(task.await),
            None => self.in_flight.next().await,
        }
    }

    fn output(&mut self) -> Result<W::Output, WorkflowError> {
        W::__take_output(&mut self.state).ok_or_else(|| WorkflowError::NoOutput {
            workflow: self.def.name,
            run_id: self.run.run_id.clone(),
            steps: self
                .def
                .steps
                .iter()
                .filter(|s| s.is_output)
                .map(|s| s.name)
                .collect(),
        })
    }

    fn error(&self, stop: Stop, report: FailureReport) -> WorkflowError {
        let report = Box::new(report);
        let workflow = self.def.name;
        let run_id = self.run.run_id.clone();
        match stop {
            Stop::StepFailed {
                step,
                item,
                attempts,
                error,
            } => WorkflowError::StepFailed {
                workflow,
                run_id,
                step: self.def.steps[step as usize].name,
                item,
                attempts,
                error,
                report,
            },
            Stop::LoopLimit {
                step,
                max_iterations,
            } => WorkflowError::LoopLimitExceeded {
                workflow,
                run_id,
                step: self.def.steps[step as usize].name,
                max_iterations,
                report,
            },
            Stop::Cancelled => WorkflowError::Cancelled {
                workflow,
                run_id,
                report,
            },
            Stop::Deadline(deadline) => WorkflowError::DeadlineExceeded {
                workflow,
                run_id,
                deadline,
                report,
            },
        }
    }

    /// Drops every in-flight attempt; returns the names of the steps that were running.
    fn cancel_in_flight(&mut self) -> Vec<&'static str> {
        self.in_flight = FuturesUnordered::new();
        self.steps
            .iter()
            .zip(self.def.steps)
            .filter(|(st, _)| st.status == Status::Running)
            .map(|(_, def)| def.name)
            .collect()
    }

    /// Runs the compensations of the completed saga steps, latest completion first. Each is
    /// retried by its own policy; one that still fails is recorded and the others still run.
    async fn compensate(&mut self) -> Vec<CompensationRecord> {
        let mut records = Vec::new();
        while let Some((step, completion)) = self.sagas.pop() {
            let def = &self.def.steps[step as usize];
            let Some(compensation) = def.compensation else {
                continue;
            };
            let mut attempt = 1;
            let error = loop {
                let info = StartInfo {
                    run: &self.run,
                    attempt,
                };
                let workflow: &'a W = self.workflow;
                let Some(future) = workflow.__compensate(&mut self.state, step, completion, info)
                else {
                    break Some(StepError::msg("internal error: compensation input missing"));
                };
                let span = tracing::info_span!(
                    "compensation",
                    step = def.name,
                    compensation = compensation.name,
                    attempt
                );
                let tag = Tag {
                    step,
                    item: completion,
                    generation: 0,
                    attempt,
                };
                let task = Task::attempt(tag, span, future, compensation.policy.timeout);
                match task.await.1 {
                    Outcome::Attempted(Ok(())) => break None,
                    Outcome::Attempted(Err(error))
                        if !error.is_permanent() && attempt <= compensation.policy.retries =>
                    {
                        tracing::warn!(step = def.name, compensation = compensation.name, attempt, %error, "compensation failed; retrying");
                        tokio::time::sleep(compensation.policy.backoff.pause(attempt)).await;
                        attempt += 1;
                    }
                    Outcome::Attempted(Err(error)) => {
                        tracing::error!(step = def.name, compensation = compensation.name, attempt, %error, "compensation failed for good");
                        break Some(error);
                    }
                    Outcome::RetryDue => break None,
                }
            };
            records.push(CompensationRecord {
                step: def.name,
                compensation: compensation.name,
                attempts: attempt,
                error,
            });
        }
        records
    }

    fn mark_ready(&mut self, step: StepIndex) {
        self.steps[step as usize].status = Status::Ready;
        self.ready.push(step);
    }

    /// Starts a ready step: returns its attempt, or pushes its `for_each` items itself.
    fn launch(&mut self, step: StepIndex) -> Result<Option<Task<'a, W::__Out>>, Stop> {
        let index = step as usize;
        if self.steps[index].status != Status::Ready {
            return Ok(None); // reset by a loop iteration after it became ready
        }
        let st = &mut self.steps[index];
        st.status = Status::Running;
        st.launches += 1;
        if let Some(rec) = self.recorder.as_deref_mut() {
            let record = &mut rec.history.steps[index];
            record.started_at.get_or_insert(rec.started.elapsed());
        }
        let Some(for_each) = self.def.steps[index].for_each else {
            return Ok(Some(self.attempt(step, 0, 1)));
        };
        let total = W::__for_each_begin(&mut self.state, step);
        let limit = for_each
            .concurrency
            .map_or(total, |c| (c as usize).min(total));
        let st = &mut self.steps[index];
        st.items_total = total;
        st.items_next = limit;
        st.items_done = 0;
        if total == 0 {
            let arm = W::__for_each_finish(&mut self.state, step);
            self.complete(step, arm)?;
        }
        for item in 0..limit {
            let task = self.attempt(step, item, 1);
            self.in_flight.push(task);
        }
        Ok(None)
    }

    /// Creates one attempt of a step (or of one item of a `for_each` step).
    fn attempt(&mut self, step: StepIndex, item: usize, attempt: u32) -> Task<'a, W::__Out> {
        let def = &self.def.steps[step as usize];
        let span = tracing::info_span!("step", step = def.name, attempt, item);
        let workflow: &'a W = self.workflow;
        let info = StartInfo {
            run: &self.run,
            attempt,
        };
        let future = workflow.__start(&mut self.state, step, item, info);
        let st = &mut self.steps[step as usize];
        st.attempts += 1;
        let tag = Tag {
            step,
            item,
            generation: st.generation,
            attempt,
        };
        Task::attempt(tag, span, future, def.policy.timeout)
    }

    fn handle(&mut self, tag: Tag, outcome: Outcome<W::__Out>) -> Result<(), Stop> {
        let index = tag.step as usize;
        if tag.generation != self.steps[index].generation {
            return Ok(()); // a result of an abandoned loop iteration
        }
        let def = &self.def.steps[index];
        match outcome {
            Outcome::RetryDue => {
                let task = self.attempt(tag.step, tag.item, tag.attempt + 1);
                self.in_flight.push(task);
            }
            Outcome::Attempted(Ok(out)) => {
                let arm = W::__deliver(&mut self.state, out);
                if def.for_each.is_none() {
                    return self.complete(tag.step, arm);
                }
                let st = &mut self.steps[index];
                st.items_done += 1;
                if st.items_next < st.items_total {
                    let item = st.items_next;
                    st.items_next += 1;
                    let task = self.attempt(tag.step, item, 1);
                    self.in_flight.push(task);
                }
                let st = &self.steps[index];
                if st.items_done == st.items_total {
                    let arm = W::__for_each_finish(&mut self.state, tag.step);
                    return self.complete(tag.step, arm);
                }
            }
            Outcome::Attempted(Err(error)) => {
                if !error.is_permanent() && tag.attempt <= def.policy.retries {
                    let pause = def.policy.backoff.pause(tag.attempt);
                    tracing::warn!(step = def.name, attempt = tag.attempt, %error, ?pause, "step attempt failed; retrying");
                    let task = if pause.is_zero() {
                        self.attempt(tag.step, tag.item, tag.attempt + 1)
                    } else {
                        Task::backoff(tag, pause)
                    };
                    self.in_flight.push(task);
                    return Ok(());
                }
                self.steps[index].status = Status::Failed;
                tracing::error!(step = def.name, attempts = tag.attempt, %error, "step failed");
                return Err(Stop::StepFailed {
                    step: tag.step,
                    item: def.for_each.map(|_| tag.item),
                    attempts: tag.attempt,
                    error,
                });
            }
        }
        Ok(())
    }

    /// A step produced its output (`arm`: the branch its downstream match selected).
    fn complete(&mut self, step: StepIndex, arm: Option<u16>) -> Result<(), Stop> {
        let st = &mut self.steps[step as usize];
        st.status = Status::Done;
        st.completions += 1;
        if self.def.steps[step as usize].compensation.is_some() {
            self.sagas.push((step, st.completions as usize - 1));
        }
        if let Some(rec) = self.recorder.as_deref_mut() {
            let name = self.def.steps[step as usize].name;
            rec.history.path.push(name);
            rec.history.steps[step as usize].finished_at = Some(rec.started.elapsed());
        }
        for edge in self.def.steps[step as usize].downstream {
            if edge.arm.is_some() && edge.arm != arm {
                continue; // an untaken branch
            }
            if edge.back {
                self.next_iteration(edge.to)?;
                continue;
            }
            let target = &mut self.steps[edge.to as usize];
            if target.status != Status::Waiting {
                continue; // an `any` join that already fired
            }
            target.delivered += 1;
            let target_def = &self.def.steps[edge.to as usize];
            if target_def.join != Join::All
                || target.delivered as usize == target_def.upstream.len()
            {
                self.mark_ready(edge.to);
            }
        }
        Ok(())
    }

    /// A back edge fired into loop head `head`: reset the loop's body and run the head again.
    fn next_iteration(&mut self, head: StepIndex) -> Result<(), Stop> {
        let def = &self.def.steps[head as usize];
        let Some(loop_head) = def.loop_head else {
            return Ok(()); // the macro only emits back edges into loop heads
        };
        if self.steps[head as usize].launches >= loop_head.max_iterations {
            return Err(Stop::LoopLimit {
                step: head,
                max_iterations: loop_head.max_iterations,
            });
        }
        for &member in loop_head.body {
            let st = &mut self.steps[member as usize];
            st.status = Status::Waiting;
            st.delivered = 0;
            st.generation += 1;
            W::__reset(&mut self.state, member);
        }
        self.steps[head as usize].generation += 1;
        self.mark_ready(head);
        Ok(())
    }

    /// Copies each step's final status into the history, if one is recorded.
    fn record_outcomes(&mut self) {
        let Some(rec) = self.recorder.as_deref_mut() else {
            return;
        };
        for (record, st) in rec.history.steps.iter_mut().zip(&self.steps) {
            record.attempts = st.attempts;
            record.completions = st.completions;
            record.outcome = match st.status {
                Status::Failed => StepOutcome::Failed,
                Status::Running => StepOutcome::Cancelled,
                _ if st.completions > 0 => StepOutcome::Completed,
                _ => StepOutcome::Skipped,
            };
        }
    }
}

/// Resolves when `token` is cancelled; never without a token.
async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(token) => token.cancelled().await,
        None => pending().await,
    }
}

/// Resolves with the deadline when it has passed; never without a deadline.
async fn expired(deadline: &mut Option<(Pin<Box<Sleep>>, Duration)>) -> Duration {
    match deadline {
        Some((sleep, after)) => {
            sleep.as_mut().await;
            *after
        }
        None => pending().await,
    }
}
